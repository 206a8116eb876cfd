"""The one command-line progress reporter: a tqdm bar on a terminal, whole lines in a log,
nothing when quiet; always on the stream it is given (stderr by default)."""
import io
import math

from models.commands.progress import TrainingProgress
from models.engine.training import ProgressEvent
from storage.command_progress import CommandProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_in_a_log_whole_lines_every_tenth_and_at_the_end():
    log = io.StringIO()
    with CommandProgress(40, unit="photo", stream=log) as bar:
        for done in range(1, 41):
            bar.update(done, f"p{done}.jpg")
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 11
    assert lines[0].startswith("  2%") and "1/40" in lines[0] and "p1.jpg" in lines[0]
    assert " 4/40 " in lines[1] and " 8/40 " in lines[2]
    assert "40/40" in lines[-1] and "photo" in lines[-1]


def test_line_every_zero_gives_a_line_per_item_and_messages_stay_between_them():
    log = io.StringIO()
    bar = CommandProgress(3, stream=log, line_every=0.0)
    bar.update(1, "a")
    bar.message("skipped b: unreadable")
    bar.update(2, "b")
    bar.update(3, "c", total=3)
    lines = log.getvalue().splitlines()
    assert [("1/3" in lines[0]), lines[1], ("2/3" in lines[2]), ("3/3" in lines[3])] == [
        True, "skipped b: unreadable", True, True]


def test_on_a_terminal_a_rewritten_bar_with_messages_above_it():
    terminal = Terminal()
    with CommandProgress(5, description="importing", stream=terminal) as bar:
        bar.update(2, "x.jpg")
        bar.message("kept line")
        bar.update(5, "y.jpg")
    shown = terminal.getvalue()
    assert "\r" in shown and "importing" in shown and "5/5" in shown and "kept line\n" in shown


def test_quiet_shows_nothing():
    terminal = Terminal()
    with CommandProgress(5, stream=terminal, quiet=True) as bar:
        bar.update(5, "x")
        bar.message("not shown")
    assert terminal.getvalue() == ""


def test_training_progress_restarts_per_epoch_and_keeps_epoch_lines():
    log = io.StringIO()
    progress = TrainingProgress(stream=log)
    for epoch in (1, 2):
        for batch in (1, 2):
            progress(ProgressEvent("batch", epoch, 2, batch, 2, loss=0.5, eta_s=70.0))
        progress(ProgressEvent("epoch", epoch, 2, 2, 2, 0.4, {"val_dice": 0.8, "val_threshold_MA": 0.3}))
    progress(ProgressEvent("done", 2, 2, metrics={"val_dice": 0.8}, eta_s=0.0))
    progress.close()
    lines = log.getvalue().splitlines()
    assert lines[0].startswith("epoch 1/2:") and "1/2" in lines[0] and "loss 0.5000, training ETA 0:01:10" in lines[0]
    assert "epoch 1/2: train loss 0.4000 val_dice 0.8000" in lines and "threshold" not in log.getvalue()
    assert lines[3].startswith("epoch 2/2:") and " 1/2 " in lines[3]
    assert lines[-1] == "done: best val_dice 0.8000"


def test_an_unknown_time_left_is_a_question_mark():
    log = io.StringIO()
    progress = TrainingProgress(stream=log)
    progress(ProgressEvent("batch", 1, 1, 1, 4, loss=1.0, eta_s=math.nan))
    assert "training ETA ?" in log.getvalue()
