"""The one model-card writer: everything but the command and the data comes from the weights
file's own header."""
import math

from torch import nn

from models.engine.model_card import write_model_card
from models.engine.weights import save_weights


def test_the_card_describes_the_weights_from_their_own_header(tmp_path):
    path = save_weights(nn.Conv2d(3, 4, 3), tmp_path / "vessels.safetensors", {
        "architecture": "unet", "task": "vessels", "version": "vessels-unet-1", "date": "2026-12-04",
        "config": {"encoder": "resnet18", "channels": ["MA", "EX"]}, "parameters": 2_500_000,
        "engine": {"optimizer": "adam", "lr": 0.001, "batch_size": 16, "scheduler": "plateau", "epochs": 300,
                   "time_limit_s": 600, "cpu_bf16": True, "seed": 0},
        "epochs_trained": 7, "metrics": {"val_dice": 0.8123, "val_nan": math.nan, "note": "text"}})
    card = write_model_card(path, command="python main.py train-seg --task vessels", data="DRIVE 21-37.")
    text = card.read_text()
    assert card == tmp_path / "vessels.md"
    assert text.startswith("# vessels: unet (vessels)\n")
    assert "version `vessels-unet-1`" in text and "`python main.py train-seg --task vessels`" in text
    assert "encoder resnet18, channels MA,EX, 2.50 M parameters; stored fp16" in text
    assert "- data: DRIVE 21-37." in text
    assert "7 epochs trained, time limit 10 min, precision bf16" in text   # an engine saved before precision
    assert "| val_dice | 0.8123 |" in text and "val_nan" not in text and "note" not in text


def test_int8_storage_and_notes_are_said(tmp_path):
    path = save_weights(nn.Conv2d(3, 4, 3), tmp_path / "g.safetensors", {"architecture": "guided",
                        "trained": "2026-12-04 11:00 UTC", "labels": "three readers"}, int8=True)
    text = write_model_card(path, command="c", data="d", notes="measured on X").read_text()
    assert text.startswith("# g: guided\n") and "- trained: 2026-12-04 11:00 UTC" in text
    assert "stored int8 (convolution weights) and fp16" in text and "- labels: three readers" in text
    assert text.endswith("## Notes\n\nmeasured on X\n")
