"""The score_videos batch report: per-video summaries and their Markdown table, built from a
real scored video (synthetic feature shard, alert intervals found by the alert rules)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from synthetic_features import make_video

from anograph.serving.alerts import AlertObject, alert_intervals, describe_interval
from anograph.serving.batch_report import scoring_markdown, video_summary
from anograph.serving.calibration import AlertThreshold
from anograph.serving.inference import ScoredVideo

N_FRAMES = 40
THRESHOLD = 0.5


def scored_video() -> ScoredVideo:
    video = make_video("clip", np.random.default_rng(0), n_frames=N_FRAMES)
    frame_scores = np.zeros(N_FRAMES)
    frame_scores[10:20] = 0.9  # one run of ten frames over the threshold
    object_scores = np.where(video.frames >= 10, 0.9, 0.1) * (video.frames < 20)
    row = int(np.argmax(object_scores))
    top = AlertObject(frame=int(video.frames[row]), object_index=row, box=video.boxes[row].tolist(),
                      class_name="bicycle", score=float(object_scores[row]))
    alerts = [describe_interval("clip", interval, frame_scores, THRESHOLD, video.metadata.fps, [top])
              for interval in alert_intervals(frame_scores, THRESHOLD, min_frames=3, max_gap=2)]
    return ScoredVideo(video=video, scorer="dgi", threshold=AlertThreshold(THRESHOLD, 0.99, "dgi", "frame_calibration"),
                       window_radius=1, object_scores=object_scores, frame_scores=frame_scores, alerts=alerts,
                       alert_rules={"min_frames": 3, "max_gap": 2}, seconds={"score": 1.25})


def test_video_summary_names_the_video_its_alerts_and_absolute_outputs(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    scored = scored_video()
    summary = video_summary(scored, "clip", "videos/clip.mp4", {"timeline": Path("out/timeline.png")})
    assert summary["video"] == "clip" and summary["source"] == "videos/clip.mp4"
    assert summary["n_frames"] == N_FRAMES
    assert (summary["threshold"], summary["threshold_source"]) == (THRESHOLD, "frame_calibration")
    # 0-based frames 10..19 are over: reported as 1-based frame numbers 11..20.
    assert summary["alerts"] == [{"start_frame_number": 11, "end_frame_number": 20, "peak_score": 0.9,
                                  "top_object": "bicycle"}]
    assert summary["outputs"] == {"timeline": str(tmp_path / "out" / "timeline.png")}
    assert summary["seconds"] == {"score": 1.25}


def test_scoring_markdown_has_one_row_per_video_and_lists_failures(tmp_path) -> None:
    scored = scored_video()
    quiet = ScoredVideo(**{**scored.__dict__, "alerts": []})
    summaries = [video_summary(scored, "clip", "clip.mp4", {"timeline": tmp_path / "clip.png"}),
                 video_summary(quiet, "quiet", "quiet.mp4", {"timeline": tmp_path / "quiet.png"})]
    markdown = scoring_markdown(summaries, ["broken (broken.mp4): not a video"], "models/m")

    assert markdown.startswith("# anograph scoring of 3 videos\n")
    assert "Model: `models/m`" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| clip |") or line.startswith("| quiet |")]
    assert rows[0].startswith(f"| clip | {N_FRAMES} | 1 | 11-20 | 0.5 (frame_calibration) |")
    assert f"[timeline](file://{tmp_path / 'clip.png'})" in rows[0]
    assert rows[1].startswith(f"| quiet | {N_FRAMES} | 0 |  | 0.5 (frame_calibration) |")
    failed = markdown.split("## Failed videos")[1]
    assert "- broken (broken.mp4): not a video" in failed and "clip" not in failed


def test_scoring_markdown_without_failures_has_no_failure_section() -> None:
    summary = video_summary(scored_video(), "clip", "clip.mp4", {})
    assert "Failed videos" not in scoring_markdown([summary], [], "models/m")
