"""Pre-screening photos: every guided finding network and the attention-mask classifier on a photo.

Models: a project's active ones (``guided:<finding>``, ``attention-mask``) where a project is open,
else the starters shipped in ``weights/`` (trained on public data; their versions say so).
Each photo goes in as the networks were trained on it (``models.findings.inference`` for the
guided networks: black border cropped, squeezed to the input square, RGB in [0, 1]).

Per finding the result holds the probability, the finding's threshold (the operating point chosen
on validation, else 0.5), the activation mass outside the regions and in each of the eight regions
(cell fractions from ``annotate.geometry.region_mask`` over the crop, as the training cues), and
the regions whose activation passes the threshold: a region passes when its highest activation,
over the cells at least half inside it, reaches the threshold. Regions need the disc and fovea:
the landmark locator's, else the classical method (``models.segmentation.landmarks``).
The classifier sees the photo times the attention mask from the disc/cup and vessel networks
(``models.diagnosis.attention_mask``); without their weights it is skipped with a message.
A red-free photo (``models.segmentation.red_free``) is not screened: every network learnt on colour
photos, so its result holds no finding and no diagnosis, and says why (``SCREENING_RED_FREE_NOTE``),
as pre-segmentation suggests no lesion regions on one. Nor is a picture with no retina in it
(``annotate.fov.no_fundus_reason``, the check pre-segmentation makes): "No fundus found" and why.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch

from models.engine.cancel import check_cancelled
from models.segmentation.red_free import is_red_free
from models.segmentation.stored_names import SCREENING_RED_FREE_NOTE
from storage.errors import OctantError, WeightsError

if TYPE_CHECKING:
    from storage.database import Database

DEFAULT_THRESHOLD = 0.5
REGION_SHARE = 0.5            # a cell belongs to a region for "passes" when at least half inside it


@dataclass
class GuidedModel:
    finding: str
    network: torch.nn.Module
    input_size: int
    threshold: float
    version: str


@dataclass
class DiagnosisModel:
    network: torch.nn.Module
    config: Any                 # AttentionConfig
    version: str
    structure: tuple | None     # disc/cup and vessel networks for the attention mask


@dataclass
class ScreeningModels:
    device: torch.device
    guided: dict[str, GuidedModel] = field(default_factory=dict)
    diagnosis: DiagnosisModel | None = None
    locator: tuple | None = None   # (network, LocatorConfig, version)
    messages: list[str] = field(default_factory=list)

    def versions(self) -> dict[str, str]:
        out = {f"guided:{code}": model.version for code, model in self.guided.items()}
        if self.diagnosis is not None:
            out["attention-mask"] = self.diagnosis.version
        out["landmarks"] = self.locator[2] if self.locator else "classical"
        return out


@dataclass(frozen=True)
class FindingResult:
    probability: float
    threshold: float
    regions: list[int]
    region_activation: list[float]      # mass outside the regions, then regions 1..8
    activation: np.ndarray              # the network's map [S/16, S/16]
    # Regions 1..8: the highest activation over the cells at least half inside (0 with no such
    # cell), what a region's passing is decided on; the reading order weighs how close each came
    # (storage/reading_order.py). Empty without landmarks.
    region_peak: list[float] = field(default_factory=list)

    def to_json(self) -> dict:
        return dict(probability=float(self.probability), threshold=float(self.threshold),
                    present=bool(self.probability >= self.threshold), regions=[int(r) for r in self.regions],
                    region_activation=self.region_activation, region_peak=self.region_peak)


@dataclass(frozen=True)
class ScreeningResult:
    findings: dict[str, FindingResult]
    diagnosis: dict[str, float]          # class name -> probability (empty without a classifier)
    disc: tuple[float, float] | None
    fovea: tuple[float, float] | None
    crop_box: tuple[int, int, int, int]
    crop_rgb: np.ndarray                 # the photo inside its crop box
    models: dict[str, str]
    red_free: bool = False               # not screened: no findings, no diagnosis (module docstring)
    no_fundus: str | None = None         # why the picture is no retina: not screened either

    @property
    def note(self) -> str | None:
        """Why nothing was screened (None when it was)."""
        if self.no_fundus is not None:
            return f"No fundus found: {self.no_fundus}; not screened (no finding probabilities, no diagnosis grade)."
        return SCREENING_RED_FREE_NOTE if self.red_free else None

    def payload(self) -> dict:
        """The stored prediction (``storage.predictions.FINDINGS_PREDICTION``) and result.json."""
        payload = dict(findings={code: r.to_json() for code, r in self.findings.items()}, diagnosis=self.diagnosis,
                       models=self.models, disc=[float(v) for v in self.disc] if self.disc else None,
                       fovea=[float(v) for v in self.fovea] if self.fovea else None,
                       crop_box=[int(v) for v in self.crop_box], red_free=self.red_free,
                       no_fundus=self.no_fundus is not None)
        if self.note is not None:
            payload["note"] = self.note
        return payload


def _threshold(metrics: dict | None) -> float:
    value = (metrics or {}).get("val_threshold", (metrics or {}).get("threshold"))
    try:
        value = float(value)  # type: ignore[arg-type]   # None and text are caught below
    except (TypeError, ValueError):
        return DEFAULT_THRESHOLD
    return value if 0.0 < value < 1.0 else DEFAULT_THRESHOLD


def _version(metadata: dict, path: Path, name: str | None = None) -> str:
    if name:
        return name
    return f"{path.stem} v{metadata.get('version', '?')} ({metadata.get('labels', 'unknown labels')})"


def load_screening_models(findings: list[str], db: Database | None = None, device: torch.device | str | None = None,
                          cancel: threading.Event | None = None) -> ScreeningModels:
    """The models to screen with (module docstring); missing ones become messages, not errors."""
    from models.diagnosis.attention_mask import AttentionClassifier, AttentionConfig, load_structure_models
    from models.engine.device import pick_device
    from models.engine.weights import WEIGHTS_DIR, check_made_for, load_weights, read_metadata, starter_for
    from models.findings.guided import GuidedConfig, GuidedNet
    from models.segmentation.registry import NETWORKS

    device = device if isinstance(device, torch.device) else pick_device(device)
    models = ScreeningModels(device)
    registered = {}
    if db is not None:
        from storage.predictions import list_models

        registered = {m.network: m for m in list_models(db) if m.active}
    for code in findings:
        check_cancelled(cancel)
        record = registered.get(f"guided:{code}")
        path = Path(record.path) if record else starter_for("guided", code)
        if path is None:
            continue   # no network for this finding: it is not screened
        try:
            metadata = read_metadata(path)
            check_made_for(path, metadata, "network", f"guided:{code}")
            saved = (record.config or {}).get("task", {}) if record else {"network": "guided", **metadata.get("config", {})}
            config = GuidedConfig.from_saved(saved)
            network = GuidedNet(config)
            load_weights(network, path)
        except (WeightsError, TypeError, ValueError, RuntimeError) as error:
            models.messages.append(f"guided {code}: {str(error).rstrip('.')}; the finding is not screened.")
            continue
        models.guided[code] = GuidedModel(code, network.eval().to(device), config.input_size,
                                          _threshold(record.metrics if record else metadata.get("metrics")),
                                          _version(metadata, path, record.name if record else None))
    check_cancelled(cancel)
    record = registered.get("attention-mask")
    path = Path(record.path) if record else starter_for("attention-mask")
    if path is not None:
        try:
            metadata = read_metadata(path)
            values = (record.config or {}).get("task", {}) if record else metadata.get("config", {})
            known = {k: v for k, v in values.items() if k in AttentionConfig.__dataclass_fields__}
            diagnosis_config = AttentionConfig(**known)
            classifier = AttentionClassifier(diagnosis_config)
            load_weights(classifier, path)
            structure = load_structure_models(device) if diagnosis_config.masked else None
            models.diagnosis = DiagnosisModel(classifier.eval().to(device), diagnosis_config,
                                              _version(metadata, path, record.name if record else None), structure)
        except (WeightsError, TypeError, ValueError, RuntimeError) as error:
            models.messages.append(f"attention-mask classifier: {str(error).rstrip('.')}; no diagnosis is given.")
    spec = NETWORKS["landmarks"]
    path = spec.weights_file(WEIGHTS_DIR)
    if path is not None:
        try:
            metadata = read_metadata(path)
            check_made_for(path, metadata, "task", spec.task)
            config = spec.config_class.from_dict(metadata.get("config", {}))
            network = spec.build(config)
            load_weights(network, path)
            models.locator = (network.eval().to(device), config, str(metadata.get("version", path.stem)))
        except (WeightsError, TypeError, ValueError, RuntimeError) as error:
            models.messages.append(f"landmarks: {str(error).rstrip('.')}; disc and fovea come from the classical method.")
    return models


def region_fractions(disc, fovea, shape: tuple[int, int], box, map_size: int) -> np.ndarray:
    """float32 [9, S, S]: each map cell's share outside the regions (0) and in regions 1..8."""
    from annotate.geometry import region_mask

    inside = np.stack([region_mask({code}, disc, fovea, shape, (map_size, map_size), mode="area", box=box)
                       for code in range(1, 9)])
    return np.concatenate([np.clip(1 - inside.sum(axis=0), 0, 1)[None], inside]).astype(np.float32)


