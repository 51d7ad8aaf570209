"""Flow: score a dataset's test shards with a trained model and write the metric report."""

from __future__ import annotations

import os
import time
from typing import Any

from prefect import flow, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from anograph.model import SCORERS
from tasks.evaluate import load_dataset_task, load_model, score_video, write_report_task

DEFAULT_SCORER = "group_knn"
DEFAULT_SCORER_REASON = (
    "group_knn was the best or near-best scorer on both the synthetic scene and UCSD Ped2 in the study "
    "of the README, which was measured on their test labels; the paper's discriminator score "
    "1 - D(h, s_train) ranked near or below chance there. Every scorer's figures are reported side by side."
)


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
) -> dict[str, Any]:
    """Score every test shard (one task per video) and write ``out/report.json`` and ``out/report.md``.

    With ``report_key`` the report files are also stored under ``report_key/`` in the storage root.
    ``skipped_videos`` (from extraction with ``skip_bad_videos``) are listed in the report.
    """
    started = time.perf_counter()
    data = load_dataset_task(dataset, root, fps)
    model = load_model(storage_root, model_key)
    futures = score_video.map(unmapped(model), unmapped(storage_root), test_shard_keys,
                              unmapped(window_seconds), unmapped(data.fps))
    scored = dict(future.result() for future in futures)
    frame_scores_by_scorer = {name: {video: scores[name] for video, scores in scored.items()} for name in SCORERS}
    labels = {name: data.labels[name] for name in scored}
    stages = dict(stage_seconds or {})
    stages["score"] = time.perf_counter() - started
    scorer = default_scorer or DEFAULT_SCORER
    report_options = {
        "dataset": dataset,
        "detector": detector,
        "default_scorer": scorer,
        "default_scorer_reason": DEFAULT_SCORER_REASON if default_scorer is None else "chosen by the user",
        "stage_seconds": stages,
        "smoothing_sigma": smoothing_sigma,
        "skipped_videos": skipped_videos or [],
        "config": {**(config or {}), "model_key": model_key, "window_seconds": window_seconds,
                   "model": model.get_params(deep=False) | {"graph": model.graph_config.to_dict()},
                   "model_training": {"separation": model.training_separation_, "epochs": model.n_epochs_}},
    }
    return write_report_task(out, frame_scores_by_scorer, labels, report_options, storage_root, report_key)
