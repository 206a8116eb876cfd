"""How long the workstation takes to quit on SIGTERM while it pre-segments the queue ahead.

    python bench/bench_quit.py [--repeats 3] [--precision auto,fp32] [--after-first 0]

Each run starts ``main.py gui --demo`` as a user would (offscreen, its settings, log and demo
project in a scratch folder, the CPU), waits until the first photo's prediction folder appears
(the second photo is then in the networks) and ``--after-first`` seconds more, sends SIGTERM and
times (wall clock, ``time.monotonic``) the log line the workstation writes once its background work
is joined, and the process's exit. Two ways to end: ``main.py`` as shipped (``exit_without_collecting``:
the garbage collector frozen after the command returns), and ``collect`` (the same ``main()``
ended by a plain ``sys.exit``: the interpreter's teardown collects every object), interleaved so
a loaded machine slows both alike. ``--precision fp32`` runs the networks through ONNX Runtime
where it is installed (``models/engine/fast_cpu.py``), ``auto`` in bf16 on a CPU that has it.
Writes bench/results/bench_quit.json (``--out`` to name another file).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
ENDINGS = {
    "main.py": ["main.py"],
    "collect": ["-c", "import sys, main; sys.exit(main.main())"],
}


def cpu_description() -> str:
    model, flags = platform.processor() or "unknown CPU", []
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        present = next(line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags"))
        flags = [flag for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if flag in present]
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} vCPUs, flags {' '.join(flags) or 'none of avx2/avx512/amx'}"


def quit_once(ending: str, precision: str, after_first: float) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="bench_quit_"))
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(scratch / "config"),
                   "OCTANT_DATA_DIR": str(scratch / "data"), "OCTANT_DEMO_DIR": str(scratch / "demo"),
                   "OCTANT_DEVICE": "cpu", "OCTANT_PRECISION": precision}
    process = subprocess.Popen([sys.executable, *ENDINGS[ending], "gui", "--demo"], cwd=REPOSITORY,
                               env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    predictions, log = scratch / "demo" / "predictions", scratch / "data" / "octant.log"
    while not (predictions.is_dir() and any(predictions.iterdir())):
        if process.poll() is not None:
            raise SystemExit(f"the workstation ended early:\n{process.communicate()[1]}")
        time.sleep(0.02)
    time.sleep(after_first)
    process.send_signal(signal.SIGTERM)
    asked = time.monotonic()
    joined = None
    while process.poll() is None:
        if joined is None and log.is_file() and "Quit: background work stopped" in log.read_text():
            joined = time.monotonic() - asked
        time.sleep(0.01)
    ended = time.monotonic() - asked
    process.communicate()
    return {"ending": ending, "precision": precision, "work_joined_s": joined, "exited_s": round(ended, 3),
            "exit_status": process.returncode}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="auto,fp32", help="comma-separated: auto, fp32, bf16")
    parser.add_argument("--after-first", type=float, default=0.0,
                        help="seconds to wait after the first prediction appears before SIGTERM")
    parser.add_argument("--out", default=str(REPOSITORY / "bench" / "results" / "bench_quit.json"))
    args = parser.parse_args()
    load_before, runs = os.getloadavg(), []
    for _ in range(args.repeats):
        for precision in args.precision.split(","):
            for ending in ENDINGS:
                runs.append(quit_once(ending, precision, args.after_first))
                print(json.dumps(runs[-1]), flush=True)
    medians = {}
    for precision in args.precision.split(","):
        for ending in ENDINGS:
            mine = [run for run in runs if run["ending"] == ending and run["precision"] == precision]
            medians[f"{ending} {precision}"] = {
                "work_joined_s": statistics.median(run["work_joined_s"] or 0 for run in mine),
                "exited_s": statistics.median(run["exited_s"] for run in mine)}
    result = {"machine": cpu_description(), "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": runs, "medians": medians}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(medians, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
