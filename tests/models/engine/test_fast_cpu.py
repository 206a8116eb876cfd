"""ONNX Runtime on the CPU (models/engine/fast_cpu.py): the exported network computes what PyTorch does,
is exported once per weights file into the cache folder, and PyTorch serves when the plan says so or
the export or the runtime fails, and a cancel ends a running session."""
from __future__ import annotations

import sys
import threading
import time

import pytest
import torch
from torch import nn

from models.engine import fast_cpu
from models.engine.precision import Precision
from models.engine.weights import save_weights
from storage.errors import CancelledError

pytest.importorskip("onnxruntime")


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(), nn.Conv2d(8, 2, 1)).eval()


def test_the_exported_network_gives_the_same_output_and_is_exported_once(tmp_path, monkeypatch):
    monkeypatch.setenv("OCTANT_CACHE_DIR", str(tmp_path / "cache"))
    model = tiny_net()
    weights = tmp_path / "tiny.safetensors"
    save_weights(model, weights, {"name": "tiny"})
    fast = fast_cpu.accelerated(model, weights, threads=1)
    assert isinstance(fast, fast_cpu.OnnxRuntimeNetwork)
    exported = list((tmp_path / "cache" / "onnx").glob("tiny-*.onnx"))
    assert len(exported) == 1 and fast_cpu.file_sha256(weights)[:16] in exported[0].name
    x = torch.randn(2, 3, 40, 56)   # another batch and size than the export's example
    with torch.inference_mode():
        assert torch.allclose(fast(x), model(x), atol=1e-4)
    stamp = exported[0].stat().st_mtime_ns
    fast_cpu.accelerated(model, weights, threads=1)
    assert exported[0].stat().st_mtime_ns == stamp   # found in the cache, not exported again


def test_pytorch_serves_when_the_plan_says_so_or_the_export_or_runtime_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("OCTANT_CACHE_DIR", str(tmp_path / "cache"))
    model = tiny_net()
    weights = tmp_path / "tiny.safetensors"
    save_weights(model, weights, {"name": "tiny"})
    assert fast_cpu.as_planned(model, weights, Precision("bf16", "cpu", "bf16 as asked")) is model
    assert not (tmp_path / "cache").exists()   # nothing exported for PyTorch's plan
    onnx_plan = Precision("fp32", "cpu", "auto", backend="onnxruntime")

    def failing_export(*args):
        raise RuntimeError("this exporter cannot take the network")
    with monkeypatch.context() as patch:
        patch.setattr(fast_cpu, "export_onnx", failing_export)
        assert fast_cpu.as_planned(model, weights, onnx_plan) is model
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "onnxruntime", None)   # a runtime that will not import
        assert fast_cpu.as_planned(model, weights, onnx_plan) is model
    assert isinstance(fast_cpu.as_planned(model, weights, onnx_plan), fast_cpu.OnnxRuntimeNetwork)


def test_a_cancel_terminates_a_running_session_and_its_watcher_is_joined(tmp_path, monkeypatch):
    """The session's run starts, the cancel is set while it runs: ONNX Runtime is told to terminate
    (``RunOptions.terminate``), the network raises CancelledError and leaves no thread behind."""
    monkeypatch.setenv("OCTANT_CACHE_DIR", str(tmp_path / "cache"))
    model = tiny_net()
    weights = tmp_path / "tiny.safetensors"
    save_weights(model, weights, {"name": "tiny"})
    cancel = threading.Event()
    fast = fast_cpu.accelerated(model, weights, threads=1, cancel=cancel)
    real_run = fast.session.run
    terminate_seen = []

    class CancelledMidRun:   # the session, cancelled once its run has begun
        def run(self, outputs, feeds, options):
            cancel.set()
            deadline = time.monotonic() + 30   # the watcher looks every 50 ms
            while not options.terminate and time.monotonic() < deadline:
                time.sleep(0.01)
            terminate_seen.append(options.terminate)
            return real_run(outputs, feeds, options)   # ONNX Runtime itself must refuse a terminated run

    fast.session = CancelledMidRun()
    threads_before = set(threading.enumerate())
    with pytest.raises(CancelledError):
        fast(torch.randn(1, 3, 32, 32))
    assert terminate_seen == [True]
    assert set(threading.enumerate()) <= threads_before
    cancel.clear()
    fast.session = type("Session", (), {"run": staticmethod(real_run)})()
    with torch.inference_mode():   # the same network runs again once the cancel is cleared
        assert torch.allclose(fast(torch.ones(1, 3, 16, 16)), model(torch.ones(1, 3, 16, 16)), atol=1e-4)
