"""Flow: train the GCN + DGI model on training shards, calibrate its alerts and save the artifact."""

from __future__ import annotations

from typing import Any

from prefect import flow

from anograph.defaults import DEFAULT_WINDOW_SECONDS
from anograph.serving.calibration import DEFAULT_THRESHOLD_QUANTILE
from tasks.train import save_trained_model_task, train_model_task


@flow(name="train")
def train(storage_root: str, shard_keys: list[str], model_key: str,
          model_options: dict[str, Any] | None = None, window_seconds: float = DEFAULT_WINDOW_SECONDS,
          fps: float | None = None,
          threshold_quantile: float = DEFAULT_THRESHOLD_QUANTILE, keep_fraction: float = 1.0,
          fraction_seed: int = 0, batch_nodes: int | None = None,
          headline_scorer: str | None = None) -> dict[str, Any]:
    """Train on the shards (:func:`anograph.ops.training_run.train_model`) and save to ``model_key``.

    The alert calibration scores the training videos with test windows of ``window_seconds``
    (``fps`` when a shard does not say) and is saved beside the model. ``keep_fraction`` < 1
    trains on a seeded random share of the training frames. ``batch_nodes`` (default ``None``,
    full batch) trains in bounded memory; the result then has no graph time and no edge count.
    ``headline_scorer`` (default the product's) sets the GCN's training budget
    (:func:`anograph.ops.training_run.options_for_headline`).
    Returns :meth:`anograph.ops.training_run.TrainedModel.summary`: the model key, the seconds
    spent, the alert thresholds and the size of the training graph.
    """
    training = {"window_seconds": window_seconds, "default_fps": fps, "threshold_quantile": threshold_quantile,
                "keep_fraction": keep_fraction, "fraction_seed": fraction_seed, "batch_nodes": batch_nodes,
                "headline_scorer": headline_scorer}
    trained = train_model_task(storage_root, shard_keys, model_options, training)
    save_trained_model_task(trained, storage_root, model_key)
    return trained.summary(model_key)
