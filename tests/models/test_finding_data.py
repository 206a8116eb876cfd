from pathlib import Path

import cv2
import numpy as np
import torch

from models.finding_data import (FindingDataset, FindingSample, cached_photo, random_affine,
                                 regional_cue, split_derivation_validation)


def synthetic_fundus(path: Path, width=96, height=64) -> Path:
    image = np.zeros((height, width, 3), np.uint8)
    cv2.circle(image, (width // 2, height // 2), 36, (40, 90, 180), -1)  # FOV cut at top and bottom
    cv2.imwrite(str(path), image)
    return path


def sample(key, present, regions=(), group="", confident=True, path=Path("x.png")):
    return FindingSample(key=key, image_path=path, present=present, regions=frozenset(regions),
                         disc=(30.0, 32.0), fovea=(66.0, 32.0), source="reference:test", group=group,
                         confident=confident, extra={"decoded_shape": (64, 96)})


def test_cached_photo_crops_the_black_border_and_reuses_the_cache(tmp_path):
    path = synthetic_fundus(tmp_path / "eye.png")
    photo, box = cached_photo(path, "eye", 32, cache_root=tmp_path / "cache")
    assert photo.shape == (32, 32, 3) and photo.dtype == np.uint8
    x0, y0, x1, y1 = box
    assert abs(x0 - 12) <= 2 and abs(x1 - 84) <= 2 and (y0, y1) == (0, 64)
    path.unlink()  # the second call must come from the cache
    again, box_again = cached_photo(path, "eye", 32, cache_root=tmp_path / "cache")
    assert np.array_equal(photo, again) and box_again == box
    assert photo[16, 16, 2] == 40 and photo[16, 16, 0] == 180  # RGB order


def test_regional_cue_covers_the_macula_region_around_the_fovea():
    cue = regional_cue(sample("a", True, {1}), (64, 96), (0, 0, 96, 64), map_size=8)
    assert cue.shape == (8, 8) and cue.dtype == np.float32
    fovea_cell = (int(32 / 64 * 8), int(66 / 96 * 8))
    assert cue[fovea_cell] == 1.0 and cue[:, 0].sum() == 0.0  # the disc side holds no macula


def test_negatives_get_an_all_zero_cue():
    assert not regional_cue(sample("n", False), (64, 96), (0, 0, 96, 64), map_size=4).any()


def test_dataset_items_are_image_label_and_cue(tmp_path):
    path = synthetic_fundus(tmp_path / "eye.png")
    items = [sample("p", True, {1, 4}, path=path), sample("n", False, path=path)]
    dataset = FindingDataset(items, input_size=32, map_size=2, cache_root=tmp_path / "cache")
    image, present, cue = dataset[0]
    assert image.shape == (3, 32, 32) and 0 <= image.min() and image.max() <= 1
    assert present.item() == 1.0 and cue.shape == (2, 2) and cue.sum() > 0
    assert dataset.label_snapshot()["p"] == {"present": True, "regions": [1, 4], "source": "reference:test"}


def test_split_keeps_twins_together_and_validates_on_confident_photos_only():
    items = [sample(f"p{i}", True, {1}, group=f"g{i}") for i in range(10)]
    items += [sample(f"n{i}", False, group=f"h{i}") for i in range(10)]
    items += [sample("twin", True, {1}, group="g0", confident=False)]
    items += [sample(f"u{i}", False, confident=False) for i in range(5)]
    derivation, validation = split_derivation_validation(items, 0.2, seed=4)
    assert len(derivation) + len(validation) == len(items)
    assert all(s.confident for s in validation)
    assert sum(s.present for s in validation) == 2 and sum(not s.present for s in validation) == 3
    sides = {s.key: s in validation for s in items}
    assert sides["twin"] == sides["p0"]


def test_affine_without_ranges_is_the_identity_and_a_flip_moves_the_cue_with_the_photo():
    images = torch.rand(3, 3, 8, 8)
    cues = torch.zeros(3, 4, 4)
    cues[:, 0, 0] = 1
    same, same_cues = random_affine(images, cues)
    assert torch.allclose(same, images, atol=1e-5) and torch.equal(same_cues, cues)
    images[:, :, :2, :2] = 1.0
    torch.manual_seed(0)
    flipped, flipped_cues = random_affine(images, cues, flip=True)
    mirrored_any = set()
    for i in range(3):
        mirrored = bool(flipped_cues[i, 0, 3] == 1)
        mirrored_any.add(mirrored)
        assert mirrored != bool(flipped_cues[i, 0, 0] == 1)
        assert bool(torch.allclose(flipped[i, :, :2, 6:], torch.ones(3, 2, 2))) == mirrored
    assert mirrored_any == {True, False}  # seed 0 flips some and keeps others
