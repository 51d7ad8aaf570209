"""Live scoring: frames in, frame scores and alerts out, keeping only a sliding window.

:class:`StreamScorer` takes one frame's detections and raw node features at a time and
returns every frame whose score became final. It keeps only what later frames still need:

* the :class:`anograph.graph.windows.SlidingWindowGraph` (a few frames: the encoder's reach);
* the standardised features of those frames (the embedding of frame ``t`` is
  ``PReLU(Â[t] X W + b)``, whose row touches frames ``t-1 .. t+1``);
* with score propagation (``P`` steps, :attr:`AnoGraph.score_propagation_steps` capped at the
  window radius), the adjacency rows and raw scores of frames ``t-P .. t+P``: the
  propagated score of frame ``t`` is ``(Â^P s)[t]``, and ``P`` steps of a matrix whose rows
  reach one frame on each side touch exactly those frames, so restricting ``Â`` to them
  gives the same value as the whole-video graph;
* the alert tracker's open interval and its best few objects (not its frames).

**Non-causal** (default): frame ``t`` is final once frame ``t + 1 + P`` has arrived (the
offline rows of ``Â``), so its score equals :meth:`AnoGraph.score_video` on the same
frames, and alerts equal :func:`anograph.serving.alerts.alert_intervals` on those scores.
**Causal** (``causal=True``): frame ``t`` is scored when it arrives, its rows built from
frames ``<= t`` only (the temporal edges to ``t + 1`` are missing, as at the end of a
video), and propagation only looks back. Lower latency; scores differ from offline.

:func:`anograph.serving.stream_sources.iter_source_frames` reads frames from a video file or frame
folder, a camera index or an RTSP/HTTP URL; :func:`run_stream` ties source, detector, features and scorer together and
measures per-frame latency, detection+features and scoring separately.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from anograph.attributes.track_smoothing import smooth_track_scores
from anograph.errors import InputError
from anograph.extraction.detectors.base import Detector
from anograph.extraction.features.extractor import FrameObjects, NodeFeatureExtractor
from anograph.graph.windows import CentreRows, SlidingWindowGraph
from anograph.models.attribute_scoring import ATTRIBUTE_SCORER
from anograph.models.estimator import AnoGraph
from anograph.serving.alerts import (
    DEFAULT_MAX_GAP,
    DEFAULT_MIN_FRAMES,
    DEFAULT_TOP_OBJECTS,
    Interval,
    IntervalTracker,
)

# Latencies kept for percentiles; older ones only enter the running mean and maximum.
LATENCY_HISTORY = 2048


@dataclass
class ScoredFrame:
    """A frame whose score is final: its objects' boxes, classes and anomaly scores."""

    frame: int
    score: float
    boxes: np.ndarray
    class_ids: np.ndarray
    object_scores: np.ndarray


@dataclass
class StreamAlert:
    """A closed alert interval and its best objects ``(frame, box, class_id, score)``, best first."""

    interval: Interval
    peak_score: float
    top_objects: list[tuple[int, list[float], int, float]]


@dataclass
class _Pending:
    """One frame between arriving and being final."""

    index: int
    start: int  # stream number of its first object
    boxes: np.ndarray
    class_ids: np.ndarray
    features: np.ndarray  # standardised
    rows: np.ndarray | None = None  # |Â| rows, row-normalised, over `columns`
    columns: slice | None = None
    raw_scores: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    # Kept while the attribute scores wait for later frames (a density averaging along tracks).
    raw_rows: np.ndarray | None = None
    sources: np.ndarray | None = None
    frame_size: tuple[float, float | None] | None = None
    field_score: float | None = None  # the motion field's, where the attributes scorer reads one

    @property
    def size(self) -> int:
        return len(self.boxes)


