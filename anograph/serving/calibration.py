"""Frame-level alert thresholds calibrated on the normal training videos (no test labels).

Alerts fire on *frame* scores (max over a frame's objects, after score propagation), so
the threshold must come from the distribution of frame scores of normal video, scored
the way a new video is scored: same test windows, same propagation. Right after
fitting, :func:`calibrate_frame_scores` scores every training video with
:meth:`AnoGraph.score_video`, **leave-one-video-out**: the kNN bank rows that came from
the video being scored are removed, which mimics an unseen normal video (otherwise each
object would find itself in the bank at distance 0). With a single training video, its
first and second halves (by frame) take turns as the left-out part. The discriminator
score has no bank and is in-sample (somewhat optimistic).

The sorted frame scores per scorer are kept, so any quantile can be read later; the
threshold for alerts is ``quantile(frame scores, q)`` with
``q = DEFAULT_THRESHOLD_QUANTILE`` unless the user sets another (``anograph score
--threshold-quantile``). A normal video then has about ``1 - q`` of its frames over the
threshold, before the alert rules (minimum duration, gap merge) remove isolated ones.

Each training video's count of frames over the default quantile of the *other* training videos'
frame scores is kept too: the held-out scores of whole normal videos. A training video with far
more than ``1 - q`` of its frames over looks unlike the other training videos to a model fitted
without it: footage with an anomaly in it, or a camera that moved. The report lists them
(:mod:`anograph.evaluation.report.alert_threshold`).

Artifact: ``<model key>/frame_calibration.json`` beside the model's ``model.json``
(contract in the README, "Scoring outputs"), added to the model folder's manifest
(:mod:`anograph.models.manifest`) when it is saved, so it is only ever read with the model
it was computed for. A model saved without one has none; :func:`alert_threshold` then
falls back to the model's object-level calibration scores and says so
(``source = "object_calibration"``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from anograph.errors import InputError, ModelArtifactError
from anograph.graph.windows import window_radius_for
from anograph.io.shards import VideoFeatures
from anograph.io.storage import Storage
from anograph.models.estimator import SCORERS, AnoGraph
from anograph.models.frame_scoring import scorer_frame_scores
from anograph.models.manifest import add_artifact_file, verify_artifact

CALIBRATION_FILE = "frame_calibration.json"
CALIBRATION_FORMAT_VERSION = 1
# Chosen a priori (not from any test labels): about one normal frame in a hundred is over.
DEFAULT_THRESHOLD_QUANTILE = 0.99


@dataclass
class FrameCalibration:
    """Sorted frame scores of the normal training videos, per scorer (see the module docstring)."""

    frame_scores: dict[str, list[float]]
    window_seconds: float
    window_radii: list[int]
    propagation_steps: list[int]
    n_videos: int
    default_quantile: float = DEFAULT_THRESHOLD_QUANTILE
    method: str = "leave-one-video-out kNN banks (discriminator in-sample); frame = max over objects"
    format_version: int = CALIBRATION_FORMAT_VERSION
    #: Frames with an object, per training video (empty in calibrations saved before it was kept).
    video_frames: dict[str, int] = field(default_factory=dict)
    #: Per scorer, per training video: its frames over the ``default_quantile`` of the other videos' frame scores.
    video_frames_over: dict[str, dict[str, int]] = field(default_factory=dict)

    def threshold(self, scorer: str, quantile: float | None = None) -> float:
        """``quantile`` (default :attr:`default_quantile`) of the training frame scores of ``scorer``."""
        quantile = self.default_quantile if quantile is None else float(quantile)
        _check_quantile(quantile)
        if scorer not in self.frame_scores:
            raise InputError(None, f"no frame calibration for scorer {scorer!r}; have {sorted(self.frame_scores)}")
        return float(np.quantile(np.asarray(self.frame_scores[scorer]), quantile))

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["thresholds"] = {name: self.threshold(name) for name in self.frame_scores}
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> FrameCalibration:
        if record.get("format_version") != CALIBRATION_FORMAT_VERSION:
            raise ValueError(f"frame calibration format {record.get('format_version')!r} is not {CALIBRATION_FORMAT_VERSION}")
        fields = {name: record[name] for name in cls.__dataclass_fields__ if name in record}
        return cls(**fields)


def _check_quantile(quantile: float) -> None:
    if not 0.0 < quantile <= 1.0:
        raise InputError(None, f"threshold quantile must be in (0, 1], got {quantile}")


def _held_out_parts(n_videos: int, n_frames: int) -> list[tuple[int, int]]:
    """``(first frame, stop frame)`` parts of one video of ``n_videos`` that take turns being left out."""
    if n_videos > 1:
        return [(0, n_frames)]
    half = n_frames // 2
    return [(0, half), (half, n_frames)]


def calibrate_frame_scores(
    model: AnoGraph,
    videos: Sequence[VideoFeatures],
    window_seconds: float = 1.0,
    default_fps: float | None = None,
    default_quantile: float = DEFAULT_THRESHOLD_QUANTILE,
    scorers: Sequence[str] | None = None,
) -> FrameCalibration:
    """Frame scores of the training ``videos`` (the ones just fitted, same order), leave-one-out.

    Must run on the fitted model in memory: it needs ``bank_nodes_``, which says which
    training node each kNN bank row is, and which :meth:`AnoGraph.save` does not keep.
    Each video is taken from ``videos`` once, in order, and only it is used at a time, so
    ``videos`` may be a lazy sequence that reads shards (:class:`anograph.graph.batches.ShardVideos`).
    """
    _check_quantile(default_quantile)
    if not hasattr(model, "bank_nodes_"):
        raise ValueError("frame calibration needs the model right after fit (bank_nodes_ is not saved)")
    scorers = model.scorer_names if scorers is None else list(scorers)
    by_video: dict[str, dict[str, list[np.ndarray]]] = {name: {} for name in scorers}
    radii, steps = [], []
    node_start = 0
    for video_index in range(len(videos)):
        video = videos[video_index]
        radius = window_radius_for(video, window_seconds, default_fps)
        in_video = (model.bank_nodes_ >= node_start) & (model.bank_nodes_ < node_start + video.n_objects)
        bank_frame = np.full(len(model.bank_nodes_), -1)
        bank_frame[in_video] = video.frames[model.bank_nodes_[in_video] - node_start]
        node_start += video.n_objects
        for first, stop in _held_out_parts(len(videos), video.metadata.n_frames):
            held_out = in_video & (bank_frame >= first) & (bank_frame < stop)
            left_out = copy.copy(model)
            left_out.feature_bank_ = model.feature_bank_[~held_out]
            left_out.embedding_bank_ = model.embedding_bank_[~held_out]
            if getattr(model, "attribute_scoring_", None) is not None:
                left_out.attribute_scoring_ = model.attribute_scoring_.held_out_for(video.metadata.video)
            object_scores = left_out.score_video(video, window_radius=radius, scorers=scorers)
            for name, values in object_scores.items():
                scores = scorer_frame_scores(left_out, video, name, values)[first:stop]
                by_video[name].setdefault(video.metadata.video, []).append(scores[np.isfinite(scores)])
        radii.append(radius)
        steps.append(model.propagation_steps(radius))
    if node_start != model.n_training_nodes_:
        raise ValueError(f"{node_start} objects in the videos given, but the model was fitted on "
                         f"{model.n_training_nodes_}: pass the training videos in fitting order")
    calibration = FrameCalibration(
        frame_scores={name: np.sort(np.concatenate([part for parts in videos_of.values() for part in parts])).tolist()
                      for name, videos_of in by_video.items()},
        window_seconds=float(window_seconds),
        window_radii=sorted(set(radii)),
        propagation_steps=sorted(set(steps)),
        n_videos=len(videos),
        default_quantile=float(default_quantile),
    )
    calibration.video_frames, calibration.video_frames_over = _frames_over_the_others(by_video, default_quantile)
    return calibration


def _frames_over_the_others(by_video: dict[str, dict[str, list[np.ndarray]]],
                            quantile: float) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Frames per video, and per scorer each video's frames over the ``quantile`` of the *other* videos' frames.

    Against the pooled threshold, a video unlike the rest would set the tail itself; against
    the others' it stands out. With one training video there are no others, and no counts.
    """
    frames: dict[str, int] = {}
    over: dict[str, dict[str, int]] = {}
    for name, videos_of in by_video.items():
        if len(videos_of) < 2:
            continue
        scores = {video: np.concatenate(parts) for video, parts in videos_of.items()}
        frames = {video: len(values) for video, values in scores.items()}
        over[name] = {}
        for video, values in scores.items():
            others = np.concatenate([other for key, other in scores.items() if key != video])
            over[name][video] = int((values > np.quantile(others, quantile)).sum()) if len(others) else 0
    return frames, over


