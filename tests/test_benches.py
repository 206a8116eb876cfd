"""Every bench script answers --help (and measures nothing doing so)."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

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


READS_PUBLIC_DATA = ("bench_attention_mask.py", "bench_geometry.py", "bench_guided.py", "bench_labels.py",
                     "bench_pipeline.py", "bench_red_free.py", "bench_report.py", "bench_segmentation.py",
                     "bench_suggestions.py", "bench_workstation.py")


@pytest.mark.parametrize("bench", ["bench_geometry.py", "bench_labels.py", "bench_workstation.py"])
def test_a_bench_without_the_public_data_says_so_in_one_line(bench, tmp_path):
    # A new-user trial: every bench run without --data or OCTANT_PUBLIC_DATA ended in a traceback.
    done = subprocess.run([sys.executable, str(REPO / "bench" / bench)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120, env={"OMP_NUM_THREADS": "1", "QT_QPA_PLATFORM": "offscreen",
                                            "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr == (f"{bench}: Say where the public data sets (DRIVE, IDRiD, Drishti-GS1) are: pass --data "
                           "DIR or set OCTANT_PUBLIC_DATA=DIR.\n")


@pytest.mark.parametrize("bench", READS_PUBLIC_DATA)
def test_every_bench_that_reads_the_public_data_reports_it_missing_in_one_line(bench):
    source = (REPO / "bench" / bench).read_text(encoding="utf-8")
    assert "with one_line_errors(Path(__file__).name):" in source.split('if __name__ == "__main__":')[-1]


def load_bench(name: str, monkeypatch=None):
    """The bench script as a module (registered in sys.modules through ``monkeypatch`` where its
    dataclasses look their module up)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    if monkeypatch is not None:
        monkeypatch.setitem(sys.modules, name, module)
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


def test_idrid_disc_check_scores_each_photos_disc_and_counts_empty_cups(monkeypatch):
    """bench_segmentation's cross-domain disc check (IDRiD discs, no cup truth): a network that finds
    the bright disc exactly scores Dice ≈ 1 on both photos from both first guesses, and the photo
    without a brighter cup counts as one empty cup."""
    import numpy as np
    import torch

    from models.segmentation.disc_cup import DiscCupConfig

    bench = load_bench("bench_segmentation", monkeypatch)

    class Brightness(torch.nn.Module):   # disc where the red channel is above ~0.49, cup above ~0.83
        def forward(self, x):
            return torch.stack([20 * x[:, 0], 20 * (x[:, 0] - 1.5)], dim=1)

    yy, xx = np.mgrid[:300, :400]
    images = np.zeros((2, 300, 400, 3), np.uint8)
    images[:, (yy - 150) ** 2 + (xx - 200) ** 2 <= 140 ** 2] = 30   # the field of view: 1/8 of it ≈ the disc
    masks = np.zeros((2, 5, 300, 400), np.uint8)
    disc = (yy - 150) ** 2 + (xx - 200) ** 2 <= 30 ** 2
    for i in range(2):
        images[i][disc] = 150
        masks[i, 4][disc] = 255
    images[0][(yy - 150) ** 2 + (xx - 200) ** 2 <= 12 ** 2] = 250   # photo 0 has a cup, photo 1 none
    monkeypatch.setattr(bench, "lesion_arrays", lambda: (images, masks, ["IDRiD_01", "IDRiD_02"]))
    figures = bench.bench_disc_cup_idrid(Brightness(), DiscCupConfig(), torch.device("cpu"))
    assert figures["idrid_images"] == 2
    for start in ("idrid", "idrid_fov"):   # sized from the truth, sized from the FOV as the pipeline does
        assert figures[f"{start}_disc_dice"] > 0.95 and figures[f"{start}_poor_discs"] == 0
        assert figures[f"{start}_found"] == 2 and figures[f"{start}_empty_cups"] == 1


