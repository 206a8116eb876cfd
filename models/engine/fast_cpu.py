"""The pre-segmentation networks on the CPU through ONNX Runtime, where
``models.engine.precision.resolve_inference`` says so (onnxruntime and onnx are dependencies;
docs/benchmarks.md: faster than eager PyTorch's fp32 and bf16 on these small-encoder networks,
the same masks as fp32).

Each network is exported at run time from its shipped safetensors into the user's cache folder,
keyed by the weights' SHA-256 (never into the source tree), and wrapped in a module whose forward
calls the session, so the pipeline's code is the same for both. When an export or a session fails,
the PyTorch network is used as it is, in ``resolve_precision``'s choice (the caller is told).

A session run has no layers to hook (``models.engine.cancel``), and one lesion-network run on a
large photo takes about a second on a 2-core CPU: given a cancel, a run is told to terminate by
ONNX Runtime's ``RunOptions.terminate`` as soon as the cancel is set, and raises ``CancelledError``.
"""
from __future__ import annotations

import hashlib
import os
import threading
import warnings
from pathlib import Path

import torch
from torch import nn

from models.engine.cancel import check_cancelled
from models.engine.precision import Precision, cache_folder

OPSET = 17
CANCEL_POLL_S = 0.05   # how often a running session looks at its cancel: well within the second promised


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class OnnxRuntimeNetwork(nn.Module):
    """A network's forward through an ONNX Runtime session (fp32 in, fp32 out, on the CPU): an
    autocast around it (the fallback networks' bf16) does not reach the session or its output."""

    def __init__(self, onnx_path: Path, threads: int, cancel: threading.Event | None = None):
        super().__init__()
        self.cancel = cancel
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads   # models.engine.device's share of the cores
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.onnx_path = onnx_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().float().contiguous().numpy()
        if self.cancel is None:
            return torch.from_numpy(self.session.run(None, {"x": array})[0])
        import onnxruntime as ort

        check_cancelled(self.cancel)
        options, finished = ort.RunOptions(), threading.Event()
        watcher = threading.Thread(target=_terminate_on_cancel, args=(self.cancel, finished, options),
                                   name="ONNX Runtime cancel watcher")
        watcher.start()
        try:
            output = self.session.run(None, {"x": array}, options)[0]
        except Exception:
            check_cancelled(self.cancel)   # the run was terminated for the cancel: say so, not ORT's error
            raise
        finally:
            finished.set()
            watcher.join()
        return torch.from_numpy(output)


def _terminate_on_cancel(cancel: threading.Event, finished: threading.Event, options) -> None:
    """Until the run has ``finished``: once ``cancel`` is set, tell the run to stop (it checks between nodes)."""
    while not finished.wait(CANCEL_POLL_S):
        if cancel.is_set():
            options.terminate = True
            return


def export_onnx(model: nn.Module, in_channels: int, path: Path) -> None:
    """Write ``model`` as ONNX (batch, height and width free) to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.stem}.{os.getpid()}.partial")
    example = torch.zeros(1, in_channels, 64, 64)
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the TorchScript exporter's deprecation notes: it still serves opset 17
        torch.onnx.export(model.eval(), (example,), str(temporary), input_names=["x"], output_names=["y"],
                          opset_version=OPSET, dynamo=False,
                          dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"},
                                        "y": {0: "batch", 2: "height", 3: "width"}})
    os.replace(temporary, path)


def input_channels(model: nn.Module) -> int:
    first = next(module for module in model.modules() if isinstance(module, nn.Conv2d))
    return first.in_channels


def as_planned(model: nn.Module, weights_path: Path, plan: Precision,
               cancel: threading.Event | None = None) -> nn.Module:
    """``model`` run by ``plan``'s backend: through ONNX Runtime when the plan says so and the export
    works (``accelerated``, its runs ended by ``cancel``), else ``model`` itself."""
    return accelerated(model, weights_path, cancel=cancel) if plan.backend == "onnxruntime" else model


def accelerated(model: nn.Module, weights_path: Path, threads: int | None = None,
                cancel: threading.Event | None = None) -> nn.Module:
    """``model`` through ONNX Runtime, its runs ended by ``cancel``; ``model`` itself when the export
    or the session fails."""
    threads = threads or torch.get_num_threads()
    onnx_path = (cache_folder() / "onnx" /
                 f"{weights_path.stem}-{file_sha256(weights_path)[:16]}-opset{OPSET}.onnx")
    try:
        if not onnx_path.is_file():
            export_onnx(model, input_channels(model), onnx_path)
        return OnnxRuntimeNetwork(onnx_path, threads, cancel)
    except Exception:   # an exporter or runtime that cannot take this network: PyTorch serves
        return model