def finding_result(probability: float, activation: np.ndarray, threshold: float,
                   fractions: np.ndarray | None) -> FindingResult:
    """Mass per region and the regions passing the threshold (module docstring)."""
    if fractions is None:
        return FindingResult(probability, threshold, [], [], activation)
    mass = (fractions * activation[None]).reshape(9, -1).sum(axis=1)
    peaks = [float(activation[fractions[code] >= REGION_SHARE].max()) if (fractions[code] >= REGION_SHARE).any() else 0.0
             for code in range(1, 9)]
    passing = [code for code in range(1, 9)
               if (fractions[code] >= REGION_SHARE).any() and peaks[code - 1] >= threshold]
    return FindingResult(probability, threshold, passing, [float(v) for v in mass], activation, peaks)


def _landmarks(models: ScreeningModels, rgb: np.ndarray, fov):
    from models.segmentation.landmarks import choose_landmarks, locate_classical, locate_learned

    try:
        if models.locator is not None:
            network, config, _ = models.locator
            estimate = choose_landmarks(locate_learned(network, rgb, config, models.device), rgb, fov,
                                        config.min_confidence)
        else:
            estimate = locate_classical(rgb, fov)
    except (ValueError, cv2.error):
        return None, None
    return estimate.disc, estimate.fovea


