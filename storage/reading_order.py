"""The reading order that teaches the model most: pure scoring, no database (issue 19.8).

With the project's ``reading_order`` set to ``model_uncertainty`` a reader's unfinished images come
in the order of how much their answer would teach the active guided networks: first the images
where the networks are least certain, per finding and per region, or where they disagree most with
the answers other readers have already given. ``ReaderSession`` (storage/reading.py) feeds these
functions the stored ``findings`` predictions (``storage.predictions.FINDINGS_PREDICTION``) and
the other readers' finished answers; nothing here touches the database, so the order is a pure
function of what is stored and the same in every session.

Every quantity here is symmetric in the model's answer: a probability just below its threshold
scores as one just above it, and the model saying "present" against readers' "absent" scores as
the reverse. The order therefore tells a blind reader neither what the model answered nor what
the other readers answered, only that an image is worth their attention; the queue's entries
carry no score (``ReaderSession.queue_status`` returns the same records in either order).

This module lives in ``storage`` rather than ``annotate`` because the queue is ordered by
``storage.reading`` and storage imports nothing from the layers above it.
"""
from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

READING_ORDERS = {
    "default": "in assignment order",
    "model_uncertainty": "where the model is least certain or disagrees most with earlier reads first",
}
REGIONS = 8                 # region codes 1..8 (docs/geometry.md)
# A finished read by another reader that contradicts the model counts as much as the model's own
# doubt at its most (an image at its threshold): doubt is the model's guess about where it errs,
# a contradicting read is where it probably does err, and one it would be trained on (uncertainty
# and query-by-committee sampling, Settles 2009, "Active Learning Literature Survey"). Weighing it
# above 1 would let a single reader's slip outrank the images the model cannot call at all.
DISAGREEMENT_WEIGHT = 1.0
_DECIMALS = 9               # scores compared after rounding: the order never hangs on float noise


def parse_reading_order(text: str) -> str:
    """The stored key for a reading order given as ``default`` or ``model_uncertainty`` (any case,
    ``-`` or a space for ``_``); ValueError with one sentence otherwise."""
    key = "_".join(str(text).strip().lower().replace("-", " ").split())
    if key not in READING_ORDERS:
        raise ValueError(f"Unknown reading order {text!r}; use default or model-uncertainty.")
    return key


def presence_scale(probability: float, threshold: float) -> float:
    """The probability rescaled so that the finding's threshold sits at 0.5 (linear on each side):
    a network's operating point, not 0.5, is where it is least sure."""
    p = min(max(float(probability), 0.0), 1.0)
    t = min(max(float(threshold), 1e-6), 1 - 1e-6)
    return 0.5 * p / t if p < t else 0.5 + 0.5 * (p - t) / (1 - t)


def binary_entropy(q: float) -> float:
    """H(q) in bits: 1 at q = 0.5, 0 at q = 0 or 1."""
    if q <= 0.0 or q >= 1.0:
        return 0.0
    return -(q * math.log2(q) + (1 - q) * math.log2(1 - q))


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _numbers(values: Any, length: int) -> list[float] | None:
    if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != length:
        return None
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return numbers if all(map(math.isfinite, numbers)) else None


def regional_uncertainty(entry: Mapping[str, Any]) -> float | None:
    """How unsure the network is about where a finding lies, 0..1: the mean over the eight regions
    of each region's binary entropy about the threshold, from ``region_peak`` (each region's
    highest activation, which decides whether the region passes). None without peaks: predictions
    stored before ``screen`` kept them hold only the activation mass per region, which says how
    much activation a region holds, not how close it came to passing."""
    threshold = _number(entry.get("threshold"))
    peaks = _numbers(entry.get("region_peak"), REGIONS)
    if threshold is None or peaks is None:
        return None
    # presence_scale and binary_entropy inlined: a queue of thousands scores eight per finding each
    t = min(max(threshold, 1e-6), 1 - 1e-6)
    total = 0.0
    for p in peaks:
        p = min(max(p, 0.0), 1.0)
        q = 0.5 * p / t if p < t else 0.5 + 0.5 * (p - t) / (1 - t)
        if 0.0 < q < 1.0:
            total -= q * math.log2(q) + (1 - q) * math.log2(1 - q)
    return total / REGIONS


