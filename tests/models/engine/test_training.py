import json
import threading

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from models.engine.training import ProgressEvent, TrainConfig, load_best, train
from storage.errors import OctantError


class NoisyBlobs(Dataset):
    """Tiny two-class images; __getitem__ draws augmentation noise from torch's global RNG."""

    def __init__(self, count: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 2, (count,), generator=generator).float()
        self.images = torch.rand(count, 1, 8, 8, generator=generator) * 0.3
        self.images[self.labels == 1, :, 2:6, 2:6] += 0.7

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index] + 0.05 * torch.randn(1, 8, 8), self.labels[index]


class BlobTask:
    def build_model(self):
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(4, 1))

    def datasets(self):
        return NoisyBlobs(48, seed=1), NoisyBlobs(16, seed=2)

    def loss(self, model, batch, device):
        images, labels = (t.to(device) for t in batch)
        loss = nn.functional.binary_cross_entropy_with_logits(model(images).squeeze(1), labels)
        return loss, {}

    def validate(self, model, loader: DataLoader, device):
        losses = [self.loss(model, batch, device)[0] for batch in loader]
        return {"val_loss": float(torch.stack(losses).mean())}

    def task_config(self):
        return {"network": "blobs"}


def config(**changes) -> TrainConfig:
    base = dict(epochs=4, batch_size=8, lr=0.05, optimizer="sgd", nesterov=True,
                scheduler="exponential", gamma=0.9, device="cpu", seed=3)
    return TrainConfig(**{**base, **changes})


def weights_of(path):
    return torch.load(path, weights_only=False)["model"]


def test_one_epoch_on_tiny_data_lowers_the_loss(tmp_path):
    task = BlobTask()
    model = torch.manual_seed(3) and task.build_model()
    loader = DataLoader(task.datasets()[0], batch_size=8)
    model.eval()
    with torch.no_grad():
        before = task.validate(model, loader, "cpu")["val_loss"]
    result = train(task, config(epochs=1, lr=0.2), tmp_path)
    load_best(model, tmp_path)
    model.eval()
    with torch.no_grad():
        after = task.validate(model, loader, "cpu")["val_loss"]
    assert after < before
    assert result.history[0]["epoch"] == 1 and "train_loss" in result.history[0]


