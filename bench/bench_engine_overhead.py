"""The training engine's overhead against a bare PyTorch loop: same model, data and work.

Both train a small guided network on synthetic photos for a few epochs and validate after each;
the engine adds per-epoch reseeding, a fresh seeded DataLoader, progress events, ``last.pt`` and
``best.pt`` checkpoints and ``history.json``. Alternating repeats; the median of each is compared.

    OMP_NUM_THREADS=1 python bench/bench_engine_overhead.py
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from models.engine.training import train  # noqa: E402
from models.findings.guided import GuidedConfig, GuidedTask, guided_train_config  # noqa: E402

SIZE, COUNT, EPOCHS, BATCH, REPEATS = 96, 160, 3, 16, 3


def data(seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    config = GuidedConfig(input_size=SIZE)
    present = (torch.rand(COUNT, generator=g) < 0.5).float()
    cues = (torch.rand(COUNT, config.map_size, config.map_size, generator=g) < 0.3).float() * present.view(-1, 1, 1)
    return TensorDataset(torch.rand(COUNT, 3, SIZE, SIZE, generator=g), present, cues, torch.ones(COUNT))


def task() -> GuidedTask:
    return GuidedTask(GuidedConfig(input_size=SIZE, width=8), data(0), data(1), augment=True)


def engine_config():
    return guided_train_config(epochs=EPOCHS, batch_size=BATCH, device="cpu", early_stopping_patience=0)


def bare_loop() -> float:
    start = time.perf_counter()  # like the engine's: from building the model to the last validation
    job, config = task(), engine_config()
    torch.manual_seed(config.seed)
    model = job.build_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, nesterov=True,
                                weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, config.gamma)
    train_set, validation_set = job.datasets()
    for _ in range(EPOCHS):
        model.train()
        for batch in DataLoader(train_set, batch_size=BATCH, shuffle=True):
            loss, _ = job.loss(model, batch, "cpu")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
        job.validate(model, DataLoader(validation_set, batch_size=BATCH), "cpu")
    return time.perf_counter() - start


def engine_run() -> float:
    with tempfile.TemporaryDirectory() as folder:
        events = []
        start = time.perf_counter()
        train(task(), engine_config(), folder, progress=events.append)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=REPEATS, help=f"alternating repeats of each loop "
                                                                     f"(default {REPEATS})")
    args = parser.parse_args()
    bare, engine = [], []
    for repeat in range(args.repeats):  # alternate the order so that load on a shared machine hits both
        first, second = (bare_loop, engine_run) if repeat % 2 == 0 else (engine_run, bare_loop)
        times = {first: first(), second: second()}
        bare.append(times[bare_loop])
        engine.append(times[engine_run])
    b, e = statistics.median(bare), statistics.median(engine)
    result = {"bare_s": bare, "engine_s": engine, "median_bare_s": b, "median_engine_s": e,
              "overhead": e / b - 1, "setup": f"guided w8, {SIZE}px, {COUNT} photos, {EPOCHS} epochs, batch {BATCH}",
              "machine": "2-core CPU shared, OMP_NUM_THREADS=1"}
    output = ROOT / "bench" / "results" / "bench_engine_overhead.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))
    print("| loop | median seconds |\n|---|---|")
    print(f"| bare PyTorch | {b:.2f} |\n| engine | {e:.2f} |\n\noverhead {100 * (e / b - 1):+.1f} %")


if __name__ == "__main__":
    main()
