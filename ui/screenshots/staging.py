"""Made-up answers for screenshots of a project nobody has read yet (the demo), written only to
the screenshot command's copy of the database: landmarks placed by a simple rule, and a few
readers' regions that agree, disagree and leave one photo with a single vote. Nothing that ships
in the workstation imports this module (tests/ui/test_import_graph.py)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from annotate.adjudication import disagreements
from annotate.consensus import consensus_for_project
from annotate.fov import detect_fov
from annotate.services.photos import read_fundus
from storage.adjudication import record_adjudication
from storage.database import Database
from storage.project import project_settings
from storage.readers import REVIEW_ROLES, list_readers
from storage.reading import ReaderSession
from storage.review import iter_all_reads


def staged_landmarks(path: Path) -> tuple[tuple[float, float], tuple[float, float]]:
    """Disc and fovea for staging a screenshot when neither a reader nor a model gave any.

    Not a model (models/ holds the real landmark network): the disc is the brightest blurred
    spot of the green channel inside the field of view; the fovea is put where it usually is in
    a 45° macula-centred photo, about 0.3 image widths from the disc towards the centre and
    slightly lower (IDRiD's median). Good enough to show the regions.
    """
    bgr = read_fundus(path)
    h, w = bgr.shape[:2]
    fov = detect_fov(bgr)
    yy, xx = np.mgrid[0:h, 0:w]
    inside = (xx - fov.cx) ** 2 + (yy - fov.cy) ** 2 < (0.92 * fov.r) ** 2
    bright = cv2.GaussianBlur(bgr[:, :, 1].astype(np.float32), (0, 0), w / 60)
    bright[~inside] = 0
    dy, dx = np.unravel_index(int(np.argmax(bright)), bright.shape)
    towards_centre = 1.0 if fov.cx > dx else -1.0
    return (float(dx), float(dy)), (float(dx + towards_centre * 0.30 * w), float(dy + 0.04 * h))


# Staged answers for a project nobody has finished reading yet (the demo): per photo, each
# assigned reader's regions for the first finding (None: normal). Photo 1 agreed, photo 2 the
# readers disagree on the regions, photo 3 a single vote (uncertain consensus).
STAGED_REGIONS = (({1, 5}, {1, 5}, {1, 5}), ({1, 5}, {1}, None), ({5}, None, None))


def stage_readers_answers(db: Database) -> None:
    """Answer the first photos as their assigned readers would, on a copy of the database only."""
    finding = project_settings(db).findings[0].code
    slots: dict[int, int] = {}
    for image_id, _reader, _state in iter_all_reads(db):
        slots.setdefault(image_id, 0)
    readers = [r for r in list_readers(db) if r.role not in REVIEW_ROLES]
    for reader in readers:
        session = ReaderSession(db, reader.id)
        for record in session.queue():
            n = sorted(slots).index(record.id) if record.id in slots else len(STAGED_REGIONS)
            if n >= len(STAGED_REGIONS) or session.read(record.id).done:
                continue
            slot = slots[record.id]
            slots[record.id] += 1
            shown = session.model_landmarks(record.id)
            disc, fovea = (shown.disc, shown.fovea) if shown else staged_landmarks(record.path)
            session.set_landmarks(record.id, disc=disc, fovea=fovea, source="model" if shown else "manual")
            regions = STAGED_REGIONS[n][slot % 3]
            if regions is None:
                session.mark_normal(record.id)
            else:
                session.set_regions(record.id, finding, regions)
            session.mark_done(record.id)


def stage_adjudication(db: Database, reviewer_id: int) -> None:
    """The reviewer settles the last finding the staged readers disagree on (absent), so the review
    queue shows a decided entry, marked, after the open ones."""
    settings = project_settings(db)
    found = disagreements(consensus_for_project(iter_all_reads(db), [spec.code for spec in settings.findings],
                                                settings.consensus_k))
    last = [(image_id, code) for image_id, reasons in found.items() for code in reasons if code is not None][-1:]
    for image_id, code in last:
        record_adjudication(db, reviewer_id, image_id, code, False, reason="Staged: a reflex, not a lesion.")
