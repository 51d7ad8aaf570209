"""Flow: the whole pipeline for one dataset: extract -> train -> score the test videos and report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow

from anograph.datasets.base import video_references
from anograph.defaults import DEFAULT_SMOOTHING_SIGMA, DEFAULT_WINDOW_SECONDS
from anograph.errors import InputError
from anograph.evaluation.report import headline_metrics
from anograph.io.extraction_settings import extraction_settings, fingerprint_of
from flows.extract_features import extract_features
from flows.score_test_videos import score_test_videos
from flows.train import train
from tasks.evaluate import load_dataset_task
from tasks.train import new_model_version_task, record_model_version_task, record_version_metrics_task


@flow(name="pipeline")
def pipeline(
    dataset: str,
    root: str,
    out: str,
    detector: str = "yolox",
    detector_options: dict[str, Any] | None = None,
    storage: str | None = None,
    fps: float | None = None,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    model_options: dict[str, Any] | None = None,
    appearance: bool = True,
    appearance_options: dict[str, Any] | None = None,
    default_scorer: str | None = None,
    smoothing_sigma: float = DEFAULT_SMOOTHING_SIGMA,
    skip_bad_videos: bool = False,
    ablations: dict[str, Any] | None = None,
    batch_nodes: int | None = None,
    model_name: str | None = None,
) -> dict[str, Any]:
    """Extract features for every video, train on the training split, evaluate the test split.

    Shards, the model and a copy of the report go to ``storage`` (default ``out/store``, any
    root :class:`anograph.io.storage.Storage` accepts); the report and its plots to ``out``.
    With ``skip_bad_videos``, videos that cannot be read are left out and listed in the report.
    ``ablations`` is passed to :func:`flows.score_test_videos.score_test_videos` (its retrained variants train
    full batch). ``batch_nodes`` trains the model from the shards in bounded memory
    (:func:`flows.train.train`); default ``None``, full batch.

    Every run trains a new immutable version of the model line ``model_name`` (default
    ``<dataset>-<extraction fingerprint>``, :mod:`anograph.ops.model_versions`), makes it the
    line's ``current`` and records its options and, after evaluation, its headline metrics.
    """
    storage = storage or str(Path(out) / "store")
    data = load_dataset_task(dataset, root, fps)
    settings = extraction_settings(detector, detector_options, appearance, appearance_options)
    stage_seconds: dict[str, float] = {}

    started = time.perf_counter()
    train_extraction = extract_features(video_references(data.train), storage, settings, "train", data.fps,
                                        skip_bad_videos, root)
    test_extraction = extract_features(video_references(data.test), storage, settings, "test", data.fps,
                                       skip_bad_videos, root)
    stage_seconds["extract"] = time.perf_counter() - started
    train_keys, test_keys = train_extraction["shards"], test_extraction["shards"]
    if not train_keys or not test_keys:
        raise InputError(root, f"no readable {'training' if not train_keys else 'test'} video is left to use")

    fingerprint = fingerprint_of(train_keys[0])
    version = new_model_version_task(storage, model_name or f"{dataset}-{fingerprint}")
    trained = train(storage, train_keys, version["model_key"], model_options,
                    window_seconds=window_seconds, fps=data.fps, batch_nodes=batch_nodes, headline_scorer=default_scorer)
    stage_seconds.update(trained["seconds"])
    record_model_version_task(storage, version, {"shards": train_keys},
                              {"extraction": settings, "model_options": model_options or {},
                               "window_seconds": window_seconds, "batch_nodes": batch_nodes,
                               "alert_thresholds": trained.get("alert_thresholds")}, dataset)

    config = {"extraction": settings, "model_options": model_options or {}, "training": trained,
              "storage": storage, "root": root, "model_version": version}
    report = score_test_videos(dataset, root, storage, trained["model_key"], test_keys, out, fps=data.fps,
                             window_seconds=window_seconds, default_scorer=default_scorer,
                             smoothing_sigma=smoothing_sigma, detector=detector, stage_seconds=stage_seconds,
                             config=config, report_key=f"reports/{dataset}-{fingerprint}",
                             skipped_videos=train_extraction["skipped"] + test_extraction["skipped"],
                             train_shard_keys=train_keys, ablations=ablations)
    record_version_metrics_task(storage, version, headline_metrics(report))
    return report
