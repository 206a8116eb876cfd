"""The precision rule (models/engine/precision.py): native bf16, not native, restricted by the
environment, an explicit choice, CUDA and MPS; the remembered timing; the option's one sentence."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from main import main
from models.engine import precision
from models.engine.precision import CpuFacts, measured_bf16, native_bf16, parse_precision, resolve_precision
from models.engine.training import upgrade_engine
from models.segmentation.common import inference_context
from storage.errors import OctantError

ROOT = Path(__file__).resolve().parents[3]
ZEN4 = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16")


def facts(flags=ZEN4, capability="AVX512", restrictions=(), machine="x86_64", model="AMD EPYC") -> CpuFacts:
    return CpuFacts(model, flags, capability, tuple(restrictions), "2.14.1", machine)


def test_native_bf16_needs_the_flag_and_no_restriction_below_it():
    assert native_bf16(facts()) is True
    assert native_bf16(facts(flags=("avx2", "fma", "avx512f"))) is False            # AVX-512 without bf16
    assert native_bf16(facts(flags=("avx2", "fma"), capability="AVX2")) is False    # the clinic's AVX2-only EPYC
    assert native_bf16(facts(flags=("avx2", "amx_bf16", "avx512_bf16"))) is True    # Sapphire Rapids
    assert native_bf16(facts(restrictions=[("ONEDNN_MAX_CPU_ISA", "AVX2")])) is False
    assert native_bf16(facts(restrictions=[("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")])) is False
    assert native_bf16(facts(restrictions=[("ONEDNN_MAX_CPU_ISA", "avx512_core_amx")])) is True
    assert native_bf16(facts(capability="AVX2", restrictions=[("ATEN_CPU_CAPABILITY", "avx2")])) is False


def test_where_the_flags_are_unknown_it_cannot_tell():
    assert native_bf16(facts(flags=None, machine="arm64", model="Apple M2")) is None
    assert native_bf16(facts(flags=None, machine="AMD64")) is None   # Windows: no /proc/cpuinfo


def test_the_timing_decides_once_per_machine_and_is_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("OCTANT_CACHE_DIR", str(tmp_path))
    calls = []

    def timer(dtype):
        calls.append(dtype)
        return 1.0 if dtype is None else 0.5   # bf16 twice as fast

    apple = facts(flags=None, machine="arm64", model="Apple M2")
    assert measured_bf16(apple, timer) is True
    assert measured_bf16(apple, timer) is True
    assert len(calls) == 2                      # fp32 and bf16 once; the second answer came from the file
    saved = json.loads((tmp_path / "precision.json").read_text())
    assert saved[apple.key()]["bf16"] is True and saved[apple.key()]["cpu"]["model"] == "Apple M2"
    slow = lambda dtype: 1.0 if dtype is None else 20.0   # emulated bf16
    restricted = facts(flags=None, machine="arm64", model="Apple M2", restrictions=[("ONEDNN_MAX_CPU_ISA", "AVX2")])
    assert restricted.key() != apple.key()
    assert measured_bf16(restricted, slow) is False


def test_auto_follows_the_cpu_and_an_explicit_choice_is_honoured(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_is_fast", lambda facts=None: True)
    assert resolve_precision("cpu", "auto").name == "bf16"
    assert resolve_precision("cpu", "fp32").name == "fp32"
    monkeypatch.setattr(precision, "cpu_bf16_is_fast", lambda facts=None: False)
    assert resolve_precision("cpu", "auto").name == "fp32"
    slow = resolve_precision("cpu", "bf16")
    assert slow.name == "bf16" and "slower" in slow.warning and slow.warning.count(".") == 1


def without_packages(monkeypatch, *absent: str) -> None:
    """Make ``absent`` look uninstalled to ``onnxruntime_missing`` (the real lookup for the rest)."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name in absent else real(name, *rest))


def test_inference_on_a_cpu_runs_fp32_through_onnx_runtime_where_installed(monkeypatch):
    monkeypatch.delenv(precision.BACKEND_ENV, raising=False)   # the tests' default keeps PyTorch
    monkeypatch.setattr(precision, "cpu_bf16_is_fast", lambda facts=None: True)
    without_packages(monkeypatch)   # as installed: onnxruntime and onnx are dependencies
    auto = precision.resolve_inference("cpu", "auto")
    assert (auto.backend, auto.name, auto.autocast_dtype) == ("onnxruntime", "fp32", None)
    line = auto.line()
    assert line.startswith("ONNX Runtime fp32 on the CPU (auto: ") and "\n" not in line and "bf16" in line
    assert precision.resolve_inference("cpu", "fp32").backend == "onnxruntime"
    asked = precision.resolve_inference("cpu", "bf16")   # explicit bf16 keeps bf16, in PyTorch
    assert (asked.backend, asked.name) == ("torch", "bf16")
    assert resolve_precision("cpu", "auto").name == "bf16"   # training's choice is unchanged
    assert (precision.resolve_inference("cuda", "auto").name, precision.resolve_inference("cuda").backend) == (
        "fp16", "torch")


