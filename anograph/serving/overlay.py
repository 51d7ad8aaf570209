"""Pictures of a scored video: an annotated MP4 and a PNG timeline.

* :func:`write_overlay_video`: every frame of the source, with each detected object's box
  coloured by its anomaly score (green = low, yellow = half the threshold, red = at or over
  it), and a strip below the frame with the running curve of frame scores up to the
  current frame, the threshold line and the alert intervals so far. For an alert's top
  object, its most contributing graph neighbours (:mod:`anograph.serving.explain`) are drawn as
  lines from its box to theirs, labelled with their share, for one second from the top
  object's frame. H.264 (``libx264``, ``yuv420p``, even width and height, the index at the
  front of the file) in MP4, written with PyAV, so it plays in a browser as it is; frames
  are labelled with their 1-based frame number, as the scoring outputs count them.
* :func:`write_timeline`: frame score against time with matplotlib, the threshold, the
  alert intervals shaded and, when given (display only, never used for the threshold),
  the ground-truth anomalous frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from anograph.errors import AnographError
from anograph.serving.alerts import Alert

OVERLAY_CODEC = "libx264"
OVERLAY_PIXEL_FORMAT = "yuv420p"  # what browsers decode
OVERLAY_ENCODER_OPTIONS = {"crf": "23", "preset": "veryfast"}
STRIP_HEIGHT_FRACTION = 0.3
MIN_STRIP_HEIGHT = 48
GREEN, YELLOW, RED = (60, 200, 60), (0, 220, 255), (40, 40, 230)  # BGR


def score_colour(score: float, threshold: float, low: float) -> tuple[int, int, int]:
    """BGR colour: green at ``low``, yellow halfway to ``threshold``, red at or above it."""
    if not np.isfinite(score):
        return GREEN
    position = float(np.clip((score - low) / max(threshold - low, 1e-12), 0.0, 1.0))
    start, stop, fraction = (GREEN, YELLOW, position * 2) if position < 0.5 else (YELLOW, RED, position * 2 - 1)
    return tuple(int(round(a + (b - a) * fraction)) for a, b in zip(start, stop, strict=True))


def _centre(box: Sequence[float]) -> tuple[int, int]:
    return int(round((box[0] + box[2]) / 2)), int(round((box[1] + box[3]) / 2))


def _draw_strip(strip: np.ndarray, frame_scores: np.ndarray, upto: int, threshold: float,
                alerts: Sequence[Alert], bounds: tuple[float, float]) -> None:
    height, width = strip.shape[:2]
    n_frames = len(frame_scores)
    low, high = bounds

    def x_of(frame: float) -> int:
        return int(round(frame * (width - 1) / max(n_frames - 1, 1)))

    def y_of(value: float) -> int:
        return int(round((height - 4) - (value - low) / max(high - low, 1e-12) * (height - 8)))

    for alert in alerts:
        if alert.start_frame <= upto:
            cv2.rectangle(strip, (x_of(alert.start_frame), 0), (x_of(min(alert.end_frame, upto)), height - 1),
                          (40, 40, 110), -1)
    cv2.line(strip, (0, y_of(threshold)), (width - 1, y_of(threshold)), (0, 160, 255), 1)
    values = np.where(np.isfinite(frame_scores[: upto + 1]), frame_scores[: upto + 1], low)
    points = np.array([[x_of(index), y_of(value)] for index, value in enumerate(values)], np.int32)
    if len(points) > 1:
        cv2.polylines(strip, [points], False, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.line(strip, (x_of(upto), 0), (x_of(upto), height - 1), (200, 200, 200), 1)


def write_overlay_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float,
    frame_scores: np.ndarray,
    object_frames: np.ndarray,
    object_boxes: np.ndarray,
    object_scores: np.ndarray,
    threshold: float,
    alerts: Sequence[Alert] = (),
) -> int:
    """Write the annotated video; return the number of frames written.

    ``object_*`` are the per-object rows of the video (sorted by frame); ``frame_scores``
    has one entry per source frame (``NaN`` for frames without objects).
    """
    path = Path(path)
    frame_scores = np.asarray(frame_scores, np.float64)
    object_frames = np.asarray(object_frames)
    finite = frame_scores[np.isfinite(frame_scores)]
    low = float(np.min(object_scores)) if len(object_scores) else 0.0
    bounds = (min(low, threshold), max(float(finite.max()) if len(finite) else threshold, threshold) * 1.05 + 1e-9)
    starts = np.searchsorted(object_frames, np.arange(len(frame_scores) + 1))
    explained = [(alert.top_objects[0], alert) for alert in alerts if alert.top_objects and alert.top_objects[0].neighbours]
    hold = max(int(round(fps)), 1)
    writer = None
    written = 0
    try:
        for index, frame in enumerate(frames):
            if index >= len(frame_scores):
                break
            height, width = frame.shape[:2]
            if writer is None:
                strip_height = max(MIN_STRIP_HEIGHT, int(STRIP_HEIGHT_FRACTION * height)) // 2 * 2
                size = (width + width % 2, height + height % 2 + strip_height)
                writer = H264Writer(path, fps, size)
            canvas = np.zeros((size[1], size[0], 3), np.uint8)
            canvas[:height, :width] = frame
            view = canvas[: size[1] - strip_height]
            for row in range(starts[index], starts[index + 1]):
                box = [int(round(value)) for value in object_boxes[row]]
                over = object_scores[row] > threshold
                cv2.rectangle(view, tuple(box[:2]), tuple(box[2:]), score_colour(object_scores[row], threshold, low),
                              2 if over else 1)
            for top, alert in explained:
                if top.frame <= index < top.frame + hold and alert.start_frame <= index:
                    for neighbour in top.neighbours:
                        cv2.line(view, _centre(top.box), _centre(neighbour.box), (255, 200, 0), 1, cv2.LINE_AA)
                        cv2.rectangle(view, tuple(int(v) for v in neighbour.box[:2]),
                                      tuple(int(v) for v in neighbour.box[2:]), (255, 200, 0), 1)
                        cv2.putText(view, f"{100 * neighbour.share:.0f}%", _centre(neighbour.box),
                                    cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 200, 0), 1, cv2.LINE_AA)
                    cv2.rectangle(view, tuple(int(v) for v in top.box[:2]), tuple(int(v) for v in top.box[2:]), RED, 2)
            in_alert = any(alert.start_frame <= index <= alert.end_frame for alert in alerts)
            score = frame_scores[index]
            number = index + 1  # 1-based, as every scoring output counts frames
            label = f"frame {number}  score {score:.3g}" if np.isfinite(score) else f"frame {number}  no objects"
            cv2.putText(view, label + ("  ALERT" if in_alert else ""), (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        RED if in_alert else (255, 255, 255), 1, cv2.LINE_AA)
            _draw_strip(canvas[size[1] - strip_height :], frame_scores, index, threshold, alerts, bounds)
            writer.write(canvas)
            written += 1
    finally:
        if writer is not None:
            writer.close()
    return written


class H264Writer:
    """Write BGR frames of one ``(width, height)`` (both even) as browser-playable H.264 MP4 with PyAV."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        width, height = size
        if width % 2 or height % 2:
            raise ValueError(f"H.264 in yuv420p needs even dimensions, not {width}x{height}")
        self.path = Path(path)
        try:
            # faststart: the index goes first, so a browser starts playing before the whole file arrives.
            self.container = av.open(str(self.path), mode="w", options={"movflags": "+faststart"})
            self.stream = self.container.add_stream(OVERLAY_CODEC, rate=Fraction(float(fps)).limit_denominator(1001))
        except (av.FFmpegError, ValueError) as error:
            raise AnographError(f"{self.path}: cannot write H.264 video here ({error})") from error
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = OVERLAY_PIXEL_FORMAT
        self.stream.options = dict(OVERLAY_ENCODER_OPTIONS)

    def write(self, bgr: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24").reformat(
            format=OVERLAY_PIXEL_FORMAT)
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
        finally:
            self.container.close()


