"""The names pre-segmentation stores its results under: the prediction kind, each lesion
channel's mask file, and what it and screening tell a reader of a red-free photo. Torch-free, so
the workstation reads them without loading the networks (``ui.assist``) and the pipeline that
writes them uses the same ones."""
from __future__ import annotations

PREDICTION_KIND = "presegmentation"
LESION_CHANNELS = ("MA", "HE", "EX", "SE")
LESION_NAMES = {"MA": "microaneurysms", "HE": "haemorrhages", "EX": "hard_exudates", "SE": "soft_exudates"}
# On red-free IDRiD-segmentation 45-54 the lesion network's haemorrhage AUPR falls from 0.62 to 0.34
# (0.42 in pseudo-colour) and its other types lose too (docs/benchmarks.md, red-free photos).
RED_FREE_NOTE = ("Red-free photo: no lesion regions are suggested, as the lesion networks learnt on colour "
                 "photos and tell haemorrhages and exudates apart by their colour.")
# Screening (``models.findings.screening``) withholds its calls on a red-free photo for the same reason.
SCREENING_RED_FREE_NOTE = ("Red-free photo: not screened (no finding probabilities, no diagnosis grade), as the "
                           "finding networks and the diagnosis classifier learnt on colour photos.")
