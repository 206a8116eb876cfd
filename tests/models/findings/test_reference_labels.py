import csv
from pathlib import Path

import cv2
import numpy as np

from models.findings.reference_labels import idrid_reference_samples

DISC, FOVEA = (400.0, 470.0), (760.0, 480.0)  # landmarks-set pixels (1429 × 949)


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def fundus(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.uint8)
    cv2.circle(image, (width // 2, height // 2), int(height * 0.6), (60, 100, 160), -1)
    noise = rng.integers(0, 60, (height // 16, width // 16, 3), dtype=np.uint8)
    return cv2.add(image, cv2.resize(noise, (width, height), interpolation=cv2.INTER_NEAREST))


def fake_idrid(root: Path) -> Path:
    landmarks = root / "IDRiD-landmarks"
    (landmarks / "images").mkdir(parents=True)
    for i in range(1, 6):
        cv2.imwrite(str(landmarks / "images" / f"IDRiD_00{i}.jpg"), fundus(1429, 949, i))
    write_csv(landmarks / "landmarks.csv", ["image", "idrid_name", "disc_x", "disc_y", "fovea_x", "fovea_y", "confident"],
              [[f"IDRiD_00{i}.jpg", f"IDRiD_00{i}_train", *DISC, *FOVEA, 1] for i in range(1, 6)])
    write_csv(landmarks / "grades.csv", ["image", "retinopathy_grade", "macular_edema_risk"],
              [["IDRiD_001.jpg", 0, 0], ["IDRiD_002.jpg", 2, 1], ["IDRiD_003.jpg", 2, 0], ["IDRiD_004.jpg", 0, 0],
               ["IDRiD_005.jpg", 2, 0]])
    write_csv(landmarks / "lesion_boxes.csv", ["image", "label", "x0", "y0", "x1", "y1"],
              [["IDRiD_002.jpg", "haemorrhages", 740, 460, 780, 500],     # the segmentation photo's twin
               ["IDRiD_003.jpg", "haemorrhages", 740, 460, 780, 500],     # on the fovea: macula
               ["IDRiD_004.jpg", "haemorrhages", 100, 100, 120, 120]])    # contradicts grade 0
    segmentation = root / "IDRiD-segmentation"
    for folder in ("images", "optic_disc", "haemorrhages"):
        (segmentation / folder).mkdir(parents=True)
    # The segmentation photo is landmarks photo 2 at full size (×3): its fovea is copied from there.
    full = cv2.resize(fundus(1429, 949, 2), (4287, 2847), interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(segmentation / "images" / "IDRiD_01.jpg"), full)
    disc_mask = np.zeros(full.shape[:2], np.uint8)
    cv2.circle(disc_mask, (1200, 1410), 200, 255, -1)
    cv2.imwrite(str(segmentation / "optic_disc" / "IDRiD_01.png"), disc_mask)
    lesion = np.zeros(full.shape[:2], np.uint8)
    cv2.circle(lesion, (3600, 700), 10, 255, -1)  # far temporal, above the disc–fovea line
    cv2.imwrite(str(segmentation / "haemorrhages" / "IDRiD_01.png"), lesion)
    write_csv(segmentation / "manifest.csv", ["image", "microaneurysms", "haemorrhages", "hard_exudates",
                                               "soft_exudates", "optic_disc"], [["IDRiD_01.jpg", 0, 1, 0, 0, 1]])
    return root


def test_boxes_grades_and_masks_become_regional_labels(tmp_path):
    samples = {s.key: s for s in idrid_reference_samples("haemorrhage", fake_idrid(tmp_path))}
    assert not samples["idrid-landmarks-IDRiD_001"].present                  # grade 0, no box: absent
    boxed = samples["idrid-landmarks-IDRiD_003"]
    assert boxed.regions == frozenset({1}) and not boxed.cue_complete        # box on the fovea: macula
    assert samples["idrid-landmarks-IDRiD_001"].cue_complete                 # absent: nothing to miss
    assert "idrid-landmarks-IDRiD_005" not in samples                        # no box, grade 2: unknown
    assert "idrid-landmarks-IDRiD_004" not in samples                        # box on grade 0: uncertain
    assert "idrid-landmarks-IDRiD_002" not in samples                        # its masks supersede its boxes
    seg = samples["idrid-segmentation-IDRiD_01"]
    assert seg.present and seg.regions == frozenset({5})                     # superotemporal
    assert seg.group == "landmarks:IDRiD_002.jpg" and seg.cue_complete       # one photo, one group
    assert seg.confident                                                     # fovea from a checked twin
    assert seg.extra["fovea_source"].startswith("IDRiD-landmarks")
    assert seg.disc == (300.125, 352.625) and seg.fovea == (570.0, 360.0)   # quarter-size pixels
    mask_file, scale = seg.extra["lesion_mask"]                              # the lesions, for lesion cues
    assert mask_file.name == "IDRiD_01.png" and mask_file.parent.name == "haemorrhages" and scale == 4
    assert len(boxed.extra["lesion_boxes"]) == 1 and samples["idrid-landmarks-IDRiD_001"].extra["lesion_boxes"] == ()
