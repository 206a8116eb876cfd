"""A reader's queue in the model's reading order at clinic scale (issue 19.8), against assignment order.

Three ophthalmologists read every one of ``--images`` training images (a queue of that many each);
every image has a stored ``findings`` prediction for the 12 default findings with region peaks; a
share of the reads (``--done``) is finished, with synthetic answers, so the queue is ordered by
the model's doubt and its disagreement with the other two readers' finished reads. Measured
through ``ReaderSession``: opening the queue (``queue_status``) and moving to the next unfinished
image (``next_unfinished``), median and p95 over ``--samples`` calls, in both orders, also just
after the reader finished the image they were on and just after another reader of the same images
finished one (the shared clinic: the model's order rechecks what changed); and the first
call of a new session (sign-in), which scores every open image (later calls rescore only images
whose prediction or earlier reads changed); the workstation runs that one off the GUI thread with a
checkpoint between chunks of scoring (progress and cancel), so the bench also gives the longest
time between two checkpoints: the longest a cancel (the window closing) waits.

    python bench/bench_reading_order.py [--images 10000] [--done 0.5] [--samples 50] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, update  # noqa: E402

from storage.assignment import assign_readers  # noqa: E402
from storage.catalogue import DEFAULT_FINDINGS  # noqa: E402
from storage.labels import regions_to_mask  # noqa: E402
from storage.predictions import FINDINGS_PREDICTION  # noqa: E402
from storage.project import create_project, update_settings  # noqa: E402
from storage.readers import Role, add_reader, create_first_admin  # noqa: E402
from storage.reading import ReaderSession  # noqa: E402
from storage.schema import Finding, Image, Prediction, Read, RegionalLabel, utc_now  # noqa: E402

BATCH = 5_000


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def build(folder: Path, images: int, done: float, rng: random.Random):
    project = create_project(folder, split_roles={"train": ["ophthalmologist"], "test": ["retina_specialist"]})
    db = project.database
    with db.transaction() as session:
        for first in range(0, images, BATCH):
            session.execute(insert(Image), [dict(path=f"photos/{i:06d}.jpg", sha256=f"{i:064x}", width=4288,
                                                 height=2848, laterality="left", split="train")
                                            for i in range(first, min(first + BATCH, images))])
    admin = create_first_admin(db, "Admin", "bench admin passphrase")
    readers = [add_reader(db, f"Ophthalmologist {i}", Role.OPHTHALMOLOGIST, acting_reader_id=admin.id)
               for i in range(3)]
    assign_readers(db)
    codes = [f.code for f in DEFAULT_FINDINGS]
    with db.transaction() as session:
        finding_ids = dict(session.execute(Finding.__table__.select().with_only_columns(
            Finding.code, Finding.id)).all())
        rows = []
        for image in range(1, images + 1):
            findings = {}
            for code in codes:
                p = rng.random() ** 3
                peaks = [rng.random() * p * 1.5 for _ in range(8)]
                findings[code] = dict(probability=p, threshold=0.5, regions=[r + 1 for r, v in enumerate(peaks) if v >= 0.5],
                                      region_activation=[0.1] * 9, region_peak=peaks)
            rows.append(dict(image_id=image, kind=FINDINGS_PREDICTION, payload={"findings": findings},
                             model_version="bench", created_at=utc_now()))
            if len(rows) == BATCH:
                session.execute(insert(Prediction), rows)
                rows = []
        if rows:
            session.execute(insert(Prediction), rows)
        reads = session.execute(Read.__table__.select().with_only_columns(Read.id)).scalars().all()
        finished = [r for r in reads if rng.random() < done]
        for first in range(0, len(finished), BATCH):
            chunk = finished[first:first + BATCH]
            session.execute(update(Read).where(Read.id.in_(chunk)).values(done=True))
            session.execute(insert(RegionalLabel), [
                dict(read_id=r, finding_id=finding_ids[rng.choice(codes)], regions=regions_to_mask(rng.sample(range(1, 9), 2)))
                for r in chunk if rng.random() < 0.5])
    return project, admin, readers


def timed(call, samples: int) -> tuple[float, float]:
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), percentile(times, 0.95)


def timed_after(prepare, call, samples: int) -> tuple[float, float]:
    """Median and p95 of ``call`` timed alone, each time just after an untimed ``prepare``."""
    times = []
    for _ in range(samples):
        prepare()
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), percentile(times, 0.95)


def first_ordering_steps(session: ReaderSession) -> dict[str, float | int]:
    """A new session's first ordering with a checkpoint, as the workstation runs it: the whole
    call, the longest time between two checkpoints (or the call's ends), and how many there were."""
    marks = [time.perf_counter()]
    session.queue_status(checkpoint=lambda _scored, _total: marks.append(time.perf_counter()))
    marks.append(time.perf_counter())
    gaps = [later - earlier for earlier, later in zip(marks, marks[1:])]
    return dict(first_queue_status_checkpointed_ms=(marks[-1] - marks[0]) * 1000,
                first_queue_status_longest_step_ms=max(gaps) * 1000, first_queue_status_checkpoints=len(marks) - 2)


def unfinished(session: ReaderSession) -> list[int]:
    return [record.id for record, done in session.queue_status() if not done]


def as_readers_work(session: ReaderSession, other: ReaderSession, middle: int, samples: int) -> dict[str, float]:
    """"Next" timed just after the reader finished the image they were on, and just after
    ``other`` (a reader of the same images) finished one: the shared clinic, where the model's
    order has to look at what changed."""
    mine, theirs = iter(unfinished(session)), iter(unfinished(other))
    current = [next(mine)]

    def finish_current() -> None:
        current[0] = next(mine)
        session.mark_done(current[0])

    figures = {}
    figures["next_after_finishing_median_ms"], figures["next_after_finishing_p95_ms"] = timed_after(
        finish_current, lambda: session.next_unfinished(after_image_id=current[0]), samples)
    figures["next_after_another_finished_median_ms"], figures["next_after_another_finished_p95_ms"] = timed_after(
        lambda: other.mark_done(next(theirs)), lambda: session.next_unfinished(after_image_id=middle), samples)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000, help="training images, each read by all three (default 10000)")
    parser.add_argument("--done", type=float, default=0.5, help="share of reads finished (default 0.5)")
    parser.add_argument("--samples", type=int, default=50, help="calls timed per figure (default 50)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args(argv)
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        project, admin, readers = build(Path(folder) / "project", args.images, args.done, rng)
        built_s = time.perf_counter() - start
        session = ReaderSession(project.database, readers[0].id)
        queue = [record.id for record in session.queue()]
        middle = queue[len(queue) // 2]
        other = ReaderSession(project.database, readers[2].id)
        figures: dict[str, float | int] = dict(images=args.images, done_share=args.done, build_s=round(built_s, 1))
        for order in ("default", "model_uncertainty"):
            update_settings(project.database, reading_order=order, reader_id=admin.id)
            fresh = ReaderSession(project.database, readers[1].id)   # scores nothing kept yet: sign-in
            figures[f"{order}_first_queue_status_ms"] = timed(fresh.queue_status, 1)[0]
            if order == "model_uncertainty":   # another new session: nothing scored yet
                for name, figure in first_ordering_steps(ReaderSession(project.database, readers[1].id)).items():
                    figures[f"{order}_{name}"] = figure
            figures[f"{order}_queue_status_median_ms"], figures[f"{order}_queue_status_p95_ms"] = timed(
                session.queue_status, args.samples)
            figures[f"{order}_next_unfinished_median_ms"], figures[f"{order}_next_unfinished_p95_ms"] = timed(
                lambda: session.next_unfinished(after_image_id=middle), args.samples)
            for name, figure in as_readers_work(session, other, middle, args.samples).items():
                figures[f"{order}_{name}"] = figure
        project.close()
    for key, value in figures.items():
        print(f"{key:<42} {value:.1f}" if isinstance(value, float) else f"{key:<42} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
