"""What the reviewers' screen shows, gathered once: every read, the consensus and the queues.

Plain Python (no Qt) so the queue rules can be tested and reused. Access goes through
``storage.review.ReviewSession``, which refuses anyone but reviewers and admins.

Disagreement, per image and finding (among the gradable reads marked done, as in consensus):
- *uncertain vote*: some readers marked the finding but fewer than k (``annotate.consensus``);
- *regions differ*: at least two readers marked it but did not choose the same regions.
An image is in the queue for a finding when either holds; "all findings" lists it once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from annotate.adjudication import disagreements
from annotate.consensus import FindingConsensus, ProjectConsensus, collect_reads, consensus_from_table
from storage.adjudication import AdjudicatedAnswers, adjudicated_answers
from storage.images import ImageRecord, list_images
from storage.labels import ReadState
from storage.readers import ReaderInfo, list_readers
from storage.review import ReviewSession


@dataclass
class ReviewData:
    """Every read of the project (done or not), by image, with the consensus of the done ones."""

    images: list[ImageRecord]
    readers: dict[int, ReaderInfo]
    reads: dict[int, dict[int, ReadState]]        # image id -> reader id -> read
    consensus: ProjectConsensus
    finding_codes: list[str]
    finding_names: dict[str, str] = field(default_factory=dict)
    answers: AdjudicatedAnswers = field(default_factory=AdjudicatedAnswers)   # reviewers' decisions in force

    def __post_init__(self) -> None:
        self._by_id = {record.id: record for record in self.images}

    def image(self, image_id: int) -> ImageRecord:
        return self._by_id[image_id]

    def disagreements(self, finding: str | None = None) -> dict[int, dict[str | None, str]]:
        """image id -> {finding (None: the diagnosis): why}: ``annotate.adjudication.disagreements``."""
        return disagreements(self.consensus, finding)

    def consensus_state(self, image_id: int, finding: str) -> FindingConsensus | None:
        """``FindingConsensus`` or None when the image has no done read yet."""
        if image_id not in self.consensus:
            return None
        return self.consensus.image(image_id).findings[finding]


def load_review_data(review: ReviewSession, k: int | None = None) -> ReviewData:
    """One streaming pass over every read (``ReviewSession.all_reads``), then consensus."""
    from storage.project import project_settings

    db = review.db
    settings = project_settings(db)
    codes = [spec.code for spec in settings.findings]
    reads: dict[int, dict[int, ReadState]] = {}
    triples = []
    for image_id, reader_id, state in review.all_reads():
        reads.setdefault(image_id, {})[reader_id] = state
        triples.append((image_id, reader_id, state))
    consensus = consensus_from_table(collect_reads(triples, codes), k or settings.consensus_k)
    readers = {info.id: info for info in list_readers(db, include_inactive=True)}
    return ReviewData(list_images(db), readers, reads, consensus, codes,
                      {spec.code: spec.name for spec in settings.findings}, adjudicated_answers(db))