def write_timeline(
    path: str | Path,
    frame_scores: np.ndarray,
    fps: float | None,
    threshold: float,
    alerts: Sequence[Alert] = (),
    title: str = "",
    labels: np.ndarray | None = None,
) -> Path:
    """Write the PNG timeline of frame scores, threshold and alert intervals (and labels if given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    frame_scores = np.asarray(frame_scores, np.float64)
    scale = 1.0 / fps if fps else 1.0
    origin = 0 if fps else 1  # without a frame rate the axis shows 1-based frame numbers
    times = (np.arange(len(frame_scores)) + origin) * scale
    figure, axis = plt.subplots(figsize=(10, 3.2))
    try:
        if labels is not None:
            anomalous = np.asarray(labels, bool)
            axis.fill_between(times, 0, 1, where=anomalous, transform=axis.get_xaxis_transform(), step="mid",
                              color="tab:orange", alpha=0.25, label="ground truth (display only)")
        for number, alert in enumerate(alerts):
            axis.axvspan((alert.start_frame + origin) * scale, (alert.end_frame + 1 + origin) * scale, color="tab:red", alpha=0.2,
                         label="alert" if number == 0 else None)
        axis.plot(times, frame_scores, color="black", linewidth=1, label="frame score")
        axis.axhline(threshold, color="tab:red", linestyle="--", linewidth=1, label=f"threshold {threshold:.3g}")
        axis.set_xlabel("seconds" if fps else "frame number")
        axis.set_ylabel("anomaly score")
        axis.set_xlim(times[0] if len(times) else 0, times[-1] if len(times) else 1)
        axis.set_title(title)
        axis.legend(loc="upper left", fontsize=8, ncol=4)
        figure.tight_layout()
        figure.savefig(path, dpi=110)
    finally:
        plt.close(figure)
    return path
