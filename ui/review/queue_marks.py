"""The review queue's marks: what reviewers decided on an entry, and who, in one line
("✓ Haemorrhage: present in 1 macula (you)"), so that a reviewer going down the queue sees what is
settled, by them or by another reviewer, and can go on with the entries still open."""
from __future__ import annotations

from collections.abc import Callable

from storage.adjudication import AdjudicatedAnswers, AdjudicationRecord
from ui.review.side_by_side import regions_text

EVERYTHING = "everything"   # an image's mark covers every finding and the diagnosis


def decision_text(code: str | None, entry: AdjudicationRecord, finding_names: dict[str, str]) -> str:
    """'Haemorrhage: present in 1 macula', 'Drusen: absent' or (code None) 'Diagnosis: mild NPDR'."""
    if code is None:
        return f"Diagnosis: {entry.diagnosis}"
    name = finding_names.get(code, code)
    return f"{name}: present in {regions_text(entry.regions)}" if entry.present else f"{name}: absent"


def queue_mark(answers: AdjudicatedAnswers, image_id: int, about: str | None,
               finding_names: dict[str, str], who: Callable[[int], str]) -> str:
    """The decisions in force on the image about ``about`` (a finding code, None for the diagnosis, or
    EVERYTHING), each followed by its reviewer's name (``who(reviewer id)``); "" when none."""
    decided = answers.of_image(image_id)
    chosen = [(code, entry) for code, entry in decided.items() if about in (EVERYTHING, code)]
    chosen.sort(key=lambda pair: (pair[0] is None, pair[1].id))     # findings, then the diagnosis
    if not chosen:
        return ""
    return "✓ " + "; ".join(f"{decision_text(code, entry, finding_names)} ({who(entry.reviewer_id)})"
                            for code, entry in chosen)
