"""Flow: score a batch of new videos with a trained model, one mapped task per video."""

from __future__ import annotations

import os
from typing import Any

from prefect import flow, unmapped
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

from anograph.defaults import DEFAULT_SCORER, DEFAULT_WINDOW_SECONDS
from anograph.errors import AnographError
from tasks.score import load_scoring_model_task, publish_scoring_report, score_new_video


class ScoringFailed(AnographError):
    """One or more videos failed to score; the message names each. The others' outputs are kept."""


@flow(name="score_videos", task_runner=ThreadPoolTaskRunner(max_workers=os.cpu_count() or 1))
def score_videos(
    model_uri: str,
    videos: list[dict[str, str]],
    out: str,
    scorer: str | None = None,
    threshold_quantile: float | None = None,
    weights: str | None = None,
    fps: float | None = None,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    overlay: bool = True,
) -> dict[str, Any]:
    """Score each ``{"name", "path"}`` video (and its ``"camera"``, for a model trained on several cameras)
    into ``out/<name>/`` and publish the batch report.

    A video that fails does not stop the others; the report lists it, and the flow then
    fails naming every failed video and its reason.
    """
    scoring = load_scoring_model_task(model_uri)
    options = {"scorer": scorer or DEFAULT_SCORER, "threshold_quantile": threshold_quantile, "weights": weights,
               "fps": fps, "window_seconds": window_seconds, "overlay": overlay}
    futures = score_new_video.map(unmapped(scoring), [video["name"] for video in videos],
                                  [str(video["path"]) for video in videos], unmapped(out), unmapped(options),
                                  camera=[video.get("camera", "") for video in videos])
    wait(futures)
    summaries, failures = [], []
    for video, future in zip(videos, futures, strict=True):
        try:
            summaries.append(future.result())
        except Exception as error:  # noqa: BLE001 - collected, reported and re-raised below
            failures.append(f"{video['name']} ({video['path']}): {error}")
    report = publish_scoring_report(summaries, failures, model_uri, out)
    if failures:
        raise ScoringFailed(f"{len(failures)} of {len(videos)} videos failed to score:\n" + "\n".join(failures))
    return {"report": report, "videos": summaries}
