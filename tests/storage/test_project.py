"""Project settings: defaults, editing findings, and auditing the changes."""
from __future__ import annotations

import pytest

from storage.audit import audit_events
from storage.catalogue import DEFAULT_DIAGNOSIS_CLASSES, DEFAULT_FINDINGS, FindingSpec
from storage.errors import InvalidRequestError, NotFoundError
from storage.project import add_finding, create_project, update_finding, update_settings


def test_a_new_project_has_the_default_catalogue(tmp_project):
    settings = tmp_project.settings()
    assert [f.code for f in settings.findings] == [f.code for f in DEFAULT_FINDINGS]
    assert len(settings.findings) == 12 and len({f.key for f in settings.findings}) == 12
    assert settings.finding("haemorrhage").lesion_channel == "HE"
    assert settings.finding("cotton_wool_patch").size_class == "small"
    assert settings.finding("membrane").size_class == "large"
    assert settings.diagnosis_classes == list(DEFAULT_DIAGNOSIS_CLASSES)
    assert settings.consensus_k == 2 and settings.hide_suggestions_on_test
    assert settings.split_roles["test"] == {"retina_specialist", "glaucoma_specialist"}
    with pytest.raises(NotFoundError):
        settings.finding("nonexistent")


def test_a_project_can_have_its_own_findings(tmp_path, new_database_url):
    findings = [FindingSpec("drusen", "Drusen", "d", "small"), FindingSpec("hole", "Hole", "o", "medium")]
    with create_project(tmp_path / "p", findings=findings, diagnosis_classes=[], consensus_k=3,
                        database_url=new_database_url()) as project:
        settings = project.settings()
        assert [f.code for f in settings.findings] == ["drusen", "hole"]
        assert settings.diagnosis_classes == [] and settings.consensus_k == 3
    with pytest.raises(InvalidRequestError, match="own keyboard key"):
        create_project(tmp_path / "q", findings=[*findings, FindingSpec("x", "X", "d", "large")])
    with pytest.raises(InvalidRequestError, match="consensus"):
        create_project(tmp_path / "r", consensus_k=4)


def test_findings_and_settings_changes_are_audited(tmp_project):
    db = tmp_project.database
    added = add_finding(db, FindingSpec("myelinated_nerve_fiber", "Myelinated nerve fibre", "y", "medium"))
    assert added.id is not None and tmp_project.settings().findings[-1].code == "myelinated_nerve_fiber"
    update_finding(db, "drusen", name="Drusen (soft or hard)")
    update_finding(db, "vascular_abnormality", active=False)
    with pytest.raises(InvalidRequestError):
        update_finding(db, "drusen", key="h")  # haemorrhage has "h"
    settings = update_settings(db, consensus_k=3, hide_suggestions_on_test=False)
    assert settings.consensus_k == 3 and not settings.hide_suggestions_on_test
    assert settings.finding("drusen").name == "Drusen (soft or hard)"
    assert "vascular_abnormality" not in [f.code for f in settings.findings]
    events = audit_events(db)
    assert [(e.entity, e.action) for e in events[-4:]] == [
        ("finding", "create"), ("finding", "update"), ("finding", "update"), ("project", "update")]
    assert events[-1].before == {"consensus_k": 2, "hide_suggestions_on_test": True}


def test_a_folder_whose_database_is_at_a_url_says_so_instead_of_inviting_init(tmp_path):
    # A workstation that forgot --database-url was told to `init` the clinic's folder, and init made a
    # second, empty SQLite project there: readers would have labelled into it unseen by the others.
    from storage.database import sqlite_url
    from storage.project import open_project

    (tmp_path / "server").mkdir()
    url = sqlite_url(tmp_path / "server" / "clinic.sqlite")   # a server's database, as PostgreSQL's is
    create_project(tmp_path / "clinic", database_url=url).close()
    with pytest.raises(NotFoundError, match=f"keeps its database at {url}; give that URL"):
        open_project(tmp_path / "clinic")
    with pytest.raises(InvalidRequestError, match="whose database is at .*open it with --database-url"):
        create_project(tmp_path / "clinic")
    assert not (tmp_path / "clinic" / "octant.sqlite").exists()
    with open_project(tmp_path / "clinic", url) as project:
        assert project.settings().name == "clinic"
