"""Report sections of the evaluation protocol: Youden counts, RBDC / TBDC, ablations, published figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from anograph.evaluation.published import PUBLISHED
from anograph.evaluation.report import build_report, object_regions, write_report
from tests.conftest import SHARED
from tests.test_metrics_protocol import DETECTIONS, GROUND_TRUTH, N_FRAMES

LABELS = {"a": np.array([1, 1, 1, 1], bool), "b": np.zeros(6, bool)}
FRAME_SCORES = {"s": {"a": np.array([0.9, 0.7, 0.5, 0.6]), "b": np.array([0.1, 0.2, 0.5, 0.1, 0.1, 0.1])}}


def _report(**overrides: object) -> dict:
    settings: dict = {
        "dataset": "street-scene",
        "detector": "yolox",
        "default_scorer": "s",
        "default_scorer_reason": "test.",
        "object_regions": {"s": DETECTIONS},
        "ground_truth_regions": GROUND_TRUTH,
    }
    settings.update(overrides)
    return build_report(FRAME_SCORES, LABELS, **settings)


def test_region_metrics_in_the_report_match_the_hand_computed_areas() -> None:
    assert N_FRAMES == {name: label.size for name, label in LABELS.items()}
    regions = _report()["region_metrics"]
    assert regions["available"] and (regions["n_regions"], regions["n_tracks"], regions["n_frames"]) == (4, 2, 10)
    # From tests/test_metrics_protocol.py: RBDC .6625, TBDC .5, RBDR .25 @ .01 and .5 @ .1.
    assert regions["scorers"]["s"]["rbdc"] == pytest.approx(0.6625)
    assert regions["scorers"]["s"]["tbdc"] == pytest.approx(0.5)
    assert regions["scorers"]["s"]["rbdr_at_0.01"] == pytest.approx(0.25)
    assert regions["scorers"]["s"]["rbdr_at_0.1"] == pytest.approx(0.5)


def test_region_metrics_need_ground_truth_for_every_video() -> None:
    report = _report(ground_truth_regions={"a": GROUND_TRUTH["a"], "b": None})
    assert report["region_metrics"]["available"] is False
    assert "boxes" in report["region_metrics"]["reason"]


def test_youden_counts_cover_every_frame() -> None:
    counts = _report()["youden"]["s"]
    # Anomalous a = {.9, .7, .5, .6}; normal b = {.1, .2, .5, .1, .1, .1}. At threshold .6: TP 3, FP 0 -> J = .75;
    # at .5: TP 4, FP 1 -> J = 1 - 1/6 = .833 (the maximum); at .2: TP 4, FP 2 -> .667.
    assert counts["threshold"] == pytest.approx(0.5)
    assert (counts["true_positives"], counts["false_positives"], counts["true_negatives"],
            counts["false_negatives"]) == (4, 1, 5, 0)
    assert counts["accuracy"] == pytest.approx(9 / 10)


def test_published_figures_are_labelled_and_match_the_paper_tables() -> None:
    report = _report()
    assert report["published"]["label"] == "published, not our run"
    assert report["published"]["metrics"] == {"frame_auc": 72.61, "track_detection": 68.81, "region_detection": 65.72}
    assert "area" in report["published"]["note"]
    assert _report(dataset="ucsd-ped2")["published"]["metrics"]["frame_auc"] == 96.68
    assert _report(dataset="my-own-folder")["published"] is None
    assert PUBLISHED["adoc"]["metrics"]["nlilo_accuracy"] == 89.5  # Table 2, Exp 3
    # The figures quoted must be in the paper's text, where it is available.
    paper = SHARED / "paper" / "ano-graph-2021.txt"
    if not paper.is_file():
        pytest.skip(f"paper text not found at {paper}")
    text = paper.read_text()
    for entry in PUBLISHED.values():
        for value in entry["metrics"].values():
            assert f"{value:g}" in text, value


def test_ablation_sections_and_markdown(tmp_path: Path) -> None:
    better = {"s": {"a": FRAME_SCORES["s"]["a"] + 1, "b": FRAME_SCORES["s"]["b"]}}
    report = _report(ablations={"edges": {"variants": {"spatial": FRAME_SCORES, "both": better}, "note": "n."}})
    variants = report["ablations"]["edges"]["variants"]
    assert variants["both"]["s"]["frame_auc_micro"] == pytest.approx(1.0)
    # spatial: 4 anomalous x 6 normal = 24 pairs; .5 ties the normal .5 (1/2) and beats 5; others beat all 6.
    assert variants["spatial"]["s"]["frame_auc_micro"] == pytest.approx((18 + 5.5) / 24)
    coordinates = np.random.default_rng(0).normal(size=(30, 2))
    paths = write_report(tmp_path, report, FRAME_SCORES, LABELS, "s",
                         embedding={"coordinates": coordinates, "scores": {"s": np.arange(30.0)}})
    markdown = paths["markdown"].read_text()
    for text in ("Table 1 layout", "Table 2 layout", "Table 3 layout", "Table 4 layout", "*published, not our run*",
                 "| 66.25 |", "![embedding map](embedding.png)"):
        assert text in markdown, text
    written = json.loads(paths["json"].read_text())
    assert written["images"]["embedding"] == "embedding.png" and paths["embedding"].stat().st_size > 5000


def test_object_regions_put_frame_box_and_score_in_rows() -> None:
    rows = object_regions(np.array([0.3, 0.7]), np.array([0, 2]), np.array([[1, 2, 3, 4], [5, 6, 7, 8]]))
    np.testing.assert_array_equal(rows, [[0, 1, 2, 3, 4, 0.3], [2, 5, 6, 7, 8, 0.7]])
