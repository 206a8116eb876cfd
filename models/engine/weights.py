"""Starter and trained weights on disk: fp16 safetensors with their metadata in the header.

Only floating tensors are cast (to fp16 by default); integer buffers such as BatchNorm's
``num_batches_tracked`` keep their type, and BatchNorm running statistics survive the round
trip within fp16 precision. The metadata dict (architecture, config, version, metrics) is stored
as JSON under one header key, so a file describes itself without a side car.

``int8=True`` stores each convolution and linear weight (2 dimensions or more) as int8 with one
fp32 scale per output channel (symmetric, ``<name>.int8_scale``), half the size of fp16; every
other tensor stays fp16. Loading dequantises transparently. A starter ships this way only where
its held-out figures measure the same as in fp16 (its card says so).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from storage.errors import WeightsError

METADATA_KEY = "octant"
INT8_SCALE_SUFFIX = ".int8_scale"
WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"


def _unwrapped(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)  # DistributedDataParallel keeps the network in .module


def save_weights(model: nn.Module, path: str | Path, metadata: dict,
                 dtype: torch.dtype = torch.float16, int8: bool = False) -> Path:
    """Write ``model``'s state as safetensors, floating tensors cast to ``dtype`` (with ``int8``,
    the weights of convolutions and linear layers as int8 with per-channel scales)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, tensor in _unwrapped(model).state_dict().items():
        tensor = tensor.detach().cpu()
        if int8 and tensor.is_floating_point() and tensor.dim() >= 2:
            tensors[name], tensors[name + INT8_SCALE_SUFFIX] = _quantise(tensor)
            continue
        tensor = tensor.to(dtype) if tensor.is_floating_point() else tensor
        tensors[name] = tensor.contiguous().clone()  # clone: tied weights must not share storage
    if int8:
        metadata = {**metadata, "storage": "int8 per-channel weights, fp16 others"}
    temporary = path.with_name(path.name + ".partial")
    save_file(tensors, str(temporary), metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    temporary.replace(path)  # a crash mid-write never leaves a half file under the real name
    return path


def rewrite_metadata(path: str | Path, metadata: dict) -> Path:
    """Replace a weights file's metadata; its tensors are written back exactly as stored (int8
    stays int8, no re-quantising)."""
    path = _existing(path)
    temporary = path.with_name(path.name + ".partial")
    save_file(load_file(str(path)), str(temporary), metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True)})
    temporary.replace(path)
    return path


