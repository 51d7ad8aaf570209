"""Flow: evaluate a stored model on a dataset again (``anograph evaluate``), reusing every shard that exists."""

from __future__ import annotations

import time
from typing import Any

from prefect import flow

from anograph.datasets.base import video_references
from anograph.defaults import DEFAULT_SMOOTHING_SIGMA, DEFAULT_WINDOW_SECONDS
from anograph.evaluation.ablations import needs_retraining
from anograph.io.extraction_settings import extraction_settings
from flows.extract_features import extract_features
from flows.score_test_videos import score_test_videos
from tasks.evaluate import load_dataset_task


@flow(name="evaluate")
def evaluate(
    dataset: str,
    root: str,
    model_key: str,
    storage: str,
    out: str,
    detector: str = "yolox",
    detector_options: dict[str, Any] | None = None,
    appearance: bool = True,
    appearance_options: dict[str, Any] | None = None,
    fps: float | None = None,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    default_scorer: str | None = None,
    smoothing_sigma: float = DEFAULT_SMOOTHING_SIGMA,
    ablations: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate the model at ``storage/model_key`` on ``dataset`` without training it again.

    Shards are keyed by the extraction fingerprint of the detector settings given, so
    shards that exist for those settings are reused and only missing ones are extracted.
    Training shards are needed (and extracted if missing) only for ablations that retrain.
    The evaluation fails, naming the shard, if the shards' detector is not the model's.
    ``settings`` (an :class:`ExtractionSettings` dict, e.g. the model's own) replaces the
    detector and appearance arguments.
    """
    data = load_dataset_task(dataset, root, fps)
    settings = settings or extraction_settings(detector, detector_options, appearance, appearance_options)
    started = time.perf_counter()
    test_keys = extract_features(video_references(data.test), storage, settings, "test", data.fps, root=root)["shards"]
    train_keys = None
    if needs_retraining(ablations or {}):
        train_keys = extract_features(video_references(data.train), storage, settings, "train", data.fps, root=root)["shards"]
    config = {"extraction": settings, "storage": storage, "root": root, "command": "evaluate"}
    return score_test_videos(dataset, root, storage, model_key, test_keys, out, fps=data.fps,
                             window_seconds=window_seconds, default_scorer=default_scorer,
                             smoothing_sigma=smoothing_sigma, detector=settings["detector"],
                             stage_seconds={"extract": time.perf_counter() - started}, config=config,
                             train_shard_keys=train_keys, ablations=ablations)
