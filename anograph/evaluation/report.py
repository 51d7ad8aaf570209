"""The evaluation report: metrics of every scorer, as JSON, Markdown and plots.

:func:`build_report` computes the numbers (:func:`compute_metrics` per scorer) and
:func:`write_report` writes them to a folder:

``report.json``
    Machine-readable results (schema below); never contains NaN (undefined values are
    ``null``).
``report.md``
    For people: headline table, scorer comparison, per-video results, stage timings,
    the choices made, and the plots embedded.
``roc.png``
    Pooled ROC curve of every scorer (unsmoothed; the default scorer smoothed as well).
``embedding.png``
    When an embedding map is given: t-SNE of test-object embeddings coloured by score (Fig. 3).
``scores_<video>.png``
    One per test video: the default scorer's frame scores (raw and smoothed) over time,
    anomalous frames shaded. Characters other than letters, digits, ``.``, ``_`` and
    ``-`` in the video name become ``_``.

report.json schema (version 1)::

    {
      "schema_version": 1,
      "created_at": "2025-01-31T12:00:00+00:00",       # UTC, ISO 8601
      "dataset": "ucsd-ped2",
      "detector": "yolox-nano",
      "default_scorer": "dgi",                          # the scorer the headline numbers use
      "default_scorer_reason": "...",                   # why it is the default
      "frame_auc_micro": 0.71,                          # default scorer, unsmoothed, pooled frames
      "frame_auc_macro": 0.69,                          # default scorer, unsmoothed, mean per video
      "frame_auc_micro_smoothed": 0.73,                 # same, scores smoothed with smoothing_sigma
      "frame_auc_macro_smoothed": 0.70,
      "equal_error_rate": 0.33,                         # default scorer, unsmoothed, pooled
      "smoothing_sigma": 3.0,                           # Gaussian sigma in frames (0: none)
      "macro_convention": "pad",                        # "pad" or "skip" (see anograph.evaluation.metrics)
      "empty_frames": "lowest score over all videos",   # how frames without objects are scored
      "n_test_videos": 12,
      "n_test_frames": 2010,
      "n_anomalous_frames": 1648,
      "n_single_class_videos": 5,                       # videos all normal or all anomalous
      "stage_seconds": {"extract": 120.5, "train": 30.1, "score": 4.2},
      "scorers": {
        "<name>": {
          "frame_auc_micro": float | null,
          "frame_auc_macro": float | null,
          "frame_auc_micro_smoothed": float | null,
          "frame_auc_macro_smoothed": float | null,
          "equal_error_rate": float | null
        }
      },
      "per_video": {                                    # default scorer, unsmoothed
        "<video>": {
          "frames": int,
          "anomalous_frames": int,
          "auc": float | null,                          # the video's own AUC; null if single-class
          "auc_padded": float | null                    # with the "pad" convention's two extra frames
        }
      },
      "config": {...},                                  # whatever settings the caller passed
      "skipped_videos": [                               # unreadable videos left out (--skip-bad-videos)
        {"split": "test", "video": "<video>", "path": "...", "reason": "..."}
      ],
      "versions": {"anograph": "0.1.0", "python": ..., "numpy": ..., "torch": ..., ...},
      "youden": {"<scorer>": {"threshold", "true_negatives", "false_negatives", "true_positives",
                              "false_positives", "accuracy", "true_positive_rate", "false_positive_rate"}},
      "nlilo_accuracy": null, "nlilo_accuracy_note": "...",   # why it is not computed
      "region_metrics": {"available": false, "reason": "..."}  # or, with region ground truth:
                        {"available": true, "beta": 0.1, "alpha": 0.1, "n_regions", "n_tracks", "n_frames",
                         "scorers": {"<scorer>": {"rbdc", "tbdc", "rbdr_at_0.01", "rbdr_at_0.1",
                                                   "tbdr_at_0.01", "tbdr_at_0.1"}}},
      "ablations": {"<name>": {"note": "...", "details": {...},
                               "variants": {"<variant>": {"<scorer>": {"frame_auc_micro", "frame_auc_macro",
                                                                       "frame_auc_micro_smoothed"}}}}},
      "published": {"paper", "source", "metrics": {...}, "label": "published, not our run"} | null,
      "images": {"roc": "roc.png", "scores": {"<video>": "scores_<video>.png"}}   # added by write_report
    }

AUC and EER values are ``null`` where undefined (a single class of frames). The RBDC /
TBDC areas and rates are fractions in ``[0, 1]``; published figures are kept as printed (%).
"""