def read_metadata(path: str | Path) -> dict:
    """The metadata dict stored by ``save_weights`` (empty if the file has none)."""
    path = _existing(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
        return json.loads(header.get(METADATA_KEY, "{}"))
    except Exception as error:  # safetensors raises several types for a damaged header
        raise WeightsError(
            f"The weights file {path} is damaged or not a safetensors file ({error}); "
            "replace it with a good copy or retrain the model."
        ) from error


def check_made_for(path: str | Path, metadata: dict, field: str, expected: str) -> None:
    """Refuse a file whose metadata says it holds another network (``field``: "task" for the
    pre-segmentation networks, "network" for the finding networks): two networks of one shape
    load each other's weights without a complaint, and then answer the wrong question. Files
    that do not say are taken at their word."""
    found = metadata.get(field)
    if found is not None and str(found) != expected:
        raise WeightsError(f"The weights file {path} holds the {found} network, not the {expected} one; "
                           "put the right file back or retrain it.")


def load_weights(model: nn.Module, path: str | Path, strict: bool = True) -> dict:
    """Load ``path`` into ``model`` (converted to the model's dtypes) and return its metadata."""
    path = _existing(path)
    metadata = read_metadata(path)
    stored = _tensors(path)
    target = _unwrapped(model)
    expected = target.state_dict()
    problems = _mismatches(expected, stored, strict)
    if problems:
        made_for = metadata.get("architecture", "another network")
        raise WeightsError(
            f"The weights file {path} was made for {made_for} and does not fit this network "
            f"({problems}); choose weights trained for this network and size."
        )
    converted = {
        name: tensor.to(expected[name].dtype) for name, tensor in stored.items() if name in expected
    }
    target.load_state_dict(converted, strict=strict)
    return metadata


def load_matching_weights(model: nn.Module, path: str | Path) -> dict:
    """Start ``model`` from ``path`` for fine-tuning: every tensor whose name and shape match is
    loaded, the rest keep their initial values (a head sized for other classes, a part the file's
    network lacks). Returns what happened; WeightsError when most of the network would not load,
    because that is training from scratch under another name."""
    path = _existing(path)
    stored = _tensors(path)
    target = _unwrapped(model)
    expected = target.state_dict()
    fitting = {name: tensor.to(expected[name].dtype) for name, tensor in stored.items()
               if name in expected and tensor.shape == expected[name].shape}
    kept = [name for name in expected if name not in fitting]
    total = sum(t.numel() for t in expected.values())
    loaded = sum(expected[name].numel() for name in fitting)
    if loaded < 0.5 * total:
        made_for = read_metadata(path).get("architecture", "another network")
        raise WeightsError(
            f"The weights file {path} was made for {made_for}; only {loaded / max(total, 1):.0%} of this "
            f"network's weights fit it (e.g. {kept[0] if kept else '?'}). Use that network's settings "
            f"(width, size class) or train from scratch.")
    target.load_state_dict(fitting, strict=False)
    return {"file": str(path), "loaded_tensors": len(fitting), "kept_initial": kept,
            "loaded_share": round(loaded / max(total, 1), 4)}


def starter_weights_path(name: str) -> Path | None:
    """``<repo>/weights/<name>.safetensors`` if it ships with this copy of Octant, else None."""
    path = WEIGHTS_DIR / f"{name}.safetensors"
    return path if path.is_file() else None


def starter_for(network: str, finding: str | None = None) -> Path | None:
    """The shipped starter a clinic's training fine-tunes by default: ``guided_<finding>`` for a
    guided network, ``dr_grade_attention`` for the attention-mask classifier, its unmasked baseline
    included (a baseline starts where the network it is compared with starts); None if none ships."""
    if network == "guided":
        return starter_weights_path(f"guided_{finding}") if finding else None
    if network == "attention-mask":
        return starter_weights_path("dr_grade_attention")
    raise ValueError(f"no starters for network {network!r}")


def _quantise(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 with one scale per output channel (the first dimension)."""
    flat = weight.float().reshape(weight.shape[0], -1)
    scale = (flat.abs().amax(dim=1) / 127).clamp_min(1e-12)
    codes = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return codes.reshape(weight.shape).contiguous(), scale.contiguous()


def _dequantised(stored: dict) -> dict:
    """Tensors as the network holds them: int8 weights times their scales."""
    scales = {name[:-len(INT8_SCALE_SUFFIX)]: value for name, value in stored.items()
              if name.endswith(INT8_SCALE_SUFFIX)}
    out = {}
    for name, tensor in stored.items():
        if name.endswith(INT8_SCALE_SUFFIX):
            continue
        if name in scales:
            shape = (-1,) + (1,) * (tensor.dim() - 1)
            tensor = tensor.float() * scales[name].float().reshape(shape)
        out[name] = tensor
    return out


def _tensors(path: Path) -> dict:
    try:
        return _dequantised(load_file(str(path)))
    except Exception as error:
        raise WeightsError(
            f"The weights file {path} cannot be read ({error}); replace it with a good copy, retrain, "
            "or train from scratch."
        ) from error


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"The weights file {path} does not exist; train the model first or choose another file."
        )
    return path


def _mismatches(expected: dict, stored: dict, strict: bool) -> str:
    missing = [name for name in expected if name not in stored]
    unexpected = [name for name in stored if name not in expected]
    wrong = [
        f"{name} {tuple(stored[name].shape)} vs {tuple(expected[name].shape)}"
        for name in expected
        if name in stored and stored[name].shape != expected[name].shape
    ]
    parts = []
    if wrong:
        parts.append("shape differs: " + ", ".join(wrong[:3]))
    if strict and missing:
        parts.append(f"{len(missing)} tensors missing, e.g. {missing[0]}")
    if strict and unexpected:
        parts.append(f"{len(unexpected)} unexpected tensors, e.g. {unexpected[0]}")
    return "; ".join(parts)