def screen_photo(bgr: np.ndarray, models: ScreeningModels, cancel: threading.Event | None = None) -> ScreeningResult:
    """Every loaded network on one decoded photo (BGR uint8 as ``read_fundus`` gives it)."""
    from annotate.fov import crop_box, detect_fov, no_fundus_reason
    from models.diagnosis.attention_mask import structure_maps, structure_mask
    from models.findings.inference import prepare_guided_input, run_guided
    from storage.errors import GeometryError

    fov = detect_fov(bgr)
    x0, y0, x1, y1 = (int(v) for v in crop_box(fov, bgr.shape))
    box = (x0, y0, x1, y1)
    x0, y0, x1, y1 = box
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    reason = no_fundus_reason(bgr, fov)   # a blank page or a snapshot: graded it got "no DR 0.41"
    if reason is not None:
        return ScreeningResult({}, {}, None, None, box, crop, models.versions(), no_fundus=reason)
    if is_red_free(bgr):
        return ScreeningResult({}, {}, None, None, box, crop, models.versions(), red_free=True)
    disc, fovea = _landmarks(models, rgb, fov)
    findings: dict[str, FindingResult] = {}
    fractions_by_size: dict[int, np.ndarray | None] = {}
    for code, model in models.guided.items():
        check_cancelled(cancel)
        probability, activation = run_guided(model.network, prepare_guided_input(bgr, model.input_size, box))
        size = activation.shape[0]
        if size not in fractions_by_size:
            try:
                fractions_by_size[size] = (None if disc is None else
                                           region_fractions(disc, fovea, bgr.shape[:2], box, size))
            except GeometryError:
                fractions_by_size[size] = None
        findings[code] = finding_result(probability, activation, model.threshold, fractions_by_size[size])
    diagnosis: dict[str, float] = {}
    if models.diagnosis is not None:
        check_cancelled(cancel)
        d = models.diagnosis
        size = d.config.input_size
        square = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        image = torch.from_numpy(square).permute(2, 0, 1).float()[None] / 255.0
        if d.structure is not None:
            guess = None if disc is None else (disc[0] - x0, disc[1] - y0)
            maps = structure_maps(crop, size, d.structure, models.device, guess)
            mask = structure_mask(maps, d.config.mask_weights, d.config.soft_mask)
            image = image * torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
        with torch.no_grad():
            probabilities = torch.softmax(d.network(image.to(models.device)).float().cpu(), dim=1)[0]
        diagnosis = {name: float(p) for name, p in zip(d.config.classes, probabilities)}
    return ScreeningResult(findings, diagnosis, disc, fovea, box, crop, models.versions())


def activation_picture(result: ScreeningResult, code: str, long_side: int = 768) -> np.ndarray:
    """RGB uint8: the paper's Fig. 3 rendering of one finding's map over the cropped photo."""
    from models.findings.activation_maps import overlay_activation

    h, w = result.crop_rgb.shape[:2]
    scale = long_side / max(h, w)
    shown = cv2.resize(result.crop_rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA)
    return overlay_activation(shown, result.findings[code].activation)


def require_some_model(models: ScreeningModels) -> None:
    if not models.guided and models.diagnosis is None:
        raise OctantError("No finding network or classifier is available to screen with; train one "
                          "(`python main.py train`) or restore the starter weights in weights/.")
