"""Several workstations saving at once: saves/s, p50/p99/max latency of a save, errors (must be 0).

Reader processes each open the project and toggle regions on their own queue as fast as they can
(every save: transaction, audit event with its hash chain, commit); an importer process adds
photographs' records in batches and assigns them meanwhile, as an administrator would. A save's
latency includes every wait for the write lock, so its maximum shows how near the busy timeout
(5 s) a reader came. Runs on SQLite (the project's file) and, with --postgresql, on a throwaway
PostgreSQL cluster (initdb; needs the server binaries) or the server of --database-url.

    python bench/bench_storage_concurrency.py [--readers 3] [--seconds 20] [--postgresql] [--json FILE]

Report the machine's load (``uptime``) with the figures: on a shared machine they move with it.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storage.assignment import assign_readers  # noqa: E402
from storage.errors import OctantError  # noqa: E402
from storage.images import NewImage, add_images  # noqa: E402
from storage.project import create_project, open_project  # noqa: E402
from storage.readers import Role, add_reader, create_first_admin  # noqa: E402
from storage.reading import ReaderSession  # noqa: E402

IMAGES = 60
IMPORT_BATCH = 10
IMPORT_PAUSE_S = 0.5


def reader_process(root: str, url: str | None, reader_id: int, seconds: float, start_at: float, out) -> None:
    project = open_project(root, database_url=url)
    session = ReaderSession(project.database, reader_id)
    images = [image.id for image in session.queue()]
    latencies, errors, n = [], {}, 0
    while time.time() < start_at:
        time.sleep(0.001)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        begin = time.perf_counter()
        try:
            session.toggle_region(images[n % len(images)], ("drusen", "haemorrhage")[n % 2], 1 + n % 8)
        except OctantError as error:
            errors[str(error)] = errors.get(str(error), 0) + 1
        latencies.append(time.perf_counter() - begin)
        n += 1
    project.close()
    out.put(("reader", latencies, errors))


def import_process(root: str, url: str | None, seconds: float, start_at: float, out) -> None:
    project = open_project(root, database_url=url)
    latencies, errors, batch = [], {}, 0
    while time.time() < start_at:
        time.sleep(0.001)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        first = 100_000 + batch * IMPORT_BATCH
        images = [NewImage(Path(root) / f"late/{i}.jpg", f"{i:064x}", 4288, 2848, "left", "train")
                  for i in range(first, first + IMPORT_BATCH)]
        begin = time.perf_counter()
        try:
            add_images(project.database, images)
            assign_readers(project.database)
        except OctantError as error:
            errors[str(error)] = errors.get(str(error), 0) + 1
        latencies.append(time.perf_counter() - begin)
        batch += 1
        time.sleep(IMPORT_PAUSE_S)
    project.close()
    out.put(("import", latencies, errors))


def build(root: Path, url: str | None, readers: int) -> list[int]:
    with create_project(root, name="Concurrency bench", database_url=url) as project:
        admin = create_first_admin(project.database, "Admin", "bench admin passphrase").id
        ids = [add_reader(project.database, f"Dr {i}", Role.OPHTHALMOLOGIST, acting_reader_id=admin).id
               for i in range(max(readers, 3))]
        add_images(project.database, [NewImage(root / f"photos/{i}.jpg", f"{i + 1:064x}", 4288, 2848, "right", "train")
                                      for i in range(IMAGES)])
        assign_readers(project.database)
    return ids[:readers]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def run(backend: str, url: str | None, readers: int, seconds: float, folder: Path) -> dict:
    root = folder / f"project-{backend}"
    reader_ids = build(root, url, readers)
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    start_at = time.time() + 3.0  # every process opened its project by then
    processes = [context.Process(target=reader_process, args=(str(root), url, r, seconds, start_at, out))
                 for r in reader_ids]
    processes.append(context.Process(target=import_process, args=(str(root), url, seconds, start_at, out)))
    load_before = os.getloadavg()[0]
    for process in processes:
        process.start()
    results = [out.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join()
    saves = [latency for kind, latencies, _ in results if kind == "reader" for latency in latencies]
    imports = [latency for kind, latencies, _ in results if kind == "import" for latency in latencies]
    errors: dict[str, int] = {}
    for _, _, found in results:
        for message, count in found.items():
            errors[message] = errors.get(message, 0) + count
    return dict(
        backend=backend, readers=readers, seconds=seconds, saves=len(saves),
        saves_per_s=round(len(saves) / seconds, 1),
        p50_ms=round(percentile(saves, 0.50) * 1000, 1), p99_ms=round(percentile(saves, 0.99) * 1000, 1),
        max_ms=round(max(saves, default=float("nan")) * 1000, 1),
        import_batches=len(imports), import_max_ms=round(max(imports, default=float("nan")) * 1000, 1),
        errors=sum(errors.values()), error_messages=errors,
        load_average_1min=[round(load_before, 2), round(os.getloadavg()[0], 2)], cpus=os.cpu_count(),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=3, help="reader processes (default 3)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long they save (default 20; the issue's run: 300)")
    parser.add_argument("--postgresql", action="store_true", help="also run on PostgreSQL (a throwaway initdb cluster)")
    parser.add_argument("--database-url", help="an existing PostgreSQL server's URL (a database of its own is made there)")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "bench_storage_concurrency.json",
                        help="where to write the figures (default bench/results/bench_storage_concurrency.json)")
    args = parser.parse_args()
    figures = []
    with tempfile.TemporaryDirectory(prefix="octant-concurrency-") as folder:
        if not args.skip_sqlite:
            figures.append(run("sqlite", None, args.readers, args.seconds, Path(folder)))
            print(json.dumps(figures[-1]))
        if args.postgresql or args.database_url:
            from sqlalchemy.engine import make_url

            from tests.storage.postgres_server import PostgresServer, start_server

            server = PostgresServer(make_url(args.database_url), "given") if args.database_url else start_server()
            try:
                url = server.create_database()
                figures.append(run("postgresql", url, args.readers, args.seconds, Path(folder)))
                print(json.dumps(figures[-1]))
            finally:
                server.stop() if not args.database_url else None
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
