"""Guided inference sees a photo exactly as training did: same crop, resize and scaling."""
import cv2
import numpy as np
import torch

from annotate.services.photos import read_fundus
from models.findings.data import cached_photo, photo_tensor
from models.findings.guided import GuidedConfig, GuidedNet
from models.findings.inference import prepare_guided_input, run_guided
from tests.models.fundus_synthetic import synthetic_fundus


def photo(tmp_path):
    image, *_ = synthetic_fundus(320, 240, seed=3)
    path = tmp_path / "eye.png"
    cv2.imwrite(str(path), image)
    return path


def test_the_network_input_equals_the_training_datasets(tmp_path):
    path = photo(tmp_path)
    trained_on, box = cached_photo(path, "eye", 64, cache_root=tmp_path / "cache")
    prepared = prepare_guided_input(read_fundus(path), 64)
    assert prepared.box == box and prepared.tensor.shape == (1, 3, 64, 64)
    assert torch.equal(prepared.tensor[0], photo_tensor(trained_on))
    assert 0.0 <= float(prepared.tensor.min()) and float(prepared.tensor.max()) <= 1.0
    x0, y0, x1, y1 = box
    assert prepared.crop.shape == (y1 - y0, x1 - x0, 3)
    assert np.array_equal(prepared.crop, read_fundus(path)[y0:y1, x0:x1, ::-1])   # RGB


def test_a_stored_crop_box_is_used_as_given(tmp_path):
    bgr = read_fundus(photo(tmp_path))
    prepared = prepare_guided_input(bgr, 32, crop=(10, 20, 110, 220))
    assert prepared.box == (10, 20, 110, 220) and prepared.crop.shape == (200, 100, 3)
    expected = cv2.resize(bgr[20:220, 10:110], (32, 32), interpolation=cv2.INTER_AREA)[..., ::-1]
    assert torch.equal(prepared.tensor[0], photo_tensor(expected))


def test_run_guided_gives_the_networks_probability_and_map(tmp_path):
    torch.manual_seed(0)
    network = GuidedNet(GuidedConfig(input_size=64, width=4, atrous_channels=4)).eval()
    prepared = prepare_guided_input(read_fundus(photo(tmp_path)), 64)
    probability, activation = run_guided(network, prepared)
    with torch.no_grad():
        logit, expected = network(prepared.tensor)
    assert probability == float(torch.sigmoid(logit)[0]) and 0.0 < probability < 1.0
    assert activation.shape == (4, 4) and np.allclose(activation, expected[0, 0].numpy())
