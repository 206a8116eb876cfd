"""Creating and opening a project, and its settings (findings, diagnoses, consensus rule).

A project is a folder with ``octant.sqlite`` (or a PostgreSQL URL for several workstations at
once) and the photographs. Settings changes are audited like labels.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import URL, make_url

from storage.audit import record
from storage.catalogue import (
    DEFAULT_DIAGNOSIS_CLASSES,
    DEFAULT_FINDINGS,
    DEFAULT_SPLIT_ROLES,
    SPLITS,
    FindingSpec,
    check_findings,
)
from storage.database import DATABASE_FILENAME, Database, sqlite_url
from storage.errors import DatabaseError, InvalidRequestError, NotFoundError
from storage.reading_order import parse_reading_order
from storage.schema import DiagnosisClass, Finding, Project

READERS_PER_IMAGE = 3  # Son et al.: three ophthalmologists read every image
# Where training and export take their labels from (the project's ``label_source``), with the words
# shown to users.
LABEL_SOURCES = {
    "consensus": "consensus",
    "adjudicated": "adjudicated, else consensus",
}


@dataclass(frozen=True)
class ProjectSettings:
    name: str
    findings: list[FindingSpec]  # active findings, in the order readers see them
    diagnosis_classes: list[str]
    consensus_k: int  # a finding is present when at least k of the three readers marked it
    hide_suggestions_on_test: bool
    split_roles: dict[str, frozenset[str]]  # roles allowed to read each split
    label_source: str = "consensus"  # a key of LABEL_SOURCES
    reading_order: str = "default"  # a key of storage.reading_order.READING_ORDERS

    def finding(self, code: str) -> FindingSpec:
        for spec in self.findings:
            if spec.code == code:
                return spec
        raise NotFoundError(f"This project has no finding called {code!r}; check the finding list.")


class ProjectHandle:
    """An open project: its folder and database. Close it (or use ``with``) when done."""

    def __init__(self, root: Path, database: Database) -> None:
        self.root = root
        self.database = database

    def settings(self) -> ProjectSettings:
        return project_settings(self.database)

    def database_url(self) -> str | None:
        """The URL to open this project's database again (password included); None for the
        folder's own SQLite file, which ``open_project(root)`` finds by itself."""
        url = self.database.engine.url
        return None if _is_folder_database(url, self.root) else url.render_as_string(hide_password=False)

    def close(self) -> None:
        self.database.dispose()

    def __enter__(self) -> ProjectHandle:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _check_consensus_k(consensus_k: int) -> None:
    if not 1 <= consensus_k <= READERS_PER_IMAGE:
        raise InvalidRequestError(
            f"The consensus rule must count 1 to {READERS_PER_IMAGE} readers; use 2 or 3."
        )


def parse_label_source(text: str) -> str:
    """The stored key for a label source given as its key or its words (any case, - or _ for spaces)."""
    wanted = " ".join(str(text).lower().replace("-", " ").replace("_", " ").replace(",", " ").split())
    for key, words in LABEL_SOURCES.items():
        if wanted in (key, " ".join(words.replace(",", " ").split())):
            return key
    raise InvalidRequestError(
        f"Unknown label source {text!r}; use consensus or adjudicated (adjudicated, else consensus).")


