"""The pipeline's networks run by the one backend-and-precision choice (``resolve_inference``): through
ONNX Runtime at fp32 on a CPU where it is installed (the same maps as fp32 PyTorch), in PyTorch's
choice without it or where a network's export fails, and one line says which and why."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from models.engine import fast_cpu, precision
from models.segmentation.pipeline import MASK_NAMES, load_pipeline_models, run_pipeline
from tests.models.fundus_synthetic import synthetic_fundus


@pytest.fixture
def native_bf16_cpu(monkeypatch, tmp_path):
    """A CPU whose PyTorch choice under auto is bf16, ONNX Runtime not turned off, a fresh export cache."""
    monkeypatch.delenv(precision.BACKEND_ENV, raising=False)
    monkeypatch.setenv(precision.PRECISION_ENV, "auto")
    monkeypatch.setenv(precision.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(precision, "cpu_bf16_is_fast", lambda facts=None: True)


def test_auto_runs_every_network_through_onnx_runtime_with_fp32_pytorchs_maps(tiny_weights, native_bf16_cpu,
                                                                              monkeypatch):
    pytest.importorskip("onnxruntime")
    image = synthetic_fundus(320, 240)[0]
    models, messages = load_pipeline_models(tiny_weights, "cpu")
    assert messages == [] and models.export_failed == []
    assert all(isinstance(loaded.model, fast_cpu.OnnxRuntimeNetwork) for loaded in models.loaded.values())
    line = models.backend_line()
    assert line.startswith("Pre-segmentation networks: ONNX Runtime fp32 on the CPU (auto: ") and "\n" not in line
    through_onnx = run_pipeline(image, models)
    monkeypatch.setenv(precision.PRECISION_ENV, "fp32")
    monkeypatch.setenv(precision.BACKEND_ENV, "torch")
    in_pytorch = run_pipeline(image, load_pipeline_models(tiny_weights, "cpu")[0])
    for name in through_onnx.layers:
        np.testing.assert_allclose(through_onnx.layers[name].prob, in_pytorch.layers[name].prob, atol=1e-3)
    for name in MASK_NAMES:
        ours, theirs = through_onnx.mask(name), in_pytorch.mask(name)
        assert (ours is None) == (theirs is None)
    # The disc's centre is a mean over the thresholded map: the two backends' last float digits may differ.
    assert (through_onnx.disc is None) == (in_pytorch.disc is None)
    if through_onnx.disc is not None:
        np.testing.assert_allclose(np.asarray(through_onnx.disc, dtype=float), np.asarray(in_pytorch.disc, dtype=float),
                                   atol=1e-2)
    assert through_onnx.lesion_regions == in_pytorch.lesion_regions


def test_without_onnx_runtime_auto_keeps_native_bf16_in_pytorch(tiny_weights, native_bf16_cpu, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "onnxruntime" else
                        real(name, *rest))
    models, _ = load_pipeline_models(tiny_weights, "cpu")
    assert not any(isinstance(loaded.model, fast_cpu.OnnxRuntimeNetwork) for loaded in models.loaded.values())
    assert models.backend_line() == ("Pre-segmentation networks: PyTorch bf16 on the CPU (auto: this CPU computes "
                                     "bf16 natively; not ONNX Runtime: onnxruntime not installed).")
    monkeypatch.setenv(precision.PRECISION_ENV, "bf16")   # asked for: bf16 even where ONNX Runtime is installed
    monkeypatch.setattr(importlib.util, "find_spec", real)
    assert load_pipeline_models(tiny_weights, "cpu")[0].backend_line().startswith(
        "Pre-segmentation networks: PyTorch bf16 on the CPU (bf16 as asked)")


def test_a_network_whose_export_fails_computes_in_pytorchs_choice_and_the_line_names_it(tiny_weights,
                                                                                        native_bf16_cpu, monkeypatch,
                                                                                        tmp_path):
    pytest.importorskip("onnxruntime")
    real_export = fast_cpu.export_onnx

    def export_all_but_lesions(model, channels, path):
        if path.name.startswith("lesions-"):
            raise RuntimeError("this exporter cannot take the network")
        real_export(model, channels, path)
    monkeypatch.setattr(fast_cpu, "export_onnx", export_all_but_lesions)
    models, _ = load_pipeline_models(tiny_weights, "cpu")
    assert models.export_failed == ["lesions"]
    assert not isinstance(models.loaded["lesions"].model, fast_cpu.OnnxRuntimeNetwork)
    assert isinstance(models.loaded["vessels"].model, fast_cpu.OnnxRuntimeNetwork)
    line = models.backend_line()
    assert line.startswith("Pre-segmentation networks: ONNX Runtime fp32 on the CPU (auto: ")
    assert line.endswith("; lesions in PyTorch bf16 (ONNX export failed).")

    def no_export(*args):
        raise RuntimeError("no exporter")
    monkeypatch.setattr(fast_cpu, "export_onnx", no_export)
    monkeypatch.setenv(precision.CACHE_ENV, str(tmp_path / "another-cache"))   # nothing exported there yet
    none_exported, _ = load_pipeline_models(tiny_weights, "cpu")
    assert none_exported.backend_line() == ("Pre-segmentation networks: PyTorch bf16 on the CPU (auto: this CPU "
                                            "computes bf16 natively; ONNX export failed).")
