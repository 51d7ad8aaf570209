"""Alerts: turn per-frame anomaly scores into alert intervals that name their objects.

A frame is *over* when its score exceeds the threshold (a frame without objects, score
``NaN``, never is). Over frames become intervals in two steps:

1. **gap merge**: two runs of over frames separated by at most ``max_gap`` frames that are
   not over are one interval (a detector missing an object for a frame or two must not
   split one event into many alerts);
2. **minimum duration**: merged intervals shorter than ``min_frames`` frames
   (``end - start + 1``) are dropped (single-frame spikes are usually noise).

:class:`IntervalTracker` does this incrementally, one frame at a time, and is the only
implementation: :func:`alert_intervals` (offline) just feeds it a whole array, so live
and offline alerts cannot disagree. An interval is *closed* (final) once ``max_gap + 1``
frames after its last over frame are not over, or at the end of the stream.

:class:`Alert` and :class:`AlertObject` are JSON-serialisable dataclasses (``to_dict``);
the alerts JSON written by ``anograph score`` is documented in
``docs/data-contracts.md`` ("Scoring outputs").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# Defaults, in frames at the video's rate (UCSD and the synthetic scene run at 10 fps).
DEFAULT_MIN_FRAMES = 3
DEFAULT_MAX_GAP = 5
DEFAULT_TOP_OBJECTS = 3


@dataclass(frozen=True)
class Interval:
    """Frames ``start .. end`` (0-based, inclusive) and how many of them were over."""

    start: int
    end: int
    n_over: int

    @property
    def n_frames(self) -> int:
        return self.end - self.start + 1


class IntervalTracker:
    """Incremental gap-merge + minimum-duration interval detection (see the module docstring).

    Parameters
    ----------
    threshold:
        A frame is over when its score is ``> threshold``.
    min_frames:
        Shortest interval kept, in frames. Default :data:`DEFAULT_MIN_FRAMES`.
    max_gap:
        Longest run of not-over frames merged into one interval. Default :data:`DEFAULT_MAX_GAP`.
    """

    def __init__(self, threshold: float, min_frames: int = DEFAULT_MIN_FRAMES,
                 max_gap: int = DEFAULT_MAX_GAP) -> None:
        if min_frames < 1 or max_gap < 0:
            raise ValueError(f"min_frames must be >= 1 and max_gap >= 0, got {min_frames}, {max_gap}")
        self.threshold = float(threshold)
        self.min_frames = int(min_frames)
        self.max_gap = int(max_gap)
        self.reset()

    def reset(self) -> None:
        self._frame = 0
        self._open: list[int] | None = None  # [start, last over frame, over count]

    @property
    def open_interval(self) -> Interval | None:
        """The interval still open (it may grow or be dropped), or ``None``."""
        if self._open is None:
            return None
        return Interval(self._open[0], self._open[1], self._open[2])

    def push(self, score: float) -> list[Interval]:
        """Add the next frame's score; return the intervals this frame closed (0 or 1)."""
        frame = self._frame
        self._frame += 1
        over = bool(np.isfinite(score) and score > self.threshold)
        closed: list[Interval] = []
        if over:
            if self._open is not None and frame - self._open[1] - 1 <= self.max_gap:
                self._open[1] = frame
                self._open[2] += 1
            else:
                closed = self._close()
                self._open = [frame, frame, 1]
        elif self._open is not None and frame - self._open[1] > self.max_gap:
            closed = self._close()
        return closed

    def finish(self) -> list[Interval]:
        """Close the open interval at the end of the stream, then reset."""
        closed = self._close()
        self.reset()
        return closed

    def _close(self) -> list[Interval]:
        interval, self._open = self._open, None
        if interval is None or interval[1] - interval[0] + 1 < self.min_frames:
            return []
        return [Interval(interval[0], interval[1], interval[2])]


def alert_intervals(frame_scores: np.ndarray, threshold: float, min_frames: int = DEFAULT_MIN_FRAMES,
                    max_gap: int = DEFAULT_MAX_GAP) -> list[Interval]:
    """Alert intervals of a whole video's frame scores (``NaN`` = no objects = not over)."""
    tracker = IntervalTracker(threshold, min_frames, max_gap)
    intervals = [interval for score in np.asarray(frame_scores, np.float64) for interval in tracker.push(score)]
    return intervals + tracker.finish()


