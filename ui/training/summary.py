"""What the project's consensus offers for training: per finding and split, how many photos are
present, absent or uncertain, and how many carry each consensus diagnosis.

Plain Python (no Qt) so that it can move to ``models/`` unchanged. The rules are those of
``annotate.consensus`` (Son et al. §3.1): only done reads count, absent needs all three readers,
present needs k of 3; a photo nobody has finished yet counts as unread.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from annotate.consensus import ABSENT, PRESENT, UNCERTAIN, consensus_for_project
from storage.images import list_images
from storage.project import ProjectHandle
from storage.review import iter_all_reads

SPLITS = ("train", "test")


@dataclass
class FindingCounts:
    present: int = 0
    absent: int = 0
    uncertain: int = 0
    unread: int = 0


@dataclass
class DataSummary:
    k: int
    images: dict[str, int]                                  # split -> photos
    findings: dict[str, dict[str, FindingCounts]]           # finding code -> split -> counts
    finding_names: dict[str, str]                           # code -> clinic name
    classes: dict[str, dict[str, int]] = field(default_factory=dict)  # diagnosis -> split -> photos
    no_diagnosis: dict[str, int] = field(default_factory=dict)        # split -> photos without majority

    def trainable(self, code: str) -> bool:
        """Both classes in the train split: the guided network can learn something."""
        counts = self.findings[code]["train"]
        return counts.present >= 2 and counts.absent >= 2


def empty_summary(project: ProjectHandle) -> DataSummary:
    """All counts zero: what the panel shows while the real count runs off the GUI thread."""
    settings = project.settings()
    return DataSummary(settings.consensus_k, {split: 0 for split in SPLITS},
                       {spec.code: {split: FindingCounts() for split in SPLITS} for spec in settings.findings},
                       {spec.code: spec.name for spec in settings.findings},
                       {name: {split: 0 for split in SPLITS} for name in settings.diagnosis_classes},
                       {split: 0 for split in SPLITS})


def summarise_training_data(project: ProjectHandle) -> DataSummary:
    """One pass over all reads (streamed) and the image list; O(reads) and vectorised per finding."""
    settings = project.settings()
    codes = [spec.code for spec in settings.findings]
    consensus = consensus_for_project(iter_all_reads(project.database), codes, k=settings.consensus_k)
    split_of = {record.id: record.split for record in list_images(project.database)}
    images = {split: sum(1 for s in split_of.values() if s == split) for split in SPLITS}
    findings = {code: {split: FindingCounts() for split in SPLITS} for code in codes}
    classes = {name: {split: 0 for split in SPLITS} for name in settings.diagnosis_classes}
    no_diagnosis = {split: 0 for split in SPLITS}
    names = consensus.table.diagnosis_names
    read_ids = [int(i) for i in consensus.table.image_ids]
    for row, image_id in enumerate(read_ids):
        split = split_of.get(image_id)
        if split not in images:
            continue
        for f, code in enumerate(codes):
            state = int(consensus.state[row, f])
            counts = findings[code][split]
            if state == PRESENT:
                counts.present += 1
            elif state == ABSENT:
                counts.absent += 1
            elif state == UNCERTAIN:
                counts.uncertain += 1
        d = int(consensus.diagnosis[row])
        if d >= 0 and names[d] in classes:
            classes[names[d]][split] += 1
        else:
            no_diagnosis[split] += 1
    read = set(read_ids)
    for image_id, split in split_of.items():
        if image_id not in read and split in images:
            for code in codes:
                findings[code][split].unread += 1
            no_diagnosis[split] += 1   # the table's "no majority / unread" row
    return DataSummary(settings.consensus_k, images, findings,
                       {spec.code: spec.name for spec in settings.findings}, classes, no_diagnosis)
