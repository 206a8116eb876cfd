"""The guided model of a finding on one photo: probability and activation overlay.

The model is the project's active one for the finding, else the starter model shipped in
``weights/guided_<finding>.safetensors`` (trained on public IDRiD data), labelled as such.

Runs on a worker thread (``ui.background.Worker``); nothing here touches Qt. The photo goes in as the
network was trained on it (``models.findings.inference``, sharing ``models.findings.data``'s
preprocessing); the overlay is ``models.findings.activation_maps`` (Son et al., Fig. 3) on the
same crop at a size people can see. A red-free photo gets no probability and no overlay, as in
``main.py screen`` (``SCREENING_RED_FREE_NOTE``): the networks learnt on colour photos.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from storage.database import Database
from storage.errors import BadImageError, WeightsError
from storage.images import ImageRecord
from storage.predictions import ModelRecord, list_models

OVERLAY_SIDE = 768          # long side of the activation picture: sharp enough on the enlarged canvas
DEFAULT_THRESHOLD = 0.5     # when the model's record holds no operating point
MAX_OVERLAYS = 32           # overlays kept in memory (probabilities are kept for every photo)
STARTER_MODEL_NAME = "Starter model (trained on public IDRiD data, not on this clinic's labels)"

log = logging.getLogger("octant.ui.review")


def active_guided_models(db: Database) -> dict[str, ModelRecord]:
    """finding code -> its active guided model (network ``guided:<finding>``)."""
    return {m.network.removeprefix("guided:"): m for m in list_models(db)
            if m.active and m.network.startswith("guided:")}


def starter_guided_model(finding: str, model_id: int) -> ModelRecord | None:
    """The shipped starter weights of ``finding`` as a model record, or None when none ship.

    The record carries what a trained model's registry entry holds (the network's config as its
    task, the validation metrics with their threshold), read from the file's metadata, so
    ``GuidedRunner`` loads it the way it loads any saved guided model. ``model_id`` must be negative:
    registry ids are positive, and the runner keeps outputs per id.
    """
    from models.engine.weights import read_metadata, starter_for

    path = starter_for("guided", finding)
    if path is None:
        return None
    try:
        metadata = read_metadata(path)
    except WeightsError as error:  # a damaged starter must not keep the screen from opening
        log.warning("Starter model for %s skipped: %s", finding, error)
        return None
    return ModelRecord(
        id=model_id, name=STARTER_MODEL_NAME, network=f"guided:{finding}", metrics=metadata.get("metrics", {}),
        config={"task": {"network": "guided", **metadata.get("config", {})}}, label_snapshot={},
        path=str(path), active=False,
        created_at=dt.datetime.fromtimestamp(Path(path).stat().st_mtime, dt.timezone.utc))


def guided_models(db: Database, findings: Iterable[str]) -> dict[str, ModelRecord]:
    """finding code -> the model the review screen shows: the active one, else the starter model."""
    models = active_guided_models(db)
    for n, finding in enumerate(findings):
        if finding not in models:
            starter = starter_guided_model(finding, -(n + 1))
            if starter is not None:
                models[finding] = starter
    return models


def model_threshold(model: ModelRecord) -> float:
    """The operating point chosen on validation (best harmonic mean, §3.1), else 0.5."""
    stored = (model.metrics or {}).get("val_threshold", (model.metrics or {}).get("threshold"))
    if stored is None:
        return DEFAULT_THRESHOLD
    try:
        value = float(stored)
    except (TypeError, ValueError):
        return DEFAULT_THRESHOLD
    return value if 0.0 < value < 1.0 else DEFAULT_THRESHOLD


@dataclass(frozen=True)
class ModelView:
    model_id: int
    image_id: int
    probability: float | None   # None: a red-free photo, not screened (module docstring)
    overlay: np.ndarray | None  # RGB uint8, the crop's shape with its long side OVERLAY_SIDE; None when red-free
    crop_box: tuple[int, int, int, int] = (0, 0, 0, 0)   # x0, y0, x1, y1 in original pixels: where it lies


class GuidedRunner:
    """Loads each active model once and keeps its outputs per image (thread-safe)."""

    def __init__(self) -> None:
        self._networks: dict[int, object] = {}
        self._views: dict[tuple[int, int], ModelView] = {}
        self._probabilities: dict[tuple[int, int], float | None] = {}   # None: red-free
        self._lock = threading.Lock()

    def cached(self, model_id: int, image_id: int) -> ModelView | None:
        with self._lock:
            return self._views.get((model_id, image_id))

    def knows(self, model: ModelRecord, record: ImageRecord) -> bool:
        """Whether the model's probability for the photo is kept already (no photo needed)."""
        with self._lock:
            return (model.id, record.id) in self._probabilities

    def probability(self, model: ModelRecord, record: ImageRecord, photo: np.ndarray | None = None) -> float | None:
        """The model's probability for the photo, None for a red-free one (kept; the queue asks for every
        photo). ``photo``: the record's photo already read (``read_fundus`` with its SHA-256), else it is read."""
        with self._lock:
            if (model.id, record.id) in self._probabilities:
                return self._probabilities[(model.id, record.id)]
        return self._forward(model, record, photo)[0]

    def view(self, model: ModelRecord, record: ImageRecord) -> ModelView:
        cached = self.cached(model.id, record.id)
        if cached is not None:
            return cached
        from models.findings.activation_maps import overlay_activation

        probability, activation, crop, box = self._forward(model, record)
        if probability is None:
            view = ModelView(model.id, record.id, None, None)
        else:
            # The network saw the crop squeezed to a square; its map is stretched back to the crop's shape.
            h, w = crop.shape[:2]
            side = OVERLAY_SIDE / max(h, w)
            shown = cv2.resize(crop, (max(1, round(w * side)), max(1, round(h * side))),
                               interpolation=cv2.INTER_AREA)
            view = ModelView(model.id, record.id, probability, overlay_activation(shown, activation), box)
        with self._lock:
            self._views[(model.id, record.id)] = view
            while len(self._views) > MAX_OVERLAYS:  # oldest first (dicts keep insertion order)
                self._views.pop(next(iter(self._views)))
        return view

    def _forward(self, model: ModelRecord, record: ImageRecord, photo: np.ndarray | None = None):
        """(probability, activation map, RGB crop, crop box in original pixels); all None for a red-free photo."""
        from models.findings.inference import prepare_guided_input, run_guided
        from models.segmentation.red_free import is_red_free

        if photo is None:
            photo = _read_as_imported(record)
        if is_red_free(photo):
            with self._lock:
                self._probabilities[(model.id, record.id)] = None
            return None, None, None, None
        network, size = self._network(model)
        prepared = prepare_guided_input(photo, size, record.crop or None)
        with self._lock:  # one forward at a time on the shared network
            probability, activation = run_guided(network, prepared)
            self._probabilities[(model.id, record.id)] = probability
        return probability, activation, prepared.crop, prepared.box

    def _network(self, model: ModelRecord):
        with self._lock:
            if model.id in self._networks:
                return self._networks[model.id]
        from models.engine.device import pick_device
        from models.findings.training import load_guided_model

        network, config = load_guided_model(model)

        network.to(pick_device()).eval()
        with self._lock:
            self._networks[model.id] = (network, config.input_size)
        return network, config.input_size


