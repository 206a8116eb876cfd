"""Dashboard numbers and `report` on a project built from IDRiD, at clinic scale (issue 19).

Targets: dashboard numbers for 10,000 images x 3 readers <= 2 s; the whole report (numbers,
16 figures, 6 tables, summary) <= 30 s.

The project: ``--images`` image rows cycling through the IDRiD photos (``IDRiD-segmentation`` masks
and ``IDRiD-landmarks`` boxes and grades, via ``models.findings.reference_labels``; ``--data DIR`` or
``$OCTANT_PUBLIC_DATA``), each read by three of six simulated readers who copy the reference with
their own error rates (a missed finding, a false alarm, a region dropped or a neighbour added, a
grade one step off). Photos without a reference answer for a finding count as absent there.
Model predictions are simulated too (scores separated by the reference, activation mostly in the
reference regions): no CPU screens 10,000 photos in a bench run. ``--screen K`` also runs the real
``screen`` networks on K IDRiD photos and reports seconds per photo (the result is not stored).

    python bench/bench_report.py [--images 10000] [--data DIR] [--screen 0] [--folder DIR]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select, update  # noqa: E402

from storage.project import ProjectHandle  # noqa: E402

FINDINGS = ("haemorrhage", "hard_exudate", "microaneurysm", "cotton_wool_patch")
BATCH = 20_000
# (miss, false alarm, region error, grade error) per simulated reader
READERS = [(0.05, 0.03, 0.10, 0.10), (0.10, 0.05, 0.20, 0.20), (0.15, 0.02, 0.15, 0.15),
           (0.08, 0.08, 0.25, 0.25), (0.20, 0.04, 0.30, 0.30), (0.06, 0.06, 0.12, 0.12)]


def reference(data: Path | None) -> list[dict]:
    """Per IDRiD photo: path, {finding: regions} (present ones), grade (or None)."""
    from models.findings.data import idrid_grade_photos
    from models.findings.reference_labels import idrid_reference_samples
    from storage.locations import public_data_dir

    root = Path(data) if data else public_data_dir()
    photos: dict[str, dict] = {}
    for code in FINDINGS:
        for sample in idrid_reference_samples(code, root):
            entry = photos.setdefault(str(sample.image_path), dict(path=str(sample.image_path), findings={}, grade=None))
            if sample.present:
                entry["findings"][code] = sorted(sample.regions) or [1]
    for photo in idrid_grade_photos(root):
        entry = photos.setdefault(str(photo.image_path), dict(path=str(photo.image_path), findings={}, grade=None))
        entry["grade"] = photo.label
    return sorted(photos.values(), key=lambda p: p["path"])


def _neighbour(region: int, rng: random.Random) -> int:
    return rng.choice([r for r in range(1, 9) if r != region])


def read_as(reader: tuple, truth: dict, rng: random.Random) -> tuple[dict[str, list[int]], int | None]:
    miss, false_alarm, region_error, grade_error = reader
    said: dict[str, list[int]] = {}
    for code in FINDINGS:
        regions = truth["findings"].get(code)
        if regions is not None and rng.random() >= miss:
            chosen = {r for r in regions if rng.random() >= region_error} or {regions[0]}
            if rng.random() < region_error:
                chosen.add(_neighbour(regions[0], rng))
            said[code] = sorted(chosen)
        elif regions is None and rng.random() < false_alarm:
            said[code] = [rng.randint(1, 8)]
    grade = truth["grade"]
    if grade is not None and rng.random() < grade_error:
        grade = min(4, max(0, grade + rng.choice((-1, 1))))
    return said, grade


def build(project: ProjectHandle, photos: list[dict], images: int, rng: random.Random) -> dict[str, float]:
    from storage.assignment import assign_readers
    from storage.labels import regions_to_mask
    from storage.readers import Role, add_reader, create_first_admin
    from storage.schema import DiagnosisClass, DiagnosisLabel, Finding, Image, Prediction, Read, RegionalLabel, utc_now

    db = project.database
    start = time.perf_counter()
    with db.transaction() as session:
        for first in range(0, images, BATCH):
            session.execute(insert(Image), [
                dict(path=f"idrid/{i:06d}/{Path(photos[i % len(photos)]['path']).name}", sha256=f"{i:064x}",
                     width=4288, height=2848, laterality=None, split="train")
                for i in range(first, min(first + BATCH, images))])
    admin = create_first_admin(db, "Admin", "bench admin passphrase").id
    readers = [add_reader(db, f"Reader {n}", Role.OPHTHALMOLOGIST, acting_reader_id=admin).id for n in range(len(READERS))]
    add_reader(db, "Reviewer", Role.REVIEWER, "bench reviewer passphrase", acting_reader_id=admin)
    assign_readers(db, seed=0)
    with db.transaction() as session:
        finding_ids = dict(session.execute(select(Finding.code, Finding.id)).all())
        classes = list(session.scalars(select(DiagnosisClass.id).order_by(DiagnosisClass.position)))
        image_ids = list(session.scalars(select(Image.id).order_by(Image.id)))
        row_of = {image: n for n, image in enumerate(image_ids)}
        reads = session.execute(select(Read.id, Read.image_id, Read.reader_id)).all()
        updates, labels, grades = [], [], []
        for read_id, image_id, reader_id in reads:
            truth = photos[row_of[image_id] % len(photos)]
            said, grade = read_as(READERS[readers.index(reader_id)], truth, rng)
            updates.append(dict(id=read_id, done=True, normal=not said))
            labels += [dict(read_id=read_id, finding_id=finding_ids[code], regions=regions_to_mask(regions))
                       for code, regions in said.items()]
            if grade is not None:
                grades.append(dict(read_id=read_id, diagnosis_class_id=classes[grade]))
        predictions = []
        for image_id in image_ids:
            truth = photos[row_of[image_id] % len(photos)]
            findings = {}
            for code in FINDINGS:
                regions = truth["findings"].get(code, [])
                logit = rng.gauss(1.5 if regions else -1.5, 1.2)
                mass = [0.0] + [rng.random() * (4.0 if r in regions else 0.5) for r in range(1, 9)]
                findings[code] = dict(probability=1 / (1 + math.exp(-logit)), threshold=0.5, regions=regions,
                                      region_activation=mass)
            grade = truth["grade"] if truth["grade"] is not None else 0
            weights = [rng.random() + (2.0 if n == grade else 0.0) for n in range(5)]
            names = ["no DR", "mild NPDR", "moderate NPDR", "severe NPDR", "PDR"]
            predictions.append(dict(image_id=image_id, kind="findings", model_version="simulated", created_at=utc_now(),
                                    payload=dict(findings=findings,
                                                 diagnosis={n: w / sum(weights) for n, w in zip(names, weights)})))
        for rows, table in ((updates, None), (labels, RegionalLabel), (grades, DiagnosisLabel),
                            (predictions, Prediction)):
            for first in range(0, len(rows), BATCH):
                session.execute(update(Read) if table is None else insert(table), rows[first:first + BATCH])
    return dict(build_s=time.perf_counter() - start, reads=len(reads), regional_labels=len(labels))


def screen_real(photos: list[dict], count: int) -> dict[str, float]:
    from annotate.services.photos import read_fundus
    from models.engine.device import configure_threads
    from models.findings.screening import load_screening_models, screen_photo

    configure_threads()
    start = time.perf_counter()
    models = load_screening_models(list(FINDINGS))
    loaded = time.perf_counter() - start
    seconds = []
    for photo in photos[:count]:
        bgr = read_fundus(photo["path"])
        start = time.perf_counter()
        screen_photo(bgr, models)
        seconds.append(time.perf_counter() - start)
    return dict(screen_load_s=loaded, screen_photos=len(seconds),
                screen_s_per_photo=sum(seconds) / len(seconds) if seconds else None,
                screen_device=str(models.device))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000, help="image rows (cycling through IDRiD; default 10000)")
    parser.add_argument("--data", type=Path, default=None, help="public data folder (default $OCTANT_PUBLIC_DATA)")
    parser.add_argument("--screen", type=int, default=0, metavar="K", help="also screen K real photos (seconds per photo)")
    parser.add_argument("--folder", type=Path, default=None, help="where to build the project (default: a temp folder)")
    args = parser.parse_args()

    from models.report.project_numbers import project_numbers
    from models.report.writer import write_report
    from storage.project import create_project
    from storage.readers import find_reader

    rng = random.Random(0)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    photos = reference(args.data)
    result: dict = dict(images=args.images, idrid_photos=len(photos), reference_s=time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or Path(scratch) / "bench-project"
        with create_project(folder, name="Report bench (IDRiD)") as project:
            result.update(build(project, photos, args.images, rng))
            reviewer = find_reader(project.database, "Reviewer").id
            # CPU time beside wall time: on a shared machine the wall clock is mostly waiting for a core.
            start, start_cpu = time.perf_counter(), time.process_time()
            numbers = project_numbers(project.database, reviewer)
            result["dashboard_numbers_s"] = time.perf_counter() - start
            result["dashboard_numbers_cpu_s"] = time.process_time() - start_cpu
            start, start_cpu = time.perf_counter(), time.process_time()
            write_report(numbers, Path(scratch) / "report", "Report bench", "consensus")
            result["report_files_s"] = time.perf_counter() - start
            result["report_files_cpu_s"] = time.process_time() - start_cpu
            result["report_total_s"] = result["dashboard_numbers_s"] + result["report_files_s"]
            result["report_total_cpu_s"] = result["dashboard_numbers_cpu_s"] + result["report_files_cpu_s"]
            result["kappa_overall"] = numbers.kappa_overall
            result["regional_kappa_overall"] = numbers.regional_kappa_overall
            for finding in (f for f in numbers.findings if f.code in FINDINGS):   # the others have no reference
                result[f"{finding.code}_prevalence"] = finding.prevalence
                result[f"{finding.code}_kappa"] = finding.kappa
                result[f"{finding.code}_regional_kappa"] = finding.regional_kappa
                if finding.model:
                    result[f"{finding.code}_auroc_simulated"] = finding.model.auroc
    if args.screen:
        result.update(screen_real(photos, args.screen))
    result["cpus"] = os.cpu_count()
    result["load_average_before"], result["load_average_after"] = load_before, os.getloadavg()[0]
    targets = dict(dashboard_numbers_s=2, dashboard_numbers_cpu_s=2, report_total_s=30, report_total_cpu_s=30)
    print(f"{'measure':<36} {'value':>12} {'target':>8}")
    for key, value in result.items():
        shown = "n/a" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))
        target = targets.get(key)
        print(f"{key:<36} {shown:>12} {('<= ' + str(target)) if target else '':>8}")
    out = Path(__file__).resolve().parent / "results" / "bench_report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    from main import one_line_errors  # no public data named: one line, not a traceback

    with one_line_errors(Path(__file__).name):
        sys.exit(main())
