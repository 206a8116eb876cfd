"""Blind reading on the PostgreSQL server itself: a reader's own database role (row-level
security, migration 0008) sees only that reader's answers, whatever program connects with it."""
from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.engine import make_url

from storage.database_roles import grant_reader_login
from storage.errors import AccessDeniedError, InvalidRequestError
from storage.readers import set_reader_active
from storage.reading import ReaderSession
from tests.storage.postgres_server import connect

PASSWORD = "readers-db-password"


def label_everything(clinic) -> int:
    """Each ophthalmologist marks haemorrhage in region (their index + 1), a diagnosis and their
    landmarks on the first training photo; the model's landmarks are there too."""
    from storage.predictions import save_model_landmarks

    db = clinic.project.database
    image = ReaderSession(db, clinic.ophthalmologists[0].id).queue()[0].id
    for n, reader in enumerate(clinic.ophthalmologists):
        session = ReaderSession(db, reader.id)
        session.set_regions(image, "haemorrhage", {n + 1})
        session.set_diagnosis(image, "mild NPDR")
        session.set_landmarks(image, disc=(40.0 + n, 24.0), fovea=(20.0, 24.0))
    save_model_landmarks(db, image, (41.0, 24.0), (21.0, 24.0), "model-1")
    return image


def as_role(database_url: str, role: str):
    return connect(make_url(database_url).set(username=role, password=PASSWORD))


def seen(connection) -> dict[str, list]:
    return {
        "reads": sorted(r[0] for r in connection.execute("SELECT DISTINCT reader_id FROM read")),
        "labels": sorted(r[0] for r in connection.execute(
            "SELECT regions FROM regional_label")),
        "diagnoses": connection.execute("SELECT count(*) FROM diagnosis_label").fetchone()[0],
        "landmarks": sorted((r[0] or 0) for r in connection.execute("SELECT reader_id FROM landmark")),
    }


@pytest.mark.postgresql_only
def test_a_readers_own_role_sees_only_their_answers(clinic, database_url):
    db = clinic.project.database
    label_everything(clinic)
    first, second = clinic.ophthalmologists[0], clinic.ophthalmologists[1]
    role = grant_reader_login(db, first.id, PASSWORD, acting_reader_id=clinic.admin.id)
    with as_role(database_url, role) as mine:
        own = seen(mine)
        assert own["reads"] == [first.id]
        assert own["labels"] == [1 << 0]                 # region 1: their own mark only
        assert own["diagnoses"] == 1
        assert own["landmarks"] == [0, first.id]           # theirs and the model's (no reader)
        for forbidden in ("SELECT * FROM audit_event", "SELECT pin_hash FROM reader",
                          "UPDATE regional_label SET regions = 255",
                          f"DELETE FROM landmark WHERE reader_id = {second.id}"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                mine.execute(forbidden)
        assert [r[0] for r in mine.execute("SELECT name FROM reader ORDER BY id")][:1] == ["Admin"]
    # A reviewer's role sees every reader's answers (as on the review screen).
    reviewer_role = grant_reader_login(db, clinic.reviewer.id, PASSWORD, acting_reader_id=clinic.admin.id)
    with as_role(database_url, reviewer_role) as reviewer:
        everyone = seen(reviewer)
        assert len(everyone["reads"]) >= 3 and everyone["labels"] == [1, 2, 4] and everyone["diagnoses"] == 3
    # Octant itself (the owner) is not bound by the policies: the review still shows all three.
    from storage.review import ReviewSession

    assert len(ReviewSession(db, clinic.reviewer.id).reads_for(ReaderSession(db, first.id).queue()[0].id)) == 3


@pytest.mark.postgresql_only
def test_only_an_admin_gives_logins_and_retiring_takes_them(clinic, database_url):
    db = clinic.project.database
    reader = clinic.ophthalmologists[0]
    for acting in (reader.id, clinic.reviewer.id):
        with pytest.raises(AccessDeniedError, match="Only an admin"):
            grant_reader_login(db, reader.id, PASSWORD, acting_reader_id=acting)
    with pytest.raises(InvalidRequestError, match="12 characters"):
        grant_reader_login(db, reader.id, "short", acting_reader_id=clinic.admin.id)
    role = grant_reader_login(db, reader.id, PASSWORD, acting_reader_id=clinic.admin.id)
    with as_role(database_url, role) as connection:
        assert connection.execute("SELECT current_user").fetchone()[0] == role
    set_reader_active(db, reader.id, False, acting_reader_id=clinic.admin.id)
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        as_role(database_url, role)


@pytest.mark.sqlite_only
def test_sqlite_has_no_database_logins(clinic):
    with pytest.raises(InvalidRequestError, match="PostgreSQL only"):
        grant_reader_login(clinic.project.database, clinic.ophthalmologists[0].id, PASSWORD,
                           acting_reader_id=clinic.admin.id)