def save_frame_calibration(calibration: FrameCalibration, storage: Storage, model_key: str) -> None:
    """Write ``<model_key>/frame_calibration.json`` and bind it to the model in the folder's manifest.

    The model folder is verified first (:func:`anograph.models.manifest.add_artifact_file`):
    a calibration is never attached to a tampered or incomplete model.
    """
    add_artifact_file(storage, model_key, CALIBRATION_FILE, json.dumps(calibration.to_dict(), indent=1).encode())


def load_frame_calibration(storage: Storage, model_key: str) -> FrameCalibration | None:
    """The model's frame calibration, or ``None`` for a model saved without one.

    The whole model folder is checked against its manifest first; a calibration the
    manifest does not list, or whose bytes differ, raises :class:`ModelArtifactError`.
    """
    files = verify_artifact(storage, model_key)
    if CALIBRATION_FILE not in files:
        return None
    location = storage.location(f"{model_key}/{CALIBRATION_FILE}")
    try:
        calibration = FrameCalibration.from_dict(json.loads(files[CALIBRATION_FILE]))
    except (ValueError, KeyError, TypeError) as error:
        raise ModelArtifactError(location, f"frame calibration is unreadable ({error})") from error
    _check_calibration(calibration, location)
    return calibration


def _check_calibration(calibration: FrameCalibration, location: str) -> None:
    """Refuse calibration content no normal training run produces (empty or non-finite scores)."""
    if not 0.0 < float(calibration.default_quantile) <= 1.0:
        raise ModelArtifactError(location, f"frame calibration quantile {calibration.default_quantile} is not in (0, 1]")
    for name, scores in calibration.frame_scores.items():
        values = np.asarray(scores, np.float64)
        if values.ndim != 1 or len(values) == 0 or not np.all(np.isfinite(values)):
            raise ModelArtifactError(location, f"frame calibration of scorer {name!r} is empty or not finite")