class StreamScorer:
    """Incremental frame scores and alerts for one stream (see the module docstring).

    Parameters
    ----------
    model:
        A fitted :class:`AnoGraph`.
    scorer:
        One of :data:`anograph.models.estimator.SCORERS`.
    window_radius:
        Test-window half-width in frames (:func:`anograph.graph.windows.window_radius`).
    threshold:
        Alert threshold on frame scores (:func:`anograph.serving.calibration.alert_threshold`).
    causal:
        Score each frame from past frames only (default ``False``).
    min_frames, max_gap, top_count:
        Alert rules and how many objects an alert names (:mod:`anograph.serving.alerts`).
    camera:
        The stream's camera, for a model trained on several cameras
        (:mod:`anograph.models.camera_scoring`). Default ``""`` (a single-camera model).
    """

    def __init__(self, model: AnoGraph, scorer: str, window_radius: int, threshold: float,
                 causal: bool = False, min_frames: int = DEFAULT_MIN_FRAMES, max_gap: int = DEFAULT_MAX_GAP,
                 top_count: int = DEFAULT_TOP_OBJECTS, camera: str = "") -> None:
        self.model = model
        self.scorer = scorer
        self.causal = bool(causal)
        self.window = SlidingWindowGraph(window_radius, model.graph_config, lookahead=0 if causal else None)
        self.steps = model.propagation_steps(window_radius)
        self.tracker = IntervalTracker(threshold, min_frames, max_gap)
        self.top_count = int(top_count)
        self.encoder_weight = model.encoder_.linear.weight
        self.attributes = model.attribute_scoring().for_camera(camera) if scorer == ATTRIBUTE_SCORER else None
        # The attribute scorer's track smoothing, as offline: a track's scores within this many frames.
        self.track_radius = self.attributes.ensemble.track_radius if self.attributes is not None else 0
        # Frames on either side whose features an attribute score reads (flow averaged along tracks).
        self.feature_radius = self.attributes.feature_radius if self.attributes is not None else 0
        self.reset()

    def reset(self) -> None:
        self.window.reset()
        self.tracker.reset()
        self._pending: deque[_Pending] = deque()
        self._next_frame = 0
        self._next_object = 0
        self._next_final = 0
        self._next_embed = 0
        # Best objects of the open interval up to its last over frame, and of the frames after it.
        self._open_objects: list[tuple[float, int, list[float], int]] = []
        self._gap_objects: list[tuple[float, int, list[float], int]] = []
        self._open_peak = -np.inf

    @property
    def frames_held(self) -> int:
        """Frames kept in memory right now (window + propagation buffer)."""
        return len(self._pending)

    @property
    def latency_frames(self) -> int:
        """Frames that must arrive after frame ``t`` before its score is final."""
        return 0 if self.causal else max(self.window.lookahead + self.steps, self.attribute_reach)

    @property
    def attribute_reach(self) -> int:
        """Frames after (and before) a frame that its final attribute score reads.

        Its own score reads the features ``feature_radius`` frames away, and track smoothing (or
        score propagation) reads the scores of frames ``track_radius`` (``steps``) away.
        """
        if not self.feature_radius:
            return self.track_radius
        return max(self.track_radius, self.steps) + self.feature_radius

    def push(self, boxes: np.ndarray, class_ids: np.ndarray, raw_features: np.ndarray,
             frame_height: float | None = None, sources: np.ndarray | None = None,
             track_ids: np.ndarray | None = None, frame_width: float | None = None,
             cell_speeds: np.ndarray | None = None) -> tuple[list[ScoredFrame], list[StreamAlert]]:
        """Add the next frame (its detections and raw shard-layout node features).

        ``frame_height`` (pixels) is needed by the ``attributes`` scorer, whose speeds and sizes
        are in frame heights, and ``frame_width`` (pixels) tells it which boxes the frame's right
        edge cuts; it also reads each object's ``sources`` and ``track_ids``
        (:class:`anograph.extraction.features.extractor.FrameObjects`), as offline scoring does, and its
        motion field reads the frame's ``cell_speeds``.
        """
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        features = self.model.standardize_features(raw_features)
        if len(features) != len(boxes) or not np.all(np.isfinite(features)):
            raise InputError(None, f"frame {self._next_frame}: {len(boxes)} boxes but {len(features)} feature rows, "
                                   "or non-finite features")
        pending = _Pending(self._next_frame, self._next_object, boxes, np.asarray(class_ids, np.int64).reshape(-1),
                           features)
        if self.scorer == ATTRIBUTE_SCORER:
            if frame_height is None:
                raise InputError(None, "the attributes scorer needs each frame's height: pass frame_height")
            pending.track_ids = None if track_ids is None else np.asarray(track_ids, np.int64).reshape(-1)
            if self.attributes.motion_field is not None:
                if cell_speeds is None:
                    raise InputError(None, "this model's motion field needs each frame's cell speeds: pass cell_speeds")
                pending.field_score = float(self.attributes.motion_field.frame_scores(np.reshape(cell_speeds, (1, -1)))[0])
            if self.feature_radius:  # scored once the frames its features are averaged over have arrived
                pending.raw_rows, pending.frame_size = np.asarray(raw_features), (frame_height, frame_width)
                pending.sources = None if sources is None else np.asarray(sources).reshape(-1)
            else:
                pending.raw_scores = self.attributes.score_frame(
                    boxes, raw_features, self.model.feature_layout_, frame_height, sources=sources,
                    frame_width=frame_width)
        self._pending.append(pending)
        self._next_frame += 1
        self._next_object += len(boxes)
        for centre in self.window.push(boxes, features):
            self._embed(centre)
        return self._finalize(end_of_stream=False)

    def finish(self) -> tuple[list[ScoredFrame], list[StreamAlert]]:
        """End of stream: score the frames still waiting for later ones, close the open alert."""
        for centre in self.window.finish():
            self._embed(centre)
        scored, alerts = self._finalize(end_of_stream=True)
        alerts += [self._alert(interval) for interval in self.tracker.finish()]
        self.reset()
        return scored, alerts

    def _frame(self, index: int) -> _Pending:
        return self._pending[index - self._pending[0].index]

    def _embed(self, centre: CentreRows) -> None:
        frame = self._frame(centre.frame)
        self._next_embed = centre.frame + 1
        frame.columns = centre.columns
        if frame.size == 0:
            frame.raw_scores, frame.rows = np.zeros(0), np.zeros((0, 0))
            return
        # The neighbours' features, in stream object numbering (frames are contiguous).
        parts = [p for p in self._pending
                 if p.size and p.start < centre.columns.stop and p.start + p.size > centre.columns.start]
        stacked = np.concatenate([p.features for p in parts])
        offset = centre.columns.start - parts[0].start
        stacked = stacked[offset : offset + centre.columns.stop - centre.columns.start]
        propagated = centre.weights.astype(np.float32) @ stacked  # float32: a float64 product costs twice
        with torch.no_grad():
            parameter = next(self.model.encoder_.parameters())  # the model's device (a GPU model scores on it)
            embeddings = self.model.encoder_(torch.from_numpy(propagated).to(parameter.device)).cpu().numpy()
        if self.scorer != ATTRIBUTE_SCORER:  # attribute scores were made on arrival, without the window
            frame.raw_scores = self.model.score_embedded(frame.features, embeddings, [self.scorer])[self.scorer]
        magnitude = np.abs(centre.weights)
        degree = magnitude.sum(axis=1, keepdims=True)
        frame.rows = np.divide(magnitude, degree, out=np.zeros_like(magnitude), where=degree > 0)

    def _finalize(self, end_of_stream: bool) -> tuple[list[ScoredFrame], list[StreamAlert]]:
        embedded = [p for p in self._pending if p.rows is not None]
        if not embedded:
            return [], []
        last_embedded = embedded[-1].index
        ready_until = last_embedded if (self.causal or end_of_stream) else last_embedded - self.steps
        if self.attribute_reach and not (self.causal or end_of_stream):
            ready_until = min(ready_until, self._pending[-1].index - self.attribute_reach)
        scored, alerts = [], []
        while self._next_final <= ready_until:
            frame = self._score_final(self._next_final)
            scored.append(frame)
            alerts += [self._alert(interval) for interval in self.tracker.push(frame.score)]
            self._track_objects(frame)
            self._next_final += 1
        # Keep what the next final frame, and the next embeddings, still need.
        keep_from = min(self._next_final - max(self.steps, self.attribute_reach),
                        self._next_embed - self.window.effective_radius)
        while self._pending and self._pending[0].index < keep_from:
            self._pending.popleft()
        return scored, alerts

    def _score_final(self, index: int) -> ScoredFrame:
        if self.feature_radius:
            for pending in self._pending:
                if abs(pending.index - index) <= max(self.track_radius, self.steps) and pending.raw_scores is None:
                    pending.raw_scores = self._attribute_scores(pending)
        frame = self._frame(index)
        scores = frame.raw_scores
        if self.steps and frame.size:
            local = [p for p in self._pending
                     if index - self.steps <= p.index <= index + self.steps and p.rows is not None]
            start, stop = local[0].start, local[-1].start + local[-1].size
            matrix = np.zeros((stop - start, stop - start))
            for p in local:
                if p.size == 0:
                    continue
                columns = np.arange(p.columns.start, p.columns.stop)
                inside = (columns >= start) & (columns < stop)
                matrix[p.start - start : p.start - start + p.size, columns[inside] - start] = p.rows[:, inside]
            values = np.concatenate([p.raw_scores for p in local])
            for _ in range(self.steps):
                values = matrix @ values
            scores = values[frame.start - start : frame.start - start + frame.size]
        if self.track_radius and frame.size:
            scores = self._smoothed_along_tracks(frame)
        score = float(np.max(scores)) if len(scores) else float("nan")
        if frame.field_score is not None:
            score = float(np.fmax(score, frame.field_score))
        return ScoredFrame(index, score, frame.boxes, frame.class_ids, np.asarray(scores, np.float64))

    def _attribute_scores(self, frame: _Pending) -> np.ndarray:
        """A frame's attribute scores read with the held frames within ``feature_radius`` of it, as offline."""
        if not frame.size:
            return np.zeros(0)
        near = [p for p in self._pending if abs(p.index - frame.index) <= self.feature_radius and p.size]
        first = near[0].index
        frame_height, frame_width = frame.frame_size
        scores = self.attributes.score_frames(
            np.concatenate([np.full(p.size, p.index - first) for p in near]), np.concatenate([p.boxes for p in near]),
            np.concatenate([p.raw_rows for p in near]), self.model.feature_layout_, frame_height,
            sources=None if any(p.sources is None for p in near) else np.concatenate([p.sources for p in near]),
            track_ids=np.concatenate([np.full(p.size, -1, np.int64) if p.track_ids is None else p.track_ids
                                      for p in near]),
            frame_width=frame_width)
        start = sum(p.size for p in near if p.index < frame.index)
        return scores[start : start + frame.size]

    def _smoothed_along_tracks(self, frame: _Pending) -> np.ndarray:
        """The frame's attribute scores averaged along each object's track within ``track_radius`` frames.

        Offline's smoothing (:func:`anograph.attributes.track_smoothing.smooth_track_scores`) over
        the held frames (in causal mode only the past ones have arrived).
        """
        if frame.track_ids is None:
            return np.asarray(frame.raw_scores, np.float64)
        near = [p for p in self._pending if abs(p.index - frame.index) <= self.track_radius
                and p.size and p.track_ids is not None and p.raw_scores is not None]
        smoothed = smooth_track_scores(np.concatenate([p.track_ids for p in near]),
                                       np.concatenate([np.full(p.size, p.index) for p in near]),
                                       np.concatenate([p.raw_scores for p in near]), self.track_radius)
        start = sum(p.size for p in near if p.index < frame.index)
        return smoothed[start : start + frame.size]

    def _track_objects(self, frame: ScoredFrame) -> None:
        """Keep the best objects of the interval the tracker has open (at most ``top_count``).

        Objects of frames after the interval's last over frame wait apart: they join only
        if the interval grows past them, as :func:`anograph.serving.alerts.top_objects` would see it.
        """
        interval = self.tracker.open_interval
        if interval is None or frame.frame == interval.start:
            self._open_objects, self._gap_objects, self._open_peak = [], [], -np.inf
        if interval is None:
            return
        new = [(float(score), frame.frame, [float(value) for value in box], int(class_id))
               for score, box, class_id in zip(frame.object_scores, frame.boxes, frame.class_ids, strict=True)]
        if frame.frame == interval.end:  # an over frame: the interval now reaches it
            self._open_peak = max(self._open_peak, frame.score)
            self._open_objects = self._best(self._open_objects + self._gap_objects + new)
            self._gap_objects = []
        else:
            self._gap_objects = self._best(self._gap_objects + new)

    def _best(self, candidates: list[tuple[float, int, list[float], int]]) -> list[tuple[float, int, list[float], int]]:
        return sorted(candidates, key=lambda item: -item[0])[: self.top_count]

    def _alert(self, interval: Interval) -> StreamAlert:
        objects = [(frame, box, class_id, score) for score, frame, box, class_id in self._open_objects]
        alert = StreamAlert(interval, float(self._open_peak), objects)
        self._open_objects, self._gap_objects, self._open_peak = [], [], -np.inf
        return alert


