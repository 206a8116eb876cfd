"""Each pre-segmentation task trains one step through the engine on tiny synthetic caches and
exports fp16 weights with a model card that load back into the same network."""
import numpy as np
import pytest
import torch

from models.commands.segmentation import export_starter
from models.engine.training import load_best, train
from models.engine.weights import load_weights, read_metadata
from models.segmentation.cache import public_sets_cache_dir
from models.segmentation.disc_cup import DiscCupConfig
from models.segmentation.landmarks import LocatorConfig
from models.segmentation.lesions import LesionNetConfig
from models.segmentation.tasks import DiscCupTask, LandmarkTask, LesionTask, VesselTask
from models.segmentation.vessels import VesselNetConfig


@pytest.fixture
def caches(tmp_path, monkeypatch):
    monkeypatch.setenv("OCTANT_CACHE_DIR", str(tmp_path / "cache"))
    root = public_sets_cache_dir()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (20, 48, 48, 3), dtype=np.uint8)
    vessels = np.zeros((20, 48, 48), np.uint8)
    vessels[:, 20:23, :] = 1
    np.savez(root / "drive.npz", training_images=images, training_vessels=vessels,
             training_fov=np.ones_like(vessels), training_numbers=np.arange(21, 41))
    (root / "drishti").mkdir()
    ys, xs = np.mgrid[0:200, 0:200]
    names = [f"drishtiGS_{i:03d}" for i in range(5)]
    for name in names:
        disc = (np.hypot(xs - 100, ys - 100) < 48).astype(np.uint8) * 255
        cup = (np.hypot(xs - 100, ys - 100) < 24).astype(np.uint8) * 255
        np.savez(root / "drishti" / f"{name}.npz", image=np.dstack([disc] * 3), disc=disc, cup=cup, scale=np.float32(1))
    (root / "drishti" / "names.txt").write_text("\n".join(names))
    np.savez(root / "idrid_landmarks.npz", images=rng.integers(0, 255, (8, 48, 64, 3), dtype=np.uint8),
             points=np.tile(np.array([[10, 15], [40, 16]], np.float32), (8, 1, 1)),
             names=np.array([f"IDRiD_{i:03d}.jpg" for i in range(8)]), confident=np.ones(8, int),
             scale=np.full(8, 0.12, np.float32), photo_box=np.tile([0, 3, 64, 45], (8, 1)))
    (root / "idrid_lesions").mkdir()
    masks = np.zeros((4, 5, 96, 128), np.uint8)
    masks[:, :, 40:50, 60:70] = 255
    np.save(root / "idrid_lesions" / "images.npy", rng.integers(0, 255, (4, 96, 128, 3), dtype=np.uint8))
    np.save(root / "idrid_lesions" / "masks.npy", masks)
    (root / "idrid_lesions" / "names.txt").write_text("IDRiD_01\nIDRiD_02\nIDRiD_45\nIDRiD_46\n")
    return tmp_path


TASKS = {
    "vessels": lambda: VesselTask(net=VesselNetConfig(encoder="tu-mobilenetv4_conv_small", decoder_channels=(8,) * 5),
                                  patch=32, patches_per_epoch=4),
    "disc_cup": lambda: DiscCupTask(net=DiscCupConfig(decoder_channels=(8,) * 4, crop_size=64), samples_per_epoch=4),
    "landmarks": lambda: LandmarkTask(net=LocatorConfig(decoder_channels=(8,) * 4, canvas=(64, 48)),
                                    samples_per_epoch=2),
    "lesions": lambda: LesionTask(net=LesionNetConfig(decoder_channels=16), crop=64, samples_per_epoch=2),
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_trains_one_step_and_exports_loadable_weights(caches, name):
    task = TASKS[name]()
    config = task.recipe(epochs=1, batch_size=2, max_batches_per_epoch=1, precision="fp32", device="cpu")
    result = train(task, config, caches / "run")
    assert config.monitor in result.best_metrics and "val_loss" in result.best_metrics
    model = task.build_model()
    metrics = load_best(model, caches / "run")
    path = caches / "weights" / f"{name}.safetensors"
    export_starter(model, path, task, config, metrics, result.history)
    fresh = task.build_model()
    metadata = load_weights(fresh, path)
    assert metadata["task"] == name
    assert type(task.net).from_dict(read_metadata(path)["config"]) == task.net
    assert path.with_suffix(".md").read_text().startswith(f"# {name}")
    first = next(iter(fresh.state_dict().values()))
    assert torch.isfinite(first.float()).all()
