"""Flow: train the GCN + DGI model on training shards and save the artifact."""

from __future__ import annotations

import time
from typing import Any

from prefect import flow

from anograph.errors import InputError
from anograph.graph.batches import ShardVideos
from anograph.io.storage import Storage
from anograph.serving.calibration import DEFAULT_THRESHOLD_QUANTILE
from tasks.train import (
    build_training_graph,
    calibrate_alerts,
    discard_frames,
    fit_model,
    fit_model_from_shards,
    load_shards,
    new_model,
    save_model,
)


@flow(name="train")
def train(storage_root: str, shard_keys: list[str], model_key: str,
          model_options: dict[str, Any] | None = None, window_seconds: float = 1.0,
          fps: float | None = None,
          threshold_quantile: float = DEFAULT_THRESHOLD_QUANTILE, keep_fraction: float = 1.0,
          fraction_seed: int = 0, batch_nodes: int | None = None) -> dict[str, Any]:
    """Load the shards, build the training graph, fit, save to ``model_key``, calibrate alerts.

    The alert calibration scores the training videos with test windows of ``window_seconds``
    (``fps`` when a shard does not say) and is saved beside the model. ``keep_fraction`` < 1
    trains on a seeded random share of the training frames (the others are emptied; see
    :func:`anograph.evaluation.ablations.discard_training_frames`).
    Returns the model key and the seconds spent building the graph, fitting and calibrating.

    ``batch_nodes`` (default ``None``: full batch, every feature in memory) trains from the
    shards with at most about that many nodes' features in memory
    (:meth:`anograph.models.estimator.AnoGraph.fit_shards`), and calibrates the alerts reading one
    shard at a time; the graph is then never assembled, so the result has no graph time and
    no edge count (``None``).
    """
    if batch_nodes is not None:
        if keep_fraction < 1.0:
            raise InputError(None, "keep_fraction < 1 discards frames in memory; it cannot be combined with batch_nodes")
        model = new_model(model_options or {})
        started = time.perf_counter()
        model = fit_model_from_shards(model, storage_root, shard_keys, batch_nodes)
        save_model(model, storage_root, model_key)
        train_seconds = time.perf_counter() - started
        calibrated = time.perf_counter()
        thresholds = calibrate_alerts(model, ShardVideos(Storage(storage_root), shard_keys), storage_root,
                                      model_key, window_seconds, fps, threshold_quantile)
        return {
            "model_key": model_key,
            "seconds": {"train": train_seconds, "calibrate": time.perf_counter() - calibrated},
            "alert_thresholds": thresholds,
            "n_training_nodes": model.n_training_nodes_,
            "n_training_edges": None,
            "n_epochs": model.n_epochs_,
            "training_separation": model.training_separation_,
            "batch_nodes": batch_nodes,
        }
    videos = load_shards(storage_root, shard_keys)
    if keep_fraction < 1.0:
        videos = discard_frames(videos, keep_fraction, fraction_seed)
    model = new_model(model_options or {})
    started = time.perf_counter()
    graph = build_training_graph(model, videos)
    graph_seconds = time.perf_counter() - started
    model = fit_model(model, graph)
    save_model(model, storage_root, model_key)
    train_seconds = time.perf_counter() - started - graph_seconds
    calibrated = time.perf_counter()
    thresholds = calibrate_alerts(model, videos, storage_root, model_key, window_seconds, fps, threshold_quantile)
    return {
        "model_key": model_key,
        "seconds": {"graph": graph_seconds, "train": train_seconds,
                    "calibrate": time.perf_counter() - calibrated},
        "alert_thresholds": thresholds,
        "n_training_nodes": graph.n_nodes,
        "n_training_edges": graph.n_edges,
        "n_epochs": model.n_epochs_,
        "training_separation": model.training_separation_,
    }
