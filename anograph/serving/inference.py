"""Score a new video with a trained model: frame scores, object rows, alerts with explanations.

This is what ``anograph score`` and the ``score_videos`` flow run for one video:

1. :func:`load_scoring_model`: the :class:`AnoGraph` artifact at a path or URI, and its
   frame calibration (:mod:`anograph.serving.calibration`), if it has one.
2. :func:`build_extraction`: the detector and node-feature extractor the model was trained
   with, rebuilt from the artifact (detector name and settings, feature groups); the YOLOX
   weights file must be given again and must hash to the trained one.
3. :func:`score_video_features`: window graph, per-object scores, frame scores, alert
   intervals (:mod:`anograph.serving.alerts`), the top objects of each alert and, for the first,
   its most contributing neighbours (:mod:`anograph.serving.explain`).
4. :func:`write_scoring_outputs`: the output folder (contract in the README, "Scoring
   outputs"): ``frame_scores.csv``, ``frame_scores.parquet``, ``objects.parquet``,
   ``alerts.json``, ``overlay.mp4``, ``timeline.png``.
"""

from __future__ import annotations

import json
import posixpath
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from anograph.errors import InputError, ModelArtifactError
from anograph.extraction.detectors.base import Detector
from anograph.extraction.extract import extract_video
from anograph.extraction.features.extractor import NodeFeatureExtractor
from anograph.graph.windows import window_radius_for
from anograph.io.extraction_settings import ExtractionSettings, check_same_extraction, legacy_options
from anograph.io.shards import VideoFeatures
from anograph.io.storage import Storage
from anograph.io.video import open_video
from anograph.models.estimator import AnoGraph
from anograph.models.frame_scoring import fastest_places, scorer_frame_scores
from anograph.serving.alerts import (
    DEFAULT_MAX_GAP,
    DEFAULT_MIN_FRAMES,
    DEFAULT_TOP_OBJECTS,
    Alert,
    AlertObject,
    FastestPlace,
    Interval,
    Neighbour,
    alert_intervals,
    describe_interval,
    top_objects,
)
from anograph.serving.calibration import (
    AlertThreshold,
    FrameCalibration,
    alert_threshold,
    load_frame_calibration,
)
from anograph.serving.explain import DEFAULT_NEIGHBOURS, neighbour_contributions
from anograph.serving.overlay import write_overlay_video, write_timeline

# Keys of a detector's describe() that are facts about it, not constructor options.
DESCRIPTION_ONLY_KEYS = ("name", "weights_sha256", "method")
OUTPUT_FILES = {
    "frame_scores_csv": "frame_scores.csv",
    "frame_scores": "frame_scores.parquet",
    "objects": "objects.parquet",
    "alerts": "alerts.json",
    "overlay": "overlay.mp4",
    "timeline": "timeline.png",
}


@dataclass
class ScoringModel:
    """A loaded model, where it came from, and its frame calibration (``None`` for older models)."""

    model: AnoGraph
    uri: str
    calibration: FrameCalibration | None


def load_scoring_model(uri: str | Path, device: str | None = "cpu") -> ScoringModel:
    """Load the model artifact at ``uri`` (a folder or URI holding ``model.json``)."""
    text = str(uri).rstrip("/")
    scheme, separator, rest = text.partition("://")
    location = rest if separator else text
    parent, key = posixpath.split(location)
    if not key:
        raise ModelArtifactError(text, "not a model folder (expected .../models/<name>)")
    root = f"{scheme}://{parent}" if separator else (parent or ".")
    if not separator and not Path(text).is_dir():
        raise ModelArtifactError(text, "no such model folder")
    storage = Storage.open_existing(root)  # reading only: never create a mistyped root
    return ScoringModel(AnoGraph.load(storage, key, device=device), text, load_frame_calibration(storage, key))


def model_extraction_settings(model: AnoGraph, weights: str | Path | None = None) -> ExtractionSettings:
    """The extraction settings of the detector and feature groups the model was trained with.

    ``weights`` is needed exactly when the model's detector has a weights hash (an
    :class:`InputError` says to pass ``--weights``); a detector without weights refuses one.
    """
    from anograph.extraction.detectors import accepts_option

    described = dict(model.detector_)
    name = str(described.get("name"))
    options = {key: value for key, value in described.items() if key not in DESCRIPTION_ONLY_KEYS}
    if weights is not None:
        if not accepts_option(name, "weights"):
            raise InputError(weights, f"the model's {name} detector takes no weights file; leave --weights out")
        options["weights"] = str(Path(weights).resolve())
    elif described.get("weights_sha256"):
        raise InputError(None, f"the model's {name} detector needs its weights file: pass --weights")
    groups = set(model.feature_layout_.names)
    # A model trained before a setting was recorded gets its features as they were then.
    legacy = legacy_options(model.extraction_features_)
    return ExtractionSettings(detector=name, detector_options=options,
                              appearance="appearance" in groups, motion="motion" in groups, **legacy)


