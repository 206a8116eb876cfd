"""Reading labels back into a project: ``import-labels FILE`` (``docs/labels.md``).

A COCO file is one reader's answers (``--reader NAME``; ``annotate.services.coco_import``).
Otherwise the file is Octant's JSON export (``export --format json``): every reader's answer per photo
(regions per finding, normal, ungradable, diagnosis, comment, landmarks, done) and the reviewers'
adjudications. Photos are matched by SHA-256, so import the photographs first; readers by name
(created, without a PIN, when the project has none of that name).

It writes on behalf of every reader, so only an admin may run it (``storage.readers.require_admin``). The whole
file is checked before anything is written: a bad value stops the import with one sentence and
nothing changed. Each read is then written through the readers' own save path
(``ReaderSession.restore``, action "import"), so every imported answer has its audit event with
the digest of the state stored, like a reader's save; an answer already stored as in the file is
left alone, so importing the same file twice changes nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from annotate.services.coco_import import coco_states, is_coco
from annotate.services.export import OCTANT_FORMAT, OCTANT_VERSION
from storage.adjudication import list_adjudications, record_adjudication
from storage.assignment import add_read
from storage.errors import InvalidRequestError, NotFoundError, OctantError
from storage.images import find_image_by_sha256
from storage.labels import LANDMARK_SOURCES, Landmarks, ReadState, state_json
from storage.readers import Role, add_reader, find_reader, require_admin
from storage.reading import ReaderSession

if TYPE_CHECKING:
    from storage.project import ProjectHandle

IMPORT_ACTION = "import"


@dataclass(frozen=True)
class _Read:
    sha256: str
    reader: str
    role: Role
    state: ReadState


@dataclass(frozen=True)
class _Adjudication:
    sha256: str
    reviewer: str
    role: Role
    finding: str | None
    present: bool | None
    regions: frozenset[int]
    diagnosis: str | None
    reason: str


@dataclass
class LabelImportReport:
    written: int = 0                                         # reads written
    unchanged: int = 0                                       # reads already stored as in the file
    adjudications: int = 0                                   # reviewers' answers added
    readers_added: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)         # photos of the file not in the project
    undrawn: int = 0                                         # COCO annotations without landmarks to place them


class _Checker:
    """Turns the document into plans, or one sentence naming the first bad value."""

    def __init__(self, name: str, findings: set[str], diagnoses: set[str]):
        self.name, self.findings, self.diagnoses = name, findings, diagnoses

    def fail(self, where: str, what: str) -> NoReturn:
        raise InvalidRequestError(f"{self.name}: {where}: {what}; fix the file or export it again.")

    def typed(self, value, kind, where: str, what: str):
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(where, what)
        return value

    def regions(self, value, where: str) -> frozenset[int]:
        codes = self.typed(value, list, where, "regions must be a list of codes 1 to 8")
        if not all(isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= 8 for c in codes):
            self.fail(where, "regions must be codes 1 to 8")
        return frozenset(codes)

    def finding(self, code, where: str) -> str:
        if code not in self.findings:
            self.fail(where, f"this project has no finding {code!r} (add it with `findings add` first)")
        return code

    def diagnosis(self, value, where: str) -> str | None:
        if value is not None and value not in self.diagnoses:
            self.fail(where, f"this project has no diagnosis {value!r}")
        return value

    def role(self, value, where: str) -> Role:
        try:
            return Role.parse(value or Role.OPHTHALMOLOGIST)
        except (OctantError, ValueError):
            self.fail(where, f"unknown role {value!r}")

    def point(self, value, where: str) -> tuple[float, float]:
        if not (isinstance(value, list) and len(value) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            self.fail(where, "a landmark is [x, y] in pixels")
        return float(value[0]), float(value[1])

    def read(self, sha256: str, entry, where: str) -> _Read:
        entry = self.typed(entry, dict, where, "a read must be an object")
        reader = entry.get("reader")
        if not isinstance(reader, str) or not reader.strip():
            self.fail(where, "each read needs the reader's name")
        findings = self.typed(entry.get("findings", {}), dict, where, "findings must map codes to regions")
        regions = {self.finding(code, where): self.regions(r, f"{where}, {code}") for code, r in findings.items()}
        landmarks = entry.get("landmarks")
        if landmarks is not None:
            self.typed(landmarks, dict, where, "landmarks must be an object with disc and fovea")
            source = landmarks.get("source", "manual")
            if source not in LANDMARK_SOURCES:
                self.fail(where, f"landmark source is one of {', '.join(LANDMARK_SOURCES)}")
            landmarks = Landmarks(self.point(landmarks.get("disc"), where), self.point(landmarks.get("fovea"), where),
                                  source)
        flags = {key: self.typed(entry.get(key, False), bool, where, f"{key} must be true or false")
                 for key in ("done", "normal", "ungradable")}
        comment = self.typed(entry.get("comment") or "", str, where, "the comment must be text")
        state = ReadState(regions={c: r for c, r in regions.items() if r}, normal=flags["normal"] and not regions,
                          ungradable=flags["ungradable"], diagnosis=self.diagnosis(entry.get("diagnosis"), where),
                          comment=comment, done=flags["done"], landmarks=landmarks)
        return _Read(sha256, reader.strip(), self.role(entry.get("role"), where), state)

    def adjudication(self, sha256: str, entry, where: str) -> _Adjudication:
        entry = self.typed(entry, dict, where, "an adjudication must be an object")
        reviewer = entry.get("reviewer")
        if not isinstance(reviewer, str) or not reviewer.strip():
            self.fail(where, "each adjudication needs the reviewer's name")
        finding = entry.get("finding")
        if finding is not None:
            self.finding(finding, where)
        present = entry.get("present")
        if present is not None:
            self.typed(present, bool, where, "present must be true, false or null")
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            self.fail(where, "each adjudication needs its reason")
        return _Adjudication(sha256, reviewer.strip(), self.role(entry.get("reviewer_role") or "reviewer", where),
                             finding, present, self.regions(entry.get("regions", []), where),
                             self.diagnosis(entry.get("diagnosis"), where), reason)


def load_label_file(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"{path} does not exist; check the path.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidRequestError(f"{path} is not a readable JSON file; give a file written by "
                                  "`export --format json` or a COCO file.") from None


def read_label_file(path: Path, document: Any, findings: set[str], diagnoses: set[str]
                    ) -> tuple[list[_Read], list[_Adjudication], list[dict]]:
    """The reads and adjudications of an Octant JSON export, checked; and its image entries."""
    version = document.get("version", OCTANT_VERSION) if isinstance(document, dict) else None
    if (isinstance(document, dict) and document.get("format") == OCTANT_FORMAT
            and not (isinstance(version, int) and version <= OCTANT_VERSION)):
        raise InvalidRequestError(f"{path} was written by a newer Octant (label format version {version}; this "
                                  f"Octant reads up to {OCTANT_VERSION}); import it with that Octant or update this one.")
    if not (isinstance(document, dict) and isinstance(document.get("images"), list)
            and document.get("format", OCTANT_FORMAT) == OCTANT_FORMAT):
        raise InvalidRequestError(f"{path} is not an Octant label file; give a file written by "
                                  "`export --format json`.")
    check = _Checker(Path(path).name, findings, diagnoses)
    reads, adjudications = [], []
    for number, image in enumerate(document["images"], start=1):
        where = f"image {number}"
        image = check.typed(image, dict, where, "an image must be an object")
        sha256 = image.get("sha256")
        if not (isinstance(sha256, str) and len(sha256) == 64):
            check.fail(where, "each image needs its 64-character sha256")
        for index, entry in enumerate(check.typed(image.get("reads", []), list, where, "reads must be a list"), 1):
            reads.append(check.read(sha256, entry, f"{where}, read {index}"))
        for index, entry in enumerate(check.typed(image.get("adjudications", []), list, where,
                                                  "adjudications must be a list"), 1):
            adjudications.append(check.adjudication(sha256, entry, f"{where}, adjudication {index}"))
    return reads, adjudications, document["images"]


def import_labels(project: ProjectHandle, path: str | Path, admin_id: int | None,
                  reader: str | None = None) -> LabelImportReport:
    """Write the labels of ``path`` into ``project`` as admin ``admin_id``; a COCO file becomes
    the answers of ``reader`` (``annotate.services.coco_import``)."""
    db = project.database
    require_admin(db, admin_id)
    settings = project.settings()
    path = Path(path).expanduser()
    document = load_label_file(path)
    findings = {f.code for f in settings.findings}
    report = LabelImportReport()
    if is_coco(document):
        if reader is None or not reader.strip():
            raise InvalidRequestError(f"{path.name} is a COCO file, which holds one set of answers; say whose they "
                                      "are with --reader NAME.")
        try:
            known = find_reader(db, reader).id
        except NotFoundError:
            known = None
        states, report.missing, report.undrawn = coco_states(project, document, known, findings, path.name)
        reads = [_Read(sha, reader.strip(), Role.OPHTHALMOLOGIST, state) for sha, state in states.items()]
        adjudications: list[_Adjudication] = []
        images = [{"sha256": sha} for sha in states]
    else:
        if reader is not None:
            raise InvalidRequestError("--reader is for COCO files; Octant's JSON names each read's reader.")
        reads, adjudications, images = read_label_file(path, document, findings, set(settings.diagnosis_classes))
    image_ids: dict[str, int] = {}
    for entry in images:
        record = find_image_by_sha256(db, entry["sha256"])
        if record is None:
            report.missing.append(str(entry.get("path") or entry["sha256"]))
        else:
            image_ids[entry["sha256"]] = record.id
    readers: dict[str, int] = {}

    def reader_id(name: str, role: Role) -> int:
        if name not in readers:
            try:
                readers[name] = find_reader(db, name).id
            except NotFoundError:
                # No credential travels in a label file: an imported reviewer signs in once an
                # admin gives them one (`readers reset-pin`).
                readers[name] = add_reader(db, name, role, acting_reader_id=admin_id, credential_later=True).id
                report.readers_added.append(name)
        return readers[name]

    for planned in reads:
        image_id = image_ids.get(planned.sha256)
        if image_id is None:
            continue
        who = reader_id(planned.reader, planned.role)
        add_read(db, image_id, who, admin_id)
        _write_read(ReaderSession(db, who), image_id, planned.state, report)
    done_before = {(a.image_id, a.finding, a.present, a.regions, a.diagnosis, a.reason, a.reviewer_id)
                   for a in list_adjudications(db)}
    for decision in adjudications:
        image_id = image_ids.get(decision.sha256)
        if image_id is None:
            continue
        who = reader_id(decision.reviewer, decision.role)
        key = (image_id, decision.finding, decision.present, decision.regions, decision.diagnosis, decision.reason,
               who)
        if key in done_before:
            continue
        record_adjudication(db, who, image_id, decision.finding, decision.present, decision.regions,
                            decision.diagnosis, decision.reason)
        done_before.add(key)
        report.adjudications += 1
    return report


def _write_read(session: ReaderSession, image_id: int, target: ReadState, report: LabelImportReport) -> None:
    stored = session.read(image_id)
    if state_json(stored) == state_json(target) and stored.done == target.done:
        report.unchanged += 1
        return
    if state_json(stored) != state_json(target):
        session.restore(image_id, target, action=IMPORT_ACTION)
    if stored.done != target.done:
        session.mark_done(image_id, target.done)
    report.written += 1


def iter_import_lines(report: LabelImportReport) -> Any:
    """The end-of-import summary for the command line."""
    yield (f"Imported {report.written} read{'s' if report.written != 1 else ''} "
           f"({report.unchanged} already as in the file) and {report.adjudications} adjudication"
           f"{'s' if report.adjudications != 1 else ''}.")
    if report.readers_added:
        yield f"Added readers (without a PIN): {', '.join(report.readers_added)}."
    if report.undrawn:
        yield (f"{report.undrawn} COCO annotation{'s' if report.undrawn != 1 else ''} could not be placed in regions: "
               "no landmarks in the file, from the reader or from pre-segmentation.")
    if report.missing:
        yield (f"{len(report.missing)} photo{'s are' if len(report.missing) != 1 else ' is'} not in this project "
               f"(import the photographs first, then run import-labels again): {', '.join(report.missing[:5])}"
               f"{' …' if len(report.missing) > 5 else ''}")
