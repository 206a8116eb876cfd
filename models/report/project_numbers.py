"""The report's numbers for an open project: one pass over the reads, the final labels and the
stored predictions, for a reviewer or admin (``ReviewSession`` refuses anyone else)."""
from __future__ import annotations

from annotate.analytics import ReadEvent
from annotate.quality import intra_reader_agreement, scores_against_gold
from annotate.services.final_labels import final_labels
from models.report.numbers import ReportNumbers, report_numbers
from storage.activity import read_actions
from storage.database import Database
from storage.predictions import FINDINGS_PREDICTION, latest_predictions
from storage.project import LABEL_SOURCES, project_settings
from storage.quality import gold_answers, repeat_first_answers
from storage.readers import list_readers
from storage.review import ReviewSession


def project_numbers(db: Database, reader_id: int, period: str = "week", block: int = 100) -> ReportNumbers:
    """``period``: reader agreement per ISO "week" or per ``block`` "images" in reading order."""
    review = ReviewSession(db, reader_id)            # AccessDeniedError unless reviewer or admin
    settings = project_settings(db)
    reads = list(review.all_reads())
    labels = final_labels(db, reads=reads)
    events = [ReadEvent(*action) for action in read_actions(db)]
    names = {r.id: r.name for r in list_readers(db, include_inactive=True)}
    predictions = latest_predictions(db, FINDINGS_PREDICTION)
    numbers = report_numbers(
        labels, predictions, {f.code: f.name for f in settings.findings},
        settings.diagnosis_classes, names, events, period, block)
    firsts = repeat_first_answers(db)
    if firsts:
        numbers.repeats = intra_reader_agreement(reads, firsts, [f.code for f in settings.findings])
    gold = gold_answers(db)
    if gold:
        numbers.gold = scores_against_gold(reads, gold, [f.code for f in settings.findings])
    for warning in numbers.drift:
        numbers.notes.append("Drift: " + warning.sentence(names.get(warning.reader_id, str(warning.reader_id))))
    colour = numbers.images - numbers.red_free_images   # red-free ones have their own sentence
    if not numbers.images and predictions:   # screened, not yet read: "run `screen`" misled
        numbers.notes.append(f"{len(predictions)} images have a stored model prediction, but none of them "
                             "has a reader's label yet: ROC, precision–recall, operating points and AIR come "
                             "once they are read.")
    elif not numbers.predicted_images and (colour or not numbers.images):
        which = (f"for the {colour} labelled colour photo{'s' if colour != 1 else ''} "
                 if numbers.red_free_images else "")
        numbers.notes.append(f"No model predictions are stored {which}yet: run `screen --project` on the photos "
                             "for ROC, precision–recall, operating points and AIR.")
    numbers.notes.append(f"Final labels: {LABEL_SOURCES[settings.label_source]}.")
    return numbers
