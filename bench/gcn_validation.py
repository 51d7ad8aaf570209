"""Does the DGI-trained GCN add to the attribute ensemble on the label-free validation?

The default scorer's attributes are chosen on held-out pseudo-anomalies of the training
videos (:mod:`anograph.selection`). The GCN is not one of the candidates there, because its
input is a graph of raw node features, not the attribute table the pseudo-anomalies alter.
This bench puts it through the same protocol:

1. the training videos are split into the selection's folds; for each fold a model
   (:class:`~anograph.models.estimator.AnoGraph`, DGI-trained one-layer GCN) is fitted on
   the other folds, reading only the feature groups a pseudo-anomaly can alter
   consistently (``class``, ``geometry``, ``flow_stats``: a speed-up then changes every
   speed the GCN sees, a swapped shape its box and geometry);
2. each held-out video is scored as it is and with each kind's altered tracks written back
   into its raw rows (boxes and feature columns), through the same sliding test windows as
   at test time, by the GCN scorers ``knn`` (embedding kNN) and ``discriminator`` (the
   paper's 1 - D(h, s));
3. those scores are calibrated like an attribute's (minimum and 99.9th percentile of the
   held-out clean scores) and validated alone and beside the selection's chosen ensemble,
   with its rule and track smoothing.

Every figure is a held-out frame AUC on the *training* videos; no test label is read.

    python bench/gcn_validation.py --store OUT/store --json bench/gcn_validation.json
    python bench/gcn_validation.py --store OUT/store --feature-scaling column \
        --json bench/gcn_validation_column.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from anograph.attributes.ensemble import calibration_bounds, held_out_parts
from anograph.attributes.objects import ObjectAttributes, object_attributes
from anograph.defaults import DEFAULT_WINDOW_SECONDS, REFERENCE_FEATURE_GROUPS
from anograph.graph.windows import window_radius
from anograph.io.extraction_settings import fingerprint_of
from anograph.io.shards import VideoFeatures, read_shard
from anograph.io.storage import Storage
from anograph.selection.choice import CandidateResult, select_attributes
from anograph.selection.validation import ValidationScores

GCN_SCORERS = ("knn", "discriminator")


def with_attributes(video: VideoFeatures, objects: ObjectAttributes) -> VideoFeatures:
    """``video`` with its boxes and ``class`` / ``geometry`` / ``flow_stats`` columns rewritten from ``objects``."""
    layout = video.metadata.feature_layout
    height, width = float(video.metadata.height), float(video.metadata.width)
    centres, sizes = objects.centres * height, objects.sizes * height
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1).astype(np.float32)
    features = video.features.copy()
    features[:, layout.slice("class")] = objects.class_scores
    features[:, layout.slice("flow_stats")] = objects.flow
    features[:, layout.slice("geometry")] = np.stack(
        [centres[:, 0] / width, centres[:, 1] / height, sizes[:, 0] / width, sizes[:, 1] / height], axis=1)
    return replace(video, boxes=boxes, features=features)


def gcn_scores(train: list[VideoFeatures], folds: list[list[ObjectAttributes]], validation: ValidationScores,
               radius: int, epochs: int, seed: int, feature_scaling: str = "group") -> tuple[dict[str, list], dict[str, dict[str, list]], float]:
    """Raw clean and altered held-out scores per GCN scorer, fold and video (and the seconds it took)."""
    from anograph.models.estimator import AnoGraph

    # Only the GCN is scored here: skip each fold's own attribute selection.
    AnoGraph._fit_attributes = lambda self, videos: setattr(self, "attribute_scoring_", None)
    by_name = {video.metadata.video: video for video in train}
    clean = {name: [] for name in GCN_SCORERS}
    altered = {name: {kind: [] for kind in validation.kinds} for name in GCN_SCORERS}
    started = time.perf_counter()
    for fold_index, fold in enumerate(folds):
        others = [by_name[video.video] for other, part in enumerate(folds) if other != fold_index for video in part]
        model = AnoGraph(feature_groups=REFERENCE_FEATURE_GROUPS, max_epochs=epochs, seed=seed, feature_scaling=feature_scaling).fit(others)
        for name in GCN_SCORERS:
            clean[name].append([])
            for kind in validation.kinds:
                altered[name][kind].append([])
        for video_index, objects in enumerate(fold):
            video = by_name[objects.video]
            for name, values in model.score_video(video, radius, GCN_SCORERS).items():
                clean[name][-1].append(values)
            for kind in validation.kinds:
                changed = with_attributes(video, validation.altered[kind][fold_index][video_index])
                for name, values in model.score_video(changed, radius, GCN_SCORERS).items():
                    altered[name][kind][-1].append(values)
        print(f"fold {fold_index + 1}/{len(folds)} scored ({time.perf_counter() - started:.0f} s)", flush=True)
    return clean, altered, time.perf_counter() - started


def add_calibrated(validation: ValidationScores, key: int, clean: list, altered: dict[str, list]) -> None:
    """Register raw held-out scores with ``validation`` under ``key``, calibrated as an attribute's are."""
    low, high = calibration_bounds(np.concatenate([scores for fold in clean for scores in fold]))
    scale = lambda scores: (scores - low) / (high - low)  # noqa: E731
    validation.add_scores(key, [[scale(scores) for scores in fold] for fold in clean],
                          {kind: [[scale(scores) for scores in fold] for fold in per_fold]
                           for kind, per_fold in altered.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="storage root holding shards/<fingerprint>/train")
    parser.add_argument("--fingerprint", default=None, help="shard fingerprint folder (default: the last)")
    parser.add_argument("--epochs", type=int, default=20, help="DGI epochs per fold (the plain run's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--feature-scaling", default="group", choices=("group", "column"),
                        help="the GCN's input scaling (AnoGraph feature_scaling; default group, the model's own "
                             "default; a plain run's reference GCN uses column)")
    parser.add_argument("--json", type=Path, default=None)
    arguments = parser.parse_args()
    torch.set_num_threads(2)

    storage = Storage(arguments.store)
    fingerprint = arguments.fingerprint or sorted({fingerprint_of(key) for key in storage.list("shards")})[-1]
    train = [read_shard(storage, key) for key in storage.list(f"shards/{fingerprint}/train")]
    radius = window_radius(DEFAULT_WINDOW_SECONDS, train[0].metadata.fps or 10)
    objects = [object_attributes(video) for video in train]
    selection = select_attributes(objects, seed=arguments.seed, track_radii=[0, radius])
    chosen = selection.chosen
    print(f"chosen: {chosen.combination} of {chosen.labels}, track radius {chosen.track_radius}, "
          f"validation {100 * chosen.mean_auc:.1f}", flush=True)

    # The same folds, pseudo-anomalies and chosen tracks as the selection (same seed).
    folds = held_out_parts(objects)
    validation = ValidationScores(folds, selection.kinds, seed=arguments.seed)
    for position, fits in enumerate(selection.ensemble.held_out_fits_):
        validation.add(position, fits)
    ensemble_keys = list(range(len(selection.ensemble.held_out_fits_)))
    clean, altered, seconds = gcn_scores(train, folds, validation, radius, arguments.epochs, arguments.seed,
                                      arguments.feature_scaling)

    rows = []

    def validate(label: str, keys: list[int], combination: str, track_radius: int) -> None:
        result = CandidateResult([], [label], {kind: validation.auc(keys, kind, track_radius, combination)
                                               for kind in selection.kinds}, "gcn", track_radius, combination)
        rows.append({"candidate": label, "combination": combination, "track_radius": track_radius,
                     "aucs": {kind: round(100 * value, 2) for kind, value in result.aucs.items()},
                     "mean": round(100 * result.mean_auc, 2)})
        print(f"{label:60s} " + " ".join(f"{kind} {100 * value:5.1f}" for kind, value in result.aucs.items())
              + f"  mean {100 * result.mean_auc:.1f}", flush=True)

    chosen_label = f"{chosen.combination}({', '.join(chosen.labels)})"
    validate(chosen_label, ensemble_keys, chosen.combination, chosen.track_radius)
    for offset, name in enumerate(GCN_SCORERS):
        key = len(ensemble_keys) + offset
        add_calibrated(validation, key, clean[name], altered[name])
        validate(f"GCN {name} alone", [key], "sum", 0)
        validate(f"GCN {name} alone, track smoothing", [key], "sum", chosen.track_radius)
        for combination in ("sum", "max"):
            validate(f"{combination}({', '.join(chosen.labels)}, GCN {name})", [*ensemble_keys, key], combination,
                     chosen.track_radius)
    if arguments.json:
        arguments.json.write_text(json.dumps({
            "command": "python bench/gcn_validation.py --store OUT/store"
                       + (f" --feature-scaling {arguments.feature_scaling}" if arguments.feature_scaling != "group" else "")
                       + f" --json {arguments.json}",
            "fingerprint": fingerprint, "gcn_groups": list(REFERENCE_FEATURE_GROUPS), "epochs": arguments.epochs,
            "feature_scaling": arguments.feature_scaling,
            "seed": arguments.seed, "window_radius": radius, "n_folds": len(folds),
            "gcn_seconds": round(seconds, 1),
            "machine": {"platform": platform.platform(), "torch_threads": torch.get_num_threads(),
                        "cpu_capability": torch.backends.cpu.get_cpu_capability()},
            "metric": "held-out pseudo-anomaly frame AUC on the training videos, %; mean over anomaly families",
            "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