def test_lesion_peaks_are_stored_in_the_lesion_file_and_the_rest_kept(tmp_path, monkeypatch):
    """bench_segmentation --set-lesion-peaks: the named channels' peaks go into the file's config, the
    others keep the defaults, the int8 weights load as before, a bad request is one sentence."""
    import torch

    from models.engine.weights import load_weights, read_metadata, save_weights
    from models.segmentation.lesions import LesionNetConfig, build_lesion_net

    bench = load_bench("bench_segmentation", monkeypatch)
    config = LesionNetConfig(decoder_channels=16, thresholds=(0.01, 0.6, 0.06, 0.07))
    network = build_lesion_net(config)
    path = save_weights(network, tmp_path / "lesions.safetensors",
                        {"name": "lesions", "config": config.to_dict(), "version": "v"}, int8=True)
    load_weights(network, path)   # the int8 weights as stored
    before = {k: v.clone() for k, v in network.state_dict().items()}
    assert bench.store_lesion_peaks(path, "HE=0.97,SE=0.9") == {"HE": 0.97, "EX": 0.98, "SE": 0.9, "MA": 0.0}
    metadata = read_metadata(path)
    assert metadata["config"]["peaks"] == [0.0, 0.97, 0.98, 0.9] and metadata["config"]["thresholds"][0] == 0.01
    assert metadata["version"] == "v" and "storage" in metadata
    load_weights(network, path)
    assert all(torch.equal(before[k], v) for k, v in network.state_dict().items())
    for bad in ("HE", "XX=0.9", "HE=1.5"):
        with pytest.raises(SystemExit, match="--set-lesion-peaks"):
            bench.store_lesion_peaks(path, bad)


def test_suggestion_rules_go_into_the_file_of_the_network_that_supplies_each_type(tmp_path, monkeypatch):
    """bench_suggestions --store-rules: MA and EX into the detail network's file, HE and SE into the
    lesion network's; only the header changes (tensors and version as before); bad input: one sentence."""
    from safetensors.torch import load_file

    from models.engine.weights import read_metadata, save_weights
    from models.segmentation.lesions import LesionNetConfig, build_lesion_net

    bench = load_bench("bench_suggestions", monkeypatch)
    lesions = LesionNetConfig(decoder_channels=16, peaks=(0.0, 0.98, 0.98, 0.5))
    detail = LesionNetConfig(architecture="unet", channels=("MA", "EX"), decoder_channels=16, thresholds=(0.05, 0.6))
    for name, config in (("lesions", lesions), ("lesion_detail", detail)):
        save_weights(build_lesion_net(config), tmp_path / f"{name}.safetensors",
                     {"name": name, "config": config.to_dict(), "version": name}, int8=True)
    before = {name: load_file(str(tmp_path / f"{name}.safetensors")) for name in ("lesions", "lesion_detail")}
    stored = bench.store_rules(tmp_path, bench.parse_rules("MA:least_spots=2,photo_least_spots=3;HE:peak=0.99"))
    assert stored["lesion_detail"]["MA"]["least_spots"] == 2 and stored["lesions"]["HE"]["peak"] == 0.99
    detail_config = read_metadata(tmp_path / "lesion_detail.safetensors")["config"]
    assert detail_config["suggestion_rules"]["MA"] == {
        "least_area": 5e-4, "max_vessel_share": 1.0, "vessel_clearance": 0.0, "disc_clearance": 0.0,
        "rim_clearance": 0.0, "least_spots": 2, "photo_least_spots": 3}
    assert detail_config["peaks"] == [0.0, 0.98]   # EX keeps the default peak it had
    metadata = read_metadata(tmp_path / "lesions.safetensors")
    assert metadata["config"]["peaks"] == [0.0, 0.99, 0.98, 0.5] and metadata["version"] == "lesions"
    assert set(metadata["config"]["suggestion_rules"]) == {"HE"}
    for name, tensors in before.items():
        after = load_file(str(tmp_path / f"{name}.safetensors"))
        assert tensors.keys() == after.keys() and all(torch.equal(tensors[k], after[k]) for k in tensors)
    for bad in ("MA", "XX:peak=0.9", "MA:colour=2", "MA:peak=high"):
        with pytest.raises(SystemExit, match="--store-rules"):
            bench.parse_rules(bad)