def build_extraction(model: AnoGraph, weights: str | Path | None = None) -> tuple[Detector, NodeFeatureExtractor]:
    """The detector and feature extractor the model was trained with, checked against the artifact."""
    described = dict(model.detector_)
    detector, extractor = model_extraction_settings(model, weights).build()
    trained_hash, given_hash = described.get("weights_sha256"), detector.describe().get("weights_sha256")
    if trained_hash != given_hash:
        raise ModelArtifactError(weights, f"detector weights hash {given_hash} differs from the model's {trained_hash}")
    layout = extractor.layout(detector.class_names)
    if layout != model.feature_layout_:
        raise ModelArtifactError(None, f"the rebuilt features have layout {layout.to_json()}, the model "
                                       f"{model.feature_layout_.to_json()}")
    check_same_extraction(model.extraction_features_, extractor.describe(), None,
                          "the features this anograph would extract")
    return detector, extractor


@dataclass
class ScoredVideo:
    """Everything :func:`write_scoring_outputs` writes for one video."""

    video: VideoFeatures
    scorer: str
    threshold: AlertThreshold
    window_radius: int
    object_scores: np.ndarray
    frame_scores: np.ndarray
    alerts: list[Alert]
    alert_rules: dict[str, int]
    model_uri: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float | None:
        return self.video.metadata.fps


def score_video_features(
    model: AnoGraph,
    video: VideoFeatures,
    scorer: str,
    threshold: AlertThreshold,
    window_seconds: float = 1.0,
    min_frames: int = DEFAULT_MIN_FRAMES,
    max_gap: int = DEFAULT_MAX_GAP,
    top_count: int = DEFAULT_TOP_OBJECTS,
    neighbour_count: int = DEFAULT_NEIGHBOURS,
) -> ScoredVideo:
    """Object and frame scores, alerts and explanations of one extracted video."""
    started = time.perf_counter()
    fps = video.metadata.fps
    radius = window_radius_for(video, window_seconds)
    object_scores = model.score_video(video, window_radius=radius, scorers=[scorer])[scorer]
    per_frame = scorer_frame_scores(model, video, scorer, object_scores)
    intervals = alert_intervals(per_frame, threshold.value, min_frames, max_gap)
    places = fastest_places(model, video, scorer)
    alerts = []
    if intervals:
        window = model.window_graph(video, radius)
        encoder_weight = model.encoder_.linear.weight.detach().cpu().numpy()
    for interval in intervals:
        rows = top_objects(video.frames, object_scores, interval, top_count)
        objects = [_alert_object(video, object_scores, int(row)) for row in rows]
        if objects:
            objects[0].neighbours = [
                Neighbour(**{**_object_fields(video, object_scores, part.column), "edge_weight": part.edge_weight,
                             "contribution": part.contribution, "share": part.share})
                for part in neighbour_contributions(int(rows[0]), window.adjacency, window.features, encoder_weight,
                                                    neighbour_count)
            ]
        alerts.append(describe_interval(video.metadata.video, interval, per_frame, threshold.value, fps, objects,
                                        None if places is None else _fastest_place(places, interval)))
    return ScoredVideo(video=video, scorer=scorer, threshold=threshold, window_radius=radius,
                       object_scores=object_scores, frame_scores=per_frame, alerts=alerts,
                       alert_rules={"min_frames": min_frames, "max_gap": max_gap, "top_objects": top_count,
                                    "neighbours": neighbour_count},
                       seconds={"score": time.perf_counter() - started})


def _fastest_place(places: tuple[np.ndarray, np.ndarray], interval: Interval) -> FastestPlace:
    """The motion field's worst cell at the interval's frame where the field scores highest."""
    boxes, scores = places
    frame = interval.start + int(np.argmax(scores[interval.start : interval.end + 1]))
    return FastestPlace(frame, [round(float(value), 2) for value in boxes[frame]], float(scores[frame]))


#: What outputs call an object made from a moving region no detection explained (class id -1).
MOVING_REGION_NAME = "moving region"


def _class_name(video: VideoFeatures, row: int) -> str:
    names = video.metadata.class_names
    class_id = int(video.class_ids[row])
    if class_id < 0:
        return MOVING_REGION_NAME
    return names[class_id] if class_id < len(names) else str(class_id)


def _object_fields(video: VideoFeatures, object_scores: np.ndarray, row: int) -> dict[str, Any]:
    return {"frame": int(video.frames[row]), "object_index": row,
            "box": [round(float(value), 2) for value in video.boxes[row]],
            "class_name": _class_name(video, row), "score": float(object_scores[row])}


def _alert_object(video: VideoFeatures, object_scores: np.ndarray, row: int) -> AlertObject:
    return AlertObject(**_object_fields(video, object_scores, row))


