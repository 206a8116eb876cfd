"""The names pre-segmentation stores its results under: the prediction kind and each lesion
channel's mask file. Torch-free, so the workstation reads them without loading the networks
(``ui.assist``) and the pipeline that writes them uses the same ones."""
from __future__ import annotations

PREDICTION_KIND = "presegmentation"
LESION_CHANNELS = ("MA", "HE", "EX", "SE")
LESION_NAMES = {"MA": "microaneurysms", "HE": "haemorrhages", "EX": "hard_exudates", "SE": "soft_exudates"}
