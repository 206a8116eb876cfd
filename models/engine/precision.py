"""The one place that decides the arithmetic precision of every network (architecture.md, "Device").

``auto``: fp16 autocast on CUDA, none on Apple's MPS, and on the CPU bf16 only where the CPU
computes bf16 natively (x86 ``avx512_bf16``/``amx_bf16`` with neither ``ONEDNN_MAX_CPU_ISA`` nor
``ATEN_CPU_CAPABILITY`` restricting it below that). Elsewhere oneDNN emulates bf16: one U-Net
forward took 15× longer than fp32 on an AVX2-only EPYC. Where the CPU's flags are not readable
(macOS, Windows, ARM) a one-off timing of a small convolution both ways decides, remembered per
machine in the user's cache folder. ``fp32`` and ``bf16`` are honoured as asked; bf16 on a CPU
without it natively comes with a one-sentence warning.

The pre-segmentation networks ask ``resolve_inference`` instead, which also picks their backend: on
the CPU, ``auto`` and ``fp32`` run fp32 through ONNX Runtime where it is installed, since that beat
PyTorch's bf16 and fp32 on every CPU measured (docs/benchmarks.md: Intel Xeon with AMX 1.16 s a photo
against bf16's 1.69 s, AMD EPYC Zen 4 1.32 s against 2.29 s); elsewhere, and for ``bf16`` asked,
PyTorch computes in ``resolve_precision``'s choice. Training asks ``resolve_precision`` only.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import time
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from storage.errors import OctantError

if TYPE_CHECKING:   # torch loads when a network runs, not when the workstation opens
    import torch

PRECISION_CHOICES = ("auto", "fp32", "bf16")
PRECISION_ENV = "OCTANT_PRECISION"   # the command line's --precision, seen by every network in the process
CACHE_ENV = "OCTANT_CACHE_DIR"       # overrides the user's cache folder (tests, portable installs)
BACKEND_ENV = "OCTANT_BACKEND"       # "torch" keeps the pre-segmentation networks in PyTorch (tests, benches)
ONNX_PACKAGES = ("onnxruntime", "onnx")   # the runtime, and what torch's exporter writes with
RESTRICTING_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                  "amx_bf16", "amx_tile", "avx_vnni", "bf16", "asimd", "sve", "sve2", "i8mm")
# oneDNN ISA names at or above the one with native bf16 dot products (oneDNN's dnnl_cpu_isa_t).
ONEDNN_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AVX512_CORE_AMX",
                    "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512",
                    "AVX10_2_512_AMX_2", "ALL", "DEFAULT")
BF16_FASTER = 0.8   # the timing picks bf16 only when it takes at most this share of fp32's time


@dataclass(frozen=True)
class CpuFacts:
    """What decides the CPU's precision, and what the benches print."""
    model: str
    flags: tuple[str, ...] | None      # the REPORTED_FLAGS it has; None where the OS does not say
    capability: str                    # torch's kernels: "AVX512", "AVX2", "DEFAULT", "SVE256", ...
    restrictions: tuple[tuple[str, str], ...]   # the RESTRICTING_ENV variables in force
    torch_version: str
    machine: str

    def key(self) -> str:
        """The timing cache's key: another CPU, torch or restriction measures again."""
        text = json.dumps([self.model, self.flags, self.capability, self.restrictions, self.torch_version,
                           self.machine])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {"model": self.model, "flags": list(self.flags) if self.flags is not None else None,
                "torch_capability": self.capability, "restrictions": dict(self.restrictions),
                "torch": self.torch_version, "machine": self.machine}


BACKEND_NAMES = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime"}
DEVICE_NAMES = {"cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple GPU (MPS)"}


@dataclass(frozen=True)
class Precision:
    """The precision one device computes in, and why (a sentence for logs, cards and benches)."""
    name: str                          # "fp32", "bf16" or "fp16"
    device_type: str
    reason: str
    warning: str = ""                  # set when the choice will be slow here
    backend: str = "torch"             # "onnxruntime": the pre-segmentation networks' fp32 on the CPU

    def line(self) -> str:
        """What computes, in what precision, and why, in one line (status bar, logs, benches)."""
        device = DEVICE_NAMES.get(self.device_type, self.device_type)
        return f"{BACKEND_NAMES[self.backend]} {self.name} on the {device} ({self.reason})"

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    def autocast(self):
        """The autocast context for this precision (a null context for fp32)."""
        import torch

        dtype = self.autocast_dtype
        if dtype is None or self.device_type not in ("cpu", "cuda"):
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=dtype)


