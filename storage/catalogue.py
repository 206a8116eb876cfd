"""Default finding catalogue and diagnosis classes of a new project.

Findings follow Son et al. (regionally-guided CNN): the seven reported in Table 1 plus retinal
pigmentary change, with the paper's size classes (§2.2: haemorrhage, hard exudate, cotton wool
patch, drusen and retinal pigmentary change are "small" and get max-pooling before GAP; the
size class also picks the atrous rates 1,2 / 1,2,4 / 1,2,4,8). Microaneurysm and three findings of
the same group's 12-finding screening set (chorioretinal atrophy or scar, vascular abnormality,
glaucomatous disc change) complete the default twelve. ``lesion_channel`` names the IDRiD lesion
segmentation channel a finding corresponds to (HE, EX, MA, SE), for model suggestions.
Each project stores its own copy, which can be edited.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from storage.errors import InvalidRequestError

SizeClass = Literal["small", "medium", "large"]
SIZE_CLASSES: tuple[str, ...] = ("small", "medium", "large")


@dataclass(frozen=True)
class FindingSpec:
    code: str  # stable identifier, e.g. "haemorrhage"
    name: str  # shown to readers
    key: str  # one keyboard key that selects the finding while reading
    size_class: SizeClass
    lesion_channel: str | None = None
    id: int | None = None  # database id once stored in a project


DEFAULT_FINDINGS: tuple[FindingSpec, ...] = (
    FindingSpec("haemorrhage", "Haemorrhage", "h", "small", "HE"),
    FindingSpec("hard_exudate", "Hard exudate", "e", "small", "EX"),
    FindingSpec("microaneurysm", "Microaneurysm", "m", "small", "MA"),
    FindingSpec("cotton_wool_patch", "Cotton wool patch", "c", "small", "SE"),
    FindingSpec("drusen", "Drusen", "d", "small"),
    FindingSpec("retinal_pigmentary_change", "Retinal pigmentary change", "p", "small"),
    FindingSpec("macular_hole", "Macular hole", "o", "medium"),
    FindingSpec("membrane", "Membrane", "b", "large"),
    FindingSpec("rnfl_defect", "RNFL defect", "r", "large"),
    FindingSpec("glaucomatous_disc_change", "Glaucomatous disc change", "g", "medium"),
    FindingSpec("chorioretinal_atrophy", "Chorioretinal atrophy or scar", "a", "large"),
    FindingSpec("vascular_abnormality", "Vascular abnormality", "v", "large"),
)

# IDRiD disease grading for diabetic retinopathy (grades 0-4).
DEFAULT_DIAGNOSIS_CLASSES: tuple[str, ...] = (
    "no DR",
    "mild NPDR",
    "moderate NPDR",
    "severe NPDR",
    "PDR",
)

# Who may read each split (Son et al.: ophthalmologists labelled the training set, specialists
# the test set that serves as the gold standard).
DEFAULT_SPLIT_ROLES: dict[str, tuple[str, ...]] = {
    "train": ("ophthalmologist", "retina_specialist", "glaucoma_specialist"),
    "test": ("retina_specialist", "glaucoma_specialist"),
}

SPLITS: tuple[str, ...] = ("train", "test")


def check_findings(findings: list[FindingSpec] | tuple[FindingSpec, ...]) -> None:
    """Refuse a catalogue a reader could not use (duplicate codes or keys, bad size class)."""
    codes = [f.code for f in findings]
    keys = [f.key for f in findings]
    if len(set(codes)) != len(codes):
        raise InvalidRequestError("Each finding needs its own code.")
    if len(set(keys)) != len(keys):
        raise InvalidRequestError("Each finding needs its own keyboard key.")
    for finding in findings:
        if finding.size_class not in SIZE_CLASSES:
            raise InvalidRequestError(f"Finding {finding.code}: size class must be small, medium or large.")
