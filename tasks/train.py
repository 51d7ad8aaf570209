"""Tasks of the training stage: load shards, build the graph, fit, save (wrappers over ``anograph``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from anograph.evaluation.ablations import discard_training_frames
from anograph.graph.build import GraphConfig
from anograph.io.shards import VideoFeatures, read_shard
from anograph.io.storage import Storage
from anograph.models.estimator import AnoGraph, TrainingGraph
from anograph.serving.calibration import calibrate_frame_scores, save_frame_calibration
from tasks.retry import retry_unless_bad_input


@task(name="load-shards", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_unless_bad_input,
      cache_policy=NO_CACHE)
def load_shards(storage_root: str, keys: list[str]) -> list[VideoFeatures]:
    """Read shards in the order given."""
    storage = Storage(storage_root)
    videos = [read_shard(storage, key) for key in keys]
    get_run_logger().info("loaded %d shards, %d objects", len(videos), sum(v.n_objects for v in videos))
    return videos


@task(name="discard-frames", cache_policy=NO_CACHE, retry_condition_fn=retry_unless_bad_input)
def discard_frames(videos: list[VideoFeatures], keep_fraction: float, seed: int) -> list[VideoFeatures]:
    """Keep a seeded random share of the training frames (the training-fraction ablation)."""
    kept = discard_training_frames(videos, keep_fraction, seed)
    get_run_logger().info(
        "kept %.0f%% of training frames: %d of %d objects", 100 * keep_fraction,
        sum(v.n_objects for v in kept), sum(v.n_objects for v in videos),
    )
    return kept


def new_model(options: dict[str, Any]) -> AnoGraph:
    """An unfitted model from JSON-friendly options (``graph`` as a dict, groups as a list)."""
    options = dict(options)
    if isinstance(options.get("graph"), dict):
        options["graph"] = GraphConfig.from_dict(options["graph"])
    if options.get("feature_groups") is not None:
        options["feature_groups"] = tuple(options["feature_groups"])
    return AnoGraph(**options)


@task(name="build-graph", cache_policy=NO_CACHE, retry_condition_fn=retry_unless_bad_input)
def build_training_graph(model: AnoGraph, videos: list[VideoFeatures]) -> TrainingGraph:
    """Fit the standardiser and build the block-diagonal sparse training adjacency."""
    graph = model.prepare_training_graph(videos)
    get_run_logger().info(
        "training graph: %d nodes, %d edges (%.1f per node), built in %.1f s",
        graph.n_nodes, graph.n_edges, graph.n_edges / max(graph.n_nodes, 1), graph.seconds,
    )
    return graph


@task(name="fit-model", cache_policy=NO_CACHE, retry_condition_fn=retry_unless_bad_input)
def fit_model(model: AnoGraph, graph: TrainingGraph) -> AnoGraph:
    """Train the one-layer GCN with Deep Graph Infomax, logging the loss every 10 epochs."""
    logger = get_run_logger()

    def progress(epoch: int, loss: float) -> None:
        if epoch % 10 == 0:
            logger.info("epoch %d/%d: loss %.4f", epoch, model.max_epochs, loss)

    model.fit_graph(graph, progress=progress)
    logger.info(
        "trained %d epochs (best %d), loss %.4f -> %.4f, clean/corrupted separation %.3f",
        model.n_epochs_, model.best_epoch_, model.history_[0], model.history_[model.best_epoch_],
        model.training_separation_,
    )
    return model


@task(name="fit-model-from-shards", cache_policy=NO_CACHE, retry_condition_fn=retry_unless_bad_input)
def fit_model_from_shards(model: AnoGraph, storage_root: str, keys: list[str], batch_nodes: int) -> AnoGraph:
    """Train from the shards with at most about ``batch_nodes`` nodes' features in memory (:meth:`AnoGraph.fit_shards`)."""
    logger = get_run_logger()

    def progress(epoch: int, loss: float) -> None:
        if epoch % 10 == 0:
            logger.info("epoch %d/%d: loss %.4f", epoch, model.max_epochs, loss)

    model.fit_shards(Storage(storage_root), keys, batch_nodes=batch_nodes, progress=progress)
    logger.info(
        "trained from %d shards (%d nodes, batches of at most %d) for %d epochs (best %d), loss %.4f -> %.4f, "
        "separation %.3f (first batch)", len(keys), model.n_training_nodes_, batch_nodes, model.n_epochs_,
        model.best_epoch_, model.history_[0], model.history_[model.best_epoch_], model.training_separation_,
    )
    return model


@task(name="save-model", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def save_model(model: AnoGraph, storage_root: str, key: str) -> str:
    """Write the model artifact (safetensors + JSON) under ``key``."""
    model.save(Storage(storage_root), key)
    get_run_logger().info("model saved to %s/%s", storage_root, key)
    return key


@task(name="calibrate-alerts", cache_policy=NO_CACHE, retry_condition_fn=retry_unless_bad_input)
def calibrate_alerts(model: AnoGraph, videos: Sequence[VideoFeatures], storage_root: str, key: str,
                     window_seconds: float, fps: float | None, threshold_quantile: float) -> dict[str, float]:
    """Score the training videos leave-one-video-out and save the frame-score calibration beside the model.

    ``videos`` may be :class:`anograph.graph.batches.ShardVideos` (read one at a time).
    """
    calibration = calibrate_frame_scores(model, videos, window_seconds=window_seconds, default_fps=fps,
                                         default_quantile=threshold_quantile)
    save_frame_calibration(calibration, Storage(storage_root), key)
    thresholds = {name: calibration.threshold(name) for name in calibration.frame_scores}
    get_run_logger().info("alert thresholds at the %.3f quantile of %d normal training frames: %s",
                          threshold_quantile, len(next(iter(calibration.frame_scores.values()))),
                          ", ".join(f"{name} {value:.4g}" for name, value in thresholds.items()))
    return thresholds
