"""Tasks of the training stage: one training run and its artifact (wrappers over ``anograph.ops.training_run``)."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from anograph.io.progress import progress_reporter
from anograph.io.storage import Storage
from anograph.ops.model_versions import ModelVersion, model_line, new_model_version, record_model_version
from anograph.ops.training_run import (
    TrainedModel,
    new_model,
    options_for_headline,
    save_trained_model,
    train_model,
)
from tasks.retry import retry_unless_bad_input


@task(name="train-model", cache_policy=NO_CACHE, retry_condition_fn=retry_unless_bad_input)
def train_model_task(storage_root: str, shard_keys: list[str], options: dict[str, Any] | None = None,
                     training: dict[str, Any] | None = None) -> TrainedModel:
    """Fit on the training shards and calibrate the alerts (:func:`anograph.ops.training_run.train_model`).

    ``training`` holds the keyword arguments of ``train_model`` other than the options
    (window, frame rate, quantile, training fraction, ``batch_nodes``). Logs the loss every
    10 epochs and what was trained.
    """
    logger = get_run_logger()
    training = dict(training or {})
    max_epochs = new_model(options_for_headline(options, training.get("headline_scorer"))).max_epochs

    epochs = progress_reporter("training", logger.info, unit="epochs", every_seconds=10.0)

    def progress(epoch: int, loss: float) -> None:
        epochs(epoch, max_epochs)
        if epoch % 10 == 0:
            logger.info("epoch %d/%d: loss %.4f", epoch, max_epochs, loss)

    trained = train_model(Storage(storage_root), shard_keys, options, progress=progress, **training)
    model = trained.model
    edges = "" if trained.n_training_edges is None else f", {trained.n_training_edges} edges"
    batches = "" if trained.batch_nodes is None else f" in batches of at most {trained.batch_nodes} nodes"
    if trained.gcn_role == "reference":
        logger.info("the headline scorer does not read the GCN: it was trained for at most %d epochs, for the "
                    "paper's reference scorers only (--epochs sets a full budget)", model.max_epochs)
    logger.info(
        "trained on %d shards (%d nodes%s)%s for %d epochs (best %d), loss %.4f -> %.4f, separation %.3f",
        len(shard_keys), trained.n_training_nodes, edges, batches, model.n_epochs_, model.best_epoch_,
        model.history_[0], model.history_[model.best_epoch_], model.training_separation_,
    )
    if trained.calibration is not None:
        logger.info("alert thresholds at the %.3f quantile of %d normal training frames: %s",
                    trained.calibration.default_quantile, len(next(iter(trained.calibration.frame_scores.values()))),
                    ", ".join(f"{name} {value:.4g}" for name, value in trained.alert_thresholds.items()))
    return trained


@task(name="save-model", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def save_trained_model_task(trained: TrainedModel, storage_root: str, key: str) -> str:
    """Write the model artifact (safetensors + JSON) and its frame calibration under ``key``."""
    save_trained_model(trained, Storage(storage_root), key)
    get_run_logger().info("model saved to %s/%s", storage_root, key)
    return key


@task(name="new-model-version", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def new_model_version_task(storage_root: str, name: str) -> dict[str, str]:
    """A fresh version of the model line ``name``: ``{"name", "version", "model_key"}`` (nothing written)."""
    version = new_model_version(Storage(storage_root), name)
    return {"name": version.name, "version": version.version, "model_key": version.model_key}


@task(name="record-model-version", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_unless_bad_input,
      cache_policy=NO_CACHE)
def record_model_version_task(storage_root: str, version: dict[str, str], training_manifest: dict[str, Any],
                              options: dict[str, Any], dataset: str) -> dict[str, Any]:
    """Verify the saved model of ``version``, write its record and make it ``current`` of its line."""
    storage = Storage(storage_root)
    model_version = ModelVersion(**version)
    record = record_model_version(storage, model_version, training_manifest, options=options, dataset=dataset)
    model_line(storage, model_version.name).promote(model_version.version, reason="trained by anograph run")
    get_run_logger().info("model %s version %s is current: %s", model_version.name, model_version.version,
                          storage.location(model_version.model_key))
    return record.to_dict()


@task(name="record-version-metrics", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def record_version_metrics_task(storage_root: str, version: dict[str, str], metrics: dict[str, Any]) -> None:
    """Attach the evaluation's headline metrics to the version's record."""
    model_line(Storage(storage_root), version["name"]).record_metrics(version["version"], metrics)