def score_source(
    scoring: ScoringModel,
    source: str | Path,
    scorer: str,
    threshold_quantile: float | None = None,
    weights: str | Path | None = None,
    fps: float | None = None,
    window_seconds: float = 1.0,
    min_frames: int = DEFAULT_MIN_FRAMES,
    max_gap: int = DEFAULT_MAX_GAP,
    top_count: int = DEFAULT_TOP_OBJECTS,
    camera: str = "",
) -> ScoredVideo:
    """Extract and score a video file or frame folder with a loaded model.

    ``camera`` names the camera that filmed it, for a model trained on several cameras
    (:mod:`anograph.models.camera_scoring`); a single-camera model scores any footage.
    """
    threshold = alert_threshold(scoring.model, scoring.calibration, scorer, threshold_quantile)
    detector, extractor = build_extraction(scoring.model, weights)
    reader = open_video(source, fps=fps)
    video = extract_video(reader, detector, extractor)
    video.metadata.camera = camera
    scored = score_video_features(scoring.model, video, scorer, threshold, window_seconds, min_frames, max_gap,
                                  top_count)
    scored.model_uri = scoring.uri
    scored.seconds["extract"] = float(video.metadata.extraction["seconds"])
    return scored


def frame_table(scored: ScoredVideo) -> pa.Table:
    """One row per frame (``frame_scores.parquet`` / ``.csv``); ``frame_number`` is 1-based (docs/data-contracts.md)."""
    n_frames = len(scored.frame_scores)
    over = np.isfinite(scored.frame_scores) & (scored.frame_scores > scored.threshold.value)
    alert_id = np.full(n_frames, -1, np.int32)
    for number, alert in enumerate(scored.alerts):
        alert_id[alert.start_frame : alert.end_frame + 1] = number
    frames = np.arange(n_frames, dtype=np.int32)
    return pa.table({
        "video": pa.array([scored.video.metadata.video] * n_frames, pa.string()),
        "frame_number": frames + 1,
        "seconds": frames / scored.fps if scored.fps else np.full(n_frames, np.nan),
        "score": pa.array(scored.frame_scores, mask=~np.isfinite(scored.frame_scores)),
        "n_objects": np.diff(scored.video.frame_offsets()).astype(np.int32),
        "over_threshold": over,
        "alert_id": alert_id,
    })


def object_table(scored: ScoredVideo) -> pa.Table:
    """One row per detected object (``objects.parquet``); ``frame_number`` is 1-based (docs/data-contracts.md)."""
    video = scored.video
    boxes = np.asarray(video.boxes, np.float32).reshape(-1, 4)
    return pa.table({
        "video": pa.array([video.metadata.video] * video.n_objects, pa.string()),
        "object_index": np.arange(video.n_objects, dtype=np.int32),
        "frame_number": np.asarray(video.frames, np.int32) + 1,
        "x1": boxes[:, 0], "y1": boxes[:, 1], "x2": boxes[:, 2], "y2": boxes[:, 3],
        "class_id": np.asarray(video.class_ids, np.int32),
        "class_name": pa.array([_class_name(video, row) for row in range(video.n_objects)], pa.string()),
        "detector_score": np.asarray(video.scores, np.float32),
        "score": np.asarray(scored.object_scores, np.float64),
    })


def alerts_document(scored: ScoredVideo) -> dict[str, Any]:
    """The ``alerts.json`` document; frame fields are 1-based ``*frame_number`` (docs/data-contracts.md)."""
    metadata = scored.video.metadata
    return {
        "video": metadata.video,
        "source": metadata.source,
        "model": scored.model_uri,
        "scorer": scored.scorer,
        "threshold": {"value": scored.threshold.value, "quantile": scored.threshold.quantile,
                      "source": scored.threshold.source},
        "alert_rules": scored.alert_rules,
        "fps": metadata.fps,
        "n_frames": metadata.n_frames,
        "window_radius": scored.window_radius,
        "explanation": "neighbour share of |A_ij| * ||x_j W|| in the top object's GCN embedding (anograph.serving.explain)",
        "frame_numbering": "1-based: frame_number 1 is the video's first frame",
        "alerts": [alert.to_record() for alert in scored.alerts],
    }


def write_scoring_outputs(scored: ScoredVideo, out_dir: str | Path, overlay: bool = True,
                          labels: np.ndarray | None = None) -> dict[str, Path]:
    """Write the scoring output folder; the overlay re-reads the source video.

    ``labels`` (per-frame ground truth) only draw on the timeline, when given.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / file for name, file in OUTPUT_FILES.items()}
    frames = frame_table(scored)
    pq.write_table(frames, paths["frame_scores"])
    pacsv.write_csv(frames, paths["frame_scores_csv"])
    pq.write_table(object_table(scored), paths["objects"])
    paths["alerts"].write_text(json.dumps(alerts_document(scored), indent=1) + "\n", encoding="utf-8")
    title = f"{scored.video.metadata.video}: {scored.scorer}, threshold = q{scored.threshold.quantile:g} of normal training frames"
    write_timeline(paths["timeline"], scored.frame_scores, scored.fps, scored.threshold.value, scored.alerts,
                   title=title, labels=labels)
    if overlay:
        reader = open_video(scored.video.metadata.source, fps=scored.fps)
        write_overlay_video(paths["overlay"], iter(reader), scored.fps or 10.0, scored.frame_scores,
                            scored.video.frames, scored.video.boxes, scored.object_scores, scored.threshold.value,
                            scored.alerts)
    else:
        del paths["overlay"]
    return paths
