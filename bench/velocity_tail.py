"""What the velocity densities call rare on held-out *normal* footage: the speeds of their top scores.

Fits each density leave-fold-out on the training shards of a pipeline run (as the selection and
calibration do), takes the held-out training objects with the top ``--top`` share of its scores,
and prints where their speeds fall among all training objects: the percentile of their box mean
flow and of their moving pixels' speed. A density whose tail is made of the *stillest* objects
calls stillness rare; speed anomalies are faster than normal, never slower. Training footage only.

    python bench/velocity_tail.py --store OUT/store --json bench/velocity_tail.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from anograph.attributes.densities import make_density
from anograph.attributes.ensemble import HeldOutFits, held_out_parts
from anograph.attributes.objects import FLOW_MEAN, MOVING_MAGNITUDE, object_attributes
from anograph.io.extraction_settings import fingerprint_of
from anograph.io.shards import read_shard
from anograph.io.storage import Storage

DENSITIES = {
    "velocity(speed)": ("velocity", {}),
    "velocity(speed+direction)": ("velocity", {"direction": True}),
    "speed": ("speed", {}),
}


def percentile_within(population: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Share of ``population`` strictly below each of ``values``."""
    ordered = np.sort(population)
    return np.searchsorted(ordered, values, side="left") / len(ordered)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="storage root holding shards/<fingerprint>/train")
    parser.add_argument("--fingerprint", default=None, help="shard fingerprint folder (default: the newest)")
    parser.add_argument("--top", type=float, default=0.005, help="share of the highest held-out scores examined")
    parser.add_argument("--json", type=Path, default=None)
    arguments = parser.parse_args()

    storage = Storage(arguments.store)
    fingerprint = arguments.fingerprint or sorted({fingerprint_of(key) for key in storage.list("shards")})[-1]
    videos = [object_attributes(read_shard(storage, key)) for key in storage.list(f"shards/{fingerprint}/train")]
    folds = held_out_parts(videos)
    held_out = [video for fold in folds for video in fold]
    mean_flow = np.concatenate([video.flow[:, FLOW_MEAN] for video in held_out])
    moving_speed = np.concatenate([video.flow[:, MOVING_MAGNITUDE] for video in held_out])
    rows = []
    for label, (name, config) in DENSITIES.items():
        fits = HeldOutFits(lambda name=name, config=config: make_density(name, config), folds)
        scores = np.concatenate([values for fold in fits.scores for values in fold])
        top = scores >= np.quantile(scores, 1 - arguments.top)
        mean_percentiles = percentile_within(mean_flow, mean_flow[top])
        row = {"density": label, "n_objects": int(len(scores)), "n_top": int(top.sum()),
               "mean_flow_percentile_median": float(np.median(mean_percentiles)),
               "share_slower_than_median": float(np.mean(mean_flow[top] < np.median(mean_flow))),
               "moving_speed_percentile_median": float(np.median(percentile_within(moving_speed, moving_speed[top])))}
        rows.append(row)
        print(f"{label:28s} top {row['n_top']} of {row['n_objects']}: median box-mean-flow percentile "
              f"{100 * row['mean_flow_percentile_median']:.1f}, slower than the median object "
              f"{100 * row['share_slower_than_median']:.1f}%", flush=True)
    if arguments.json:
        arguments.json.write_text(json.dumps({"fingerprint": fingerprint, "top_share": arguments.top, "rows": rows},
                                             indent=1))


if __name__ == "__main__":
    main()