def finding_uncertainty(entry: Mapping[str, Any]) -> float | None:
    """The network's doubt about one finding, 0..1: the mean of its doubt about whether the finding
    is there (binary entropy about the threshold) and about where (``regional_uncertainty``, the
    first alone when the prediction has no regional figures); None for an unusable entry."""
    probability, threshold = _number(entry.get("probability")), _number(entry.get("threshold"))
    if probability is None or threshold is None:
        return None
    whether = binary_entropy(presence_scale(probability, threshold))
    where = regional_uncertainty(entry)
    return whether if where is None else (whether + where) / 2


def finding_disagreement(entry: Mapping[str, Any], earlier: Sequence[frozenset[int]]) -> float:
    """How far the network's answer for one finding is from earlier readers', 0..1: per reader 1
    when one says present and the other absent, the Jaccard distance between their regions when
    both say present (0 when the network named no regions: it had no disc and fovea), 0 when both
    say absent; the mean over the readers (0 when there are none). ``earlier``: each reader's
    regions for the finding, empty when they found it absent."""
    probability, threshold = _number(entry.get("probability")), _number(entry.get("threshold"))
    if not earlier or probability is None or threshold is None:
        return 0.0
    present = probability >= threshold
    regions = frozenset(int(r) for r in entry.get("regions") or () if _number(r) is not None)
    total = 0.0
    for read in earlier:
        if bool(read) != present:
            total += 1.0
        elif present and regions:
            total += 1.0 - len(read & regions) / len(read | regions)
    return total / len(earlier)


def image_score(payload: Mapping[str, Any] | None, findings: Iterable[str],
                earlier_reads: Sequence[Mapping[str, frozenset[int]]] = ()) -> float | None:
    """What reading an image would teach the guided networks: summed over the project's findings
    (each finding has its own network, and one read labels them all) of the network's doubt plus
    ``DISAGREEMENT_WEIGHT`` times its disagreement with ``earlier_reads`` (other readers' finished
    answers: present findings and their regions, absent ones left out). None when the prediction
    has no usable finding: the image is not scored."""
    entries = (payload or {}).get("findings") if isinstance(payload, Mapping) else None
    if not isinstance(entries, Mapping):
        return None
    score, scored = 0.0, False
    for code in findings:
        entry = entries.get(code)
        doubt = finding_uncertainty(entry) if isinstance(entry, Mapping) else None
        if doubt is None:
            continue
        scored = True
        answers = [frozenset(read.get(code, frozenset())) for read in earlier_reads]
        score += doubt + DISAGREEMENT_WEIGHT * finding_disagreement(entry, answers)  # type: ignore[arg-type]
    return round(score, _DECIMALS) if scored else None


def order_queue(image_ids: Sequence[int], scores: Mapping[int, float | None],
                finished: Collection[int] = (), fixed: Collection[int] = ()) -> list[int]:
    """A queue in reading order, from ``image_ids`` in the default order: the ``finished`` ones
    first (in the default order: what was read, then what is next, so that "next unfinished"
    after the image just finished is the best one left); then the unfinished ones, where the
    ``fixed`` ones (quality-control reads) keep their places among them as in the default order
    and the other places are filled with the scored images, highest score first, then the unscored
    ones; ties and unscored images keep the default order. Deterministic: the same input gives the
    same order."""
    done = [image for image in image_ids if image in finished]
    waiting = [image for image in image_ids if image not in finished]
    return done + fill_places(waiting, fixed, rank_images([image for image in waiting if image not in fixed], scores))


def rank_images(movable: Sequence[int], scores: Mapping[int, float | None]) -> list[int]:
    """``movable`` (in the default order) with the scored ones first, highest score first, then the
    unscored ones; ties and unscored images keep the default order. Any part of the result is
    the ranking of that part: a queue that only lost images keeps its ranking, less those."""
    rank = {image: n for n, image in enumerate(movable)}
    scored = sorted((image for image in movable if scores.get(image) is not None),
                    key=lambda image: (-scores[image], rank[image]))  # type: ignore[operator]
    return scored + [image for image in movable if scores.get(image) is None]


def fill_places(waiting: Sequence[int], fixed: Collection[int], ranked: Sequence[int]) -> list[int]:
    """``waiting`` (in the default order) with the ``fixed`` images where they are and the other
    places filled with ``ranked`` (the others, in their reading order)."""
    order = list(waiting)
    slots = [place for place, image in enumerate(waiting) if image not in fixed]
    for slot, image in zip(slots, ranked, strict=True):
        order[slot] = image
    return order
