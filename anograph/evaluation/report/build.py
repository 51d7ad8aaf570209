"""The report's numbers: every metric of every scorer, as one JSON-safe dictionary.

:func:`build_report` assembles the ``report.json`` content (schema in
:mod:`anograph.evaluation.report`) from per-frame scores and labels: :func:`compute_metrics`
per scorer, :func:`region_metrics` (RBDC / TBDC) when region ground truth exists,
:func:`ablation_metrics` per ablation, :func:`software_versions` and the paper's published
figures. It computes only; rendering and writing files live in the sibling modules, so the
numbers can be checked without drawing anything.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from anograph import __version__
from anograph.errors import InputError
from anograph.evaluation.detection_metrics import (
    area_under_detection_curve,
    detection_curves,
    detection_rate_at,
)
from anograph.evaluation.metrics import (
    NLILO_NOT_FOUND,
    MacroConvention,
    equal_error_rate,
    fill_empty_frames,
    frame_auc_macro,
    frame_auc_micro,
    smooth_scores,
    video_aucs,
    youden_counts,
)
from anograph.evaluation.published import STREET_SCENE_NOTE, published_for
from anograph.evaluation.report.alert_threshold import threshold_on_test

REPORT_SCHEMA_VERSION = 2  # 2: versions, youden, region_metrics, ablations, published
EMPTY_FRAMES_RULE = "lowest score over all videos"

FrameScores = Mapping[str, Mapping[str, np.ndarray]]  # scorer -> video -> per-frame scores


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def json_safe(value: Any) -> Any:
    """Plain JSON types only, with NaN / inf as ``null`` (numpy scalars and paths converted)."""
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, np.ndarray):
        return [json_safe(item) for item in value.tolist()]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _finite_or_none(float(value))
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str):
        return value
    return str(value)


def compute_metrics(
    frame_scores: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    sigma: float = 3.0,
    convention: MacroConvention = "pad",
) -> dict[str, Any]:
    """All metrics of one scorer.

    Parameters
    ----------
    frame_scores:
        Video name -> per-frame scores; NaN marks frames without objects (filled with the
        lowest score over all videos before anything else).
    labels:
        Video name -> boolean per-frame labels.
    sigma:
        Gaussian smoothing in frames for the ``*_smoothed`` values (default 3).
    convention:
        Macro-AUC convention, ``"pad"`` (default) or ``"skip"``.

    Returns
    -------
    dict
        ``frame_auc_micro``, ``frame_auc_macro``, ``frame_auc_micro_smoothed``,
        ``frame_auc_macro_smoothed``, ``equal_error_rate`` (floats or ``None`` where
        undefined), ``youden`` (counts and accuracy at the threshold maximising TPR - FPR,
        unsmoothed), ``n_single_class_videos``, and ``per_video`` (video -> ``auc``,
        ``auc_padded``, unsmoothed).
    """
    filled = fill_empty_frames(frame_scores)
    smoothed = smooth_scores(filled, sigma)
    own = video_aucs(filled, labels, "skip")
    padded = video_aucs(filled, labels, "pad")
    return {
        "frame_auc_micro": _finite_or_none(frame_auc_micro(filled, labels)),
        "frame_auc_macro": _finite_or_none(frame_auc_macro(filled, labels, convention)),
        "frame_auc_micro_smoothed": _finite_or_none(frame_auc_micro(smoothed, labels)),
        "frame_auc_macro_smoothed": _finite_or_none(frame_auc_macro(smoothed, labels, convention)),
        "equal_error_rate": _finite_or_none(equal_error_rate(filled, labels)),
        "youden": asdict(youden_counts(filled, labels)),
        "n_single_class_videos": own.n_single_class,
        "per_video": {
            name: {"auc": _finite_or_none(own.aucs[name]), "auc_padded": _finite_or_none(padded.aucs[name])}
            for name in labels
        },
    }


def build_report(
    frame_scores: FrameScores,
    labels: Mapping[str, np.ndarray],
    *,
    dataset: str,
    detector: str,
    default_scorer: str,
    default_scorer_reason: str,
    stage_seconds: Mapping[str, float] | None = None,
    smoothing_sigma: float = 3.0,
    macro_convention: MacroConvention = "pad",
    config: Mapping[str, Any] | None = None,
    skipped_videos: list[Mapping[str, str]] | None = None,
    object_regions: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    ground_truth_regions: Mapping[str, np.ndarray | None] | None = None,
    ablations: Mapping[str, Mapping[str, Any]] | None = None,
    alert_threshold: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Compute the report dictionary (the ``report.json`` content, without ``images``).

    Parameters
    ----------
    frame_scores:
        Scorer name -> video name -> per-frame scores (NaN for frames without objects).
    labels:
        Video name -> boolean per-frame labels.
    dataset, detector:
        Names recorded in the report.
    default_scorer:
        The scorer whose numbers are the headline; must be a key of ``frame_scores``.
    default_scorer_reason:
        One sentence saying why it is the default.
    stage_seconds:
        Wall-clock seconds per pipeline stage (default: none recorded).
    smoothing_sigma:
        Gaussian sigma in frames for the smoothed figures (default 3).
    macro_convention:
        ``"pad"`` (default) or ``"skip"``; see :mod:`anograph.evaluation.metrics`.
    config:
        Settings of the run, stored as given under ``"config"`` (JSON-safe copy).
    skipped_videos:
        Videos left out because they could not be read (``--skip-bad-videos``), each
        ``{"split", "video", "path", "reason"}``; stored under ``"skipped_videos"``.
    object_regions:
        Scorer -> video -> ``(n, 6)`` detected regions ``frame, x1, y1, x2, y2, score``: each
        object's box and score (see :func:`object_regions`). Needed for RBDC / TBDC.
    ground_truth_regions:
        Video -> ``(m, 6)`` anomalous regions ``frame, track_id, x1, y1, x2, y2``, or ``None``
        where the dataset has no boxes. RBDC / TBDC are computed only when every test video
        has an array.
    alert_threshold:
        ``{"value", "quantile", "scorer", "source"}`` of the model's alert threshold
        (:class:`anograph.serving.calibration.AlertThreshold`), counted on the test videos.
    ablations:
        Ablation name -> ``{"variants": {variant: frame_scores (scorer -> video -> scores)},
        "note": str, "details": {...}}``; each variant's AUCs are computed here.
    """
    if default_scorer not in frame_scores:
        raise InputError(
            None, f"default scorer {default_scorer!r} is not among the scorers {sorted(frame_scores)}"
        )
    per_scorer = {
        name: compute_metrics(scores, labels, smoothing_sigma, macro_convention)
        for name, scores in frame_scores.items()
    }
    headline = per_scorer[default_scorer]
    metric_keys = (
        "frame_auc_micro",
        "frame_auc_macro",
        "frame_auc_micro_smoothed",
        "frame_auc_macro_smoothed",
        "equal_error_rate",
    )
    report: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": dataset,
        "detector": detector,
        "default_scorer": default_scorer,
        "default_scorer_reason": default_scorer_reason,
        **{key: headline[key] for key in metric_keys},
        "smoothing_sigma": float(smoothing_sigma),
        "macro_convention": macro_convention,
        "empty_frames": EMPTY_FRAMES_RULE,
        "n_test_videos": len(labels),
        "n_test_frames": int(sum(np.asarray(label).size for label in labels.values())),
        "n_anomalous_frames": int(sum(np.asarray(label).astype(bool).sum() for label in labels.values())),
        "n_single_class_videos": headline["n_single_class_videos"],
        "stage_seconds": {stage: float(seconds) for stage, seconds in (stage_seconds or {}).items()},
        "scorers": {name: {key: metrics[key] for key in metric_keys} for name, metrics in per_scorer.items()},
        "per_video": {
            name: {
                "frames": int(np.asarray(label).size),
                "anomalous_frames": int(np.asarray(label).astype(bool).sum()),
                **headline["per_video"][name],
            }
            for name, label in labels.items()
        },
        "config": dict(config or {}),
        "skipped_videos": [dict(video) for video in skipped_videos or []],
        "versions": software_versions(),
        "youden": {name: metrics["youden"] for name, metrics in per_scorer.items()},
        "nlilo_accuracy": None,
        "nlilo_accuracy_note": NLILO_NOT_FOUND,
        "region_metrics": region_metrics(object_regions, ground_truth_regions, labels),
        "alert_threshold": threshold_on_test(
            alert_threshold, frame_scores.get(alert_threshold["scorer"], {}) if alert_threshold else {}, labels),
        "ablations": {
            name: ablation_metrics(ablation, labels, smoothing_sigma, macro_convention)
            for name, ablation in (ablations or {}).items()
        },
        "published": _published(dataset),
    }
    return json_safe(report)


