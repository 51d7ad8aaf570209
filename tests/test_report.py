"""The report: numbers, report.json contract, Markdown and plots."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from anograph.errors import InputError
from anograph.evaluation.report import build_report, compute_metrics, write_report

LABELS = {
    "cam 1": np.array([0, 0, 1, 1, 0, 0], dtype=bool),
    "cam2": np.array([1, 1, 1], dtype=bool),  # anomalous throughout: no AUC of its own
}
FRAME_SCORES = {
    # "good": NaN = frame without objects (filled with the lowest score, 0.1).
    # Filled: cam 1 = [0.1, 0.2, 0.8, 0.9, 0.3, 0.2], cam2 = [0.7, 0.6, 0.5].
    "good": {"cam 1": np.array([np.nan, 0.2, 0.8, 0.9, 0.3, 0.2]), "cam2": np.array([0.7, 0.6, 0.1 + 0.4])},
    "flat": {"cam 1": np.zeros(6), "cam2": np.zeros(3)},
}
EXPECTED_KEYS = {
    "dataset",
    "detector",
    "frame_auc_micro",
    "frame_auc_macro",
    "n_test_frames",
    "n_anomalous_frames",
    "stage_seconds",
    "scorers",
    "default_scorer",
    "default_scorer_reason",
    "smoothing_sigma",
    "macro_convention",
    "per_video",
    "config",
}


def make_report(**overrides: object) -> dict:
    settings = {
        "dataset": "toy",
        "detector": "motion",
        "default_scorer": "good",
        "default_scorer_reason": "it is the method under test.",
        "stage_seconds": {"extract": 1.25, "train": np.float32(2.0)},
        "smoothing_sigma": 1.0,
        "macro_convention": "pad",
        "config": {
            "window_seconds": 1.0,
            "threshold": np.float64(0.3),
            "undefined": float("nan"),
            "classes": ("person",),
        },
    }
    settings.update(overrides)
    return build_report(FRAME_SCORES, LABELS, **settings)


def test_compute_metrics_matches_hand_counts() -> None:
    metrics = compute_metrics(FRAME_SCORES["good"], LABELS, sigma=0.0, convention="pad")
    # Pooled normal {0.1, 0.2, 0.3, 0.2}; anomalous {0.8, 0.9, 0.7, 0.6, 0.5}: every pair won -> 1.
    assert metrics["frame_auc_micro"] == pytest.approx(1.0)
    assert metrics["equal_error_rate"] == pytest.approx(0.0)
    # cam2 padded: normal {0.5 (min)}, anomalous {0.7, 0.6, 0.5, 0.7 (max)}: 3 wins + 1 tie -> 3.5/4.
    # cam 1 padded: normal {0.1, 0.2, 0.3, 0.2, 0.1}, anomalous {0.8, 0.9, 0.9}: all won -> 1.
    assert metrics["frame_auc_macro"] == pytest.approx((1 + 7 / 8) / 2)
    assert metrics["per_video"]["cam2"] == {"auc": None, "auc_padded": pytest.approx(7 / 8)}
    assert metrics["n_single_class_videos"] == 1
    # With sigma 0, smoothed figures equal the unsmoothed ones.
    assert metrics["frame_auc_macro_smoothed"] == pytest.approx(metrics["frame_auc_macro"])


def test_flat_scores_are_at_chance() -> None:
    metrics = compute_metrics(FRAME_SCORES["flat"], LABELS, sigma=2.0, convention="skip")
    # Every pair ties: AUC 1/2 everywhere; under "skip" only cam 1 counts.
    assert metrics["frame_auc_micro"] == pytest.approx(0.5)
    assert metrics["frame_auc_macro"] == pytest.approx(0.5)
    assert metrics["frame_auc_micro_smoothed"] == pytest.approx(0.5)


def test_build_report_contents() -> None:
    report = make_report()
    assert EXPECTED_KEYS <= set(report)
    assert report["n_test_frames"] == 9
    assert report["n_anomalous_frames"] == 5
    assert report["n_test_videos"] == 2
    assert report["frame_auc_micro"] == report["scorers"]["good"]["frame_auc_micro"] == pytest.approx(1.0)
    assert report["scorers"]["flat"]["frame_auc_micro"] == pytest.approx(0.5)
    assert report["per_video"]["cam2"] == {
        "frames": 3,
        "anomalous_frames": 3,
        "auc": None,
        "auc_padded": pytest.approx(7 / 8),
    }
    assert report["stage_seconds"] == {"extract": 1.25, "train": 2.0}
    assert report["config"]["undefined"] is None
    assert report["config"]["classes"] == ["person"]
    assert isinstance(report["config"]["threshold"], float)
    datetime.fromisoformat(report["created_at"])


def test_unknown_default_scorer_is_an_error() -> None:
    with pytest.raises(InputError, match="default scorer 'dgi' is not among"):
        make_report(default_scorer="dgi")


def _reject_constant(name: str) -> float:
    raise AssertionError(f"report.json contains {name}")


def test_write_report_files(tmp_path: Path) -> None:
    report = make_report()
    paths = write_report(tmp_path / "out", report, FRAME_SCORES, LABELS, "good")
    assert "images" not in report  # the caller's dictionary is left alone
    for key in ("json", "markdown", "roc", "scores_cam 1", "scores_cam2"):
        assert paths[key].is_file(), key
    assert paths["scores_cam 1"].name == "scores_cam_1.png"

    written = json.loads(paths["json"].read_text(), parse_constant=_reject_constant)
    assert EXPECTED_KEYS <= set(written)
    assert written["images"] == {
        "roc": "roc.png",
        "scores": {"cam 1": "scores_cam_1.png", "cam2": "scores_cam2.png"},
    }
    assert written["per_video"]["cam2"]["auc"] is None
    assert math.isclose(written["frame_auc_macro"], report["frame_auc_macro"])

    markdown = paths["markdown"].read_text()
    for text in (
        "## Scorers",
        "| **good** (default)",
        "## Time per stage",
        "| extract |",
        "## Choices made",
        "![ROC curves](roc.png)",
        "scores_cam_1.png",
    ):
        assert text in markdown, text

    for key in ("roc", "scores_cam2"):
        image = cv2.imread(str(paths[key]))
        assert image is not None and image.shape[0] >= 200 and image.shape[1] >= 400
        assert image.std() > 10  # drawn on, not blank
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20


def test_write_report_rejects_other_default_scorer(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="differs from the report's"):
        write_report(tmp_path, make_report(), FRAME_SCORES, LABELS, "flat")


def test_undefined_metrics_are_null_in_json(tmp_path: Path) -> None:
    labels = {name: np.zeros_like(label) for name, label in LABELS.items()}  # no anomaly at all
    report = build_report(
        FRAME_SCORES,
        labels,
        dataset="toy",
        detector="motion",
        default_scorer="good",
        default_scorer_reason="test.",
        stage_seconds={"extract": float("nan"), "train": 2.0},
    )
    assert report["stage_seconds"] == {"extract": None, "train": 2.0}
    assert report["frame_auc_micro"] is None and report["equal_error_rate"] is None
    assert report["scorers"]["flat"]["frame_auc_macro_smoothed"] is not None  # "pad" defines it
    paths = write_report(tmp_path, report, FRAME_SCORES, labels, "good")
    written = json.loads(paths["json"].read_text(), parse_constant=_reject_constant)
    assert written["frame_auc_micro"] is None
    assert "n/a" in paths["markdown"].read_text()
