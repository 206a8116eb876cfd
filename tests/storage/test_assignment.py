"""Every image gets exactly three distinct eligible readers, balanced across readers."""
from __future__ import annotations

from collections import Counter, defaultdict

import pytest
from sqlalchemy import select

from storage.assignment import assign_readers
from storage.errors import InvalidRequestError
from storage.readers import Role
from storage.schema import Image, Read, Reader
from tests.conftest import add_reader_as_admin
from tests.storage.conftest import add_fake_images


def readers_by_image(db) -> dict[int, list[tuple[int, str, str]]]:
    with db.reading() as session:
        rows = session.execute(
            select(Read.image_id, Reader.id, Reader.role, Image.split)
            .join(Reader, Reader.id == Read.reader_id).join(Image, Image.id == Read.image_id)
        ).all()
    result = defaultdict(list)
    for image_id, reader_id, role, split in rows:
        result[image_id].append((reader_id, role, split))
    return result


def test_every_image_gets_three_distinct_readers_with_roles_allowed_for_its_split(clinic):
    assignments = readers_by_image(clinic.project.database)
    assert set(assignments) == set(clinic.images)
    for reads in assignments.values():
        assert len(reads) == 3 and len({reader for reader, _, _ in reads}) == 3
        for _, role, split in reads:
            if split == "test":
                assert role in {Role.RETINA_SPECIALIST.value, Role.GLAUCOMA_SPECIALIST.value}
            assert role not in {Role.REVIEWER.value, Role.ADMIN.value}


def test_load_is_balanced_across_eligible_readers(tmp_project):
    db = tmp_project.database
    for i in range(7):
        add_reader_as_admin(db, f"Dr {i}", Role.OPHTHALMOLOGIST)
    add_fake_images(tmp_project, train=50)
    summary = assign_readers(db, seed=3)
    assert summary.reads_added == 150 and summary.images == 50
    loads = Counter(summary.per_reader)
    assert len(loads) == 7 and max(loads.values()) - min(loads.values()) <= 1


def test_specialists_are_kept_for_the_test_set_when_balancing(tmp_project):
    db = tmp_project.database
    ophthalmologists = [add_reader_as_admin(db, f"Dr O{i}", Role.OPHTHALMOLOGIST).id for i in range(3)]
    specialists = [add_reader_as_admin(db, f"Dr S{i}", Role.RETINA_SPECIALIST).id for i in range(3)]
    add_fake_images(tmp_project, train=7, test=3)
    loads = assign_readers(db).per_reader
    assert sum(loads.values()) == 30
    assert max(loads.values()) - min(loads.values()) <= 1, loads
    assert all(loads[r] >= 4 for r in ophthalmologists + specialists)


def test_assigning_again_changes_nothing_and_new_images_are_topped_up(clinic):
    db = clinic.project.database
    before = readers_by_image(db)
    assert assign_readers(db, seed=99).reads_added == 0
    assert readers_by_image(db) == before
    new = add_fake_images_after(clinic, 2)
    summary = assign_readers(db)
    assert summary.reads_added == 6 and set(readers_by_image(db)) == set(clinic.images) | set(new)


def add_fake_images_after(clinic, n: int) -> list[int]:
    from storage.images import add_image

    return [add_image(clinic.project.database, clinic.project.root / f"late{i}.jpg", f"{1000 + i:064x}", 64, 48)
            for i in range(n)]


def test_the_same_seed_gives_the_same_assignment(tmp_path, new_database_url):
    from storage.project import create_project

    results = []
    for run in range(2):
        with create_project(tmp_path / f"p{run}", database_url=new_database_url()) as project:
            for i in range(5):
                add_reader_as_admin(project.database, f"Dr {i}", Role.OPHTHALMOLOGIST)
            add_fake_images(project, train=12)
            assign_readers(project.database, seed=7)
            results.append(readers_by_image(project.database))
    assert results[0] == results[1]


def test_too_few_eligible_readers_is_refused_and_nothing_is_assigned(tmp_project):
    db = tmp_project.database
    for i in range(3):
        add_reader_as_admin(db, f"Dr O{i}", Role.OPHTHALMOLOGIST)
    add_reader_as_admin(db, "Dr R", Role.RETINA_SPECIALIST)
    add_fake_images(tmp_project, train=2, test=1)
    with pytest.raises(InvalidRequestError, match="test images need 3 readers"):
        assign_readers(db)
    assert readers_by_image(db) == {}


def test_roles_per_split_can_be_chosen(tmp_project):
    db = tmp_project.database
    for i in range(3):
        add_reader_as_admin(db, f"Dr O{i}", Role.OPHTHALMOLOGIST)
    for i in range(3):
        add_reader_as_admin(db, f"Dr G{i}", Role.GLAUCOMA_SPECIALIST)
    add_fake_images(tmp_project, train=4, test=2)
    assign_readers(db, roles_by_split={"train": ["ophthalmologist"], "test": [Role.GLAUCOMA_SPECIALIST]})
    for reads in readers_by_image(db).values():
        expected = "ophthalmologist" if reads[0][2] == "train" else "glaucoma_specialist"
        assert {role for _, role, _ in reads} == {expected}