@dataclass(frozen=True)
class AlertThreshold:
    """The threshold alerts use, the quantile it came from and which calibration (``source``)."""

    value: float
    quantile: float
    scorer: str
    source: str
    #: ``{training video: [frames over, frames]}`` held out, where the calibration has them at this quantile.
    training_videos: dict[str, list[int]] | None = None


def alert_threshold(model: AnoGraph, calibration: FrameCalibration | None, scorer: str,
                    quantile: float | None = None) -> AlertThreshold:
    """Threshold from the frame calibration, else from the object-level training scores (older models)."""
    if calibration is not None:
        level = calibration.default_quantile if quantile is None else float(quantile)
        over = calibration.video_frames_over.get(scorer) if level == calibration.default_quantile else None
        training_videos = ({video: [count, calibration.video_frames[video]] for video, count in over.items()}
                           if over else None)
        return AlertThreshold(calibration.threshold(scorer, level), level, scorer, "frame_calibration", training_videos)
    level = DEFAULT_THRESHOLD_QUANTILE if quantile is None else float(quantile)
    _check_quantile(level)
    if scorer not in model.calibration_scores_:
        raise InputError(None, f"unknown scorer {scorer!r}; choose from {list(SCORERS)}")
    return AlertThreshold(float(np.quantile(model.calibration_scores_[scorer], level)), level, scorer,
                          "object_calibration")