def _role_lists(split_roles: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    from storage.readers import Role  # readers imports this module for settings

    allowed = {role.value for role in Role}
    unknown = {split for split in split_roles if split not in SPLITS}
    if unknown:
        raise InvalidRequestError(f"Unknown split {sorted(unknown)[0]!r}; use train or test.")
    result = {split: sorted(set(roles)) for split, roles in split_roles.items()}
    for roles in result.values():
        for role in roles:
            if role not in allowed:
                raise InvalidRequestError(f"Unknown role {role!r}; use one of {', '.join(sorted(allowed))}.")
    return result


# In a project folder whose database is on a server (init --database-url): where it is, password
# hidden. Without it, a workstation that forgot --database-url was told to `init` the folder, which
# made a second, empty SQLite project beside the clinic's.
DATABASE_ELSEWHERE = "database-url.txt"


def _database_elsewhere(root: Path) -> str | None:
    """The URL (password hidden) noted in ``root`` by ``init --database-url``, if any."""
    try:
        return (root / DATABASE_ELSEWHERE).read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _is_folder_database(url: URL, root: Path) -> bool:
    """Whether ``url`` is the project folder's own SQLite file (found without a URL)."""
    return url.get_backend_name() == "sqlite" and url.database == str(root / DATABASE_FILENAME)


def _note_database_elsewhere(root: Path, database_url: str) -> None:
    url = make_url(database_url)
    if _is_folder_database(url, root):
        return
    (root / DATABASE_ELSEWHERE).write_text(url.render_as_string(hide_password=True) + "\n", encoding="utf-8")


def _holds_a_database(path: Path) -> bool:
    """Whether ``path`` may hold a project: an empty file (a copy cut short, a full disk) holds
    none, unless its write-ahead log (which holds a young database's first pages) has some."""
    if not path.exists():
        return False
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size > 0 or (wal.exists() and wal.stat().st_size > 0)


def check_new_project_folder(folder: str | Path, database_url: str | None = None) -> None:
    """Refuse a folder that already holds a project (here or on a server) or is a file; `init` asks
    this before the passphrase, which was typed twice only to hear that the project exists."""
    root = Path(folder).expanduser().resolve()
    if database_url is None and _holds_a_database(root / DATABASE_FILENAME):
        raise InvalidRequestError(
            f"{root} already holds an Octant project; open it instead of creating a new one."
        )
    elsewhere = _database_elsewhere(root) if database_url is None else None
    if elsewhere is not None:
        raise InvalidRequestError(
            f"{root} already holds an Octant project whose database is at {elsewhere}; open it with "
            "--database-url instead of creating a new one.")
    if root.exists() and not root.is_dir():
        raise InvalidRequestError(f"{root} is a file; choose a folder for the project.")


def create_project(
    folder: str | Path,
    name: str | None = None,
    findings: Sequence[FindingSpec] | None = None,
    diagnosis_classes: Sequence[str] | None = None,
    consensus_k: int = 2,
    database_url: str | None = None,
    hide_suggestions_on_test: bool = True,
    split_roles: dict[str, Iterable[str]] | None = None,
) -> ProjectHandle:
    """Make a new project in ``folder`` (created if missing) and return it open."""
    root = Path(folder).expanduser().resolve()
    findings = list(DEFAULT_FINDINGS if findings is None else findings)
    diagnosis_classes = list(DEFAULT_DIAGNOSIS_CLASSES if diagnosis_classes is None else diagnosis_classes)
    check_findings(findings)
    _check_consensus_k(consensus_k)
    roles = _role_lists(DEFAULT_SPLIT_ROLES if split_roles is None else split_roles)
    check_new_project_folder(root, database_url)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:   # read-only disk, no rights, a file on the way: `init` printed a traceback
        raise InvalidRequestError(f"Cannot create the project folder {root} ({error.strerror}); choose a "
                                  "folder you may write to.") from None
    database = Database.open(database_url or sqlite_url(root / DATABASE_FILENAME), root, create=True)
    try:
        with database.transaction(lock="project") as session:
            if session.scalar(select(func.count()).select_from(Project)):
                raise InvalidRequestError(
                    "That database already holds an Octant project; open it instead of creating a new one."
                )
            project_id = session.scalar(
                insert(Project).returning(Project.id),
                dict(name=name or root.name, consensus_k=consensus_k,
                     hide_suggestions_on_test=hide_suggestions_on_test, split_roles=roles),
            )
            session.execute(insert(Finding), [
                dict(project_id=project_id, code=f.code, name=f.name, key=f.key,
                     size_class=f.size_class, lesion_channel=f.lesion_channel, position=i, active=True)
                for i, f in enumerate(findings)
            ])
            if diagnosis_classes:
                session.execute(insert(DiagnosisClass), [
                    dict(project_id=project_id, name=d, position=i)
                    for i, d in enumerate(diagnosis_classes)
                ])
            record(session, "project", project_id, "create", None, dict(
                name=name or root.name, consensus_k=consensus_k, split_roles=roles,
                hide_suggestions_on_test=hide_suggestions_on_test,
                findings=[f.code for f in findings], diagnosis_classes=diagnosis_classes,
            ))
    except BaseException:
        database.dispose()
        raise
    if database_url is not None:
        try:
            _note_database_elsewhere(root, database_url)
        except OSError:   # the project is made; only the hint for a forgotten --database-url is missing
            pass
    return ProjectHandle(root, database)


def open_project(folder: str | Path, database_url: str | None = None) -> ProjectHandle:
    """Open an existing project; DatabaseError subclasses say what is wrong and what to do."""
    root = Path(folder).expanduser().resolve()
    if database_url is None:
        try:
            found = (root / DATABASE_FILENAME).is_file()
        except PermissionError:
            raise DatabaseError(f"You may not open the project folder {root}; ask for read and write "
                                "access to it.") from None
        if not found and root.is_file():   # `init` there would fail too: say what was given
            if root.name == DATABASE_FILENAME:
                raise NotFoundError(f"{root} is a project's database file; give its folder, {root.parent}.")
            raise NotFoundError(f"{root} is a file, not a project folder; give the folder that holds "
                                f"{DATABASE_FILENAME}.")
        elsewhere = None if found else _database_elsewhere(root)
        if elsewhere is not None:
            raise NotFoundError(f"The project in {root} keeps its database at {elsewhere}; give that URL, "
                                "password included, with --database-url.")
        if not found:
            raise NotFoundError(
                f"{root} holds no Octant project; run `python main.py init {root}` first."
            )
        database_url = sqlite_url(root / DATABASE_FILENAME)
    database = Database.open(database_url, root)
    try:
        project_settings(database)
    except BaseException:
        database.dispose()
        raise
    return ProjectHandle(root, database)


def project_settings(db: Database) -> ProjectSettings:
    with db.reading() as session:
        project = session.scalars(select(Project).order_by(Project.id).limit(1)).first()
        if project is None:
            raise NotFoundError("The database holds no project; run `python main.py init DIR` first.")
        findings = [
            FindingSpec(f.code, f.name, f.key, f.size_class, f.lesion_channel, f.id)  # type: ignore[arg-type]
            for f in session.scalars(
                select(Finding).where(Finding.active).order_by(Finding.position, Finding.id)
            )
        ]
        diagnoses = list(session.scalars(select(DiagnosisClass.name).order_by(DiagnosisClass.position)))
        return ProjectSettings(
            name=project.name, findings=findings, diagnosis_classes=diagnoses,
            consensus_k=project.consensus_k, hide_suggestions_on_test=project.hide_suggestions_on_test,
            split_roles={split: frozenset(roles) for split, roles in project.split_roles.items()},
            label_source=project.label_source, reading_order=project.reading_order,
        )


def update_settings(
    db: Database,
    *,
    name: str | None = None,
    consensus_k: int | None = None,
    hide_suggestions_on_test: bool | None = None,
    split_roles: dict[str, Iterable[str]] | None = None,
    label_source: str | None = None,
    reading_order: str | None = None,
    reader_id: int | None = None,
) -> ProjectSettings:
    """Change project-wide settings (one audited action); None leaves a setting as it is."""
    changes: dict[str, object] = {}
    if name is not None:
        changes["name"] = name
    if consensus_k is not None:
        _check_consensus_k(consensus_k)
        changes["consensus_k"] = consensus_k
    if hide_suggestions_on_test is not None:
        changes["hide_suggestions_on_test"] = hide_suggestions_on_test
    if split_roles is not None:
        changes["split_roles"] = _role_lists(split_roles)
    if label_source is not None:
        changes["label_source"] = parse_label_source(label_source)
    if reading_order is not None:
        try:
            changes["reading_order"] = parse_reading_order(reading_order)
        except ValueError as error:
            raise InvalidRequestError(str(error)) from None
    with db.transaction(lock="project") as session:
        project = session.scalars(select(Project).order_by(Project.id).limit(1)).one()
        before = {key: getattr(project, key) for key in changes}
        session.execute(update(Project).where(Project.id == project.id).values(**changes))
        record(session, "project", project.id, "update", before, changes, reader_id)
    return project_settings(db)


def add_finding(db: Database, spec: FindingSpec, reader_id: int | None = None) -> FindingSpec:
    """Add a finding at the end of the catalogue (one audited action)."""
    with db.transaction(lock="project") as session:
        existing = [
            FindingSpec(f.code, f.name, f.key, f.size_class, f.lesion_channel)  # type: ignore[arg-type]
            for f in session.scalars(select(Finding).where(Finding.active))
        ]
        check_findings([*existing, spec])
        if session.scalar(select(Finding.id).where(Finding.code == spec.code)) is not None:
            raise InvalidRequestError(f"A finding called {spec.code!r} exists already; reactivate it instead.")
        project_id = session.scalar(select(Project.id).order_by(Project.id).limit(1))
        position = session.scalar(select(func.coalesce(func.max(Finding.position), -1) + 1))
        finding_id = session.scalar(insert(Finding).returning(Finding.id), dict(
            project_id=project_id, code=spec.code, name=spec.name, key=spec.key,
            size_class=spec.size_class, lesion_channel=spec.lesion_channel, position=position, active=True,
        ))
        after = {k: v for k, v in asdict(spec).items() if k != "id"}
        record(session, "finding", finding_id, "create", None, after, reader_id)
    return FindingSpec(spec.code, spec.name, spec.key, spec.size_class, spec.lesion_channel, finding_id)


def update_finding(
    db: Database, code: str, reader_id: int | None = None, **changes: object
) -> None:
    """Edit a finding (name, key, size_class, lesion_channel, active); labels keep their finding."""
    allowed = {"name", "key", "size_class", "lesion_channel", "active"}
    if not changes or set(changes) - allowed:
        raise ValueError(f"update_finding changes only {sorted(allowed)}")
    with db.transaction(lock="project") as session:
        finding = session.scalars(select(Finding).where(Finding.code == code)).first()
        if finding is None:
            raise NotFoundError(f"This project has no finding called {code!r}; check the finding list.")
        before = {key: getattr(finding, key) for key in changes}
        for key, value in changes.items():
            setattr(finding, key, value)
        others = session.scalars(select(Finding).where(Finding.active, Finding.id != finding.id))
        if finding.active:
            check_findings([
                FindingSpec(f.code, f.name, f.key, f.size_class, f.lesion_channel)
                for f in [*others, finding]
            ])
        record(session, "finding", finding.id, "update", before, dict(changes), reader_id)