@dataclass
class LatencyStats:
    """Per-frame seconds: running mean and maximum of all frames, percentiles of the last ones.

    ``cpu_mean_ms`` is this process's CPU time per frame (all its threads): on a shared,
    busy machine wall-clock latency mostly measures waiting for a core.
    """

    count: int = 0
    total: float = 0.0
    cpu_total: float = 0.0
    maximum: float = 0.0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_HISTORY))

    def add(self, seconds: float, cpu_seconds: float = 0.0) -> None:
        self.count += 1
        self.total += seconds
        self.cpu_total += cpu_seconds
        self.maximum = max(self.maximum, seconds)
        self.recent.append(seconds)

    def summary(self) -> dict[str, float]:
        recent = np.asarray(self.recent) if self.recent else np.zeros(1)
        return {"frames": self.count, "mean_ms": 1000 * self.total / max(self.count, 1),
                "cpu_mean_ms": 1000 * self.cpu_total / max(self.count, 1),
                "p50_ms": 1000 * float(np.percentile(recent, 50)), "p95_ms": 1000 * float(np.percentile(recent, 95)),
                "max_ms": 1000 * self.maximum}


@dataclass
class StreamReport:
    """What :func:`run_stream` measured."""

    frames: int
    alerts: int
    detection: dict[str, float]
    scoring: dict[str, float]
    latency_frames: int
    max_frames_held: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "alerts": self.alerts, "detection_and_features": self.detection,
                "scoring": self.scoring, "latency_frames": self.latency_frames,
                "max_frames_held": self.max_frames_held, "seconds": self.seconds}


