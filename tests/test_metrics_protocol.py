"""The evaluation protocol's metrics against values counted by hand.

Youden-threshold counts, and Street Scene's region- and track-based detection criteria
(RBDC, TBDC). Each expected value is derived in a comment, not by calling the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from anograph.errors import InputError
from anograph.evaluation.detection_metrics import (
    area_under_detection_curve,
    detection_curves,
    detection_rate_at,
)
from anograph.evaluation.metrics import NLILO_NOT_FOUND, counts_at_threshold, youden_counts


def test_youden_counts_pick_the_threshold_maximising_tpr_minus_fpr() -> None:
    scores = {"a": np.array([0.1, 0.2, 0.3]), "b": np.array([0.6, 0.7, 0.5])}
    labels = {"a": np.array([0, 0, 1]), "b": np.array([0, 1, 1])}
    # Sorted: 0.7(+) 0.6(-) 0.5(+) 0.3(+) 0.2(-) 0.1(-); 3 positives, 3 negatives.
    # J = TPR - FPR at 0.7: 1/3; 0.6: 0; 0.5: 1/3; 0.3: 1 - 1/3 = 2/3; 0.2: 1/3; 0.1: 0.
    counts = youden_counts(scores, labels)
    assert counts.threshold == pytest.approx(0.3)
    # >= 0.3 called anomalous: 0.7, 0.6, 0.5, 0.3 -> TP 3 (0.7, 0.5, 0.3), FP 1 (0.6); TN 2, FN 0.
    assert (counts.true_positives, counts.false_positives, counts.true_negatives, counts.false_negatives) == (
        3, 1, 2, 0,
    )
    assert counts.accuracy == pytest.approx(5 / 6)
    assert counts.true_positive_rate == pytest.approx(1.0)
    assert counts.false_positive_rate == pytest.approx(1 / 3)


def test_youden_ties_take_the_highest_threshold() -> None:
    scores = {"v": np.array([0.8, 0.1, 0.4, 0.35])}
    labels = {"v": np.array([1, 0, 0, 1])}
    # J at 0.8: 1/2 - 0 = 1/2; at 0.4: 1/2 - 1/2 = 0; at 0.35: 1 - 1/2 = 1/2; at 0.1: 0.
    counts = youden_counts(scores, labels)
    assert counts.threshold == pytest.approx(0.8)
    # Only 0.8 is called anomalous: TP 1, FN 1, FP 0, TN 2 -> accuracy 3/4.
    assert (counts.true_positives, counts.false_negatives, counts.false_positives, counts.true_negatives) == (
        1, 1, 0, 2,
    )
    assert counts.accuracy == pytest.approx(3 / 4)


def test_counts_at_a_given_threshold() -> None:
    counts = counts_at_threshold({"v": np.array([0.2, 0.9, 0.5])}, {"v": np.array([0, 1, 0])}, 0.5)
    # Called anomalous: 0.9 (+) and 0.5 (-): TP 1, FP 1, TN 1 (0.2), FN 0.
    assert (counts.true_positives, counts.false_positives, counts.true_negatives, counts.false_negatives) == (
        1, 1, 1, 0,
    )
    assert counts.accuracy == pytest.approx(2 / 3)


def test_nlilo_is_reported_as_not_found_rather_than_invented() -> None:
    assert "not computed" in NLILO_NOT_FOUND and "ACCV 2020" in NLILO_NOT_FOUND


# Street Scene criteria. Video "a" (4 frames): track 1 at [0,0,10,10] in frames 0, 1, 2;
# track 2 at [20,20,30,30] in frame 3. Video "b" (6 frames): no anomaly. 10 frames in all.
GROUND_TRUTH = {
    "a": np.array(
        [[0, 1, 0, 0, 10, 10], [1, 1, 0, 0, 10, 10], [2, 1, 0, 0, 10, 10], [3, 2, 20, 20, 30, 30]], float
    ),
    "b": np.zeros((0, 6)),
}
N_FRAMES = {"a": 4, "b": 6}
DETECTIONS = {
    "a": np.array(
        [
            [0, 0, 0, 10, 10, 0.9],  # IoU 1 with track 1's frame-0 region: TP
            [0, 0, 0, 10, 10, 0.8],  # same region, already matched: FP
            [1, 5, 0, 15, 10, 0.7],  # IoU 50 / 150 = 1/3 >= 0.1: TP
            [3, 29, 29, 40, 40, 0.6],  # IoU 1 / 220 < 0.1 with track 2: FP
            [2, 0, 0, 10, 10, 0.5],  # TP (tied in score with b's false positive)
        ]
    ),
    "b": np.array([[2, 0, 0, 5, 5, 0.5]]),  # no ground truth in b: FP
}


def test_detection_curves_by_hand() -> None:
    curves = detection_curves(DETECTIONS, GROUND_TRUTH, N_FRAMES)
    # Thresholds inf, 0.9, 0.8, 0.7, 0.6, 0.5 (the two 0.5s give one point).
    # cumulative TP: 0 1 1 2 2 3; FP: 0 0 1 1 2 3; 4 regions; 10 frames; 2 tracks.
    np.testing.assert_allclose(curves.thresholds, [np.inf, 0.9, 0.8, 0.7, 0.6, 0.5])
    np.testing.assert_allclose(curves.false_positives_per_frame, [0, 0, 0.1, 0.1, 0.2, 0.3])
    np.testing.assert_allclose(curves.region_detection_rate, [0, 0.25, 0.25, 0.5, 0.5, 0.75])
    # alpha 0.1: one region detects a track; track 1 from 0.9 on, track 2 never.
    np.testing.assert_allclose(curves.track_detection_rate, [0, 0.5, 0.5, 0.5, 0.5, 0.5])
    assert (curves.n_frames, curves.n_regions, curves.n_tracks) == (10, 4, 2)


def test_rbdc_and_tbdc_areas_by_hand() -> None:
    curves = detection_curves(DETECTIONS, GROUND_TRUTH, N_FRAMES)
    # Region curve (0,0) (0,.25) (.1,.25) (.1,.5) (.2,.5) (.3,.75), held at .75 to FPR 1:
    # .1*.25 + .1*.5 + .1*(.5+.75)/2 + .7*.75 = .025 + .05 + .0625 + .525 = .6625.
    rbdc = area_under_detection_curve(curves.false_positives_per_frame, curves.region_detection_rate)
    assert rbdc == pytest.approx(0.6625)
    # Track curve: 0.5 from FPR 0 to 1 -> 0.5.
    tbdc = area_under_detection_curve(curves.false_positives_per_frame, curves.track_detection_rate)
    assert tbdc == pytest.approx(0.5)
    # Operating points: within 0.01 FP/frame only the 0.9 point (.25); within 0.1, .5.
    assert detection_rate_at(curves.false_positives_per_frame, curves.region_detection_rate, 0.01) == 0.25
    assert detection_rate_at(curves.false_positives_per_frame, curves.region_detection_rate, 0.1) == 0.5
    assert detection_rate_at(curves.false_positives_per_frame, curves.track_detection_rate, 0.01) == 0.5


def test_track_needs_alpha_of_its_regions() -> None:
    curves = detection_curves(DETECTIONS, GROUND_TRUTH, N_FRAMES, alpha=0.9)
    # Track 1 has 3 regions: ceil(0.9 * 3) = 3 must be detected, which happens at threshold 0.5.
    np.testing.assert_allclose(curves.track_detection_rate, [0, 0, 0, 0, 0, 0.5])
    # Area: ramp from (.2, 0) to (.3, .5) = .025, then .5 held over .7 = .35 -> .375.
    area = area_under_detection_curve(curves.false_positives_per_frame, curves.track_detection_rate)
    assert area == pytest.approx(0.375)


def test_beta_decides_what_overlap_counts() -> None:
    # With beta 0.5 the IoU-1/3 detection in frame 1 becomes a false positive.
    curves = detection_curves(DETECTIONS, GROUND_TRUTH, N_FRAMES, beta=0.5)
    np.testing.assert_allclose(curves.region_detection_rate, [0, 0.25, 0.25, 0.25, 0.25, 0.5])
    np.testing.assert_allclose(curves.false_positives_per_frame, [0, 0, 0.1, 0.2, 0.3, 0.4])


def test_a_matched_region_frees_the_detection_for_its_neighbour() -> None:
    # Two ground-truth regions in one frame: A [0,0,10,10], B [5,0,15,10] (IoU 1/3 with A).
    truth = {"v": np.array([[0, 1, 0, 0, 10, 10], [0, 2, 5, 0, 15, 10]], float)}
    # Both detections sit on A. The first takes A (IoU 1); A is taken, so the second takes B (1/3).
    found = {"v": np.array([[0, 0, 0, 10, 10, 0.9], [0, 0, 0, 10, 10, 0.8]])}
    curves = detection_curves(found, truth, {"v": 1})
    np.testing.assert_allclose(curves.region_detection_rate, [0, 0.5, 1.0])
    np.testing.assert_allclose(curves.false_positives_per_frame, [0, 0, 0])
    np.testing.assert_allclose(curves.track_detection_rate, [0, 0.5, 1.0])


def test_area_is_cut_at_fpr_one_by_interpolation() -> None:
    # (0,0) (.5,.5) (2,1): the rate at FPR 1 is .5 + .5 * (.5 / 1.5) = 2/3.
    # Area: .5 * .25 + .5 * (.5 + 2/3) / 2 = .125 + .291666... = .416666...
    assert area_under_detection_curve(np.array([0, 0.5, 2.0]), np.array([0, 0.5, 1.0])) == pytest.approx(
        0.125 + 0.5 * (0.5 + 2 / 3) / 2
    )


def test_no_ground_truth_gives_nan_and_bad_input_is_named() -> None:
    curves = detection_curves({"v": np.array([[0, 0, 0, 1, 1, 0.5]])}, {"v": np.zeros((0, 6))}, {"v": 3})
    assert math.isnan(area_under_detection_curve(curves.false_positives_per_frame, curves.region_detection_rate))
    with pytest.raises(InputError, match="without ground truth"):
        detection_curves({"w": np.zeros((0, 6))}, {"v": np.zeros((0, 6))}, {"v": 3})
    with pytest.raises(InputError, match="beta"):
        detection_curves({}, {"v": np.zeros((0, 6))}, {"v": 3}, beta=0)
