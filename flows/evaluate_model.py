"""Flow: evaluate a registry model version on a labelled dataset (the on-demand ``evaluate-model`` deployment)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from anograph.datasets.base import video_references
from anograph.defaults import DEFAULT_SMOOTHING_SIGMA, DEFAULT_WINDOW_SECONDS
from anograph.errors import ModelArtifactError
from flows.extract_features import extract_features
from flows.score_test_videos import score_test_videos
from tasks.evaluate import load_dataset_task
from tasks.nightly import resolve_model


@flow(name="evaluate-model")
def evaluate_model(
    dataset: str,
    root: str,
    storage_root: str,
    out: str,
    model_version: str = "current",
    fps: float | None = None,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    default_scorer: str | None = None,
    smoothing_sigma: float = DEFAULT_SMOOTHING_SIGMA,
) -> dict[str, Any]:
    """Verify ``model_version`` (an id or ``current``), extract the test split with the model's own
    extraction settings (reusing shards), score it and write ``out/report.json`` and ``report.md``."""
    record = resolve_model(storage_root, model_version)
    settings = record["config"].get("extraction")
    if settings is None:
        raise ModelArtifactError(record["model_key"], "registry record has no extraction settings to evaluate with")
    data = load_dataset_task(dataset, root, fps)
    test_keys = extract_features(video_references(data.test), storage_root, settings, "test", data.fps, root=root)["shards"]
    config = {"extraction": settings, "model_version": record["version"], "storage": storage_root, "root": root,
              "training_manifest": record["training_manifest"]}
    return score_test_videos(dataset, root, storage_root, record["model_key"], test_keys, out, fps=data.fps,
                             window_seconds=window_seconds, default_scorer=default_scorer,
                             smoothing_sigma=smoothing_sigma, detector=settings["detector"], config=config)
