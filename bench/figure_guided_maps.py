"""Son et al.'s Fig. 3 for bench_guided's runs: per validation photo, the photo with its lesion
cells outlined, the guided network's map (lesion cues) and the unguided one's, drawn as the
paper draws them (``models.findings.activation_maps``). Four positives with masks, then one negative.
The public data sets are found through ``$OCTANT_PUBLIC_DATA``.

    OMP_NUM_THREADS=1 python bench/figure_guided_maps.py haemorrhage docs/images/guided_maps_haemorrhage.jpg
"""
import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.findings.activation_maps import overlay_activation  # noqa: E402
from models.findings.data import FindingDataset  # noqa: E402
from models.findings.guided import GuidedConfig, GuidedNet  # noqa: E402
from models.findings.reference_labels import idrid_reference_samples  # noqa: E402
from models.findings.training import guided_split  # noqa: E402
from storage.locations import default_runs_dir  # noqa: E402


def load(run: Path):
    config = GuidedConfig.from_saved(json.loads((run / "config.json").read_text())["task"])
    net = GuidedNet(config)
    net.load_state_dict(torch.load(run / "best.pt", weights_only=False)["model"])
    return net.eval(), config


def figure(finding: str) -> np.ndarray:
    guided, config = load(default_runs_dir() / "bench_guided_lesion_cues" / f"{finding}_lambda1")
    unguided, _ = load(default_runs_dir() / "bench_guided" / f"{finding}_lambda0")
    _, validation = guided_split(idrid_reference_samples(finding), 0.25, 0)   # bench_guided's split
    picked = ([s for s in validation if s.present and s.cue_complete][:4]
              + [s for s in validation if not s.present][:1])
    dataset = FindingDataset(picked, config.input_size, config.map_size, cue_source="lesions")
    rows = []
    for index in range(len(dataset)):
        image, _, cue, _ = dataset[index]
        photo = np.ascontiguousarray((image.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
        outlined = photo.copy()
        cells = cv2.resize(cue.numpy(), photo.shape[:2][::-1], interpolation=cv2.INTER_NEAREST) > 0
        contours, _ = cv2.findContours(cells.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(outlined, contours, -1, (255, 255, 255), 1)
        tiles = [outlined]
        for network in (guided, unguided):
            with torch.no_grad():
                logit, activation = network(image[None])
            tile = overlay_activation(photo, activation[0, 0].numpy())
            cv2.putText(tile, f"p = {torch.sigmoid(logit)[0]:.2f}", (8, 22), 0, 0.6, (255, 255, 255), 2)
            tiles.append(tile)
        rows.append(np.hstack(tiles))
    grid = np.vstack(rows)
    return cv2.resize(grid, (grid.shape[1] * 5 // 8, grid.shape[0] * 5 // 8), interpolation=cv2.INTER_AREA)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("finding", help="finding code of bench_guided's runs, e.g. haemorrhage")
    parser.add_argument("out", help="the figure's JPEG file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.imwrite(args.out, cv2.cvtColor(figure(args.finding), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(args.out)
