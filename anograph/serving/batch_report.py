"""The batch report of scoring many videos: one summary per video and a Markdown table.

The ``score_videos`` flow scores each video into its own output folder
(:func:`anograph.serving.inference.write_scoring_outputs`); :func:`video_summary` condenses
one scored video into a small JSON-safe dictionary and :func:`scoring_markdown` renders
all of them, plus the videos that failed, as ``scoring_report.md``. Both live here rather
than in the Prefect tasks so the report can be built and tested without an orchestrator.

A video summary::

    {
      "video": str,                   # the name given to the video
      "source": str,                  # the path or URI it was read from
      "n_frames": int,
      "threshold": float,             # the alert threshold used
      "threshold_source": str,        # which calibration it came from
      "alerts": [{"start_frame_number": int, "end_frame_number": int,  # 1-based, inclusive
                  "peak_score": float,
                  "top_object": str | null}],    # class name of the alert's top object
      "outputs": {"<output>": str},   # absolute path of each file written
      "seconds": {"<step>": float}    # wall-clock seconds per scoring step
    }
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from anograph.serving.alerts import frame_number
from anograph.serving.inference import ScoredVideo


def video_summary(scored: ScoredVideo, video_name: str, video_path: str,
                  outputs: Mapping[str, Path]) -> dict[str, Any]:
    """Summary of one scored video (shape in the module docstring).

    Parameters
    ----------
    scored:
        The scored video (:func:`anograph.serving.inference.score_source`).
    video_name, video_path:
        The name it is reported under and where it was read from.
    outputs:
        Output name -> written path (:func:`anograph.serving.inference.write_scoring_outputs`);
        stored resolved to absolute paths.
    """
    return {
        "video": video_name,
        "source": video_path,
        "n_frames": len(scored.frame_scores),
        "threshold": scored.threshold.value,
        "threshold_source": scored.threshold.source,
        "alerts": [{"start_frame_number": frame_number(alert.start_frame),
                    "end_frame_number": frame_number(alert.end_frame), "peak_score": alert.peak_score,
                    "top_object": alert.top_objects[0].class_name if alert.top_objects else None}
                   for alert in scored.alerts],
        "outputs": {name: str(path.resolve()) for name, path in outputs.items()},
        "seconds": scored.seconds,
    }


def scoring_markdown(summaries: list[dict[str, Any]], failures: list[str], model_uri: str) -> str:
    """The batch report: one row per video, with links to its outputs, then the failed videos.

    Parameters
    ----------
    summaries:
        One :func:`video_summary` per video that was scored.
    failures:
        One line per video that failed, naming it and the reason.
    model_uri:
        The model the videos were scored with.
    """
    lines = [f"# anograph scoring of {len(summaries) + len(failures)} videos", "", f"Model: `{model_uri}`", "",
             "| video | frames | alerts | first alert (frame numbers) | threshold | outputs |", "|---|---|---|---|---|---|"]
    for summary in summaries:
        first = summary["alerts"][0] if summary["alerts"] else None
        span = f"{first['start_frame_number']}-{first['end_frame_number']}" if first else ""
        links = " ".join(f"[{name}](file://{path})" for name, path in summary["outputs"].items())
        lines.append(f"| {summary['video']} | {summary['n_frames']} | {len(summary['alerts'])} | {span} | "
                     f"{summary['threshold']:.4g} ({summary['threshold_source']}) | {links} |")
    if failures:
        lines += ["", "## Failed videos", ""] + [f"- {failure}" for failure in failures]
    return "\n".join(lines) + "\n"
