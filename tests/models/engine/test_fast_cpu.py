"""ONNX Runtime on the CPU (models/engine/fast_cpu.py): the exported network computes what PyTorch does,
is exported once per weights file into the cache folder, and PyTorch serves when the plan says so or
the export or the runtime fails."""
from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from models.engine import fast_cpu
from models.engine.precision import Precision
from models.engine.weights import save_weights

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
