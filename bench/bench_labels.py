"""Labels out and in on IDRiD photos (issue 16): export (csv, json, coco, masks) and import-labels.

The project: ``--photos`` IDRiD-landmarks photos (1429 x 949 JPEG; ``--data DIR`` or
``$OCTANT_PUBLIC_DATA``) imported as a clinic would, each read by three simulated readers whose
landmarks are the IDRiD disc and fovea moved by a few pixels and whose regions are those holding
the centre of each CODRAS haemorrhage or hard-exudate box (one reader in three misses each
finding); a grade 0 photo is answered "normal". Measured: each export format, then import-labels
of the JSON into an empty project holding the same photos, which must give back the same
labels (checked) with an intact audit chain.

    python bench/bench_labels.py [--photos 413] [--data DIR] [--folder DIR]


Prints the figures and writes ``bench/results/bench_labels.json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FINDINGS = {"haemorrhages": "haemorrhage", "hard_exudates": "hard_exudate"}
READERS = ("Dr Ahn", "Dr Baek", "Dr Cho")


def idrid_photos(data: Path, count: int) -> list[dict]:
    """Per photo: path, disc, fovea, grade, and the box centres of each finding."""
    folder = data / "IDRiD-landmarks"
    with open(folder / "landmarks.csv", newline="") as handle:
        marks = {r["image"]: r for r in csv.DictReader(handle)}
    with open(folder / "grades.csv", newline="") as handle:
        grades = {r["image"]: int(r["retinopathy_grade"]) for r in csv.DictReader(handle)}
    boxes: dict[str, dict[str, list]] = {}
    with open(folder / "lesion_boxes.csv", newline="") as handle:
        for r in csv.DictReader(handle):
            if r["label"] in FINDINGS:
                centre = ((float(r["x0"]) + float(r["x1"])) / 2, (float(r["y0"]) + float(r["y1"])) / 2)
                boxes.setdefault(r["image"], {}).setdefault(FINDINGS[r["label"]], []).append(centre)
    photos = []
    for name in sorted(marks)[:count]:
        m = marks[name]
        photos.append(dict(path=folder / "images" / name, disc=(float(m["disc_x"]), float(m["disc_y"])),
                           fovea=(float(m["fovea_x"]), float(m["fovea_y"])), grade=grades.get(name),
                           findings=boxes.get(name, {})))
    return photos


def build(root: Path, photos: list[dict]) -> tuple[object, float]:
    """The read project, and the seconds its photo import took."""
    from annotate.geometry import region_at
    from annotate.services.importer import import_images
    from annotate.services.photos import sha256_of_file
    from storage.assignment import assign_readers
    from storage.catalogue import DEFAULT_DIAGNOSIS_CLASSES
    from storage.images import find_image_by_sha256
    from storage.project import create_project
    from storage.readers import Role, add_reader, create_first_admin
    from storage.reading import ReaderSession

    project = create_project(root, name="IDRiD labels bench")
    db = project.database
    admin = create_first_admin(db, "Admin", "bench admin passphrase").id
    readers = [add_reader(db, name, Role.OPHTHALMOLOGIST, acting_reader_id=admin).id for name in READERS]
    started = time.perf_counter()
    report = import_images(project, [p["path"] for p in photos])
    import_s = time.perf_counter() - started
    if report.failed:
        raise SystemExit(f"{len(report.failed)} photos could not be imported: {report.failed[0][1]}")
    assign_readers(db, seed=0)
    rng = random.Random(0)
    for photo in photos:
        image = find_image_by_sha256(db, sha256_of_file(photo["path"]))
        for reader in readers:
            session = ReaderSession(db, reader)
            jitter = [rng.uniform(-4, 4) for _ in range(4)]
            disc = (photo["disc"][0] + jitter[0], photo["disc"][1] + jitter[1])
            fovea = (photo["fovea"][0] + jitter[2], photo["fovea"][1] + jitter[3])
            session.set_landmarks(image.id, disc, fovea)
            marked = False
            for finding, centres in photo["findings"].items():
                if rng.random() < 1 / 3:
                    continue   # this reader missed it
                regions = {region_at(disc, fovea, c, (image.height, image.width)) for c in centres} - {0}
                if regions:
                    session.set_regions(image.id, finding, regions)
                    marked = True
            if not marked and photo["grade"] == 0:
                session.mark_normal(image.id)
            if photo["grade"] is not None:
                session.set_diagnosis(image.id, DEFAULT_DIAGNOSIS_CLASSES[photo["grade"]])
            session.mark_done(image.id)
    return project, import_s


def timed(action) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=413, help="IDRiD-landmarks photos to use (default all 413)")
    parser.add_argument("--data", type=Path, default=None, help="public data folder (default $OCTANT_PUBLIC_DATA)")
    parser.add_argument("--folder", type=Path, default=None, help="where to build the projects (default: a temp folder)")
    args = parser.parse_args()

    from annotate.services.export import export_labels
    from annotate.services.label_import import import_labels
    from storage.audit import verify
    from storage.images import NewImage, add_images, list_images
    from storage.locations import public_data_dir
    from storage.project import create_project
    from storage.readers import create_first_admin, find_reader

    photos = idrid_photos(public_data_dir(args.data), args.photos)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.folder or scratch)
        work.mkdir(parents=True, exist_ok=True)
        source, import_s = build(work / "source", photos)
        admin = find_reader(source.database, "Admin").id
        images = len(list_images(source.database))   # IDRiD holds a few photos twice: imported once
        result: dict[str, object] = dict(photos=len(photos), images=images, reads=3 * images,
                                         photo_import_s=round(import_s, 2))
        for fmt, name in (("csv", "labels.csv"), ("json", "labels.json"), ("coco", "coco.json"), ("masks", "masks")):
            summary, wall, cpu = timed(lambda fmt=fmt, name=name: export_labels(source, work / name, fmt, admin))
            result[f"export_{fmt}_s"], result[f"export_{fmt}_cpu_s"] = round(wall, 3), round(cpu, 3)
            if fmt == "masks":
                result["mask_files"] = summary.files
                result["masks_mb"] = round(sum(p.stat().st_size for p in (work / name).rglob("*")) / 1e6, 1)
            else:
                result[f"export_{fmt}_mb"] = round((work / name).stat().st_size / 1e6, 2)
        target = create_project(work / "target", name="empty")
        create_first_admin(target.database, "Admin", "bench admin passphrase")
        add_images(target.database, [NewImage(i.path, i.sha256, i.width, i.height, i.laterality, i.split, i.fov, i.crop,
                                              i.patient) for i in list_images(source.database)])
        report, wall, cpu = timed(lambda: import_labels(target, work / "labels.json", find_reader(target.database, "Admin").id))
        result["import_labels_s"], result["import_labels_cpu_s"] = round(wall, 3), round(cpu, 3)
        result["imported_reads"] = report.written + report.unchanged
        export_labels(target, work / "again.json", "json", find_reader(target.database, "Admin").id)

        def labels(path: Path) -> dict:
            document = json.loads(path.read_text(encoding="utf-8"))
            return {i["sha256"]: (sorted(json.dumps({k: v for k, v in r.items() if k != "reader_id"}, sort_keys=True)
                                         for r in i["reads"]), i["consensus"], i["final"]) for i in document["images"]}

        result["round_trip_identical"] = labels(work / "labels.json") == labels(work / "again.json")
        result["audit_chain_intact"] = not verify(target.database).problems
        source.close()
        target.close()
    result["cpus"] = os.cpu_count()
    result["load_average_before"], result["load_average_after"] = load_before, round(os.getloadavg()[0], 2)
    for key, value in result.items():
        print(f"{key:<28} {value}")
    out = Path(__file__).resolve().parent / "results" / "bench_labels.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return 0 if result["round_trip_identical"] and result["audit_chain_intact"] else 1


if __name__ == "__main__":
    from main import one_line_errors  # no public data named: one line, not a traceback

    with one_line_errors(Path(__file__).name):
        sys.exit(main())
