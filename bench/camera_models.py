"""Per-camera attribute models against one model of all cameras, on the same shards.

Reads the shards an ``anograph run`` of a multi-camera dataset wrote (each records its camera),
fits the default scorer three ways on the training shards, scores the test shards, and prints
the frame AUC (micro: all frames pooled, macro: mean per video; unsmoothed) overall and per
camera: the product's default (each camera its own model where that validates better than the
shared one on its footage, ``anograph.models.camera_scoring``), every camera its own model, and
one model of every camera's footage.

    python bench/camera_models.py --store /tmp/two_cameras_run/store --dataset shanghaitech \\
        --root /tmp/two_cameras --json bench/camera_models.json

(``bench/camera_layout.py`` builds such a dataset from UCSD Ped2 and a resampled copy.) Test
labels are read to report only; nothing is chosen on them.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from anograph.datasets import load_dataset
from anograph.evaluation import metrics
from anograph.io.extraction_settings import fingerprint_of
from anograph.io.shards import VideoFeatures, read_shard
from anograph.io.storage import Storage
from anograph.models.attribute_scoring import AttributeScoring, training_objects
from anograph.models.camera_scoring import CameraScorings, fit_attribute_scoring


def every_camera_its_own(videos: list[VideoFeatures], seed: int = 0) -> CameraScorings:
    """One :class:`AttributeScoring` per camera, whatever the validation says."""
    cameras = sorted({video.metadata.camera for video in videos})
    by_camera = {}
    for camera in cameras:
        objects, radii = training_objects([video for video in videos if video.metadata.camera == camera])
        by_camera[camera] = AttributeScoring.fit_objects(objects, radii, seed=seed)
    return CameraScorings(by_camera, {video.metadata.video: video.metadata.camera for video in videos})


def figures(scores: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, float]:
    return {"micro": metrics.frame_auc_micro(scores, labels), "macro": metrics.frame_auc_macro(scores, labels)}


def evaluate(scoring, test: list[VideoFeatures], labels: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Frame AUCs of ``scoring`` on every test video, and on each camera's videos."""
    scores = metrics.fill_empty_frames({video.metadata.video: scoring.frame_scores(video, scoring.score(video))
                                        for video in test})
    rows = {"all": figures(scores, labels)}
    for camera in sorted({video.metadata.camera for video in test}):
        names = [video.metadata.video for video in test if video.metadata.camera == camera]
        rows[f"camera {camera}"] = figures({name: scores[name] for name in names}, {name: labels[name] for name in names})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="the store of an `anograph run` (OUT/store)")
    parser.add_argument("--dataset", default="shanghaitech")
    parser.add_argument("--root", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    arguments = parser.parse_args()

    storage = Storage(arguments.store)
    fingerprint = sorted({fingerprint_of(key) for key in storage.list("shards")})[-1]
    train = [read_shard(storage, key) for key in storage.list(f"shards/{fingerprint}/train")]
    test = [read_shard(storage, key) for key in storage.list(f"shards/{fingerprint}/test")]
    dataset = load_dataset(arguments.dataset, arguments.root)
    labels = {video.metadata.video: dataset.labels[video.metadata.video] for video in test}
    cameras = sorted({video.metadata.camera for video in train})
    print(f"{len(train)} training and {len(test)} test shards of cameras {cameras}", flush=True)

    rows, chosen, seconds = {}, {}, {}
    for name, fit in (("the default", fit_attribute_scoring), ("every camera its own model", every_camera_its_own),
                      ("one model of all cameras", AttributeScoring.fit)):
        started = time.perf_counter()
        scoring = fit(train, seed=arguments.seed)
        seconds[name] = round(time.perf_counter() - started, 1)
        selection = scoring.selection
        chosen[name] = ({camera: own["chosen"]["attributes"] for camera, own in selection["cameras"].items()}
                        if "cameras" in selection else selection["chosen"]["attributes"])
        if selection.get("camera_choice"):
            chosen[name] = {"models": chosen[name],
                            "uses": {entry["camera"]: entry["uses"] for entry in selection["camera_choice"]}}
        rows[name] = evaluate(scoring, test, labels)
        print(f"{name} (fitted in {seconds[name]} s; chose {chosen[name]}):", flush=True)
        for part, values in rows[name].items():
            print(f"  {part:12s} micro {100 * values['micro']:.2f}  macro {100 * values['macro']:.2f}", flush=True)
    if arguments.json:
        arguments.json.write_text(json.dumps({
            "command": "python bench/camera_models.py --store STORE --dataset "
                       f"{arguments.dataset} --root ROOT --seed {arguments.seed}",
            "machine": {"cpus": torch.get_num_threads(), "platform": platform.platform(),
                        "cpu_capability": torch.backends.cpu.get_cpu_capability()},
            "cameras": cameras, "rows": rows, "chosen": chosen, "fit_seconds": seconds,
        }, indent=1) + "\n")


if __name__ == "__main__":
    main()