@dataclass
class Neighbour:
    """One graph neighbour of an alert's top object and what it contributed to its embedding."""

    frame: int
    object_index: int
    box: list[float]
    class_name: str
    score: float
    edge_weight: float
    contribution: float
    share: float


@dataclass
class AlertObject:
    """An object of an alert: where it is, what the detector called it, how anomalous it is.

    ``object_index`` is the object's row in the video's object table (``objects.parquet``).
    """

    frame: int
    object_index: int
    box: list[float]
    class_name: str
    score: float
    neighbours: list[Neighbour] = field(default_factory=list)


@dataclass
class FastestPlace:
    """Where an alert's frames moved most unusually, read with no detection: the motion field's worst
    cell (:mod:`anograph.attributes.motion_field`) at the interval's frame where the field scores highest."""

    frame: int
    box: list[float]
    score: float


FRAME_FIELDS = ("frame", "start_frame", "end_frame", "peak_frame")
"""0-based frame-index fields that users read as 1-based ``<field>_number`` (see :func:`with_frame_numbers`)."""


def frame_number(index: int) -> int:
    """The 1-based frame number a user reads (as in labels.csv and the datasets' ground truth) for a 0-based index."""
    return int(index) + 1


def with_frame_numbers(record: Any) -> Any:
    """``record`` with every 0-based frame field (:data:`FRAME_FIELDS`) replaced by ``<field>_number``, 1-based.

    Internal arrays and dataclasses count frames from 0; every output a user reads
    (alerts.json, the frame and object tables, stream files, the batch report) counts from 1
    and says so in the field's name. Nested dicts and lists are converted too.
    """
    if isinstance(record, dict):
        return {(f"{key}_number" if key in FRAME_FIELDS else key):
                (frame_number(value) if key in FRAME_FIELDS else with_frame_numbers(value))
                for key, value in record.items()}
    if isinstance(record, list):
        return [with_frame_numbers(value) for value in record]
    return record


@dataclass
class Alert:
    """One alert interval (frames ``start_frame .. end_frame`` inclusive, 0-based; :meth:`to_record` is 1-based)."""

    video: str
    start_frame: int
    end_frame: int
    start_seconds: float | None
    end_seconds: float | None
    peak_frame: int
    peak_score: float
    mean_score: float
    n_over_frames: int
    threshold: float
    top_objects: list[AlertObject]
    fastest_place: FastestPlace | None = None  # where the model reads a motion field

    def to_record(self) -> dict[str, Any]:
        """The alert as users read it: frame fields 1-based and named ``*_frame_number`` (:func:`with_frame_numbers`)."""
        return with_frame_numbers(asdict(self))


def top_objects(frames: np.ndarray, object_scores: np.ndarray, interval: Interval,
                count: int = DEFAULT_TOP_OBJECTS) -> np.ndarray:
    """Rows of the ``count`` highest-scoring objects whose frame lies in ``interval``, best first.

    Objects are not tracked across frames, so the same person in two frames is two rows.
    """
    frames = np.asarray(frames)
    inside = np.flatnonzero((frames >= interval.start) & (frames <= interval.end))
    order = np.argsort(-np.asarray(object_scores)[inside], kind="stable")
    return inside[order[:count]]


def describe_interval(video: str, interval: Interval, frame_scores: np.ndarray, threshold: float,
                      fps: float | None, objects: list[AlertObject],
                      fastest_place: FastestPlace | None = None) -> Alert:
    """An :class:`Alert` for ``interval`` of a video with per-frame ``frame_scores``."""
    window = np.asarray(frame_scores, np.float64)[interval.start : interval.end + 1]
    peak = int(np.nanargmax(window))
    return Alert(
        video=video,
        start_frame=interval.start,
        end_frame=interval.end,
        start_seconds=None if not fps else round(interval.start / fps, 3),
        end_seconds=None if not fps else round((interval.end + 1) / fps, 3),
        peak_frame=interval.start + peak,
        peak_score=float(window[peak]),
        mean_score=float(np.nanmean(window)),
        n_over_frames=interval.n_over,
        threshold=float(threshold),
        top_objects=objects,
        fastest_place=fastest_place,
    )
