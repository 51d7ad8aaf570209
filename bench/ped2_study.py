"""What each part adds: node-feature groups x scorers x score propagation, on real shards.

Reads the train/test shards that a pipeline run wrote (``anograph run ... --out OUT``
leaves them under ``OUT/store/shards/<fingerprint>/``), fits one model per feature-group
set and detector-confidence floor, and scores the test split with every scorer and
several score-propagation depths. Prints a table and writes JSON.

Every number here is computed on the *test labels*: this is a study of the method, and
any default chosen from it is a choice made on test data (the README says so).

    python bench/ped2_study.py --store OUT/store --dataset ucsd-ped2 \
        --root ../shared/data/UCSD_Anomaly_Dataset.v1p2 --json bench/ped2_study.json

``--selection-seeds 0,1,2`` instead refits the default ``attributes`` scorer with each seed
(the selection's pseudo-anomalies and the mixtures' initialisation) and prints its figure per
seed: the spread to read the headline with.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from anograph.datasets import load_dataset
from anograph.evaluation import metrics
from anograph.graph.windows import frame_scores, window_radius
from anograph.io.extraction_settings import fingerprint_of
from anograph.io.shards import VideoFeatures, read_shard
from anograph.io.storage import Storage
from anograph.models.attribute_scoring import AttributeScoring
from anograph.models.estimator import SCORERS, AnoGraph
from anograph.models.frame_scoring import scorer_frame_scores

GROUP_SETS = {
    "all": None,
    "class+frame_flow": ("class", "frame_flow"),
    "appearance+class+frame_flow": ("appearance", "class", "frame_flow"),
    "class": ("class",),
    "frame_flow": ("frame_flow",),
    "motion": ("motion",),
    "appearance": ("appearance",),
    "geometry": ("geometry",),
}


def keep_confident(video: VideoFeatures, floor: float) -> VideoFeatures:
    """The video's objects with detector score >= ``floor`` (a stricter detector threshold)."""
    keep = video.scores >= floor
    return VideoFeatures(video.metadata, video.frames[keep], video.boxes[keep], video.scores[keep],
                         video.class_ids[keep], video.features[keep], sources=video.sources[keep],
                         track_ids=video.track_ids[keep])


def non_person_baseline(videos: list[VideoFeatures]) -> dict[str, np.ndarray]:
    """The trivial baseline: each frame's highest non-person class score (COCO detectors only)."""
    scores = {}
    for video in videos:
        layout, names = video.metadata.feature_layout, video.metadata.class_names
        class_scores = np.asarray(video.features[:, layout.slice("class")], np.float64).copy()
        class_scores[:, names.index("person")] = 0.0
        scores[video.metadata.video] = frame_scores(class_scores.max(axis=1), video.frame_offsets())
    return scores