def software_versions() -> dict[str, str | None]:
    """Versions of this package, Python and the libraries that shape the numbers (``None`` if absent)."""
    versions: dict[str, str | None] = {"anograph": __version__, "python": platform.python_version()}
    for package in ("numpy", "scipy", "scikit-learn", "torch", "onnxruntime", "opencv-python-headless",
                    "pyarrow", "prefect"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def object_regions(object_scores: np.ndarray, frames: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """One video's detected regions for RBDC / TBDC: ``(n, 6)`` rows ``frame, x1, y1, x2, y2, score``."""
    object_scores = np.asarray(object_scores, np.float64).reshape(-1)
    return np.column_stack(
        [np.asarray(frames, np.float64).reshape(-1), np.asarray(boxes, np.float64).reshape(-1, 4), object_scores]
    )


#: False positives per frame at which detection rates are reported beside the areas.
DETECTION_RATE_FPRS = (0.01, 0.1)


def region_metrics(
    regions: Mapping[str, Mapping[str, np.ndarray]] | None,
    ground_truth: Mapping[str, np.ndarray | None] | None,
    labels: Mapping[str, np.ndarray],
    beta: float = 0.1,
    alpha: float = 0.1,
) -> dict[str, Any]:
    """RBDC, TBDC (areas for FPR 0-1) and detection rates at :data:`DETECTION_RATE_FPRS`, per scorer.

    ``{"available": False, "reason": ...}`` when the dataset has no region ground truth
    or no object regions were given.
    """
    if not ground_truth or any(ground_truth.get(name) is None for name in labels):
        return {"available": False, "reason": "the dataset gives no anomalous boxes / tracks for its test videos"}
    if not regions:
        return {"available": False, "reason": "no per-object regions were scored"}
    n_frames = {name: int(np.asarray(label).size) for name, label in labels.items()}
    truth = {name: ground_truth[name] for name in labels}
    scorers: dict[str, dict[str, float | None]] = {}
    curves = None
    for scorer, per_video in regions.items():
        curves = detection_curves(per_video, truth, n_frames, beta=beta, alpha=alpha)
        fpr = curves.false_positives_per_frame
        values: dict[str, float | None] = {
            "rbdc": _finite_or_none(area_under_detection_curve(fpr, curves.region_detection_rate)),
            "tbdc": _finite_or_none(area_under_detection_curve(fpr, curves.track_detection_rate)),
        }
        for limit in DETECTION_RATE_FPRS:
            values[f"rbdr_at_{limit:g}"] = _finite_or_none(detection_rate_at(fpr, curves.region_detection_rate, limit))
            values[f"tbdr_at_{limit:g}"] = _finite_or_none(detection_rate_at(fpr, curves.track_detection_rate, limit))
        scorers[scorer] = values
    assert curves is not None
    return {
        "available": True,
        "beta": beta,
        "alpha": alpha,
        "n_frames": curves.n_frames,
        "n_regions": curves.n_regions,
        "n_tracks": curves.n_tracks,
        "scorers": scorers,
    }


def ablation_metrics(
    ablation: Mapping[str, Any],
    labels: Mapping[str, np.ndarray],
    sigma: float,
    convention: MacroConvention = "pad",
) -> dict[str, Any]:
    """Frame AUCs (micro, macro, micro smoothed) of every scorer of every variant of one ablation."""
    variants = {
        str(variant): {
            scorer: {
                **{key: metrics[key] for key in ("frame_auc_micro", "frame_auc_macro", "frame_auc_micro_smoothed")},
                "per_video_auc": {video: values["auc"] for video, values in metrics["per_video"].items()},
            }
            for scorer, metrics in (
                (scorer, compute_metrics(scores, labels, sigma, convention))
                for scorer, scores in frame_scores.items()
            )
        }
        for variant, frame_scores in ablation["variants"].items()
    }
    return {"note": ablation.get("note", ""), "details": dict(ablation.get("details", {})), "variants": variants}


def _published(dataset: str) -> dict[str, Any] | None:
    entry = published_for(dataset)
    if entry is None:
        return None
    entry["label"] = "published, not our run"
    if dataset == "street-scene":
        entry["note"] = STREET_SCENE_NOTE
    return entry