def parse_precision(value: str | None) -> str:
    """``auto``, ``fp32`` or ``bf16`` from a command line, a setting or a config; one sentence otherwise."""
    choice = (value or "auto").strip().lower()
    if choice not in PRECISION_CHOICES:
        raise OctantError(f"Unknown precision '{value}'; choose 'auto', 'fp32' or 'bf16'.")
    return choice


def set_precision(value: str | None) -> str:
    """Make ``value`` the precision of every network this process runs from now on."""
    choice = parse_precision(value)
    os.environ[PRECISION_ENV] = choice   # environment, so worker processes (DDP, loaders) follow it too
    return choice


def current_preference() -> str:
    return parse_precision(os.environ.get(PRECISION_ENV))


def cache_folder() -> Path:
    """The user's cache folder for Octant (never the source tree)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("octant", appauthor=False))


def _cpu_model_and_flags() -> tuple[str, tuple[str, ...] | None]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), None
    model, flags = "", None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and flags is None:
            present = set(value.split())
            flags = tuple(flag for flag in REPORTED_FLAGS if flag in present)
    return model or platform.processor() or platform.machine(), flags


@cache
def _cached_facts(restrictions: tuple) -> CpuFacts:
    import torch

    model, flags = _cpu_model_and_flags()
    return CpuFacts(model, flags, torch.backends.cpu.get_cpu_capability(), restrictions,
                    torch.__version__, platform.machine())


def cpu_facts() -> CpuFacts:
    restrictions = tuple((name, os.environ[name]) for name in RESTRICTING_ENV if os.environ.get(name))
    return _cached_facts(restrictions)


def native_bf16(facts: CpuFacts) -> bool | None:
    """Whether this CPU computes bf16 natively under the restrictions in force; None = cannot tell."""
    restrictions = dict(facts.restrictions)
    onednn = restrictions.get("ONEDNN_MAX_CPU_ISA") or restrictions.get("DNNL_MAX_CPU_ISA") or ""
    if onednn and onednn.strip().upper() not in ONEDNN_BF16_ISAS:
        return False
    if facts.machine.lower() in ("x86_64", "amd64", "i686", "x86") and facts.flags is not None:
        if not any(flag in facts.flags for flag in NATIVE_BF16_FLAGS):
            return False
        # ATEN_CPU_CAPABILITY=avx2 (or a build without AVX512 kernels) computes as an AVX2 CPU would.
        return facts.capability.upper().startswith("AVX512")
    return None


def time_convolution(dtype: torch.dtype | None, repeats: int = 3) -> float:
    """Seconds for a small convolution (a U-Net stage's shape) under autocast to ``dtype`` (None: fp32)."""
    import torch

    conv = torch.nn.Conv2d(32, 32, 3, padding=1).eval()
    x = torch.randn(1, 32, 64, 64)
    with torch.inference_mode(), torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        conv(x)   # first call: oneDNN picks and builds its kernel
        started = time.perf_counter()
        for _ in range(repeats):
            conv(x)
    return (time.perf_counter() - started) / repeats


def measured_bf16(facts: CpuFacts, timer=time_convolution) -> bool:
    """The one-off timing of bf16 against fp32, remembered per machine in the user's cache folder."""
    path = cache_folder() / "precision.json"
    try:
        remembered = json.loads(path.read_text())
    except (OSError, ValueError):
        remembered = {}
    entry = remembered.get(facts.key())
    if isinstance(entry, dict) and isinstance(entry.get("bf16"), bool):
        return entry["bf16"]
    import torch

    fp32_s, bf16_s = timer(None), timer(torch.bfloat16)
    entry = {"bf16": bf16_s <= BF16_FASTER * fp32_s, "fp32_s": fp32_s, "bf16_s": bf16_s, "cpu": facts.to_dict()}
    remembered[facts.key()] = entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + f".{os.getpid()}.partial")
        temporary.write_text(json.dumps(remembered, indent=1))
        os.replace(temporary, path)
    except OSError:
        pass   # a read-only cache only costs the same timing next time
    return entry["bf16"]


