"""Tasks of the evaluation stage: load a model, score videos, write the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from anograph.datasets import load_dataset
from anograph.datasets.base import Dataset
from anograph.errors import InputError
from anograph.model import AnoGraph
from anograph.report import build_report, store_report, write_report
from anograph.scoring import frame_scores, window_radius
from anograph.shards import read_shard
from anograph.storage import Storage
from tasks.retry import retry_unless_bad_input


@task(name="load-dataset", retry_condition_fn=retry_unless_bad_input, cache_policy=NO_CACHE)
def load_dataset_task(name: str, root: str, fps: float | None = None) -> Dataset:
    dataset = load_dataset(name, root, fps=fps)
    get_run_logger().info("%s: %d train, %d test videos", name, len(dataset.train), len(dataset.test))
    return dataset


@task(name="load-model", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_unless_bad_input,
      cache_policy=NO_CACHE)
def load_model(storage_root: str, key: str) -> AnoGraph:
    return AnoGraph.load(Storage(storage_root), key)


@task(name="score-video", task_run_name="score-{shard_key}", cache_policy=NO_CACHE,
      retry_condition_fn=retry_unless_bad_input)
def score_video(model: AnoGraph, storage_root: str, shard_key: str, window_seconds: float,
                default_fps: float | None) -> tuple[str, dict[str, np.ndarray]]:
    """Per-frame scores of one test video for every scorer (NaN = frame without objects)."""
    video = read_shard(Storage(storage_root), shard_key)
    fps = video.metadata.fps or default_fps
    if fps is None:
        raise InputError(video.metadata.source, "frame rate unknown; pass --fps to size the test window")
    radius = window_radius(window_seconds, fps)
    object_scores = model.score_video(video, window_radius=radius)
    offsets = video.frame_offsets()
    return video.metadata.video, {name: frame_scores(scores, offsets) for name, scores in object_scores.items()}


@task(name="write-report", cache_policy=NO_CACHE)
def write_report_task(out_dir: str, frame_scores_by_scorer: dict[str, dict[str, np.ndarray]],
                      labels: dict[str, np.ndarray], report_options: dict[str, Any],
                      storage_root: str | None = None, report_key: str | None = None) -> dict[str, Any]:
    """Compute the metrics, write report.json/report.md/plots and publish report.md as an artifact.

    With ``storage_root`` and ``report_key`` the report files are also stored under the root.
    """
    report = build_report(frame_scores_by_scorer, labels, **report_options)
    paths = write_report(Path(out_dir), report, frame_scores_by_scorer, labels, report["default_scorer"])
    if storage_root and report_key:
        storage = Storage(storage_root)
        keys = store_report(paths, storage, report_key)
        get_run_logger().info("report stored at %s (%d files)", storage.location(report_key), len(keys))
    create_markdown_artifact(
        markdown=paths["markdown"].read_text(),
        key=f"anograph-report-{report['dataset']}".lower().replace("_", "-"),
        description=f"anograph evaluation of {report['dataset']}",
    )
    get_run_logger().info(
        "%s: frame AUC micro %.4f, macro %.4f (%s) -> %s",
        report["dataset"], report["frame_auc_micro"], report["frame_auc_macro"] or float("nan"),
        report["default_scorer"], paths["json"],
    )
    return report
