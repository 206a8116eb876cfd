"""Model assistance at the workstation: suggested regions and the pre-segmentation overlays.

``models.segmentation.presegment`` stores, per image, a prediction of kind "presegmentation" whose payload
holds ``finding_regions`` ({finding code: [region codes]}) and ``mask_folder`` (PNG masks at the
original size, 0/255, named after ``models.segmentation.pipeline.MASK_NAMES``). A reader gets it through
``ReaderSession.suggestion``, which hides it on test images when the project says so (the test
set is the gold standard). Suggestions are never labels: they become the reader's own only
when accepted (one audited action, undoable).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtGui import QColor, QImage

from models.segmentation.stored_names import LESION_NAMES, PREDICTION_KIND, RED_FREE_NOTE
from storage.labels import ReadState
from ui.colours import CUP_COLOUR, DISC_COLOUR, LESION_ALPHA, LESION_COLOURS, OVERLAY_ALPHA, VESSEL_COLOUR

PRESEGMENTATION = PREDICTION_KIND
LESION_MASKS = LESION_NAMES   # the lesion channel of a finding (catalogue) -> its mask's name
OVERLAYS = ("vessels", "disc_cup", "lesions")


@dataclass(frozen=True)
class ModelSuggestion:
    finding_regions: dict[str, frozenset[int]] = field(default_factory=dict)
    mask_folder: Path | None = None
    note: str = ""   # what the reader should know about these suggestions (a red-free photo gets none)

    def mask(self, name: str) -> Path | None:
        if self.mask_folder is None:
            return None
        path = self.mask_folder / f"{name}.png"
        return path if path.is_file() else None

    def has_overlay(self, overlay: str) -> bool:
        names = {"vessels": ("vessels",), "disc_cup": ("disc", "cup"),
                 "lesions": tuple(LESION_MASKS.values())}[overlay]
        return any(self.mask(name) for name in names)


def suggestion_from_payload(payload: dict | None, project_root: Path) -> ModelSuggestion | None:
    """The parts of a stored pre-segmentation the workstation uses; None when there is none."""
    if not payload:
        return None
    regions = {code: frozenset(int(r) for r in codes if 1 <= int(r) <= 8)
               for code, codes in (payload.get("finding_regions") or {}).items()}
    folder = payload.get("mask_folder")
    return ModelSuggestion({c: r for c, r in regions.items() if r},
                           project_root / folder if folder else None,
                           _no_fundus_note(payload) or (RED_FREE_NOTE if payload.get("red_free") else ""))


def _no_fundus_note(payload: dict) -> str:
    """The pipeline's "No fundus found: why" and what the reader can do; "" for a retina. A blank
    picture showed only "Click the centre of the optic disc." there."""
    if not payload.get("no_fundus"):
        return ""
    said = next((m for m in payload.get("messages") or [] if str(m).startswith("No fundus found")),
                "No fundus found by the model; nothing is suggested for this picture.")
    return f"{said} If it is a fundus photograph, click its optic disc; if not, U marks it ungradable."


def accepted(state: ReadState, suggestion: ModelSuggestion, findings: set[str]) -> ReadState:
    """The reader's answer with every suggested region added (their own regions are kept)."""
    regions = dict(state.regions)
    for code, suggested in suggestion.finding_regions.items():
        if code in findings:
            regions[code] = regions.get(code, frozenset()) | suggested
    added = any(regions.get(c) != state.regions.get(c) for c in regions)
    return ReadState(regions=regions, normal=state.normal and not added,
                     ungradable=state.ungradable, diagnosis=state.diagnosis,
                     comment=state.comment, done=state.done, landmarks=state.landmarks)


def _read_mask(path: Path, size: tuple[int, int]) -> np.ndarray | None:
    """A 0/255 mask resized to the display copy (width, height), as bool."""
    data = np.fromfile(path, np.uint8)
    mask = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if mask is None:
        return None
    if (mask.shape[1], mask.shape[0]) != size:
        mask = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
    return mask > 127


def render_overlay(layers: list[tuple[Path, QColor, str]], size: tuple[int, int]) -> QImage:
    """Masks as one translucent picture (worker thread): "fill" layers tinted (as opaque as their
    colour's alpha), "outline" layers drawn as contours; ``size`` is the display copy's (width, height)."""
    w, h = size
    bgra = np.zeros((h, w, 4), np.uint8)
    thickness = max(2, round(max(w, h) / 700))
    for path, colour, mode in layers:
        mask = _read_mask(path, size)
        if mask is None:
            continue
        if mode == "outline":
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(bgra, contours, -1, (colour.blue(), colour.green(), colour.red(), 255),
                             thickness)
        else:  # premultiplied ARGB: colour channels scaled by alpha
            a = colour.alpha() / 255
            bgra[mask] = (round(colour.blue() * a), round(colour.green() * a),
                          round(colour.red() * a), colour.alpha())
    return QImage(bgra.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied).copy()


def overlay_layers(overlay: str, suggestion: ModelSuggestion) -> list[tuple[Path, QColor, str]]:
    """Which masks an overlay shows, in which colour (``ui.colours``; a lesion finding has its map's)."""
    if overlay == "vessels":
        wanted = [("vessels", _with_alpha(VESSEL_COLOUR, OVERLAY_ALPHA), "fill")]
    elif overlay == "disc_cup":
        wanted = [("disc", QColor(DISC_COLOUR), "outline"), ("cup", QColor(CUP_COLOUR), "outline")]
    else:
        wanted = [(name, _with_alpha(LESION_COLOURS[channel], LESION_ALPHA), "fill")
                  for channel, name in LESION_MASKS.items()]
    return [(path, colour, mode) for name, colour, mode in wanted
            if (path := suggestion.mask(name)) is not None]


def _with_alpha(name: str, alpha: int) -> QColor:
    colour = QColor(name)
    colour.setAlpha(alpha)
    return colour
