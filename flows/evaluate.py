"""Flow: score a dataset's test shards with a trained model, run the requested ablations, write the report."""

from __future__ import annotations

import os
import time
from typing import Any

from prefect import flow, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from anograph.errors import InputError
from anograph.evaluation.ablations import (
    DEFAULT_WINDOW_RADII,
    EDGE_VARIANTS,
    ablation_model_key,
    with_propagation,
)
from anograph.graph.windows import SlidingWindowGraph
from anograph.io.storage import Storage
from anograph.models.estimator import SCORERS, AnoGraph
from flows.train import train
from tasks.evaluate import (
    check_model_matches_shards,
    embedding_map_task,
    load_dataset_task,
    load_model,
    score_video,
    write_report_task,
)

DEFAULT_SCORER = "group_knn"
DEFAULT_SCORER_REASON = (
    "group_knn was the best or near-best scorer on both the synthetic scene and UCSD Ped2 in the study "
    "of the README, which was measured on their test labels; the paper's discriminator score "
    "1 - D(h, s_train) ranked near or below chance there. Every scorer's figures are reported side by side."
)
#: Ablations a run can ask for (``ablations`` argument of :func:`evaluate`), with their defaults.
ABLATION_DEFAULTS: dict[str, Any] = {
    "edges": False,  # retrain with spatial-only and temporal-only graphs
    "window_radii": [],  # test windows i to score the trained model with, e.g. [1, 3, 5, 10, 15]
    "training_fractions": [],  # shares of training frames to retrain on, e.g. [0.1, 0.5]
    "embedding": False,  # t-SNE map of test-object embeddings
    "seed": 0,  # seeds frame discarding and t-SNE
}
ALL_ABLATIONS: dict[str, Any] = {
    "edges": True, "window_radii": list(DEFAULT_WINDOW_RADII), "training_fractions": [0.1, 0.5],
    "embedding": True, "seed": 0,
}
WINDOW_NOTE = (
    "One trained model, no retraining. For this one-layer encoder an object's embedding depends only on "
    "frames t-1..t+1 (t-2..t+2 with symmetric normalisation), so any i at or above that reach gives the "
    "same embeddings and raw scores (anograph.graph.windows); i matters here through score propagation, capped at "
    "i steps. Rows 'i=N' use the model's own propagation setting ({steps} steps); rows 'i=N, propagate i' "
    "spread scores i steps over the window graph, so the score of frame t sees frames t-i..t+i."
)
EDGES_NOTE = (
    "One model per row, retrained with only those edges (all else equal). Scorers that do not use the "
    "graph (feature_knn, group_knn without propagation) cannot change between rows; knn and discriminator "
    "use the GCN embeddings and can."
)
FRACTION_NOTE = (
    "One model per row, retrained on a seeded random share of the training frames (seed {seed}); the other "
    "frames are emptied, so no temporal edge spans a discarded frame. 100% is the main model."
)


def _score_all(model: AnoGraph, storage_root: str, shard_keys: list[str], window_seconds: float,
               fps: float | None, radius: int | None = None) -> dict[str, Any]:
    futures = score_video.map(unmapped(model), unmapped(storage_root), shard_keys, unmapped(window_seconds),
                              unmapped(fps), unmapped(radius))
    results = [future.result() for future in futures]
    return {
        "frames": {name: {video: frames[name] for video, frames, _ in results} for name in SCORERS},
        "regions": {video: regions for video, _, regions in results},
    }


def _ablation_model(storage_root: str, train_shard_keys: list[str], model_key: str, variant: str,
                    options: dict[str, Any], keep_fraction: float, seed: int) -> tuple[AnoGraph, dict[str, Any]]:
    """The retrained model of one ablation variant: loaded if an identical one was trained before."""
    key = ablation_model_key(model_key, variant, {**options, "keep_fraction": keep_fraction, "seed": seed})
    if Storage(storage_root).exists(f"{key}/model.json"):
        details: dict[str, Any] = {"model_key": key, "reused": True}
    else:
        details = train(storage_root, train_shard_keys, key, options, keep_fraction=keep_fraction,
                        fraction_seed=seed)
    model = load_model(storage_root, key)
    details.update({"n_training_nodes": model.n_training_nodes_, "epochs": model.n_epochs_})
    return model, details


