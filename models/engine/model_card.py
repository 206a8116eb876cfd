"""The model card beside a weights file (``<weights>.md``): what the network is, how and on what
it was trained, how good its best epoch was, when. One writer for ``train`` and ``train-seg``: it
reads everything but the command line and the data from the file's own metadata header, so a
card never disagrees with the weights it describes.
"""
from __future__ import annotations

from pathlib import Path

from models.engine.weights import read_metadata

# the config fields worth a reader's eye, in this order (the full config is in the file's header)
SHOWN_SETTINGS = ("encoder", "finding", "size_class", "input_size", "width", "backbone", "masked", "guidance_weight",
                  "channels")


def write_model_card(weights_path: Path, *, command: str, data: str, notes: str = "") -> Path:
    """Write ``<weights_path>.md`` and return its path. ``command`` is the command line that made
    the weights, ``data`` one sentence on the training and validation data."""
    weights_path = Path(weights_path)
    meta = read_metadata(weights_path)
    engine, config = meta.get("engine", {}), meta.get("config", {})
    title = meta.get("architecture", "?") + (f" ({meta['task']})" if meta.get("task") else "")
    made = meta.get("trained") or meta.get("date", "?")
    settings = ", ".join(f"{key} {_shown(config[key])}" for key in SHOWN_SETTINGS if key in config)
    parameters = f", {meta['parameters'] / 1e6:.2f} M parameters" if meta.get("parameters") else ""
    stored = "int8 (convolution weights) and fp16" if meta.get("storage") else "fp16"
    size_mb = weights_path.stat().st_size / 2**20
    lines = [f"- trained: {made}" + (f", version `{meta['version']}`" if meta.get("version") else ""),
             f"- command: `{command}`",
             f"- network: {settings or 'default settings'}{parameters}; stored {stored} safetensors, "
             f"{size_mb:.2f} MB; metadata (config, engine, metrics) in the file's header"]
    lines += [f"- {key}: {meta[key]}" for key in ("input", "labels") if meta.get(key)]
    lines.append(f"- data: {data}")
    if engine:
        epochs = (f"{meta['epochs_trained']} epochs trained" if "epochs_trained" in meta
                  else f"{engine.get('epochs')} epochs max")
        precision = engine.get("precision", "bf16" if engine.get("cpu_bf16") else "fp32")
        lines.append(f"- engine: {engine.get('optimizer')} lr {engine.get('lr')}, batch {engine.get('batch_size')}, "
                     f"{engine.get('scheduler')} schedule, {epochs}, time limit {engine.get('time_limit_s', 0) / 60:.0f} "
                     f"min, precision {precision}, seed {engine.get('seed')}")
    rows = "\n".join(f"| {key} | {value:.4f} |" for key, value in meta.get("metrics", {}).items()
                     if isinstance(value, float) and value == value)
    card = (f"# {weights_path.stem}: {title}\n\n" + "\n".join(lines) + "\n\n"
            f"## Validation metrics (best epoch)\n\n| metric | value |\n|---|---|\n{rows}\n"
            + (f"\n## Notes\n\n{notes}\n" if notes else ""))
    path = weights_path.with_suffix(".md")
    path.write_text(card)
    return path


def _shown(value: object) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
