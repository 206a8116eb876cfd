"""Each pre-segmentation network on the CPU, fp32, through eager PyTorch, PyTorch channels-last,
ONNX Runtime and OpenVINO, at the input sizes the pipeline gives it on a 4288 × 2848 photo.

    python bench/bench_cpu_backends.py [--networks lesions,vessels] [--repeats 3]

Backends are timed interleaved (a loaded machine slows all alike; the minimum of ``--repeats`` is
reported) and each output's mask (logit > 0) is compared with eager PyTorch's (Dice). ONNX files
are exported into a temporary folder. A backend that is not installed is skipped. Prints the CPU
and the restrictions in force and writes bench/results/bench_cpu_backends.json (``--out``).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from models.engine.device import configure_threads  # noqa: E402
from models.engine.fast_cpu import export_onnx, input_channels  # noqa: E402
from models.engine.precision import cpu_facts, set_precision  # noqa: E402
from models.segmentation.pipeline import load_pipeline_models  # noqa: E402
from models.segmentation.registry import NETWORKS  # noqa: E402

# What run_pipeline_batch feeds each network for one IDRiD photo (measured with forward hooks).
PIPELINE_INPUTS = {name: spec.pipeline_input for name, spec in NETWORKS.items()}


def backends(model: torch.nn.Module, onnx_path: Path, threads: int) -> dict:
    runs = {}

    def eager(x):
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()
    runs["eager"] = eager
    last = model.to(memory_format=torch.channels_last)

    def channels_last(x):
        with torch.inference_mode():
            return last(torch.from_numpy(x).to(memory_format=torch.channels_last)).contiguous().numpy()
    runs["channels_last"] = channels_last
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        runs["onnxruntime"] = lambda x: session.run(None, {"x": x})[0]
    except ImportError:
        pass
    try:
        import openvino

        compiled = openvino.Core().compile_model(str(onnx_path), "CPU", {
            "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})
        runs["openvino"] = lambda x: compiled(x)[0]
    except ImportError:
        pass
    return runs


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights-dir", default=str(REPO / "weights"))
    parser.add_argument("--networks", default=",".join(PIPELINE_INPUTS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "bench_cpu_backends.json"))
    args = parser.parse_args()
    plan, facts = configure_threads(), cpu_facts()
    set_precision("fp32")
    print(f"CPU {facts.model}; flags {' '.join(facts.flags or [])}; torch kernels {facts.capability}; "
          f"restrictions {dict(facts.restrictions) or 'none'}; {plan.network} threads", flush=True)
    import os
    os.environ["OCTANT_BACKEND"] = "torch"   # the PyTorch networks themselves
    models, _ = load_pipeline_models(args.weights_dir, "cpu")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in args.networks.split(","):
            model = models.loaded[name].model.eval()
            onnx_path = Path(folder) / f"{name}.onnx"
            export_onnx(model, input_channels(model), onnx_path)
            x = np.random.default_rng(0).uniform(-2, 2, PIPELINE_INPUTS[name]).astype(np.float32)
            runs = backends(model, onnx_path, plan.network)
            reference = runs["eager"](x)
            agreement = {k: dice(run(x), reference) for k, run in runs.items()}   # also the warm-up
            seconds = {k: [] for k in runs}
            for _ in range(args.repeats):
                for k, run in runs.items():
                    start = time.perf_counter()
                    run(x)
                    seconds[k].append(time.perf_counter() - start)
            results[name] = {k: {"min_s": min(v), "dice_vs_eager": agreement[k]} for k, v in seconds.items()}
            print(name, PIPELINE_INPUTS[name], "  ".join(f"{k} {min(v):.3f} s (Dice {agreement[k]:.4f})"
                                                        for k, v in seconds.items()), flush=True)
    summary = {"cpu": facts.to_dict(), "threads": plan.network, "inputs": PIPELINE_INPUTS, "networks": results}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
