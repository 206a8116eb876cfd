"""Speed of the eight-region geometry and field-of-view code on real fundus photographs.

Landmarks come from IDRiD-landmarks (1429 × 949 pixels, × 3 for the original 4288 × 2848), so
the region map is timed at the camera's full resolution; field-of-view detection is timed on the
IDRiD-segmentation originals (4288 × 2848 JPEGs) the way the importer runs it (decode at 1/4).
Target from the foundation issue: region map ≤ 50 ms at 4288 × 2848 on the 2-core machine.

    python bench/bench_geometry.py [--repeats 20]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from annotate.fov import detect_fov, fov_mask  # noqa: E402
from annotate.geometry import region_label_map, region_mask, region_polygons  # noqa: E402
from annotate.overlay import render_region_overlay  # noqa: E402
from annotate.services.image_files import find_image_files  # noqa: E402
from annotate.services.importer import inspect_photo  # noqa: E402
from annotate.services.photos import read_fundus  # noqa: E402
from storage.locations import public_data_dir  # noqa: E402

FULL_SHAPE = (2848, 4288)
LANDMARK_SCALE = 3.0  # IDRiD-landmarks stores pixels of the photo downscaled by 3


def timed(function, repeats: int) -> dict[str, float]:
    function()  # warm caches and allocators
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return dict(median_ms=statistics.median(times), min_ms=min(times), max_ms=max(times), runs=repeats)


def landmark_cases(data: Path, count: int) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    with open(data / "IDRiD-landmarks" / "landmarks.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["confident"] == "1"][:count]
    s = LANDMARK_SCALE
    return [((float(r["disc_x"]) * s, float(r["disc_y"]) * s), (float(r["fovea_x"]) * s, float(r["fovea_y"]) * s))
            for r in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--data", help="folder of the public data sets (default $OCTANT_PUBLIC_DATA)")
    args = parser.parse_args()
    data = public_data_dir(args.data)
    cases = landmark_cases(data, 5)
    originals = find_image_files([data / "IDRiD-segmentation" / "images"])[:5]
    disc, fovea = cases[0]
    photo = read_fundus(originals[0])
    fov = detect_fov(photo)
    inside = fov_mask(FULL_SHAPE, fov)
    results: dict[str, dict[str, float]] = {}

    def each_case(work):
        return lambda: [work(d, f) for d, f in cases]

    n = len(cases)
    results["region_label_map 4288x2848 (per image)"] = {
        k: (v / n if k.endswith("_ms") else v)
        for k, v in timed(each_case(lambda d, f: region_label_map(d, f, FULL_SHAPE)), args.repeats).items()}
    results["region_label_map 4288x2848 + FOV mask"] = timed(
        lambda: region_label_map(disc, fovea, FULL_SHAPE, fov_mask=inside), args.repeats)
    results["fov_mask 4288x2848"] = timed(lambda: fov_mask(FULL_SHAPE, fov), args.repeats)
    results["region_mask 32x32 area (8x8 samples)"] = timed(
        lambda: region_mask([1, 5], disc, fovea, FULL_SHAPE, (32, 32), mode="area"), args.repeats)
    results["region_mask 32x32 center"] = timed(
        lambda: region_mask([1, 5], disc, fovea, FULL_SHAPE, (32, 32), mode="center"), args.repeats)
    results["region_mask 512x512 center"] = timed(
        lambda: region_mask([1, 5], disc, fovea, FULL_SHAPE, (512, 512), mode="center"), args.repeats)
    results["region_polygons 4288x2848 + FOV clip"] = timed(
        lambda: region_polygons(disc, fovea, FULL_SHAPE, fov=fov), args.repeats)
    results["detect_fov on 1/4 decode (decode + detect)"] = {
        k: (v / len(originals) if k.endswith("_ms") else v)
        for k, v in timed(lambda: [detect_fov(read_fundus(p, reduce=4)) for p in originals],
                          max(3, args.repeats // 4)).items()}
    results["import check per photo (size, reduced decode, FOV)"] = {
        k: (v / len(originals) if k.endswith("_ms") else v)
        for k, v in timed(lambda: [inspect_photo(p.read_bytes(), p.name) for p in originals],
                          max(3, args.repeats // 4)).items()}
    results["render_region_overlay 4288x2848"] = timed(
        lambda: render_region_overlay(photo, disc, fovea, fov), max(3, args.repeats // 4))

    width = max(len(name) for name in results)
    print(f"{'operation':<{width}}  median ms     min ms     max ms")
    for name, r in results.items():
        print(f"{name:<{width}}  {r['median_ms']:9.2f}  {r['min_ms']:9.2f}  {r['max_ms']:9.2f}")
    out = REPO / "bench" / "results" / "bench_geometry.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = dict(python=platform.python_version(), processor=platform.processor() or platform.machine(),
                   cpus=os.cpu_count())
    out.write_text(json.dumps(dict(machine=machine, results=results), indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    from main import one_line_errors  # no public data named: one line, not a traceback

    with one_line_errors(Path(__file__).name):
        sys.exit(main())
