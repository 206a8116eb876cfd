"""Storage at clinic scale: 100,000 images x 3 readers x 12 findings in SQLite.

Targets (foundation issue): next-in-queue <= 5 ms median; saving a regional label <= 5 ms p99
(through ReaderSession.set_regions: transaction, audit event and commit included); consensus and
kappa over everything <= 10 s. The label data are synthetic (no public set has 300,000 regional
reads): about half the reads are "normal", the rest have 1-3 findings with 1-3 regions each.

    python bench/bench_storage.py [--images 100000] [--folder DIR] [--samples 1000]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select, update  # noqa: E402

from storage.assignment import assign_readers  # noqa: E402
from storage.labels import regions_to_mask  # noqa: E402
from storage.project import ProjectHandle, create_project  # noqa: E402
from storage.readers import Role, add_reader, create_first_admin  # noqa: E402
from storage.reading import ReaderSession  # noqa: E402
from storage.review import ReviewSession  # noqa: E402
from storage.schema import DiagnosisClass, DiagnosisLabel, Finding, Image, Read, Reader, RegionalLabel  # noqa: E402

BATCH = 20_000
TEST_SHARE = 0.1
DONE_SHARE = 0.9  # reads answered and marked done
NORMAL_SHARE = 0.5  # of the answered reads


def load(project: ProjectHandle, images: int, rng: random.Random) -> dict[str, float]:
    db = project.database
    timings = {}
    start = time.perf_counter()
    with db.transaction() as session:
        for first in range(0, images, BATCH):
            session.execute(insert(Image), [
                dict(path=f"photos/{i:06d}.jpg", sha256=f"{i:064x}", width=4288, height=2848,
                     laterality="left" if i % 2 else "right",
                     split="test" if rng.random() < TEST_SHARE else "train")
                for i in range(first, min(first + BATCH, images))
            ])
    timings["load_images_s"] = time.perf_counter() - start
    admin = create_first_admin(db, "Admin", "bench admin passphrase").id
    for i in range(12):
        add_reader(db, f"Ophthalmologist {i:02d}", Role.OPHTHALMOLOGIST, acting_reader_id=admin)
    for i in range(5):
        add_reader(db, f"Retina specialist {i}", Role.RETINA_SPECIALIST, acting_reader_id=admin)
    for i in range(3):
        add_reader(db, f"Glaucoma specialist {i}", Role.GLAUCOMA_SPECIALIST, acting_reader_id=admin)
    add_reader(db, "Reviewer", Role.REVIEWER, "bench reviewer passphrase", acting_reader_id=admin)
    start = time.perf_counter()
    assign_readers(db, seed=0)
    timings["assign_s"] = time.perf_counter() - start

    start = time.perf_counter()
    with db.transaction() as session:
        findings = list(session.scalars(select(Finding.id).order_by(Finding.position)))
        diagnoses = list(session.scalars(select(DiagnosisClass.id).order_by(DiagnosisClass.position)))
        read_ids = list(session.scalars(select(Read.id).order_by(Read.id)))
        updates, labels, diagnosis_rows = [], [], []
        for read_id in read_ids:
            if rng.random() >= DONE_SHARE:
                continue
            normal = rng.random() < NORMAL_SHARE
            updates.append(dict(id=read_id, done=True, normal=normal))
            diagnosis_rows.append(dict(read_id=read_id, diagnosis_class_id=diagnoses[0 if normal else rng.randrange(1, 5)]))
            if not normal:
                for finding in rng.sample(findings, rng.randint(1, 3)):
                    regions = rng.sample(range(1, 9), rng.randint(1, 3))
                    labels.append(dict(read_id=read_id, finding_id=finding, regions=regions_to_mask(regions)))
        for rows, table in ((updates, None), (labels, RegionalLabel), (diagnosis_rows, DiagnosisLabel)):
            for first in range(0, len(rows), BATCH):
                chunk = rows[first:first + BATCH]
                session.execute(update(Read) if table is None else insert(table), chunk)
    timings["load_answers_s"] = time.perf_counter() - start
    timings["reads"] = len(read_ids)
    timings["regional_labels"] = len(labels)
    return timings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def measure(project: ProjectHandle, samples: int, rng: random.Random) -> dict[str, float]:
    db = project.database
    with db.reading() as session:
        reader_ids = list(session.scalars(select(Read.reader_id).distinct()))
        reviewer = session.scalar(select(Reader.id).where(Reader.role == Role.REVIEWER.value))
    sessions = {r: ReaderSession(db, r) for r in reader_ids}
    queues = {r: [image.id for image in s.queue()] for r, s in sessions.items()}

    next_ms = []
    for _ in range(samples):
        reader = rng.choice(reader_ids)
        after = rng.choice(queues[reader])
        start = time.perf_counter()
        sessions[reader].next_unfinished(after_image_id=after)
        next_ms.append((time.perf_counter() - start) * 1000)

    save_ms, save_cpu_ms = [], []
    codes = [f.code for f in project.settings().findings]
    for _ in range(samples):
        reader = rng.choice(reader_ids)
        image = rng.choice(queues[reader])
        regions = set(rng.sample(range(1, 9), rng.randint(1, 3)))
        start, start_cpu = time.perf_counter(), time.process_time()
        sessions[reader].set_regions(image, rng.choice(codes), regions)
        save_ms.append((time.perf_counter() - start) * 1000)
        save_cpu_ms.append((time.process_time() - start_cpu) * 1000)

    # CPU time beside wall time: on a shared machine the wall-clock tail is mostly waiting for a
    # core (load average recorded below), the CPU-time tail is what saving itself costs.
    result = dict(
        next_unfinished_median_ms=statistics.median(next_ms), next_unfinished_p99_ms=percentile(next_ms, 99),
        set_regions_median_ms=statistics.median(save_ms), set_regions_p99_ms=percentile(save_ms, 99),
        set_regions_cpu_p99_ms=percentile(save_cpu_ms, 99),
    )

    start = time.perf_counter()
    reads = list(ReviewSession(db, reviewer).all_reads())
    result["fetch_all_reads_s"] = time.perf_counter() - start
    try:
        from annotate.agreement import agreement_report
        from annotate.consensus import consensus_for_project
    except ImportError:
        result["consensus_and_kappa_s"] = None
        return result
    settings = project.settings()
    start = time.perf_counter()
    consensus = consensus_for_project(ReviewSession(db, reviewer).all_reads(), codes, k=settings.consensus_k)
    report = agreement_report(consensus)
    result["consensus_and_kappa_s"] = time.perf_counter() - start  # includes fetching everything
    result["fleiss_kappa_overall"] = float(report.fleiss_overall.kappa)
    result["reads_streamed"] = len(reads)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--folder", type=Path, default=None, help="where to build the project (default: a temp folder)")
    args = parser.parse_args()
    rng = random.Random(0)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or Path(scratch) / "bench-project"
        with create_project(folder, name="Storage bench") as project:
            result = {"images": args.images, **load(project, args.images, rng), **measure(project, args.samples, rng)}
        result["database_mb"] = (folder / "octant.sqlite").stat().st_size / 1e6
    result["load_average_before"], result["load_average_after"] = load_before, os.getloadavg()[0]
    targets = dict(next_unfinished_median_ms=5, set_regions_p99_ms=5, consensus_and_kappa_s=10)
    print(f"{'measure':<30} {'value':>12} {'target':>8}")
    for key, value in result.items():
        shown = "n/a" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))
        target = targets.get(key)
        print(f"{key:<30} {shown:>12} {('<= ' + str(target)) if target else '':>8}")
    out = Path(__file__).resolve().parent / "results" / "bench_storage.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