def test_without_onnx_runtime_inference_keeps_the_pytorch_choice_and_says_why(monkeypatch):
    monkeypatch.delenv(precision.BACKEND_ENV, raising=False)
    without_packages(monkeypatch, "onnxruntime")
    monkeypatch.setattr(precision, "cpu_bf16_is_fast", lambda facts=None: True)
    native = precision.resolve_inference("cpu", "auto")
    assert (native.backend, native.name) == ("torch", "bf16")
    assert native.line() == ("PyTorch bf16 on the CPU (auto: this CPU computes bf16 natively; "
                             "not ONNX Runtime: onnxruntime not installed)")
    monkeypatch.setattr(precision, "cpu_bf16_is_fast", lambda facts=None: False)
    assert precision.resolve_inference("cpu", "auto").name == "fp32"
    without_packages(monkeypatch, "onnxruntime", "onnx")
    assert "onnxruntime and onnx not installed" in precision.resolve_inference("cpu", "fp32").reason
    without_packages(monkeypatch)
    monkeypatch.setenv(precision.BACKEND_ENV, "torch")
    kept = precision.resolve_inference("cpu", "auto")
    assert kept.backend == "torch" and kept.reason.endswith("not ONNX Runtime: OCTANT_BACKEND=torch")


def test_cuda_keeps_fp16_under_auto_and_mps_has_no_bf16():
    assert resolve_precision("cuda", "auto").name == "fp16"
    assert resolve_precision("cuda", "fp32").autocast_dtype is None
    assert resolve_precision("mps", "auto").name == "fp32"
    with pytest.raises(OctantError, match="bf16 is not offered"):
        resolve_precision("mps", "bf16")


def test_the_networks_compute_in_the_chosen_precision(monkeypatch):
    layer = torch.nn.Linear(4, 2)
    x = torch.ones(1, 4)
    monkeypatch.setenv(precision.PRECISION_ENV, "bf16")
    with inference_context(torch.device("cpu")):
        assert layer(x).dtype == torch.bfloat16
    monkeypatch.setenv(precision.PRECISION_ENV, "fp32")
    with inference_context(torch.device("cpu")):
        assert layer(x).dtype == torch.float32


def test_a_bad_value_is_one_sentence(tmp_path, capsys):
    with pytest.raises(OctantError, match=r"^Unknown precision 'fast'; choose 'auto', 'fp32' or 'bf16'\.$"):
        parse_precision("fast")
    assert parse_precision(" BF16 ") == "bf16" and parse_precision(None) == "auto"
    code = main(["presegment", str(tmp_path), "--out", str(tmp_path / "out"), "--precision", "half"])
    error = capsys.readouterr().err.strip()
    assert code == 1 and error == "octant: Unknown precision 'half'; choose 'auto', 'fp32' or 'bf16'."
    assert not (tmp_path / "out").exists()


def test_the_deprecated_flags_still_mean_what_they_did(monkeypatch):
    monkeypatch.setenv(precision.PRECISION_ENV, "auto")   # restored after: the flags set it for the process
    import argparse

    from models.commands.segmentation import build_task
    from models.commands.training import engine_overrides

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    from models.commands import segmentation, training
    segmentation.register(sub)
    training.register(sub)
    old = parser.parse_args(["train-seg", "--task", "vessels", "--no-bf16"])
    assert build_task(old)[1].precision == "fp32"
    new = parser.parse_args(["train-seg", "--task", "vessels", "--precision", "bf16", "--device", "cpu"])
    assert build_task(new)[1].precision == "bf16"
    guided = parser.parse_args(["train", "--network", "guided", "--reference", "idrid", "--bf16",
                                "--start-from", "scratch"])
    assert engine_overrides(guided)["precision"] == "bf16"


def test_old_training_configs_read_as_before():
    assert upgrade_engine({"cpu_bf16": True, "lr": 1e-3}) == {"precision": "bf16", "lr": 1e-3}
    assert upgrade_engine({"cpu_bf16": False}) == {"precision": "fp32"}
    assert upgrade_engine({"precision": "auto"}) == {"precision": "auto"}


def test_the_avx2_restriction_is_seen_from_the_environment():
    """The same check a clinic's AVX2-only CPU gets: oneDNN and ATen restricted, auto picks fp32."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "OCTANT_PRECISION": "auto"}
    script = ("from models.engine.precision import cpu_facts, resolve_precision; f = cpu_facts(); "
              "print(dict(f.restrictions)['ONEDNN_MAX_CPU_ISA'], resolve_precision('cpu').name)")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["AVX2", "fp32"], out.stderr