def attribute_seed_spread(train: list[VideoFeatures], test: list[VideoFeatures], labels: dict[str, np.ndarray],
                          seeds: list[int]) -> list[dict]:
    """The default scorer refitted with each selection seed: its choice and test frame AUC (reporting only)."""
    rows = []
    for seed in seeds:
        scoring = AttributeScoring.fit(train, seed=seed)
        scores = metrics.fill_empty_frames({video.metadata.video: scoring.frame_scores(video, scoring.score(video))
                                            for video in test})
        chosen = scoring.selection["chosen"]
        row = {"seed": seed, "attributes": chosen["attributes"], "combination": chosen.get("combination", "sum"),
               "track_radius": chosen["track_radius"], "motion_field": scoring.motion_field is not None,
               "micro": metrics.frame_auc_micro(scores, labels), "macro": metrics.frame_auc_macro(scores, labels)}
        beside = ", the motion field beside" if row["motion_field"] else ""
        print(f"seed {seed}: {row['combination']} of {row['attributes']}{beside}, track radius {row['track_radius']}: "
              f"micro {row['micro']:.4f} macro {row['macro']:.4f}", flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="storage root holding shards/<fingerprint>/{train,test}")
    parser.add_argument("--dataset", default="ucsd-ped2")
    parser.add_argument("--root", required=True)
    parser.add_argument("--fingerprint", default=None, help="shard fingerprint folder (default: the only one)")
    parser.add_argument("--groups", default="all,class+frame_flow,appearance+class+frame_flow,class,frame_flow,motion,appearance,geometry")
    parser.add_argument("--confidence", default="0.3", help="comma-separated detector-score floors")
    parser.add_argument("--steps", default="0,3,5", help="comma-separated score-propagation steps")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--window-seconds", type=float, default=1.0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--baseline-only", action="store_true", help="print the trivial baseline and stop")
    parser.add_argument("--selection-seeds", default=None,
                        help="comma-separated seeds: refit the attributes scorer with each, print its figures and stop")
    arguments = parser.parse_args()
    torch.set_num_threads(2)

    storage = Storage(arguments.store)
    fingerprint = arguments.fingerprint or sorted({fingerprint_of(key) for key in storage.list("shards")})[-1]
    train = [read_shard(storage, key) for key in storage.list(f"shards/{fingerprint}/train")]
    test = [read_shard(storage, key) for key in storage.list(f"shards/{fingerprint}/test")]
    dataset = load_dataset(arguments.dataset, arguments.root)
    labels = {video.metadata.video: dataset.labels[video.metadata.video] for video in test}
    radius = window_radius(arguments.window_seconds, dataset.fps or test[0].metadata.fps or 10)
    baseline = metrics.fill_empty_frames(non_person_baseline(test))
    smoothed = metrics.smooth_scores(baseline, 3.0)
    print(f"trivial baseline (highest non-person class score): micro {metrics.frame_auc_micro(baseline, labels):.4f} "
          f"macro {metrics.frame_auc_macro(baseline, labels):.4f} | sigma=3 micro "
          f"{metrics.frame_auc_micro(smoothed, labels):.4f} macro {metrics.frame_auc_macro(smoothed, labels):.4f}")
    if arguments.baseline_only:
        return
    if arguments.selection_seeds:
        rows = attribute_seed_spread(train, test, labels, [int(seed) for seed in arguments.selection_seeds.split(",")])
        if arguments.json:
            arguments.json.write_text(json.dumps({"dataset": arguments.dataset, "fingerprint": fingerprint,
                                                  "metric": "frame AUC micro/macro (pad), unsmoothed",
                                                  "selection_seeds": rows}, indent=1))
        return
    rows = []
    print(f"{'groups':30s} {'conf':>5s} {'steps':>5s} " + " ".join(f"{name:>22s}" for name in SCORERS))
    for confidence in [float(value) for value in arguments.confidence.split(",")]:
        train_kept = [keep_confident(video, confidence) for video in train]
        test_kept = [keep_confident(video, confidence) for video in test]
        for group_name in arguments.groups.split(","):
            started = time.perf_counter()
            model = AnoGraph(feature_groups=GROUP_SETS[group_name], max_epochs=arguments.epochs).fit(train_kept)
            fit_seconds = time.perf_counter() - started
            for steps in [int(value) for value in arguments.steps.split(",")]:
                model.score_propagation_steps = steps
                per_scorer: dict[str, dict[str, np.ndarray]] = {name: {} for name in SCORERS}
                for video in test_kept:
                    for name, values in model.score_video(video, radius).items():
                        per_scorer[name][video.metadata.video] = scorer_frame_scores(model, video, name, values)
                result = {"groups": group_name, "confidence": confidence, "steps": steps,
                          "fit_seconds": round(fit_seconds, 1), "separation": model.training_separation_}
                cells = []
                for name, scores in per_scorer.items():
                    filled = metrics.fill_empty_frames(scores)
                    micro = metrics.frame_auc_micro(filled, labels)
                    macro = metrics.frame_auc_macro(filled, labels)
                    result[name] = {"micro": micro, "macro": macro}
                    cells.append(f"{micro:.3f}/{macro:.3f}")
                rows.append(result)
                print(f"{group_name:30s} {confidence:5.2f} {steps:5d} " + " ".join(f"{cell:>22s}" for cell in cells),
                      flush=True)
    if arguments.json:
        arguments.json.write_text(json.dumps({"dataset": arguments.dataset, "fingerprint": fingerprint,
                                              "window_radius": radius, "epochs": arguments.epochs,
                                              "metric": "frame AUC micro/macro (pad), unsmoothed",
                                              "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