def model_disagreements(data, models: dict[str, ModelRecord], runner: GuidedRunner,
                        cancel: threading.Event | None = None,
                        skipped: list[str] | None = None) -> dict[int, dict[str, str]]:
    """image id -> {finding: why} where the active model's call (probability ≥ its threshold)
    differs from a decided consensus (present or absent; uncertain images have no answer to miss).

    ``data`` is a ``ui.review.data.ReviewData``. Runs every photo through the network once; a photo
    that cannot be read, or whose file changed since import, is left out and its sentence added to
    ``skipped``: the other photos still get their calls.
    """
    found: dict[int, dict[str, str]] = {}
    for record in data.images:
        photo = None   # read once for every model that has no probability for it yet
        for code, model in models.items():
            if cancel is not None and cancel.is_set():
                return found
            state = data.consensus_state(record.id, code)
            if state is None or state.state == "uncertain":
                continue
            try:
                if photo is None and not runner.knows(model, record):
                    photo = _read_as_imported(record)
                probability = runner.probability(model, record, photo)
            except BadImageError as error:
                if skipped is not None:
                    skipped.append(str(error))
                break   # this photo, for every model
            if probability is None:
                continue   # red-free: the model makes no call
            if (probability >= model_threshold(model)) != (state.state == "present"):
                found.setdefault(record.id, {})[code] = f"model p = {probability:.2f}, consensus {state.state}"
    return found


def _read_as_imported(record: ImageRecord) -> np.ndarray:
    """The record's photo; another photo under its name is refused (no call, no activation map)."""
    from annotate.services.photos import read_fundus

    return read_fundus(record.path, sha256=record.sha256)
