"""Giving every image its three distinct readers, balanced across readers.

Son et al. had each image read by three ophthalmologists; which roles may read a split is a
project setting (ophthalmologists for training images, specialists for the test set). Each new
read goes to the end of the reader's queue (images in import order, the split with the fewest
eligible readers first).
"""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, insert, select

from storage.audit import record
from storage.database import Database
from storage.errors import InvalidRequestError
from storage.project import READERS_PER_IMAGE, project_settings
from storage.readers import Role
from storage.schema import Image, Read, Reader

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class AssignmentSummary:
    images: int  # images that received at least one new reader
    reads_added: int
    per_reader: dict[int, int]  # reader id -> reads added now
    per_split: dict[str, int]  # split -> reads added now


def _eligible(session: Session, roles_by_split: dict[str, frozenset[str]]) -> dict[str, list[int]]:
    readers = session.execute(select(Reader.id, Reader.role).where(Reader.active).order_by(Reader.id)).all()
    return {
        split: [r.id for r in readers if r.role in roles]
        for split, roles in roles_by_split.items()
    }


def assign_readers(
    db: Database,
    roles_by_split: dict[str, Iterable[Role | str]] | None = None,
    readers_per_image: int = READERS_PER_IMAGE,
    seed: int = 0,
    reader_id: int | None = None,
) -> AssignmentSummary:
    """Top every image up to ``readers_per_image`` distinct eligible readers (one action).

    Least-loaded readers first (load = all their reads), ties broken at random from ``seed``.
    Images that have their readers already are left alone, so running it again is harmless.
    """
    if roles_by_split is None:
        allowed = project_settings(db).split_roles
    else:
        allowed = {split: frozenset(Role.parse(r).value for r in roles) for split, roles in roles_by_split.items()}
    rng = random.Random(seed)
    with db.transaction(lock="assignment") as session:
        eligible = _eligible(session, allowed)
        assigned: dict[int, set[int]] = defaultdict(set)
        for image_id, reader in session.execute(select(Read.image_id, Read.reader_id)):
            assigned[image_id].add(reader)
        waiting = [
            (row.id, row.split)
            for row in session.execute(select(Image.id, Image.split).order_by(Image.id))
            if len(assigned.get(row.id, ())) < readers_per_image
        ]
        for split in sorted({split for _, split in waiting}):
            available = len(eligible.get(split, []))
            if available < readers_per_image:
                roles = ", ".join(sorted(allowed.get(split, ()))) or "no role"
                raise InvalidRequestError(
                    f"The {split} images need {readers_per_image} readers with roles allowed for {split} "
                    f"({roles}) but there are {available}; add readers with `readers add` first."
                )
        load = Counter({r: 0 for readers in eligible.values() for r in readers})
        load.update(dict(session.execute(select(Read.reader_id, func.count()).group_by(Read.reader_id)).all()))
        next_position = dict(
            session.execute(select(Read.reader_id, func.max(Read.position) + 1).group_by(Read.reader_id)).all()
        )
        rows = []
        per_split: Counter[str] = Counter()
        # The split with the fewest eligible readers first, so that readers who may read both
        # (specialists) are not used up on the other split before their own is covered.
        waiting.sort(key=lambda item: (len(eligible[item[1]]), item[0]))
        for image_id, split in waiting:
            have = assigned.get(image_id, set())
            candidates = [r for r in eligible[split] if r not in have]
            chosen = sorted(candidates, key=lambda r: (load[r], rng.random()))[: readers_per_image - len(have)]
            for reader in chosen:
                load[reader] += 1
                position = next_position.get(reader, 0)
                next_position[reader] = position + 1
                rows.append(dict(image_id=image_id, reader_id=reader, position=position))
            per_split[split] += len(chosen)
        if rows:
            session.execute(insert(Read), rows)
        per_reader = dict(Counter(row["reader_id"] for row in rows))
        record(session, "assignment", None, "assign", None, dict(
            seed=seed, readers_per_image=readers_per_image,
            roles_by_split={split: sorted(roles) for split, roles in allowed.items()},
            images=len(waiting), reads_added=len(rows),
            per_reader={str(r): n for r, n in per_reader.items()},
        ), reader_id)
    return AssignmentSummary(len(waiting), len(rows), per_reader, dict(per_split))


def add_read(db: Database, image_id: int, reader_id: int, acting_reader_id: int | None = None) -> bool:
    """Put one image in one reader's list (at the end), as importing their labels needs; one
    audited action. False when it is there already."""
    with db.transaction(lock="assignment") as session:
        if session.scalar(select(Read.id).where(Read.image_id == image_id, Read.reader_id == reader_id)) is not None:
            return False
        if session.get(Image, image_id) is None:
            raise InvalidRequestError(f"There is no image number {image_id} in this project; import it first.")
        position = session.scalar(select(func.coalesce(func.max(Read.position) + 1, 0))
                                  .where(Read.reader_id == reader_id))
        read_id = session.scalar(insert(Read).returning(Read.id),
                                 dict(image_id=image_id, reader_id=reader_id, position=position))
        record(session, "read", read_id, "assign", None,
               dict(image_id=image_id, reader_id=reader_id, position=position), acting_reader_id)
    return True
