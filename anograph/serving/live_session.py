"""A live scoring session (``anograph score --stream``): stream in, alerts printed, files out.

Wraps :func:`anograph.serving.live_scorer.run_stream` for the command line: rebuilds the model's
detector and features (:func:`anograph.serving.inference.build_extraction`), prints each alert the
moment it closes, appends every final frame to ``stream_frames.csv`` and every alert to
``stream_alerts.jsonl`` (so nothing grows in memory), samples the process's resident
memory every :data:`MEMORY_SAMPLE_FRAMES` frames, and writes ``stream_report.json`` with
the latency split (detection + features vs scoring) and the memory samples.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from anograph.errors import InputError, VideoReadError
from anograph.extraction.features.appearance import torch_threads
from anograph.graph.windows import window_radius_for
from anograph.io.video import open_video
from anograph.serving.alerts import frame_number, with_frame_numbers
from anograph.serving.calibration import alert_threshold
from anograph.serving.inference import ScoringModel, build_extraction
from anograph.serving.live_scorer import (
    ScoredFrame,
    StreamAlert,
    StreamScorer,
    run_stream,
)
from anograph.serving.stream_sources import iter_source_frames

MEMORY_SAMPLE_FRAMES = 1000
STREAM_FILES = {"frames": "stream_frames.csv", "alerts": "stream_alerts.jsonl", "report": "stream_report.json"}


def resident_memory_bytes() -> int | None:
    """This process's resident set size from ``/proc`` (Linux); ``None`` elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def source_fps(source: str, fps: float | None) -> float:
    """The frame rate of a live ``source`` (``fps`` when given), checked before scoring starts.

    A camera index or URL that does not open is a :class:`VideoReadError` saying so, and one
    that does not report its frame rate asks for ``--fps``.
    """
    if "://" in source or source.isdigit():
        import cv2

        kind = "camera" if source.isdigit() else "stream"
        capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
        try:
            if not capture.isOpened():
                raise VideoReadError(source, f"cannot open {kind} {source} (is it connected and free?)")
            rate = fps or float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        finally:
            capture.release()
        if not rate > 0:
            raise InputError(source, f"the {kind} does not report its frame rate; pass --fps")
        return rate
    rate = open_video(source, fps=fps).fps
    if not rate:
        raise InputError(source, "frame rate unknown; pass --fps")
    return rate


def run_live(scoring: ScoringModel, source: str, out: str | Path, scorer: str,
             threshold_quantile: float | None = None, weights: str | None = None, fps: float | None = None,
             window_seconds: float = 1.0, causal: bool = False, loop: bool = False, max_frames: int | None = None,
             min_frames: int = 3, max_gap: int = 5,
             echo: Callable[[str], None] | None = None, threads: int | None = 1, camera: str = "") -> dict[str, Any]:
    """Score ``source`` live; return (and write) the stream report.

    ``camera`` names the camera, for a model trained on several cameras
    (:mod:`anograph.models.camera_scoring`).

    ``threads`` is torch's thread count while streaming (default 1; ``None`` leaves torch's).
    Each frame's products are small (10 objects x 2048 by 2048 x 512), and on a 2-core CPU
    one thread scored them 2.5x faster than two (README, Performance); the count used is in
    the report as ``torch_threads``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rate = source_fps(str(source), fps)  # a missing camera fails before the detector is built
    threshold = alert_threshold(scoring.model, scoring.calibration, scorer, threshold_quantile)
    detector, extractor = build_extraction(scoring.model, weights)
    radius = window_radius_for(rate, window_seconds, source=source)
    scorer_state = StreamScorer(scoring.model, scorer, radius, threshold.value, causal=causal,
                                min_frames=min_frames, max_gap=max_gap, camera=camera)
    memory: list[dict[str, float]] = []
    started = time.perf_counter()
    with (out / STREAM_FILES["frames"]).open("w", encoding="utf-8") as frames_file, \
            (out / STREAM_FILES["alerts"]).open("w", encoding="utf-8") as alerts_file:
        frames_file.write("frame_number,seconds,score,n_objects,over_threshold\n")  # frame_number is 1-based

        def on_frame(frame: ScoredFrame) -> None:
            score = "" if not np.isfinite(frame.score) else f"{frame.score:.6g}"
            over = bool(np.isfinite(frame.score) and frame.score > threshold.value)
            frames_file.write(f"{frame_number(frame.frame)},{frame.frame / rate:.3f},{score},{len(frame.boxes)},{int(over)}\n")
            if frame.frame % MEMORY_SAMPLE_FRAMES == 0:
                memory.append({"frame_number": frame_number(frame.frame), "rss_mib": (resident_memory_bytes() or 0) / 2**20,
                               "frames_held": scorer_state.frames_held})

        def on_alert(alert: StreamAlert) -> None:
            names = detector.class_names
            record = {"start_frame": alert.interval.start, "end_frame": alert.interval.end,  # 1-based below
                      "start_seconds": round(alert.interval.start / rate, 3),
                      "end_seconds": round((alert.interval.end + 1) / rate, 3),
                      "peak_score": alert.peak_score, "threshold": threshold.value,
                      "top_objects": [{"frame": frame, "box": [round(v, 2) for v in box],
                                       "class_name": names[class_id] if 0 <= class_id < len(names) else str(class_id),
                                       "score": score} for frame, box, class_id, score in alert.top_objects]}
            record = with_frame_numbers(record)
            alerts_file.write(json.dumps(record) + "\n")
            alerts_file.flush()
            if echo is not None:
                top = record["top_objects"][0] if record["top_objects"] else None
                where = f", top object {top['class_name']} at {top['box']} (frame {top['frame_number']})" if top else ""
                echo(f"ALERT frames {record['start_frame_number']}-{record['end_frame_number']} "
                     f"({record['start_seconds']:.1f}-{record['end_seconds']:.1f} s), peak {alert.peak_score:.4g}{where}")

        frames = iter_source_frames(source, loop=loop, max_frames=max_frames, fps=fps)
        with torch_threads(threads):
            used_threads = torch.get_num_threads()
            measured = run_stream(frames, detector, extractor, scorer_state, on_frame=on_frame, on_alert=on_alert,
                                  frame_rate=rate)
    report = {
        "source": str(source), "model": scoring.uri, "scorer": scorer, "causal": causal,
        "threshold": {"value": threshold.value, "quantile": threshold.quantile, "source": threshold.source},
        "window_radius": radius, "fps_assumed": rate, "torch_threads": used_threads,
        **measured.to_dict(), "memory": memory, "wall_seconds": time.perf_counter() - started,
    }
    (out / STREAM_FILES["report"]).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report
