"""The one image finder: the importer's and pre-segmentation's file lists, one hidden-file rule."""
import pytest

from annotate.services.image_files import find_image_files, is_image_name
from storage.errors import NotFoundError


@pytest.fixture
def camera(tmp_path):
    folder = tmp_path / "camera"
    for name in ("b.jpg", "a.PNG", "notes.txt", ".hidden.jpg", "._b.jpg", "sub/c.tif", ".thumbs/d.jpg",
                 "sub/.e.jpeg"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    return folder


def test_folders_give_their_images_sorted_without_hidden_files_or_folders(camera):
    found = find_image_files([camera], resolve=False)
    assert found == [camera / "a.PNG", camera / "b.jpg", camera / "sub" / "c.tif"]


def test_a_named_file_is_kept_and_each_file_comes_once(camera):
    found = find_image_files([camera / ".hidden.jpg", camera, camera / "b.jpg"])
    assert found[0] == (camera / ".hidden.jpg").resolve()
    assert found.count((camera / "b.jpg").resolve()) == 1 and len(found) == 4


def test_resolving_counts_two_names_of_one_file_once_and_as_named_keeps_both(camera, tmp_path):
    link = tmp_path / "link.jpg"
    link.symlink_to(camera / "b.jpg")
    assert find_image_files([camera / "b.jpg", link]) == [(camera / "b.jpg").resolve()]
    assert find_image_files([camera / "b.jpg", link], resolve=False) == [camera / "b.jpg", link]


def test_a_broken_link_is_left_for_the_reader_and_a_missing_path_refused(tmp_path):
    broken = tmp_path / "gone.jpg"
    broken.symlink_to(tmp_path / "nothing.jpg")
    assert find_image_files([broken], resolve=False) == [broken]
    with pytest.raises(NotFoundError, match="missing does not exist; check the path"):
        find_image_files([tmp_path / "missing"])


def test_image_names_by_suffix():
    assert is_image_name("x/IMG.JPG") and is_image_name("scan.dcm") and not is_image_name("photo.jpg.txt")
