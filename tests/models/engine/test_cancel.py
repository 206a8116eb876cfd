"""A cancel is seen while networks load, inside a network (before any layer), between stages and
between photos; the photos finished before it stay stored."""
import threading

import cv2
import pytest

from models.segmentation.pipeline import load_pipeline_models, run_pipeline
from models.segmentation.presegment import RESULT_FILE, presegment_to_folder
from storage.errors import CancelledError
from tests.models.fundus_synthetic import synthetic_fundus


def cancel_when_network_starts(models, name: str, cancel: threading.Event, after_calls: int = 0) -> list:
    """Set ``cancel`` once, as network ``name`` starts its call number ``after_calls`` (0: the
    first); returns the list of layers that ran after that, which must stay empty."""
    calls, layers_after = [], []
    network = models.get(name).model

    def on_network(_module, _inputs):
        calls.append(1)
        if len(calls) == after_calls + 1:
            cancel.set()

    network.register_forward_pre_hook(on_network, prepend=True)
    for module in network.modules():
        if module is not network:
            module.register_forward_pre_hook(lambda *_: layers_after.append(1) if cancel.is_set() else None)
    return layers_after


def test_a_cancel_set_before_loading_stops_before_any_network_is_built(tiny_weights):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        load_pipeline_models(tiny_weights, "cpu", cancel=cancel)


def test_a_cancel_inside_a_network_stops_before_its_next_layer(tiny_weights):
    image, *_ = synthetic_fundus(320, 240)
    cancel = threading.Event()
    models, _ = load_pipeline_models(tiny_weights, "cpu", cancel=cancel)
    layers_after = cancel_when_network_starts(models, "vessels", cancel)
    with pytest.raises(CancelledError):
        run_pipeline(image, models)
    assert cancel.is_set() and layers_after == []
    cancel.clear()   # the same models go on once the cancel is cleared
    assert run_pipeline(image, models).mask("vessels") is not None


def test_a_cancel_between_stages_is_seen_before_the_next_stage(tiny_weights):
    image, *_ = synthetic_fundus(320, 240)
    cancel = threading.Event()
    models, _ = load_pipeline_models(tiny_weights, "cpu", cancel=cancel)
    lesion_calls = []
    models.get("lesions").model.register_forward_pre_hook(lambda *_: lesion_calls.append(1))
    models.get("vessels").model.register_forward_hook(lambda *_: cancel.set())   # the stage's last layer ran
    with pytest.raises(CancelledError):
        run_pipeline(image, models)
    assert lesion_calls == []


def test_a_cancel_mid_photo_keeps_the_photos_finished_before_it(tiny_weights, tmp_path):
    paths = []
    for i in range(3):
        image, *_ = synthetic_fundus(320, 240, seed=i)
        paths.append(tmp_path / "photos" / f"eye_{i}.png")
        paths[-1].parent.mkdir(exist_ok=True)
        cv2.imwrite(str(paths[-1]), image)
    cancel = threading.Event()
    models, _ = load_pipeline_models(tiny_weights, "cpu", cancel=cancel)
    cancel_when_network_starts(models, "lesions", cancel, after_calls=1)   # the second photo's lesions
    with pytest.raises(CancelledError, match="stopped after 1 photos"):
        presegment_to_folder(paths, tmp_path / "out", models, cancel=cancel)
    assert (tmp_path / "out" / "eye_0" / RESULT_FILE).is_file()
    assert not (tmp_path / "out" / "eye_1" / RESULT_FILE).exists()
    assert not (tmp_path / "out" / "eye_2").exists()