from __future__ import annotations

import json
import math
import platform
import re
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from anograph import __version__
from anograph.errors import InputError
from anograph.evaluation.metrics import (
    NLILO_NOT_FOUND,
    MacroConvention,
    area_under_detection_curve,
    detection_curves,
    detection_rate_at,
    equal_error_rate,
    fill_empty_frames,
    frame_auc_macro,
    frame_auc_micro,
    roc_points,
    smooth_scores,
    video_aucs,
    youden_counts,
)
from anograph.evaluation.published import PUBLISHED_ABLATIONS, STREET_SCENE_NOTE, published_for
from anograph.io.storage import Storage

REPORT_SCHEMA_VERSION = 2  # 2: versions, youden, region_metrics, ablations, published
EMPTY_FRAMES_RULE = "lowest score over all videos"

FrameScores = Mapping[str, Mapping[str, np.ndarray]]  # scorer -> video -> per-frame scores


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _json_safe(value: Any) -> Any:
    """Plain JSON types only, with NaN / inf as ``null`` (numpy scalars and paths converted)."""
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.ndarray):
        return [_json_safe(item) for item in value.tolist()]
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
        "ablations": {
            name: ablation_metrics(ablation, labels, smoothing_sigma, macro_convention)
            for name, ablation in (ablations or {}).items()
        },
        "published": _published(dataset),
    }
    return _json_safe(report)


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
                key: metrics[key] for key in ("frame_auc_micro", "frame_auc_macro", "frame_auc_micro_smoothed")
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


def _image_name(video: str) -> str:
    return "scores_" + re.sub(r"[^A-Za-z0-9._-]", "_", video) + ".png"


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)


def _plot_roc(
    path: Path, frame_scores: FrameScores, labels: Mapping[str, np.ndarray], report: Mapping[str, Any]
) -> None:
    figure = Figure(figsize=(5.5, 5.0))
    axes = figure.add_subplot()
    default = report["default_scorer"]
    for name, scores in frame_scores.items():
        fpr, tpr = roc_points(fill_empty_frames(scores), labels)
        auc = report["scorers"][name]["frame_auc_micro"]
        label = f"{name}{' (default)' if name == default else ''}: AUC {_format(auc)}"
        axes.plot(fpr, tpr, linewidth=2.0 if name == default else 1.2, label=label)
    sigma = report["smoothing_sigma"]
    if sigma > 0:
        fpr, tpr = roc_points(smooth_scores(fill_empty_frames(frame_scores[default]), sigma), labels)
        auc = report["scorers"][default]["frame_auc_micro_smoothed"]
        axes.plot(
            fpr,
            tpr,
            linestyle="--",
            color="black",
            linewidth=1.2,
            label=f"{default}, smoothed σ={sigma:g}: AUC {_format(auc)}",
        )
    axes.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.set_xlabel("false-positive rate")
    axes.set_ylabel("true-positive rate")
    axes.set_title(f"Frame-level ROC, {report['dataset']} (all test frames pooled)")
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    _save(figure, path)


