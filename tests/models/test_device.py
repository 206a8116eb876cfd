import pytest
import torch

from models.device import TrainingWorld, describe_device, pick_device
from storage.errors import OctantError


def test_cpu_preference_is_honoured():
    assert pick_device("cpu") == torch.device("cpu")


def test_auto_picks_cuda_only_when_present(monkeypatch):
    monkeypatch.delenv("OCTANT_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert pick_device().type == "cuda"
    else:
        assert pick_device().type in ("cpu", "mps")


def test_environment_variable_pins_the_device(monkeypatch):
    monkeypatch.setenv("OCTANT_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")


def test_unavailable_cuda_is_refused_with_advice(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(OctantError, match="choose the device 'cpu'"):
        pick_device("cuda")


def test_unknown_device_names_the_choices():
    with pytest.raises(OctantError, match="choose 'auto', 'cpu'"):
        pick_device("tpu")


def test_cpu_description_counts_threads():
    assert describe_device(torch.device("cpu")).startswith("CPU (")


def test_single_process_world_is_inactive(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    world = TrainingWorld()
    model = torch.nn.Linear(2, 1)
    assert not world.active and world.rank == 0 and world.wrap(model) is model
    assert world.agree("stopped_early") == "stopped_early"
