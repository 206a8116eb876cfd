"""Sign-in time at the shipped scrypt cost, and the cost of guessing a stolen hash.

Times ``storage.credentials`` hashing at ``CURRENT_COST`` and at the older RFC 7914 interactive
cost (N=2**14, r=8), and a whole ``storage.readers.sign_in`` (two short transactions around the
hash) on a fresh SQLite project; from the hash time, how long one core needs to try every 6-digit
PIN of a stolen database. Prints the figures and writes them as JSON.

    python bench/bench_sign_in.py [--repeats 7] [--out bench_sign_in.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage import credentials  # noqa: E402
from storage.project import create_project  # noqa: E402
from storage.readers import add_reader, create_first_admin, sign_in  # noqa: E402

OLD_COST = credentials.ScryptCost(n=2**14, r=8, p=1)
PIN = "246810"


def hash_seconds(cost: credentials.ScryptCost, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        credentials.hash_secret(PIN, cost)
        times.append(time.perf_counter() - start)
    return times


def sign_in_seconds(repeats: int) -> list[float]:
    with tempfile.TemporaryDirectory() as folder, create_project(Path(folder) / "p") as project:
        db = project.database
        admin = create_first_admin(db, "Admin", "bench admin passphrase")
        reader = add_reader(db, "Dr A", "ophthalmologist", PIN, acting_reader_id=admin.id)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            sign_in(db, reader.id, PIN)
            times.append(time.perf_counter() - start)
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timings per figure (default 7)")
    parser.add_argument("--out", type=Path, default=Path("bench_sign_in.json"), help="JSON file to write")
    args = parser.parse_args()
    cost = credentials.CURRENT_COST
    shipped, old, whole = hash_seconds(cost, args.repeats), hash_seconds(OLD_COST, args.repeats), sign_in_seconds(args.repeats)
    median = statistics.median(shipped)
    result = {
        "cost": vars(cost), "memory_mib": cost.memory_bytes / 2**20,
        "hash_median_s": median, "hash_max_s": max(shipped),
        "old_cost": vars(OLD_COST), "old_hash_median_s": statistics.median(old),
        "sign_in_median_s": statistics.median(whole), "sign_in_max_s": max(whole),
        "six_digit_pins_one_core_days": 10**6 * median / 86400,
        "load_average": os.getloadavg()[0], "cpu_count": os.cpu_count(),
    }
    for key, value in result.items():
        print(f"{key:>30}: {value:.3f}" if isinstance(value, float) else f"{key:>30}: {value}")
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