def test_writes_config_history_last_and_best_checkpoints(tmp_path):
    train(BlobTask(), config(epochs=2), tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["task"] == {"network": "blobs"} and saved["engine"]["optimizer"] == "sgd"
    assert len(json.loads((tmp_path / "history.json").read_text())) == 2
    assert torch.load(tmp_path / "last.pt", weights_only=False)["state"]["epoch"] == 2
    assert (tmp_path / "best.pt").is_file()


def test_resume_after_cancel_between_epochs_equals_uninterrupted(tmp_path):
    whole = train(BlobTask(), config(), tmp_path / "whole")
    cancel = threading.Event()

    def stop_after_epoch_two(event: ProgressEvent):
        if event.kind == "epoch" and event.epoch == 2:
            cancel.set()

    first = train(BlobTask(), config(), tmp_path / "split", progress=stop_after_epoch_two, cancel=cancel)
    assert first.cancelled and len(first.history) == 2
    resumed = train(BlobTask(), config(), tmp_path / "split")
    assert not resumed.cancelled
    for name, tensor in weights_of(whole.last_path).items():
        assert torch.equal(tensor, weights_of(resumed.last_path)[name]), name
    assert [row["val_loss"] for row in whole.history] == [row["val_loss"] for row in resumed.history]


def test_cancel_mid_epoch_keeps_the_last_finished_epoch_and_resumes_exactly(tmp_path):
    whole = train(BlobTask(), config(epochs=3), tmp_path / "whole")
    cancel = threading.Event()

    def stop_inside_epoch_three(event: ProgressEvent):
        if event.kind == "batch" and event.epoch == 3 and event.batch == 2:
            cancel.set()

    first = train(BlobTask(), config(epochs=3), tmp_path / "split", stop_inside_epoch_three, cancel)
    assert first.cancelled
    assert torch.load(first.last_path, weights_only=False)["state"]["epoch"] == 2
    resumed = train(BlobTask(), config(epochs=3), tmp_path / "split")
    for name, tensor in weights_of(whole.last_path).items():
        assert torch.equal(tensor, weights_of(resumed.last_path)[name]), name


class ScriptedValidation(BlobTask):
    def __init__(self, losses):
        self.losses = iter(losses)

    def validate(self, model, loader, device):
        return {"val_loss": next(self.losses)}


def test_early_stopping_stops_when_the_monitor_stops_improving(tmp_path):
    task = ScriptedValidation([1.0, 0.5, 0.6, 0.7, 0.4, 0.3])
    result = train(task, config(epochs=6, early_stopping_patience=2), tmp_path)
    assert result.stopped_early and len(result.history) == 4  # best at 2, then two stale epochs
    assert result.best_metrics == {"val_loss": 0.5}
    assert torch.load(result.best_path, weights_only=False)["epoch"] == 2
    again = train(ScriptedValidation([]), config(epochs=6, early_stopping_patience=2), tmp_path)
    assert again.stopped_early and len(again.history) == 4  # resuming a stopped run trains nothing more


def test_progress_reports_batches_epochs_and_done_with_an_eta(tmp_path):
    events = []
    train(BlobTask(), config(epochs=2, max_batches_per_epoch=3), tmp_path, progress=events.append)
    kinds = [event.kind for event in events]
    assert kinds.count("batch") == 6 and kinds.count("epoch") == 2 and kinds[-1] == "done"
    assert events[0].batches == 3 and events[0].eta_s >= 0
    assert "val_loss" in events[kinds.index("epoch")].metrics


@pytest.mark.parametrize("optimizer,scheduler", [("adam", "cosine"), ("adamw", "step"), ("sgd", "plateau")])
def test_every_optimizer_and_scheduler_trains(tmp_path, optimizer, scheduler):
    result = train(BlobTask(), config(epochs=2, optimizer=optimizer, scheduler=scheduler, lr=0.01), tmp_path)
    assert len(result.history) == 2


def test_resuming_with_other_settings_is_refused(tmp_path):
    train(BlobTask(), config(epochs=1), tmp_path)
    with pytest.raises(OctantError, match="other settings"):
        train(BlobTask(), config(epochs=2, lr=0.5), tmp_path)


def test_a_missing_monitored_metric_is_named(tmp_path):
    with pytest.raises(OctantError, match="val_auroc"):
        train(BlobTask(), config(epochs=1, monitor="val_auroc"), tmp_path)


def test_torchrun_with_two_cpu_processes_trains_and_only_rank_zero_writes(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    script = tmp_path / "ddp_run.py"
    # Each process logs, under its own rank, every file the engine puts in place (its writes all
    # end in os.replace) and every progress event; the ranks' logs then show who wrote what.
    script.write_text(
        "import os, sys\n"
        "from pathlib import Path\n"
        "from tests.models.engine.test_training import BlobTask, config\n"
        "from models.engine.training import train\n"
        "log = Path(sys.argv[2]) / f\"rank{os.environ['RANK']}.log\"\n"
        "def note(line):\n"
        "    with open(log, 'a') as handle:\n"
        "        handle.write(line + '\\n')\n"
        "real_replace = os.replace\n"
        "def replace(source, target, *args, **kwargs):\n"
        "    note('wrote ' + Path(target).name)\n"
        "    return real_replace(source, target, *args, **kwargs)\n"
        "os.replace = replace\n"
        "result = train(BlobTask(), config(epochs=2), sys.argv[1], progress=lambda e: note('progress ' + e.kind))\n"
        "note(f'trained {len(result.history)} epochs')\n"
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
         str(tmp_path / "run"), str(logs)], cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    zero = (logs / "rank0.log").read_text().splitlines()
    one = (logs / "rank1.log").read_text().splitlines()
    assert one == ["trained 2 epochs"]     # rank 1 trained both epochs and wrote nothing, said nothing
    assert zero[-1] == "trained 2 epochs"
    assert zero.count("wrote last.pt") == 2 and zero.count("wrote history.json") == 2
    assert "wrote config.json" in zero and zero.count("progress epoch") == 2
    assert len(json.loads((tmp_path / "run" / "history.json").read_text())) == 2
    assert not list((tmp_path / "run").glob("*.partial"))


def test_resume_after_the_process_is_killed_mid_epoch_equals_uninterrupted(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    script = tmp_path / "run.py"
    script.write_text(
        "import os, signal, sys\n"
        "from tests.models.engine.test_training import BlobTask, config\n"
        "from models.engine.training import train\n"
        "def die(event):\n"
        "    if sys.argv[2] == 'kill' and event.kind == 'batch' and event.epoch == 3 and event.batch == 2:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "train(BlobTask(), config(), sys.argv[1], progress=die)\n"
    )
    # Same thread count in every run: float sums are then bitwise reproducible.
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}

    def run(folder: str, mode: str) -> int:
        return subprocess.run([sys.executable, str(script), str(tmp_path / folder), mode], cwd=root, env=env,
                              capture_output=True, timeout=120).returncode

    assert run("split", "kill") == -signal.SIGKILL
    assert torch.load(tmp_path / "split" / "last.pt", weights_only=False)["state"]["epoch"] == 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        resumed = weights_of(train(BlobTask(), config(), tmp_path / "split").last_path)
        whole = weights_of(train(BlobTask(), config(), tmp_path / "whole").last_path)
    finally:
        torch.set_num_threads(threads)
    for name, tensor in whole.items():
        assert torch.equal(tensor, resumed[name]), name


def test_bf16_autocast_on_the_cpu_trains_when_asked(tmp_path):
    result = train(BlobTask(), config(epochs=1, precision="bf16"), tmp_path)
    assert result.history[0]["train_loss"] == result.history[0]["train_loss"]  # not NaN
    assert torch.load(result.best_path, weights_only=False)["model"]["0.weight"].dtype == torch.float32


def test_a_new_run_starts_from_init_weights_where_they_fit(tmp_path):
    from models.engine.weights import save_weights

    starter = BlobTask().build_model()
    with torch.no_grad():
        for index, parameter in enumerate(starter.parameters()):
            parameter.fill_(0.01 * (index + 1))
    # The starter has another head (3 outputs): it keeps its initial values, the rest is loaded.
    starter[-1] = nn.Linear(4, 3)
    save_weights(starter, tmp_path / "starter.safetensors", {"architecture": "blobs"})
    result = train(BlobTask(), config(epochs=1, lr=0.0, init_weights=str(tmp_path / "starter.safetensors")),
                   tmp_path / "run")
    trained = weights_of(result.last_path)
    assert torch.allclose(trained["0.weight"], torch.full_like(trained["0.weight"], 0.01), atol=1e-5)  # fp16 file
    assert not torch.allclose(trained["6.weight"], torch.full_like(trained["6.weight"], 0.05))
    start = json.loads((tmp_path / "run" / "init.json").read_text())
    assert start["kept_initial"] == ["6.weight", "6.bias"] and start["loaded_share"] > 0.5


def test_weights_that_mostly_do_not_fit_are_refused_with_advice(tmp_path):
    from models.engine.weights import save_weights
    from storage.errors import WeightsError

    other = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(16, 1))
    save_weights(other, tmp_path / "wide.safetensors", {"architecture": "wide blobs"})
    with pytest.raises(WeightsError, match="wide blobs.*train from scratch"):
        train(BlobTask(), config(epochs=1, init_weights=str(tmp_path / "wide.safetensors")), tmp_path / "run")
