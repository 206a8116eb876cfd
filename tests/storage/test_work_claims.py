"""Claims on images' model work (storage/work_claims.py), on SQLite and PostgreSQL: one holder per
image, a crashed holder's claim taken over once expired, the prediction and its landmarks stored
whole with the claim settled in the same transaction."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from storage.predictions import latest_model_landmarks, latest_prediction, save_claimed_prediction
from storage.schema import Prediction, utc_now
from storage.work_claims import (
    CLAIM_SECONDS,
    CLAIMED,
    DONE,
    HELD,
    claim_holders,
    claim_image,
    new_holder,
    release_claim,
    release_claims,
)
from tests.storage.conftest import add_fake_images

KIND = "presegmentation"


def test_an_image_is_one_holders_until_its_claim_expires_then_anothers(tmp_project):
    db = tmp_project.database
    image, other_image = add_fake_images(tmp_project, 2)
    first, second = new_holder(), new_holder()
    assert first != second
    now = time.time()
    assert claim_image(db, image, KIND, first, now=now) == CLAIMED
    assert claim_image(db, image, KIND, second, now=now + 1) == HELD
    assert claim_image(db, image, KIND, first, now=now + 1) == CLAIMED   # its own: renewed
    assert claim_image(db, other_image, KIND, second, now=now) == CLAIMED
    assert claim_image(db, image, "another kind", second, now=now) == CLAIMED   # claims are per kind
    # The first holder crashed: once its claim has expired the second takes the image over.
    assert claim_image(db, image, KIND, second, now=now + 1 + CLAIM_SECONDS + 1) == CLAIMED
    assert claim_holders(db, KIND) == {image: second, other_image: second}


def test_storing_the_prediction_settles_the_claim_and_the_image_is_then_done(tmp_project):
    db = tmp_project.database
    image, other_image = add_fake_images(tmp_project, 2)
    holder, late = new_holder(), new_holder()
    started = utc_now()
    now = time.time()
    assert claim_image(db, image, KIND, holder, now=now) == CLAIMED
    assert claim_image(db, other_image, KIND, holder, now=now - CLAIM_SECONDS + 5) == CLAIMED   # 5 s left
    save_claimed_prediction(db, image, KIND, {"mask_folder": f"predictions/{image}"}, "v1", holder,
                            ((10.0, 20.0), (30.0, 40.0), "landmarks-v1"))
    assert latest_prediction(db, image, KIND) == {"mask_folder": f"predictions/{image}"}
    assert latest_model_landmarks(db, image) is not None
    assert claim_holders(db, KIND) == {other_image: holder}
    assert claim_image(db, image, KIND, late) == DONE
    # The holder is alive: its other claim was renewed by the store, so it is not taken over 10 s later.
    assert claim_image(db, other_image, KIND, late, now=now + 10) == HELD
    # A pass that redoes images claims those stored before it started, not those stored since.
    assert claim_image(db, image, KIND, late, stored_since=started) == DONE
    later = utc_now()
    assert claim_image(db, image, KIND, late, stored_since=later) == CLAIMED


def test_a_prediction_that_fails_to_store_leaves_nothing_half_written_and_the_claim_held(tmp_project):
    db = tmp_project.database
    (image,) = add_fake_images(tmp_project, 1)
    holder = new_holder()
    assert claim_image(db, image, KIND, holder) == CLAIMED
    with pytest.raises(TypeError):   # the landmarks fail after the prediction's row was inserted
        save_claimed_prediction(db, image, KIND, {"regions": []}, "v1", holder, ((1.0, 2.0), (None, 4.0), "v"))
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) == 0
    assert latest_model_landmarks(db, image) is None
    assert claim_holders(db, KIND) == {image: holder}


def test_releasing_frees_only_the_holders_claims(tmp_project):
    db = tmp_project.database
    mine, theirs = add_fake_images(tmp_project, 2)
    holder, other = new_holder(), new_holder()
    assert claim_image(db, mine, KIND, holder) == CLAIMED
    assert claim_image(db, theirs, KIND, other) == CLAIMED
    release_claims(db, KIND, holder)
    assert claim_holders(db, KIND) == {theirs: other}
    assert claim_image(db, mine, KIND, other) == CLAIMED


def test_letting_one_image_go_frees_only_that_claim_of_that_holder(tmp_project):
    db = tmp_project.database
    failed, working, theirs = add_fake_images(tmp_project, 3)
    holder, other = new_holder(), new_holder()
    for image, who in ((failed, holder), (working, holder), (theirs, other)):
        assert claim_image(db, image, KIND, who) == CLAIMED
    release_claim(db, failed, KIND, holder)
    release_claim(db, theirs, KIND, holder)            # not its claim: left alone
    assert claim_holders(db, KIND) == {working: holder, theirs: other}
    assert claim_image(db, failed, KIND, other) == CLAIMED