def _plot_embedding(path: Path, embedding: Mapping[str, Any], report: Mapping[str, Any]) -> None:
    coordinates = np.asarray(embedding["coordinates"], np.float64)
    panels = embedding["scores"]
    figure = Figure(figsize=(5.2 * len(panels), 4.6))
    for position, (scorer, values) in enumerate(panels.items(), start=1):
        axes = figure.add_subplot(1, len(panels), position)
        values = np.asarray(values, np.float64)
        order = np.argsort(values)  # draw high scores last, on top
        points = axes.scatter(coordinates[order, 0], coordinates[order, 1], c=values[order], s=6, cmap="viridis",
                              linewidths=0)
        figure.colorbar(points, ax=axes, label=f"{scorer} score (high = anomalous)")
        axes.set_title(f"t-SNE of {len(values)} test objects, colour: {scorer}", fontsize=9)
        axes.set_xticks([])
        axes.set_yticks([])
    figure.suptitle(f"Test-object GCN embeddings, {report['dataset']}", fontsize=10)
    figure.tight_layout()
    _save(figure, path)


def _anomalous_runs(label: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate([[False], label.astype(bool), [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _plot_video_scores(
    path: Path,
    video: str,
    raw: np.ndarray,
    smoothed: np.ndarray,
    label: np.ndarray,
    report: Mapping[str, Any],
) -> None:
    figure = Figure(figsize=(8.0, 2.6))
    axes = figure.add_subplot()
    frames = np.arange(1, raw.size + 1)
    for start, end in _anomalous_runs(label):
        axes.axvspan(start + 0.5, end + 0.5, color="tab:red", alpha=0.15, linewidth=0)
    axes.plot(frames, raw, color="tab:blue", linewidth=0.8, alpha=0.6, label="frame score")
    if report["smoothing_sigma"] > 0:
        axes.plot(
            frames,
            smoothed,
            color="tab:blue",
            linewidth=1.8,
            label=f"smoothed (σ={report['smoothing_sigma']:g})",
        )
    auc = report["per_video"][video]["auc"]
    axes.set_title(
        f"{video}: {report['default_scorer']} scores, anomalous frames shaded (video AUC {_format(auc)})",
        fontsize=9,
    )
    axes.set_xlabel("frame (1-based)")
    axes.set_ylabel("score")
    axes.set_xlim(0.5, max(raw.size, 1) + 0.5)
    axes.legend(loc="upper left", fontsize=7)
    figure.tight_layout()
    _save(figure, path)


def _format(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def _protocol_markdown(report: Mapping[str, Any]) -> list[str]:
    """The paper's table layouts (Tables 1-5), our figures beside the published ones."""
    default = report["default_scorer"]
    dataset = report["dataset"]
    published = report.get("published") or {}
    printed = published.get("metrics", {})
    label = "*published, not our run*"
    sigma = report["smoothing_sigma"]
    lines = [
        "",
        "## Tables laid out like the paper's",
        "",
        "Figures in % as the paper prints them. Rows marked *published, not our run* are copied from the "
        f"paper ({published.get('source', 'it has no figure for this dataset')}); every other row is this run.",
        "",
        f"### Frame-level AUC (Table 1 layout), {dataset}",
        "",
        f"| method | micro AUC | macro AUC | micro AUC σ={sigma:g} | macro AUC σ={sigma:g} |",
        "|---|---|---|---|---|",
    ]
    for name, metrics in report["scorers"].items():
        shown = f"**anograph `{name}`** (default)" if name == default else f"anograph `{name}`"
        lines.append(
            f"| {shown} | {_percent(metrics['frame_auc_micro'])} | {_percent(metrics['frame_auc_macro'])} | "
            f"{_percent(metrics['frame_auc_micro_smoothed'])} | {_percent(metrics['frame_auc_macro_smoothed'])} |"
        )
    if "frame_auc" in printed:
        lines.append(f"| Ano-Graph, {label} | {printed['frame_auc']:g} (averaging not stated) | | | |")

    youden = report["youden"]
    lines += [
        "",
        "### At the threshold maximising TPR − FPR (Table 2 layout)",
        "",
        "Pooled frames, unsmoothed scores; the threshold is chosen on the test labels by definition of the "
        "metric. nlilo-accuracy: not computed (see *Choices made*).",
        "",
        "| method | TN | FN | TP | FP | AUC | accuracy | nlilo-accuracy | threshold |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, counts in youden.items():
        shown = f"**anograph `{name}`**" if name == default else f"anograph `{name}`"
        lines.append(
            f"| {shown} | {counts['true_negatives']} | {counts['false_negatives']} | {counts['true_positives']} | "
            f"{counts['false_positives']} | {_percent(report['scorers'][name]['frame_auc_micro'])} | "
            f"{_percent(counts['accuracy'])} | n/a | {_format(counts['threshold'], 4)} |"
        )
    if "accuracy" in printed:
        lines.append(
            f"| Ano-Graph, {label} | {printed['true_negatives']} | {printed['false_negatives']} | "
            f"{printed['true_positives']} | {printed['false_positives']} | {printed['frame_auc']:g} | "
            f"{printed['accuracy']:g} | {printed['nlilo_accuracy']:g} | |"
        )

    regions = report["region_metrics"]
    lines += ["", "### Region- and track-based criteria (Table 3 layout)", ""]
    if regions["available"]:
        lines += [
            f"β = {regions['beta']:g} (IoU for a detected region), α = {regions['alpha']:g} (share of a track's "
            f"regions); {regions['n_regions']} anomalous regions in {regions['n_tracks']} tracks over "
            f"{regions['n_frames']} frames. RBDC / TBDC: area under detection rate vs false positives per frame, "
            "FPR 0 to 1. RBDR / TBDR: detection rate at the stated false positives per frame.",
            "",
            "| method | AUC | TBDC | RBDC | TBDR @0.01 | RBDR @0.01 | TBDR @0.1 | RBDR @0.1 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, values in regions["scorers"].items():
            shown = f"**anograph `{name}`**" if name == default else f"anograph `{name}`"
            lines.append(
                f"| {shown} | {_percent(report['scorers'][name]['frame_auc_micro'])} | {_percent(values['tbdc'])} | "
                f"{_percent(values['rbdc'])} | {_percent(values['tbdr_at_0.01'])} | {_percent(values['rbdr_at_0.01'])} | "
                f"{_percent(values['tbdr_at_0.1'])} | {_percent(values['rbdr_at_0.1'])} |"
            )
        if "track_detection" in printed:
            lines.append(
                f"| Ano-Graph, {label} | {printed['frame_auc']:g} | {printed['track_detection']:g} | "
                f"{printed['region_detection']:g} | | | | |"
            )
        if published.get("note"):
            lines += ["", published["note"]]
    else:
        lines.append(f"Not computed: {regions['reason']}.")

    for name, ablation in report["ablations"].items():
        lines += _ablation_markdown(name, ablation, dataset, default)
    return lines


_ABLATION_TITLES = {
    "edges": ("Ablation: edge types (Table 4 layout)", "edges"),
    "window": ("Ablation: test window i, one model, no retraining (Table 5 layout)", "i"),
    "training_fraction": ("Ablation: share of training frames kept (Fig. 4)", "training frames kept"),
}


def _ablation_markdown(name: str, ablation: Mapping[str, Any], dataset: str, default: str) -> list[str]:
    title, column = _ABLATION_TITLES.get(name, (f"Ablation: {name}", "variant"))
    variants = ablation["variants"]
    scorers = list(next(iter(variants.values()), {}))
    lines = ["", f"### {title}", ""]
    if ablation.get("note"):
        lines += [ablation["note"], ""]
    lines += [
        "Micro / macro frame AUC in %, unsmoothed.",
        "",
        f"| {column} | " + " | ".join(f"`{scorer}`" + (" (default)" if scorer == default else "") for scorer in scorers)
        + " |",
        "|---|" + "---|" * len(scorers),
    ]
    for variant, per_scorer in variants.items():
        cells = [
            f"{_percent(per_scorer[scorer]['frame_auc_micro'])} / {_percent(per_scorer[scorer]['frame_auc_macro'])}"
            for scorer in scorers
        ]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    published = PUBLISHED_ABLATIONS.get(name, {})
    printed = published.get("values", {})
    if printed:
        rows = "; ".join(
            f"{data}: " + ", ".join(f"{variant} {value:g}" for variant, value in values.items())
            for data, values in printed.items()
        )
        lines += ["", f"Published, not our run ({published['source']}): {rows}."]
    elif published:
        lines += ["", f"Published ({published['source']})."]
    return lines


def _markdown(report: Mapping[str, Any]) -> str:
    sigma = report["smoothing_sigma"]
    default = report["default_scorer"]
    lines = [
        f"# Anomaly detection report: {report['dataset']}",
        "",
        f"Detector: `{report['detector']}`. Default scorer: `{default}`. Created {report['created_at']}.",
        "",
        "## Headline (default scorer)",
        "",
        f"| metric | unsmoothed | smoothed (σ={sigma:g} frames) |",
        "|---|---|---|",
        f"| frame AUC, micro (all frames pooled) | {_format(report['frame_auc_micro'])} | {_format(report['frame_auc_micro_smoothed'])} |",
        f"| frame AUC, macro (mean per video, `{report['macro_convention']}`) | {_format(report['frame_auc_macro'])} | {_format(report['frame_auc_macro_smoothed'])} |",
        f"| equal error rate (pooled) | {_format(report['equal_error_rate'])} | |",
        "",
        f"{report['n_test_videos']} test videos, {report['n_test_frames']} frames, of which "
        f"{report['n_anomalous_frames']} anomalous; {report['n_single_class_videos']} video(s) are entirely normal or "
        "entirely anomalous.",
        "",
        "## Scorers",
        "",
        f"| scorer | micro AUC | macro AUC | micro AUC σ={sigma:g} | macro AUC σ={sigma:g} | EER |",
        "|---|---|---|---|---|---|",
    ]
    for name, metrics in report["scorers"].items():
        shown = f"**{name}** (default)" if name == default else name
        lines.append(
            f"| {shown} | {_format(metrics['frame_auc_micro'])} | {_format(metrics['frame_auc_macro'])} | "
            f"{_format(metrics['frame_auc_micro_smoothed'])} | {_format(metrics['frame_auc_macro_smoothed'])} | "
            f"{_format(metrics['equal_error_rate'])} |"
        )
    lines += _protocol_markdown(report)
    lines += [
        "",
        "## Per video (default scorer, unsmoothed)",
        "",
        "| video | frames | anomalous | AUC | AUC padded |",
        "|---|---|---|---|---|",
    ]
    for name, video in report["per_video"].items():
        lines.append(
            f"| {name} | {video['frames']} | {video['anomalous_frames']} | {_format(video['auc'])} | {_format(video['auc_padded'])} |"
        )
    if report.get("skipped_videos"):
        lines += ["", "## Skipped videos", "",
                  "These videos could not be read and were left out (`--skip-bad-videos`):", "",
                  "| split | video | path | reason |", "|---|---|---|---|"]
        lines += [f"| {video['split']} | {video['video']} | `{video['path']}` | {video['reason']} |"
                  for video in report["skipped_videos"]]
    lines += ["", "## Time per stage", ""]
    if report["stage_seconds"]:
        lines += ["| stage | seconds |", "|---|---|"]
        lines += [
            f"| {stage} | {_format(seconds, 1)} |" for stage, seconds in report["stage_seconds"].items()
        ]
        total = sum(seconds for seconds in report["stage_seconds"].values() if seconds is not None)
        lines.append(f"| **total** | {total:.1f} |")
    else:
        lines.append("No stage timings were recorded.")
    convention_text = (
        "each video gets one extra normal frame scored at its minimum and one extra anomalous frame scored at its "
        "maximum, so videos that are entirely anomalous (or entirely normal) still have an AUC"
        if report["macro_convention"] == "pad"
        else "videos that are entirely normal or entirely anomalous have no AUC of their own and are left out"
    )
    lines += [
        "",
        "## Choices made",
        "",
        f"- Default scorer `{default}`: {report['default_scorer_reason']}",
        f"- Frames without any detected object score the {report['empty_frames']}, so they rank as the most normal frames.",
        f"- Smoothed figures use a Gaussian along time with σ={sigma:g} frames per video (edges extended); "
        "unsmoothed figures are the primary ones.",
        f"- Macro AUC convention `{report['macro_convention']}`: {convention_text}.",
        "- Micro AUC pools every test frame into one ROC curve.",
        f"- {report.get('nlilo_accuracy_note', '')}",
    ]
    if report["config"]:
        lines += [
            "",
            "Run settings:",
            "",
            "```json",
            json.dumps(report["config"], indent=2, sort_keys=True),
            "```",
        ]
    images = report.get("images", {})
    if images:
        lines += ["", "## Plots", "", f"![ROC curves]({images['roc']})", ""]
        if images.get("embedding"):
            lines += [
                "Embedding map (the paper's Fig. 3): t-SNE of test-object GCN embeddings, coloured by score.",
                "",
                f"![embedding map]({images['embedding']})",
                "",
            ]
        for video, image in images["scores"].items():
            lines += [f"![{video} scores]({image})", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(
    out_dir: str | Path,
    report: Mapping[str, Any],
    frame_scores: FrameScores,
    labels: Mapping[str, np.ndarray],
    default_scorer: str,
    embedding: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``report.json``, ``report.md``, ``roc.png`` and one ``scores_<video>.png`` per test video.

    Parameters
    ----------
    out_dir:
        Folder to write into (created if missing; files of the same names are replaced).
    report:
        The dictionary from :func:`build_report` (not modified; the written JSON adds
        ``images``).
    frame_scores:
        Scorer -> video -> per-frame scores, as given to :func:`build_report`.
    labels:
        Video -> boolean per-frame labels.
    default_scorer:
        Scorer whose scores are plotted per video.
    embedding:
        Optional embedding map: ``{"coordinates": (k, 2), "scores": {scorer: (k,)}}``
        (see :func:`anograph.evaluation.ablations.embedding_map`); drawn as ``embedding.png``, one
        panel per scorer.

    Returns
    -------
    dict
        ``"json"``, ``"markdown"``, ``"roc"``, ``"scores_<video>"`` and, with an embedding
        map, ``"embedding"`` -> written path.
    """
    if default_scorer not in frame_scores:
        raise InputError(
            None, f"default scorer {default_scorer!r} is not among the scorers {sorted(frame_scores)}"
        )
    if default_scorer != report["default_scorer"]:
        raise InputError(
            None, f"default scorer {default_scorer!r} differs from the report's {report['default_scorer']!r}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = dict(report)
    paths: dict[str, Path] = {"roc": out_dir / "roc.png"}
    _plot_roc(paths["roc"], frame_scores, labels, report)

    raw = fill_empty_frames(frame_scores[default_scorer])
    smoothed = smooth_scores(raw, report["smoothing_sigma"])
    images: dict[str, str] = {}
    for video, label in labels.items():
        image = _image_name(video)
        paths[f"scores_{video}"] = out_dir / image
        _plot_video_scores(out_dir / image, video, raw[video], smoothed[video], np.asarray(label), report)
        images[video] = image
    report["images"] = {"roc": paths["roc"].name, "scores": images}
    if embedding is not None:
        paths["embedding"] = out_dir / "embedding.png"
        _plot_embedding(paths["embedding"], embedding, report)
        report["images"]["embedding"] = paths["embedding"].name

    paths["json"] = out_dir / "report.json"
    paths["json"].write_text(
        json.dumps(_json_safe(report), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    paths["markdown"] = out_dir / "report.md"
    paths["markdown"].write_text(_markdown(report), encoding="utf-8")
    return paths


def store_report(paths: Mapping[str, Path], storage: Storage, prefix: str) -> list[str]:
    """Copy the files :func:`write_report` wrote to ``prefix/<file name>`` under the storage root.

    The report then lives beside the shards and the model it was made from (on S3 too);
    returns the keys written.
    """
    keys = []
    for path in sorted(set(paths.values())):
        key = f"{prefix.rstrip('/')}/{path.name}"
        storage.write_bytes(key, path.read_bytes())
        keys.append(key)
    return keys