@flow(name="evaluate", task_runner=ThreadPoolTaskRunner(max_workers=os.cpu_count() or 1))
def evaluate(
    dataset: str,
    root: str,
    storage_root: str,
    model_key: str,
    test_shard_keys: list[str],
    out: str,
    fps: float | None = None,
    window_seconds: float = 1.0,
    default_scorer: str | None = None,
    smoothing_sigma: float = 3.0,
    detector: str = "",
    stage_seconds: dict[str, float] | None = None,
    config: dict[str, Any] | None = None,
    report_key: str | None = None,
    skipped_videos: list[dict[str, str]] | None = None,
    train_shard_keys: list[str] | None = None,
    ablations: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score every test shard (one task per video), run ablations, write ``out/report.json`` and ``report.md``.

    With ``report_key`` the report files are also stored under ``report_key/`` in the storage root.
    ``skipped_videos`` (from extraction with ``skip_bad_videos``) are listed in the report.
    ``ablations`` takes the keys of :data:`ABLATION_DEFAULTS`. Ablations that retrain
    (edges, training fractions) need ``train_shard_keys``; their models are stored beside
    the main model and reused by a rerun with the same settings.
    """
    started = time.perf_counter()
    wanted = {**ABLATION_DEFAULTS, **(ablations or {})}
    data = load_dataset_task(dataset, root, fps)
    model = load_model(storage_root, model_key)
    check_model_matches_shards(model, storage_root, test_shard_keys)
    main = _score_all(model, storage_root, test_shard_keys, window_seconds, data.fps)
    frame_scores_by_scorer = main["frames"]
    labels = {name: data.labels[name] for name in frame_scores_by_scorer[SCORERS[0]]}
    stages = dict(stage_seconds or {})
    stages["score"] = time.perf_counter() - started

    started = time.perf_counter()
    ablation_scores: dict[str, dict[str, Any]] = {}
    options = model.get_params(deep=False) | {"graph": model.graph_config.to_dict()}
    if options.get("feature_groups") is not None:
        options["feature_groups"] = list(options["feature_groups"])
    retraining = wanted["edges"] or wanted["training_fractions"]
    if retraining and not train_shard_keys:
        raise InputError(None, "the edge and training-fraction ablations retrain, so they need training shards")
    if wanted["window_radii"]:
        steps = int(model.score_propagation_steps)
        variants: dict[str, Any] = {}
        # Scoring depends on the radius only through min(radius, reach) (the window the encoder sees,
        # SlidingWindowGraph.effective_radius) and min(steps, radius) (propagation): radii equal in both
        # give identical scores by construction, so each distinct pair is scored once.
        reach = SlidingWindowGraph(max(wanted["window_radii"]), model.graph_config).effective_radius
        scored: dict[tuple[int, int], Any] = {}
        for radius in wanted["window_radii"]:
            effective = (min(radius, reach), min(steps, radius))
            if effective not in scored:
                scored[effective] = _score_all(model, storage_root, test_shard_keys, window_seconds,
                                               data.fps, radius)["frames"]
            variants[f"i={radius}"] = scored[effective]
            variants[f"i={radius}, propagate {radius}"] = _score_all(
                with_propagation(model, radius), storage_root, test_shard_keys, window_seconds, data.fps, radius,
            )["frames"]
        ablation_scores["window"] = {"variants": variants, "note": WINDOW_NOTE.format(steps=steps),
                                     "details": {"radii": list(wanted["window_radii"])}}
    if wanted["edges"]:
        variants, details = {}, {}
        for variant in EDGE_VARIANTS:
            if all(model.graph_config.to_dict()[part] == value for part, value in EDGE_VARIANTS[variant].items()):
                variants[variant], details[variant] = frame_scores_by_scorer, {"model_key": model_key}
                continue
            graph = dict(options["graph"], **EDGE_VARIANTS[variant])
            variant_model, details[variant] = _ablation_model(
                storage_root, train_shard_keys or [], model_key, f"edges-{variant}", {**options, "graph": graph},
                1.0, int(wanted["seed"]))
            variants[variant] = _score_all(variant_model, storage_root, test_shard_keys, window_seconds,
                                           data.fps)["frames"]
        ablation_scores["edges"] = {"variants": variants, "note": EDGES_NOTE, "details": details}
    if wanted["training_fractions"]:
        variants, details = {}, {}
        for fraction in sorted(float(value) for value in wanted["training_fractions"]):
            if fraction >= 1.0:
                continue
            variant_model, details[f"{fraction:.0%}"] = _ablation_model(
                storage_root, train_shard_keys or [], model_key, f"fraction-{fraction:g}", options, fraction,
                int(wanted["seed"]))
            variants[f"{fraction:.0%}"] = _score_all(variant_model, storage_root, test_shard_keys, window_seconds,
                                                     data.fps)["frames"]
        variants["100%"], details["100%"] = frame_scores_by_scorer, {"model_key": model_key}
        ablation_scores["training_fraction"] = {"variants": variants, "details": details,
                                                "note": FRACTION_NOTE.format(seed=wanted["seed"])}
    embedding = None
    if wanted["embedding"]:
        scorer_names = list(dict.fromkeys([default_scorer or DEFAULT_SCORER, "discriminator"]))
        embedding = embedding_map_task(model, storage_root, test_shard_keys, window_seconds, data.fps,
                                       main["regions"], scorer_names, int(wanted["seed"]))
    if ablation_scores or embedding is not None:
        stages["ablations"] = time.perf_counter() - started

    scorer = default_scorer or DEFAULT_SCORER
    ground_truth = {video.name: getattr(video, "ground_truth_regions", None) for video in data.test}
    report_options = {
        "dataset": dataset,
        "detector": detector,
        "default_scorer": scorer,
        "default_scorer_reason": DEFAULT_SCORER_REASON if default_scorer is None else "chosen by the user",
        "stage_seconds": stages,
        "smoothing_sigma": smoothing_sigma,
        "skipped_videos": skipped_videos or [],
        "config": {**(config or {}), "model_key": model_key, "window_seconds": window_seconds,
                   "model": options, "model_detector": model.detector_,
                   "model_training": {"separation": model.training_separation_, "epochs": model.n_epochs_,
                                      "n_nodes": model.n_training_nodes_},
                   "ablations": wanted},
        "object_regions": {name: {video: regions[name] for video, regions in main["regions"].items()}
                           for name in SCORERS},
        "ground_truth_regions": {name: ground_truth.get(name) for name in labels},
        "ablations": ablation_scores,
    }
    return write_report_task(out, frame_scores_by_scorer, labels, report_options, embedding,
                             storage_root, report_key)

