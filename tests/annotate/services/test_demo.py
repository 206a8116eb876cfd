from annotate.services.demo import DEMO_IMAGES, create_demo_project
from storage.project import open_project
from storage.readers import list_readers
from storage.reading import ReaderSession


def test_demo_photos_ship_with_their_attribution_and_fit_the_budget():
    photos = sorted(DEMO_IMAGES.glob("*.jpg"))
    assert len(photos) == 6
    assert sum(p.stat().st_size for p in photos) < 5 * 1024 * 1024
    assert "CC BY 4.0" in (DEMO_IMAGES / "ATTRIBUTION.md").read_text()


def test_demo_project_gives_each_photo_three_readers_and_is_reused(tmp_path):
    folder = create_demo_project(tmp_path / "demo")
    with open_project(folder) as project:
        readers = list_readers(project.database)
        ophthalmologists = [r for r in readers if r.role == "ophthalmologist"]
        assert len(ophthalmologists) == 3
        for reader in ophthalmologists:
            session = ReaderSession(project.database, reader.id)
            assert session.progress().total == 6
        first = ReaderSession(project.database, ophthalmologists[0].id)
        image = first.next_unfinished()
        first.mark_normal(image.id)
    # Opening the demo again keeps what the reader did.
    assert create_demo_project(folder) == folder
    with open_project(folder) as project:
        assert ReaderSession(project.database, ophthalmologists[0].id).read(image.id).normal


def test_the_demo_admin_and_reviewer_sign_in_with_the_public_demo_passphrase(tmp_path):
    from annotate.services.demo import DEMO_ADMIN, DEMO_PASSPHRASE
    from storage.readers import Role, require_admin, sign_in

    folder = create_demo_project(tmp_path / "demo")
    with open_project(folder) as project:
        db = project.database
        by_role = {r.role: r for r in list_readers(db)}
        assert by_role[Role.ADMIN].name == DEMO_ADMIN and by_role[Role.REVIEWER].has_pin
        require_admin(db, sign_in(db, by_role[Role.ADMIN].id, DEMO_PASSPHRASE).id)
        assert sign_in(db, by_role[Role.REVIEWER].id, DEMO_PASSPHRASE).role is Role.REVIEWER
        assert not by_role[Role.OPHTHALMOLOGIST].has_pin   # `gui --demo` opens as a reader at once
