"""Tasks that score new videos with a trained model.

Thin wrappers over ``anograph.serving.inference`` (scoring, outputs) and
``anograph.serving.batch_report`` (per-video summaries, the batch report's Markdown).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from anograph.serving.batch_report import scoring_markdown, video_summary
from anograph.serving.inference import ScoringModel, load_scoring_model, score_source, write_scoring_outputs
from tasks.retry import retry_unless_bad_input


@task(name="load-scoring-model", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_unless_bad_input,
      cache_policy=NO_CACHE)
def load_scoring_model_task(model_uri: str) -> ScoringModel:
    scoring = load_scoring_model(model_uri)
    get_run_logger().info("model %s (frame calibration: %s)", model_uri,
                          "yes" if scoring.calibration is not None else "no, object-level fallback")
    return scoring


@task(name="score-new-video", task_run_name="score-{video_name}", retries=1, retry_delay_seconds=5,
      retry_condition_fn=retry_unless_bad_input, cache_policy=NO_CACHE)
def score_new_video(scoring: ScoringModel, video_name: str, video_path: str, out_dir: str,
                    options: dict[str, Any], threads_per_task: int = 1, camera: str = "") -> dict[str, Any]:
    """Score one video and write its output folder ``out_dir/<video_name>``; return its :func:`video_summary`.

    ``camera`` names the camera that filmed it, for a model trained on several (``""``: a one-camera model).
    """
    torch.set_num_threads(threads_per_task)
    scored = score_source(scoring, video_path, options["scorer"], options.get("threshold_quantile"),
                          options.get("weights"), options.get("fps"), options.get("window_seconds", 1.0),
                          camera=camera)
    paths = write_scoring_outputs(scored, Path(out_dir) / video_name, overlay=options.get("overlay", True))
    get_run_logger().info("%s: %d frames, %d alerts (threshold %.4g, %s)", video_name, len(scored.frame_scores),
                          len(scored.alerts), scored.threshold.value, scored.threshold.source)
    return video_summary(scored, video_name, video_path, paths)


@task(name="publish-scoring-report", cache_policy=NO_CACHE)
def publish_scoring_report(summaries: list[dict[str, Any]], failures: list[str], model_uri: str,
                           out_dir: str) -> str:
    """Write ``out_dir/scoring_report.md`` and publish it, plus a link per timeline, as Prefect artifacts."""
    markdown = scoring_markdown(summaries, failures, model_uri)
    path = Path(out_dir) / "scoring_report.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown, encoding="utf-8")
    create_markdown_artifact(markdown=markdown, key="anograph-scoring-report", description="anograph score_videos")
    for summary in summaries:
        create_link_artifact(link=f"file://{summary['outputs']['timeline']}", link_text=f"{summary['video']} timeline",
                             description=f"{len(summary['alerts'])} alerts")
    return str(path)
