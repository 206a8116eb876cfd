"""Every bench script answers --help (and measures nothing doing so)."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHES = sorted(path.name for path in (REPO / "bench").glob("*.py"))


def test_the_benches_are_found():
    assert "bench_pipeline.py" in BENCHES and len(BENCHES) >= 8


@pytest.mark.parametrize("bench", BENCHES)
def test_every_bench_answers_help(bench, tmp_path):
    shown = subprocess.run([sys.executable, str(REPO / "bench" / bench), "--help"], capture_output=True, text=True,
                           cwd=tmp_path, timeout=120, env={"OMP_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen",
                                                           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.startswith("usage:") and "--help" in shown.stdout
    assert not (tmp_path / "bench").exists()   # nothing measured, nothing written


def load_bench(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_guided_sides_run_side_by_side_keep_each_others_figures(tmp_path):
    bench = load_bench("bench_guided")
    output = tmp_path / "bench_guided.json"
    output.write_text('{"runs": {"hard_exudate": {"with": {"auroc": 0.9}}}, "runs_lesion_cues": {"x": {}}}')
    # Two calls, one per side, both read the file before either wrote (as when they start together).
    with_call, without_call = ({"settings": ["a"], "runs": {"haemorrhage": {}}} for _ in range(2))
    bench.save(output, with_call, "runs", {"haemorrhage": {"with": {"auroc": 0.8}}})
    written = bench.save(output, without_call, "runs", {"haemorrhage": {"without": {"auroc": 0.7}}})
    assert written["runs"]["haemorrhage"] == {"with": {"auroc": 0.8}, "without": {"auroc": 0.7}}
    assert written["runs"]["hard_exudate"] == {"with": {"auroc": 0.9}} and written["runs_lesion_cues"] == {"x": {}}
    assert bench.save(output, {"table": "t"}, "runs", {}) == {**written, "table": "t"}


def test_guided_settings_take_the_epochs_and_minutes_asked():
    bench = load_bench("bench_guided")
    settings = bench.reduced_settings(12, 45)
    assert settings[settings.index("--epochs") + 1] == "12" and settings[settings.index("--time-limit") + 1] == "2700"
    assert bench.reduced_settings(30, 20) == bench.REDUCED


def test_both_arms_of_a_segmentation_pair_start_from_one_file(tmp_path, monkeypatch):
    """bench_segmentation --compare: the plain arm loads every tensor of the shared start it has
    (DeepLabV3+ all of its own, a subset of Attention-DeepLab's; the U-Net its ResNet-34 encoder)."""
    import importlib.util

    import torch

    from main import build_parser
    from models.commands.segmentation import build_task
    from models.engine.weights import load_matching_weights

    spec = importlib.util.spec_from_file_location("bench_segmentation", REPO / "bench" / "bench_segmentation.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_segmentation", bench)   # its dataclasses look their module up
    spec.loader.exec_module(bench)
    for name, plain in (("lesions", "deeplab"), ("vessels", "unet")):
        pair = bench.PAIRS[name]
        start = tmp_path / f"{name}.safetensors"
        bench.shared_start(pair, None, 0, start)
        first_written = start.stat().st_mtime_ns
        bench.shared_start(pair, None, 0, start)   # the second arm finds it and leaves it alone
        assert start.stat().st_mtime_ns == first_written
        task, _ = build_task(build_parser().parse_args(["train-seg", *bench.arm_options(pair, plain, None)]))
        torch.manual_seed(1)   # another seed: only what loads from the start is shared
        model = task.build_model()
        loaded = load_matching_weights(model, start)
        encoder = [key for key in model.state_dict() if key.startswith("encoder.")]
        assert set(encoder) <= set(model.state_dict()) - set(loaded["kept_initial"])
        if name == "lesions":   # DeepLabV3+ is Attention-DeepLab without its two CBAMs: everything loads
            assert loaded["kept_initial"] == []
        else:   # the U-Net's decoder is its own
            assert loaded["kept_initial"] and all(key.startswith(("decoder.", "segmentation_head."))
                                                  for key in loaded["kept_initial"])


def test_guided_table_waits_for_both_sides_of_a_finding():
    bench = load_bench("bench_guided")
    runs = {"haemorrhage": {"without": {"auroc": 0.8}}, "hard_exudate": {"with": {}, "without": {}},
            "microaneurysm": {"with": {}}}
    assert list(bench.complete_pairs(runs)) == ["hard_exudate"]