def cpu_bf16_is_fast(facts: CpuFacts | None = None) -> bool:
    return _bf16_is_fast(facts or cpu_facts())


@cache   # once per process and machine state: every network call asks
def _bf16_is_fast(facts: CpuFacts) -> bool:
    import torch

    if not torch.backends.mkldnn.is_available():
        return False
    native = native_bf16(facts)
    return measured_bf16(facts) if native is None else native


def resolve_precision(device: torch.device | str, preference: str | None = None) -> Precision:
    """The precision ``device`` computes in for ``preference`` (default: ``OCTANT_PRECISION`` or auto)."""
    import torch

    device_type = torch.device(device).type
    choice = parse_precision(preference) if preference is not None else current_preference()
    if device_type == "cuda":
        if choice == "auto":
            return Precision("fp16", "cuda", "auto on CUDA: fp16 autocast")
        return Precision(choice, "cuda", f"{choice} as asked")
    if device_type != "cpu":
        if choice == "bf16":
            raise OctantError(f"bf16 is not offered on the {device_type} device; choose 'auto' or 'fp32'.")
        return Precision("fp32", device_type, f"{choice} on {device_type}: no autocast")
    fast = cpu_bf16_is_fast()
    if choice == "auto":
        return (Precision("bf16", "cpu", "auto: this CPU computes bf16 natively") if fast else
                Precision("fp32", "cpu", "auto: this CPU has no native bf16, so fp32"))
    if choice == "bf16" and not fast:
        return Precision("bf16", "cpu", "bf16 as asked",
                         "This CPU has no native bf16, so bf16 will be many times slower than fp32; "
                         "choose 'auto' or 'fp32' unless you mean to compare.")
    return Precision(choice, "cpu", f"{choice} as asked")


def onnxruntime_missing() -> str:
    """Why ONNX Runtime cannot run the networks here, in a few words ("" when it can)."""
    if os.environ.get(BACKEND_ENV, "auto").strip().lower() == "torch":
        return f"{BACKEND_ENV}=torch"
    absent = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    return f"{' and '.join(absent)} not installed" if absent else ""


def resolve_inference(device: torch.device | str, preference: str | None = None) -> Precision:
    """The backend and precision of the pre-segmentation networks on ``device`` for ``preference``
    (default: ``OCTANT_PRECISION`` or auto). A network whose ONNX export fails computes in
    ``resolve_precision``'s choice instead (``models.engine.fast_cpu.accelerated``)."""
    import torch

    device_type = torch.device(device).type
    choice = parse_precision(preference) if preference is not None else current_preference()
    if device_type != "cpu" or choice == "bf16":
        return resolve_precision(device, choice)
    missing = onnxruntime_missing()
    if missing:
        in_torch = resolve_precision(device, choice)
        return replace(in_torch, reason=f"{in_torch.reason}; not ONNX Runtime: {missing}")
    reason = ("fp32 as asked" if choice == "fp32" else
              "auto: faster than PyTorch's bf16 and fp32 on every CPU measured")
    return Precision("fp32", "cpu", reason, backend="onnxruntime")


def add_precision_argument(parser) -> None:
    """``--precision`` for a command that runs networks (checked by ``apply_precision_argument``)."""
    parser.add_argument("--precision", default=None, metavar="auto|fp32|bf16",
                        help="arithmetic of the networks: auto (default: fp16 on CUDA; on a CPU, "
                             "pre-segmentation in fp32 through ONNX Runtime where installed, else and for "
                             "training bf16 only where the CPU has it natively), fp32 or bf16")


def apply_precision_argument(args, legacy: str | None = None, device: str | None = None, warn=None) -> str:
    """Make the command's ``--precision`` (or a deprecated flag's ``legacy`` value) the process's
    precision; warn in one sentence when it will be slow on this CPU."""
    import sys

    value = getattr(args, "precision", None)
    if value is None and legacy is not None:
        print(f"octant: the old bf16 flag is deprecated; use --precision {legacy}.", file=sys.stderr)
        value = legacy
    choice = set_precision(value if value is not None else os.environ.get(PRECISION_ENV))
    if choice == "bf16":
        from models.engine.device import pick_device

        warning = resolve_precision(pick_device(device), choice).warning
        if warning:
            (warn or (lambda text: print(f"octant: {text}", file=sys.stderr)))(warning)
    return choice
