"""The report's figures: pooled ROC curves, per-video score traces and the embedding map.

Each function draws one PNG with matplotlib's object API (``Figure`` on an Agg canvas, no
pyplot), so plotting needs no display and leaves no global figure state behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from anograph.evaluation.metrics import fill_empty_frames, roc_points, smooth_scores
from anograph.evaluation.report.build import FrameScores
from anograph.evaluation.report.markdown import format_metric


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=100)


def plot_roc(
    path: Path, frame_scores: FrameScores, labels: Mapping[str, np.ndarray], report: Mapping[str, Any]
) -> None:
    """``roc.png``: pooled ROC of every scorer (unsmoothed), plus the default scorer smoothed.

    Legend AUCs are read from ``report`` (the :func:`~anograph.evaluation.report.build_report`
    dictionary) so the figure and the JSON cannot disagree.
    """
    figure = Figure(figsize=(5.5, 5.0))
    axes = figure.add_subplot()
    default = report["default_scorer"]
    for name, scores in frame_scores.items():
        fpr, tpr = roc_points(fill_empty_frames(scores), labels)
        auc = report["scorers"][name]["frame_auc_micro"]
        label = f"{name}{' (default)' if name == default else ''}: AUC {format_metric(auc)}"
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
            label=f"{default}, smoothed σ={sigma:g}: AUC {format_metric(auc)}",
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


def plot_embedding(path: Path, embedding: Mapping[str, Any], report: Mapping[str, Any]) -> None:
    """``embedding.png``: t-SNE map of test objects, one panel per scorer, coloured by its score.

    ``embedding`` is ``{"coordinates": (k, 2), "scores": {scorer: (k,)}}`` (see
    :func:`anograph.evaluation.ablations.embedding_map`).
    """
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
    """``(start, end)`` of each run of anomalous frames, 0-based, end exclusive."""
    padded = np.concatenate([[False], label.astype(bool), [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def plot_video_scores(
    path: Path,
    video: str,
    raw: np.ndarray,
    smoothed: np.ndarray,
    label: np.ndarray,
    report: Mapping[str, Any],
) -> None:
    """``scores_<video>.png``: one video's raw and smoothed frame scores over time, anomalous frames shaded."""
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
    threshold = report.get("alert_threshold")
    if threshold is not None and threshold["scorer"] == report["default_scorer"]:
        axes.axhline(threshold["value"], color="tab:orange", linestyle="--", linewidth=1.0,
                     label=f"alert threshold ({threshold['quantile']:g} of normal training frames)")
    auc = report["per_video"][video]["auc"]
    axes.set_title(
        f"{video}: {report['default_scorer']} scores, anomalous frames shaded (video AUC {format_metric(auc)})",
        fontsize=9,
    )
    axes.set_xlabel("frame (1-based)")
    axes.set_ylabel("score")
    axes.set_xlim(0.5, max(raw.size, 1) + 0.5)
    axes.legend(loc="upper left", fontsize=7)
    figure.tight_layout()
    _save(figure, path)
