"""The adjudication queue: where readers disagree, and which of those a reviewer has settled.

Disagreement, per image and finding (among gradable reads marked done, as in consensus):
- *uncertain vote*: some readers marked the finding but fewer than k (``annotate.consensus``);
- *regions differ*: at least two readers marked it but did not choose the same regions;
and per image (key ``None``): *diagnoses differ*, two gradable reads giving different diagnoses.
A disagreement is settled once a reviewer recorded an answer for that image and finding (or a
diagnosis, for the image's diagnosis) in ``storage.adjudication``.

``review_queue`` puts images with anything unsettled first, then the settled ones, each group in
the given image order (default: image id), so the order is reproducible. ``model_disagreements``
is the model queue from stored predictions (``main.py screen --project``).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from annotate.consensus import ABSENT, PRESENT, ProjectConsensus

UNCERTAIN_VOTE = "uncertain vote"
REGIONS_DIFFER = "regions differ"
DIAGNOSES_DIFFER = "diagnoses differ"


@dataclass(frozen=True)
class QueueEntry:
    image_id: int
    pending: dict[str | None, str]   # finding code (None: the diagnosis) -> why, not yet adjudicated
    settled: dict[str | None, str]   # the same, already adjudicated

    @property
    def done(self) -> bool:
        return not self.pending


def disagreements(consensus: ProjectConsensus, finding: str | None = None,
                  include_diagnosis: bool = True) -> dict[int, dict[str | None, str]]:
    """image id -> {finding (None: diagnosis): why}, images in id order; one finding if named."""
    c, t = consensus, consensus.table
    found: dict[int, dict[str | None, str]] = {}
    if not len(t.image_ids):
        return found
    marked = (t.region_bits != 0) & t.gradable[:, :, None]               # [N, R, F]
    votes = marked.sum(axis=1)
    uncertain = (votes >= 1) & (votes < c.k)
    union = np.bitwise_or.reduce(np.where(marked, t.region_bits, 0), axis=1)
    common = np.bitwise_and.reduce(np.where(marked, t.region_bits, 0xFF), axis=1)
    differ = (votes >= 2) & (union != common)
    for f, code in enumerate(t.finding_codes):
        if finding is not None and code != finding:
            continue
        for row in np.flatnonzero(uncertain[:, f] | differ[:, f]):
            found.setdefault(int(t.image_ids[row]), {})[code] = UNCERTAIN_VOTE if uncertain[row, f] else REGIONS_DIFFER
    if include_diagnosis and finding is None:
        given = np.where(t.gradable, t.diagnosis, -1)
        high = given.max(axis=1, initial=-1)
        low = np.where(given >= 0, given, np.iinfo(np.int16).max).min(axis=1, initial=np.iinfo(np.int16).max)
        for row in np.flatnonzero((high >= 0) & (low < high)):
            found.setdefault(int(t.image_ids[row]), {})[None] = DIAGNOSES_DIFFER
    return dict(sorted(found.items()))


def review_queue(consensus: ProjectConsensus, adjudicated: Iterable[tuple[int, str | None]],
                 finding: str | None = None, image_order: Iterable[int] | None = None) -> list[QueueEntry]:
    """Disagreements not yet adjudicated first, then the adjudicated ones (module docstring).

    ``adjudicated`` holds (image id, finding code or None for the diagnosis) pairs that have an
    answer, e.g. ``storage.adjudication.AdjudicatedAnswers.settled``.
    """
    settled_pairs = set(adjudicated)
    rank = {int(image): n for n, image in enumerate(image_order)} if image_order is not None else {}
    entries = []
    for image, reasons in disagreements(consensus, finding).items():
        pending = {code: why for code, why in reasons.items() if (image, code) not in settled_pairs}
        settled = {code: why for code, why in reasons.items() if (image, code) in settled_pairs}
        entries.append(QueueEntry(image, pending, settled))
    entries.sort(key=lambda e: (e.done, rank.get(e.image_id, len(rank)), e.image_id))
    return entries


def model_disagreements(consensus: ProjectConsensus, predictions: dict[int, dict],
                        finding: str | None = None) -> dict[int, dict[str, str]]:
    """image id -> {finding: why} where a stored prediction (``main.py screen --project``; payload
    of ``storage.predictions.FINDINGS_PREDICTION``) calls the finding otherwise than a decided
    consensus (present or absent), most confident model calls first within each image's list;
    images in id order. Uncertain consensus has no answer for the model to miss."""
    t = consensus.table
    found: dict[int, dict[str, str]] = {}
    for row, image in enumerate(t.image_ids.tolist()):
        payload = predictions.get(image)
        if not payload:
            continue
        calls = []
        for f, code in enumerate(t.finding_codes):
            entry = (payload.get("findings") or {}).get(code)
            state = int(consensus.state[row, f])
            if entry is None or (finding is not None and code != finding) or state not in (PRESENT, ABSENT):
                continue
            probability, threshold = float(entry["probability"]), float(entry.get("threshold", 0.5))
            if (probability >= threshold) != (state == PRESENT):
                why = (f"model p = {probability:.2f} {'≥' if probability >= threshold else '<'} {threshold:.2f}, "
                       f"consensus {'present' if state == PRESENT else 'absent'}")
                calls.append((abs(probability - threshold), code, why))
        if calls:
            found[image] = {code: why for _, code, why in sorted(calls, key=lambda c: -c[0])}
    return dict(sorted(found.items()))
