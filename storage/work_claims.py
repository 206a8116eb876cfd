"""Sharing images' model work between the processes that work on one project.

Two workstations (or a workstation and ``presegment``) started together would otherwise both
run the networks on the same images. Before it runs them on an image, a process *claims* the
image for the kind of prediction it will store: the claim is refused when the image already has
that prediction (``DONE``) or another process holds an unexpired claim on it (``HELD``). Storing
the prediction releases the claim in the same transaction and renews the holder's other claims
(``predictions.save_claimed_prediction``), so a claim lasts ``CLAIM_SECONDS`` after the holder's
last stored image. A process that crashed leaves its claims to expire; another then takes them
over. Claims are checked under one lock (PostgreSQL's ``claims`` advisory lock; SQLite's writers
take turns), so two processes never both get one.

Expiry is in seconds since the epoch by the claiming machine's clock: workstations sharing a
project need clocks that agree to well within ``CLAIM_SECONDS`` (NTP does).
"""
from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from storage.database import Database
from storage.schema import Prediction, WorkClaim

CLAIM_SECONDS = 300.0   # far above one photo's turn on a slow 2-core CPU (about 10 s), short enough after a crash
CLAIMED, DONE, HELD = "claimed", "done", "held"


def new_holder() -> str:
    """A name for this process's claims: the machine and process (for a person reading the table),
    and a random part (a restarted process never mistakes an old claim for its own)."""
    return f"{socket.gethostname()[:120]} pid {os.getpid()} {uuid.uuid4().hex[:12]}"


def claim_image(db: Database, image_id: int, kind: str, holder: str, stored_since: datetime | None = None,
                seconds: float = CLAIM_SECONDS, now: float | None = None) -> str:
    """``CLAIMED`` (the image's ``kind`` work is the holder's for ``seconds``), ``DONE`` (the image has
    that prediction, stored since ``stored_since`` when given: a pass that redoes images) or ``HELD``
    (another process holds a claim that has not expired)."""
    now = time.time() if now is None else now
    with db.transaction(lock="claims") as session:
        stored = select(Prediction.id).where(Prediction.image_id == image_id, Prediction.kind == kind)
        if stored_since is not None:
            stored = stored.where(Prediction.created_at >= stored_since)
        if session.scalar(stored.limit(1)) is not None:
            return DONE
        claim = session.get(WorkClaim, (image_id, kind))
        if claim is None:
            session.add(WorkClaim(image_id=image_id, kind=kind, holder=holder, expires_at=now + seconds))
        elif claim.holder != holder and claim.expires_at > now:
            return HELD
        else:   # the holder's own, or expired: taken over
            claim.holder, claim.expires_at = holder, now + seconds
    return CLAIMED


def settle_claim(session: Session, image_id: int, kind: str, holder: str,
                 seconds: float = CLAIM_SECONDS, now: float | None = None) -> None:
    """In the transaction that stores an image's ``kind`` prediction: its claim goes, and the
    holder's other claims last ``seconds`` more (the holder is alive and working)."""
    now = time.time() if now is None else now
    session.execute(delete(WorkClaim).where(WorkClaim.image_id == image_id, WorkClaim.kind == kind))
    session.execute(update(WorkClaim).where(WorkClaim.kind == kind, WorkClaim.holder == holder)
                    .values(expires_at=now + seconds))


def release_claims(db: Database, kind: str, holder: str) -> None:
    """The holder's unfinished ``kind`` claims go (a stopped or finished pass): others may take them at once."""
    with db.transaction(lock="claims") as session:
        session.execute(delete(WorkClaim).where(WorkClaim.kind == kind, WorkClaim.holder == holder))


def release_claim(db: Database, image_id: int, kind: str, holder: str) -> None:
    """The holder lets one image go that it could not do (its photo unreadable here, changed since
    import): another process may try it at once, not only once this one's pass ends."""
    with db.transaction(lock="claims") as session:
        session.execute(delete(WorkClaim).where(WorkClaim.image_id == image_id, WorkClaim.kind == kind,
                                                WorkClaim.holder == holder))


def claim_holders(db: Database, kind: str) -> dict[int, str]:
    """Image id → holder of every ``kind`` claim, expired or not (tests, support)."""
    with db.reading() as session:
        return dict(session.execute(select(WorkClaim.image_id, WorkClaim.holder).where(WorkClaim.kind == kind)).all())