def test_device_caches_come_back_pixel_for_pixel(tmp_path, monkeypatch):
    """What a GPU machine rebuilds from the packed folder equals the caches here, byte for byte in pixels."""
    import cv2
    import numpy as np

    caches = load_bench("device_caches", monkeypatch)
    here, there, packed = tmp_path / "here", tmp_path / "there", tmp_path / "packed"
    data = tmp_path / "data" / "IDRiD-landmarks"
    data.mkdir(parents=True)
    (data / "grades.csv").write_text("image,retinopathy_grade\nIDRiD_001.jpg,2\n")
    (data / "landmarks.csv").write_text("image,disc_x,disc_y,confident\nIDRiD_001.jpg,10,12,1\n")
    rng = np.random.default_rng(0)
    maps, photos = here / "structure-maps" / "224-0123456789ab", here / "photo-cache" / "224"
    maps.mkdir(parents=True)
    photos.mkdir(parents=True)
    for key in ("idrid-landmarks-IDRiD_001", "idrid-landmarks-IDRiD_002"):
        cv2.imwrite(str(maps / f"{key}.png"), rng.integers(0, 256, (224, 224, 3), dtype=np.uint8))
        cv2.imwrite(str(photos / f"{key}.png"), rng.integers(0, 256, (224, 224, 3), dtype=np.uint8))
        (photos / f"{key}.box.json").write_text("[0, 0, 100, 100]")
    (here / "public-sets").mkdir()
    drive = {"training_images": rng.integers(0, 256, (2, 30, 20, 3), dtype=np.uint8),
             "training_vessels": rng.integers(0, 2, (2, 30, 20), dtype=np.uint8) * 255,
             "training_numbers": np.array([21, 22])}
    np.savez(here / "public-sets" / "drive.npz", **drive)
    for part in caches.PARTS:
        caches.pack(part, packed, tmp_path / "data", here)
        caches.unpack(part, packed, there, tmp_path / "copied")
    for folder in ("structure-maps/224-0123456789ab", "photo-cache/224"):
        for png in (here / folder).glob("*.png"):
            assert np.array_equal(cv2.imread(str(png), cv2.IMREAD_UNCHANGED),
                                  cv2.imread(str(there / folder / png.name), cv2.IMREAD_UNCHANGED))
    assert (there / "photo-cache/224/idrid-landmarks-IDRiD_002.box.json").read_text() == "[0, 0, 100, 100]"
    assert (tmp_path / "copied/IDRiD-landmarks/grades.csv").read_text().endswith("IDRiD_001.jpg,2\n")
    rebuilt = np.load(there / "public-sets" / "drive.npz")
    assert sorted(rebuilt.files) == sorted(drive)
    assert all(np.array_equal(rebuilt[name], array) and rebuilt[name].dtype == array.dtype
               for name, array in drive.items())


def test_the_mirror_average_is_switched_in_both_lesion_files_with_their_versions(tmp_path, monkeypatch):
    """bench_segmentation --set-mirror-average: only the headers change (tensors as stored, int8 too);
    the versions say it, and switching off gives the former versions back."""
    from safetensors.torch import load_file

    from models.engine.weights import read_metadata, save_weights
    from models.segmentation.lesions import LesionNetConfig, build_lesion_net

    bench = load_bench("bench_segmentation", monkeypatch)
    lesions = LesionNetConfig(decoder_channels=16)
    detail = LesionNetConfig(architecture="unet", channels=("MA", "EX"), decoder_channels=16, thresholds=(0.05, 0.6))
    for name, config in (("lesions", lesions), ("lesion_detail", detail)):
        save_weights(build_lesion_net(config), tmp_path / f"{name}.safetensors",
                     {"name": name, "config": config.to_dict(), "version": f"{name}-v"}, int8=True)
    before = {name: load_file(str(tmp_path / f"{name}.safetensors")) for name in ("lesions", "lesion_detail")}
    assert bench.store_mirror_average(tmp_path, "on") == {"lesions": "lesions-v-mirror",
                                                          "lesion_detail": "lesion_detail-v-mirror"}
    assert read_metadata(tmp_path / "lesions.safetensors")["config"]["mirror_average"] is True
    for name, tensors in before.items():
        after = load_file(str(tmp_path / f"{name}.safetensors"))
        assert tensors.keys() == after.keys() and all(torch.equal(tensors[k], after[k]) for k in tensors)
    assert bench.store_mirror_average(tmp_path, "lesions-only") == {"lesions": "lesions-v-mirror",
                                                                    "lesion_detail": "lesion_detail-v"}
    assert read_metadata(tmp_path / "lesion_detail.safetensors")["config"]["mirror_average"] is False
    assert bench.store_mirror_average(tmp_path, "off")["lesions"] == "lesions-v"
    assert read_metadata(tmp_path / "lesions.safetensors")["config"]["mirror_average"] is False
    with pytest.raises(SystemExit, match="--set-mirror-average"):
        bench.store_mirror_average(tmp_path, "yes")
