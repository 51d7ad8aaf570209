"""What an evaluation hands to :func:`anograph.evaluation.report.build_report`, assembled in one place.

The evaluation flow scores each test video in its own task; :func:`gather_video_scores`
turns those per-video results into the per-scorer tables the report reads, and
:func:`report_options` collects everything else the report records: the default scorer and
why, the model's settings and training facts, the regions for RBDC / TBDC, the ablations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from anograph.datasets.base import Dataset
from anograph.defaults import CHOSEN_SCORER_REASON, default_scorer_for
from anograph.models.estimator import SCORERS, AnoGraph

#: One scored test video: ``(video, scorer -> per-frame scores, scorer -> object regions)``.
VideoResult = tuple[str, dict[str, np.ndarray], dict[str, np.ndarray]]


def gather_video_scores(results: Sequence[VideoResult]) -> dict[str, Any]:
    """``{"frames": scorer -> video -> frame scores, "regions": video -> scorer -> object regions}``."""
    return {
        "frames": {name: {video: frames[name] for video, frames, _ in results} for name in _scorer_names(results)},
        "regions": {video: regions for video, _, regions in results},
    }


def _scorer_names(results: Sequence[VideoResult]) -> list[str]:
    return list(results[0][1]) if results else list(SCORERS)


def report_labels(dataset: Dataset, frame_scores_by_scorer: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Any]:
    """The frame labels of the scored test videos (test labels only report, never choose anything)."""
    first = next(iter(frame_scores_by_scorer.values()))
    return {name: dataset.labels[name] for name in first}


def report_options(
    *,
    dataset_name: str,
    dataset: Dataset,
    detector: str,
    model: AnoGraph,
    model_key: str,
    model_options: Mapping[str, Any],
    regions: Mapping[str, Mapping[str, np.ndarray]],
    labels: Mapping[str, Any],
    default_scorer: str | None,
    window_seconds: float,
    smoothing_sigma: float,
    stage_seconds: Mapping[str, float],
    config: Mapping[str, Any] | None,
    skipped_videos: Sequence[Mapping[str, str]] | None,
    ablations: Mapping[str, Any],
    ablation_scores: Mapping[str, Any],
    alert_threshold: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Keyword arguments of :func:`~anograph.evaluation.report.build_report` for one evaluation.

    ``default_scorer`` ``None`` means :data:`anograph.defaults.DEFAULT_SCORER`, with its reason;
    ``regions`` is video -> scorer -> object regions (:func:`gather_video_scores`); ``config``
    is extended with the model's key, settings and training facts and the ablations asked for.
    """
    ground_truth = {video.name: getattr(video, "ground_truth_regions", None) for video in dataset.test}
    return {
        "dataset": dataset_name,
        "detector": detector,
        "default_scorer": default_scorer or default_scorer_for(model.scorer_names)[0],
        "default_scorer_reason": default_scorer_for(model.scorer_names)[1] if default_scorer is None
        else CHOSEN_SCORER_REASON,
        "stage_seconds": dict(stage_seconds),
        "smoothing_sigma": smoothing_sigma,
        "skipped_videos": list(skipped_videos or []),
        "config": {**(config or {}), "model_key": model_key, "window_seconds": window_seconds,
                   "model": dict(model_options), "model_detector": model.detector_,
                   "model_training": {"separation": model.training_separation_, "epochs": model.n_epochs_,
                                      "n_nodes": model.n_training_nodes_},
                   "ablations": dict(ablations),
                   "model_selection": None if getattr(model, "attribute_scoring_", None) is None
                   else model.attribute_scoring_.selection},
        "object_regions": {name: {video: by_scorer[name] for video, by_scorer in regions.items()}
                           for name in model.scorer_names},
        "ground_truth_regions": {name: ground_truth.get(name) for name in labels},
        "ablations": dict(ablation_scores),
        "alert_threshold": alert_threshold,
    }
