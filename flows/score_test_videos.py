"""Flow: score a dataset's test shards with a trained model, run the requested ablations, write the report.

The decisions are the library's: which ablation variants to train and score
(:mod:`anograph.evaluation.ablations`) and what the report records
(:mod:`anograph.evaluation.report_options`). This flow runs them as tasks, one per video.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prefect import flow, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from anograph.defaults import (
    DEFAULT_SCORER,
    DEFAULT_SMOOTHING_SIGMA,
    DEFAULT_WINDOW_SECONDS,
    default_scorer_for,
)
from anograph.evaluation.ablations import (
    EDGES_NOTE,
    FRACTION_NOTE,
    FULL_TRAINING_LABEL,
    WINDOW_NOTE,
    ablation_model_key,
    attribute_ablation,
    embedding_map_scorers,
    plan_edge_variants,
    plan_training_fractions,
    plan_window_sweep,
    requested_ablations,
    with_propagation,
)
from anograph.evaluation.report_options import gather_video_scores, report_labels, report_options
from anograph.models.attribute_scoring import ATTRIBUTE_SCORER
from anograph.models.estimator import AnoGraph
from anograph.ops.training_run import model_options
from flows.train import train
from tasks.evaluate import (
    alert_threshold_task,
    check_model_matches_shards,
    embedding_map_task,
    load_dataset_task,
    load_model,
    score_attribute_parts,
    score_video,
    stored_model_exists,
    write_report_task,
)


def _score_all(model: AnoGraph, storage_root: str, shard_keys: list[str], window_seconds: float,
               fps: float | None, radius: int | None = None) -> dict[str, Any]:
    futures = score_video.map(unmapped(model), unmapped(storage_root), shard_keys, unmapped(window_seconds),
                              unmapped(fps), unmapped(radius))
    return gather_video_scores([future.result() for future in futures])


def _ablation_model(storage_root: str, train_shard_keys: list[str], model_key: str, variant: str,
                    options: dict[str, Any], keep_fraction: float, seed: int) -> tuple[AnoGraph, dict[str, Any]]:
    """The retrained model of one ablation variant: loaded if an identical one was trained before."""
    key = ablation_model_key(model_key, variant, {**options, "keep_fraction": keep_fraction, "seed": seed})
    if stored_model_exists(storage_root, key):
        details: dict[str, Any] = {"model_key": key, "reused": True}
    else:
        details = train(storage_root, train_shard_keys, key, options, keep_fraction=keep_fraction,
                        fraction_seed=seed)
    model = load_model(storage_root, key)
    details.update({"n_training_nodes": model.n_training_nodes_, "epochs": model.n_epochs_})
    return model, details


@flow(name="score-test-videos", task_runner=ThreadPoolTaskRunner(max_workers=os.cpu_count() or 1))
def score_test_videos(
    dataset: str,
    root: str,
    storage_root: str,
    model_key: str,
    test_shard_keys: list[str],
    out: str,
    fps: float | None = None,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    default_scorer: str | None = None,
    smoothing_sigma: float = DEFAULT_SMOOTHING_SIGMA,
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
    ``ablations`` takes the keys of :data:`anograph.defaults.ABLATION_DEFAULTS`. Ablations that
    retrain (edges, training fractions) need ``train_shard_keys``; their models are stored beside
    the main model and reused by a rerun with the same settings.
    """
    started = time.perf_counter()
    wanted = requested_ablations(ablations, have_training_shards=bool(train_shard_keys))
    data = load_dataset_task(dataset, root, fps)
    model = load_model(storage_root, model_key)
    check_model_matches_shards(model, storage_root, test_shard_keys)
    main = _score_all(model, storage_root, test_shard_keys, window_seconds, data.fps)
    frame_scores_by_scorer = main["frames"]
    stages = dict(stage_seconds or {})
    stages["score"] = time.perf_counter() - started

    started = time.perf_counter()
    ablation_scores: dict[str, dict[str, Any]] = {}
    options = model_options(model)
    seed = int(wanted["seed"])
    if wanted["window_radii"]:
        steps = int(model.score_propagation_steps)
        scorings, rows = plan_window_sweep(wanted["window_radii"], model.graph_config, steps)
        scored = [_score_all(with_propagation(model, scoring.radius) if scoring.propagate else model, storage_root,
                             test_shard_keys, window_seconds, data.fps, scoring.radius)["frames"]
                  for scoring in scorings]
        ablation_scores["window"] = {"variants": {label: scored[index] for label, index in rows.items()},
                                     "note": WINDOW_NOTE.format(steps=steps),
                                     "details": {"radii": list(wanted["window_radii"])}}
    if wanted["edges"]:
        variants, details = {}, {}
        for variant, variant_options in plan_edge_variants(options).items():
            if variant_options is None:  # the main model already has exactly these edges
                variants[variant], details[variant] = frame_scores_by_scorer, {"model_key": model_key}
                continue
            variant_model, details[variant] = _ablation_model(
                storage_root, train_shard_keys or [], model_key, f"edges-{variant}", variant_options, 1.0, seed)
            variants[variant] = _score_all(variant_model, storage_root, test_shard_keys, window_seconds,
                                           data.fps)["frames"]
        ablation_scores["edges"] = {"variants": variants, "note": EDGES_NOTE, "details": details}
    if wanted["training_fractions"]:
        variants, details = {}, {}
        for label, fraction in plan_training_fractions(wanted["training_fractions"]).items():
            variant_model, details[label] = _ablation_model(
                storage_root, train_shard_keys or [], model_key, f"fraction-{fraction:g}", options, fraction, seed)
            variants[label] = _score_all(variant_model, storage_root, test_shard_keys, window_seconds,
                                         data.fps)["frames"]
        variants[FULL_TRAINING_LABEL], details[FULL_TRAINING_LABEL] = frame_scores_by_scorer, {"model_key": model_key}
        ablation_scores["training_fraction"] = {"variants": variants, "details": details,
                                                "note": FRACTION_NOTE.format(seed=wanted["seed"])}
    embedding = None
    if wanted["embedding"]:
        embedding = embedding_map_task(model, storage_root, test_shard_keys, window_seconds, data.fps,
                                       main["regions"], embedding_map_scorers(default_scorer or DEFAULT_SCORER),
                                       seed)
    if getattr(model, "attribute_scoring_", None) is not None:
        parts = [score_attribute_parts.submit(model, storage_root, key) for key in test_shard_keys]
        ablation_scores["attributes"] = attribute_ablation(
            [future.result() for future in parts], model.attribute_scoring().ablation_labels, ATTRIBUTE_SCORER)
    if ablation_scores or embedding is not None:
        stages["ablations"] = time.perf_counter() - started

    labels = report_labels(data, frame_scores_by_scorer)
    threshold = alert_threshold_task(model, storage_root, model_key,
                                     default_scorer or default_scorer_for(model.scorer_names)[0])
    options_for_report = report_options(
        dataset_name=dataset, dataset=data, detector=detector, model=model, model_key=model_key,
        model_options=options, regions=main["regions"], labels=labels, default_scorer=default_scorer,
        window_seconds=window_seconds, smoothing_sigma=smoothing_sigma, stage_seconds=stages, config=config,
        skipped_videos=skipped_videos, ablations=wanted, ablation_scores=ablation_scores, alert_threshold=threshold,
    )
    return write_report_task(out, frame_scores_by_scorer, labels, options_for_report, embedding,
                             storage_root, report_key)