def run_stream(frames: Iterator[np.ndarray], detector: Detector, extractor: NodeFeatureExtractor,
               scorer: StreamScorer, on_frame: Callable[[ScoredFrame], None] | None = None,
               on_alert: Callable[[StreamAlert], None] | None = None,
               frame_rate: float | None = None) -> StreamReport:
    """Detect, featurise and score every frame as it arrives; call back on scores and alerts.

    ``frame_rate`` is the source's (the flow's moving floor is a speed; ``None`` assumes 10 fps).

    Latency is split per arriving frame: ``detection`` = detector + node features,
    ``scoring`` = graph, embedding, scorer, propagation and alert rules; wall clock and CPU time.
    """
    detector.reset()
    extractor.reset(frame_rate)
    detection, scoring = LatencyStats(), LatencyStats()
    n_alerts, max_held = 0, 0
    started = time.perf_counter()

    def deliver(scored: list[ScoredFrame], alerts: list[StreamAlert]) -> None:
        nonlocal n_alerts
        for frame in scored:
            if on_frame is not None:
                on_frame(frame)
        for alert in alerts:
            n_alerts += 1
            if on_alert is not None:
                on_alert(alert)

    def score_ready(ready: list[FrameObjects]) -> None:
        nonlocal max_held
        for objects in ready:
            tock, cpu_tock = time.perf_counter(), time.process_time()
            result = scorer.push(objects.detections.boxes, objects.detections.class_ids, objects.features,
                                 frame_height=height, sources=objects.sources, track_ids=objects.track_ids,
                                 frame_width=width, cell_speeds=objects.cell_speeds)
            scoring.add(time.perf_counter() - tock, time.process_time() - cpu_tock)
            max_held = max(max_held, scorer.frames_held)
            deliver(*result)

    # push() holds a video's first frame until the second arrives (its flow comes from the
    # next frame), and adds motion-blob objects: live rows then equal offline extraction's.
    height: float | None = None
    width: float | None = None
    for frame in frames:
        tick, cpu_tick = time.perf_counter(), time.process_time()
        height, width = float(frame.shape[0]), float(frame.shape[1])
        ready = extractor.push(frame, detector.detect(frame))
        detection.add(time.perf_counter() - tick, time.process_time() - cpu_tick)
        score_ready(ready)
    score_ready(extractor.finish())
    deliver(*scorer.finish())
    return StreamReport(frames=detection.count, alerts=n_alerts, detection=detection.summary(),
                        scoring=scoring.summary(), latency_frames=scorer.latency_frames,
                        max_frames_held=max_held, seconds=time.perf_counter() - started)
