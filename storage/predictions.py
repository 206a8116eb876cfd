"""Model output kept in the project: predictions per image and the trained models' registry.

Predictions are suggestions, never a reader's answer: blind reading does not hide them, but the
project setting ``hide_suggestions_on_test`` lets the workstation keep them off test images.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update

from storage.audit import record
from storage.database import Database
from storage.errors import NotFoundError
from storage.labels import Landmarks, landmarks_of
from storage.readers import REVIEW_ROLES
from storage.schema import Image, Landmark, Prediction, Reader, TrainedModel, utc_now
from storage.work_claims import settle_claim

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def _require_image(session: Session, image_id: int) -> None:
    if session.get(Image, image_id) is None:
        raise NotFoundError(f"There is no image number {image_id} in this project; import it first.")


def save_prediction(
    db: Database, image_id: int, kind: str, payload: dict[str, Any], model_version: str
) -> int:
    """Store one model output for an image (e.g. kind "regions", "lesions"); newest wins on read."""
    with db.transaction() as session:
        return _insert_prediction(session, image_id, kind, payload, model_version)


def _insert_prediction(session: Session, image_id: int, kind: str, payload: dict[str, Any], model_version: str) -> int:
    _require_image(session, image_id)
    prediction_id = session.execute(insert(Prediction).returning(Prediction.id), dict(
        image_id=image_id, kind=kind, payload=payload, model_version=model_version, created_at=utc_now())).scalar_one()
    record(session, "prediction", prediction_id, "create", None,
           dict(image_id=image_id, kind=kind, model_version=model_version))
    return prediction_id


def save_claimed_prediction(
    db: Database, image_id: int, kind: str, payload: dict[str, Any], model_version: str, holder: str,
    landmarks: tuple[tuple[float, float], tuple[float, float], str] | None = None,
) -> int:
    """An image's prediction, with the model's (disc, fovea, version) when there are landmarks, stored
    whole or not at all; the holder's claim on the image goes in the same transaction
    (``storage.work_claims``)."""
    with db.transaction(lock="claims") as session:
        prediction_id = _insert_prediction(session, image_id, kind, payload, model_version)
        if landmarks is not None:
            _insert_model_landmarks(session, image_id, *landmarks)
        settle_claim(session, image_id, kind, holder)
    return prediction_id


def latest_prediction(db: Database, image_id: int, kind: str) -> dict[str, Any] | None:
    with db.reading() as session:
        return session.scalar(
            select(Prediction.payload).where(Prediction.image_id == image_id, Prediction.kind == kind)
            .order_by(Prediction.id.desc()).limit(1)
        )


# The guided networks' and the attention-mask classifier's answer for one image (``main.py screen``):
# {"findings": {code: {"probability", "threshold", "regions": [codes over the threshold],
#   "region_activation": [mass outside the regions, then regions 1..8],
#   "region_peak": [highest activation in regions 1..8]}},
#  "diagnosis": {class name: probability}, "models": {network: version}}.
FINDINGS_PREDICTION = "findings"


def latest_predictions(db: Database, kind: str) -> dict[int, dict[str, Any]]:
    """The newest payload of one kind for every image that has one (one query)."""
    newest = select(func.max(Prediction.id)).where(Prediction.kind == kind).group_by(Prediction.image_id)
    with db.reading() as session:
        return dict(session.execute(
            select(Prediction.image_id, Prediction.payload).where(Prediction.id.in_(newest))).all())


def save_model_landmarks(
    db: Database, image_id: int, disc: tuple[float, float], fovea: tuple[float, float], model_version: str
) -> None:
    """A model's disc and fovea for an image, offered to readers by ``ReaderSession.model_landmarks``."""
    with db.transaction() as session:
        _insert_model_landmarks(session, image_id, disc, fovea, model_version)


def _insert_model_landmarks(session: Session, image_id: int, disc: tuple[float, float], fovea: tuple[float, float],
                            model_version: str) -> None:
    _require_image(session, image_id)
    landmark_id = session.execute(insert(Landmark).returning(Landmark.id), dict(
        image_id=image_id, reader_id=None, source="model", disc_x=float(disc[0]), disc_y=float(disc[1]),
        fovea_x=float(fovea[0]), fovea_y=float(fovea[1]), model_version=model_version, updated_at=utc_now())).scalar_one()
    record(session, "landmark", landmark_id, "create", None,
           dict(image_id=image_id, disc=list(disc), fovea=list(fovea), model_version=model_version))


def latest_model_landmarks(db: Database, image_id: int) -> Landmarks | None:
    """The newest disc and fovea a model stored for an image (pre-segmentation), or None."""
    with db.reading() as session:
        row = session.scalars(
            select(Landmark).where(Landmark.image_id == image_id, Landmark.reader_id.is_(None))
            .order_by(Landmark.id.desc()).limit(1)
        ).first()
        return None if row is None else landmarks_of(row)


@dataclass(frozen=True)
class ModelRecord:
    id: int
    name: str
    network: str
    metrics: dict[str, Any]
    config: dict[str, Any]
    # Per-photo consensus the model was trained and measured on: every reader's labels in effect,
    # so None (withheld) unless the list was asked for by a reviewer or admin (list_models).
    label_snapshot: dict[str, Any] | None
    path: str
    active: bool
    created_at: datetime


def register_model(
    db: Database, name: str, network: str, metrics: dict[str, Any], config: dict[str, Any],
    label_snapshot: dict[str, Any], path: str, active: bool = False,
) -> int:
    """Record a trained model; ``active=True`` makes it the one in use for its network."""
    with db.transaction(lock="models") as session:
        if active:
            session.execute(update(TrainedModel).where(TrainedModel.network == network).values(active=False))
        model_id = session.execute(insert(TrainedModel).returning(TrainedModel.id), dict(
            name=name, network=network, metrics=metrics, config=config, label_snapshot=label_snapshot,
            path=str(path), active=active, created_at=utc_now())).scalar_one()
        record(session, "trained_model", model_id, "create", None,
               dict(name=name, network=network, metrics=metrics, path=str(path), active=active))
    return model_id


def activate_model(db: Database, model_id: int, reader_id: int | None = None) -> None:
    """Make one model the active one for its network (the others of that network step down)."""
    with db.transaction(lock="models") as session:
        model = session.get(TrainedModel, model_id)
        if model is None:
            raise NotFoundError(f"There is no trained model number {model_id}; pick one from the model list.")
        before = dict(active=model.active)
        session.execute(update(TrainedModel).where(TrainedModel.network == model.network).values(active=False))
        session.execute(update(TrainedModel).where(TrainedModel.id == model_id).values(active=True))
        record(session, "trained_model", model_id, "activate", before, dict(active=True), reader_id)


def list_models(db: Database, network: str | None = None, reader_id: int | None = None) -> list[ModelRecord]:
    """Registered models; their label snapshots only for ``reader_id`` a reviewer or admin (blind
    reading: a snapshot holds the consensus of every reader's labels), else None."""
    query = select(TrainedModel).order_by(TrainedModel.id)
    if network is not None:
        query = query.where(TrainedModel.network == network)
    with db.reading() as session:
        reviewer = reader_id is not None and session.scalar(
            select(Reader.role).where(Reader.id == reader_id, Reader.active)) in {r.value for r in REVIEW_ROLES}
        return [
            ModelRecord(m.id, m.name, m.network, m.metrics, m.config, m.label_snapshot if reviewer else None,
                        m.path, m.active, m.created_at)
            for m in session.scalars(query)
        ]
