"""Metrics against values counted by hand.

AUC = fraction of (anomalous, normal) frame pairs in which the anomalous frame scores
higher, ties counting one half. Each expected value below is derived in a comment by
counting those pairs, not by calling scikit-learn.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from anograph.errors import InputError
from anograph.evaluation.metrics import (
    equal_error_rate,
    fill_empty_frames,
    frame_auc_macro,
    frame_auc_micro,
    smooth_scores,
    video_aucs,
)

# Video "a" is mixed; video "b" is anomalous from start to end (like several Ped2 videos).
SCORES = {"a": np.array([0.1, 0.2, 0.9]), "b": np.array([0.15, 0.3])}
LABELS = {"a": np.array([False, False, True]), "b": np.array([True, True])}


def test_micro_auc_pools_all_frames() -> None:
    # Normal {0.1, 0.2}; anomalous {0.9, 0.15, 0.3}.
    # 0.9 beats both (2), 0.15 beats 0.1 only (1), 0.3 beats both (2): 5 of 6 pairs.
    assert frame_auc_micro(SCORES, LABELS) == pytest.approx(5 / 6)


def test_micro_auc_counts_ties_as_half() -> None:
    # Normal {0.5}; anomalous {0.5, 0.7}: tie (1/2) + win (1) = 1.5 of 2 pairs.
    scores = {"v": np.array([0.5, 0.5, 0.7])}
    labels = {"v": np.array([0, 1, 1])}
    assert frame_auc_micro(scores, labels) == pytest.approx(3 / 4)


def test_macro_pad_gives_single_class_videos_an_auc() -> None:
    # a padded: normal {0.1, 0.2, 0.1}, anomalous {0.9, 0.9}: all 6 pairs won -> 1.
    # b padded: normal {0.15 (its min)}, anomalous {0.15, 0.3, 0.3 (its max)}:
    #   tie 1/2 + 1 + 1 = 2.5 of 3 -> 5/6.  Mean: (1 + 5/6) / 2 = 11/12.
    assert frame_auc_macro(SCORES, LABELS, "pad") == pytest.approx(11 / 12)
    result = video_aucs(SCORES, LABELS, "pad")
    assert result.aucs["a"] == pytest.approx(1.0)
    assert result.aucs["b"] == pytest.approx(5 / 6)
    assert result.n_single_class == 1


def test_macro_skip_leaves_single_class_videos_out() -> None:
    # Only "a" has an AUC of its own: normal {0.1, 0.2} vs anomalous {0.9}: 2 of 2 -> 1.
    assert frame_auc_macro(SCORES, LABELS, "skip") == pytest.approx(1.0)
    result = video_aucs(SCORES, LABELS, "skip")
    assert result.aucs == {"a": pytest.approx(1.0), "b": None}
    assert result.n_single_class == 1


def test_padding_changes_a_mixed_video_auc() -> None:
    scores = {"v": np.array([0.3, 0.1, 0.2, 0.4])}
    labels = {"v": np.array([0, 1, 0, 1])}
    # Unpadded: normal {0.3, 0.2}, anomalous {0.1, 0.4}: 0.1 wins none, 0.4 wins 2 -> 2/4.
    assert video_aucs(scores, labels, "skip").aucs["v"] == pytest.approx(1 / 2)
    # Padded: normal {0.3, 0.2, 0.1}, anomalous {0.1, 0.4, 0.4}:
    #   0.1 ties 0.1 (1/2), 0.4 wins 3, 0.4 wins 3 -> 6.5 / 9 = 13/18.
    assert video_aucs(scores, labels, "pad").aucs["v"] == pytest.approx(13 / 18)
    assert frame_auc_macro(scores, labels, "pad") == pytest.approx(13 / 18)


def test_macro_skip_with_no_defined_video_is_nan_and_micro_single_class_is_nan() -> None:
    scores = {"v": np.array([0.2, 0.4])}
    labels = {"v": np.array([True, True])}
    assert math.isnan(frame_auc_macro(scores, labels, "skip"))
    assert math.isnan(frame_auc_micro(scores, labels))
    assert math.isnan(equal_error_rate(scores, labels))


def test_fill_empty_frames_uses_lowest_score_over_all_videos() -> None:
    filled = fill_empty_frames({"a": np.array([np.nan, 0.4, 0.2]), "b": np.array([0.1, np.nan])})
    np.testing.assert_array_equal(filled["a"], [0.1, 0.4, 0.2])
    np.testing.assert_array_equal(filled["b"], [0.1, 0.1])


def test_fill_empty_frames_without_any_score_gives_zero() -> None:
    filled = fill_empty_frames({"a": np.array([np.nan, np.nan])})
    np.testing.assert_array_equal(filled["a"], [0.0, 0.0])


def test_empty_frames_rank_lowest_in_auc() -> None:
    # After filling: normal {0.1 (empty frame), 0.5}, anomalous {0.3, 0.9}.
    # 0.3 beats 0.1 only (1), 0.9 beats both (2): 3 of 4.
    scores = fill_empty_frames({"a": np.array([np.nan, 0.3, 0.5, 0.9]), "b": np.array([0.1])})
    labels = {"a": np.array([0, 1, 0, 1]), "b": np.array([1])}
    # With b's anomalous 0.1 vs normal {0.1, 0.5}: tie 1/2 -> total 3.5 of 6.
    assert frame_auc_micro(scores, labels) == pytest.approx(3.5 / 6)


def test_smoothing_zero_sigma_is_identity_copy() -> None:
    original = {"a": np.array([0.0, 1.0, 0.0])}
    smoothed = smooth_scores(original, 0)
    np.testing.assert_array_equal(smoothed["a"], original["a"])
    smoothed["a"][0] = 5.0
    assert original["a"][0] == 0.0


def test_smoothing_spreads_an_impulse_like_a_gaussian() -> None:
    impulse = np.zeros(41)
    impulse[20] = 1.0
    smoothed = smooth_scores({"a": impulse, "flat": np.full(7, 2.5)}, 1.0)
    # The peak of a unit-area Gaussian with sigma 1 is 1 / sqrt(2 pi).
    assert smoothed["a"][20] == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-3)
    assert smoothed["a"][19] == pytest.approx(smoothed["a"][21])
    assert smoothed["a"].sum() == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(smoothed["flat"], 2.5)


def test_smoothing_rejects_negative_sigma_and_nan() -> None:
    with pytest.raises(InputError, match="sigma"):
        smooth_scores({"a": np.zeros(3)}, -1.0)
    with pytest.raises(InputError, match="a: scores contain NaN"):
        smooth_scores({"a": np.array([0.0, np.nan])}, 1.0)


def test_equal_error_rate_at_a_roc_vertex() -> None:
    # Normal {1, 3}, anomalous {2, 4}. Threshold 3: one of two normals flagged (FPR 1/2),
    # one of two anomalies missed (miss rate 1/2) -> EER 1/2.
    scores = {"v": np.array([1.0, 2.0, 3.0, 4.0])}
    labels = {"v": np.array([0, 1, 0, 1])}
    assert equal_error_rate(scores, labels) == pytest.approx(1 / 2)


def test_equal_error_rate_interpolates_between_roc_points() -> None:
    # Normal {2}, anomalous {1, 3, 4}. Threshold 3: FPR 0, miss 1/3. Threshold 2: FPR 1,
    # miss 1/3. Along that segment FPR rises 0 -> 1 at a constant miss rate of 1/3: EER 1/3.
    scores = {"v": np.array([2.0, 1.0, 3.0, 4.0])}
    labels = {"v": np.array([0, 1, 1, 1])}
    assert equal_error_rate(scores, labels) == pytest.approx(1 / 3)


def test_equal_error_rate_is_zero_when_separable() -> None:
    assert equal_error_rate({"v": np.array([0.1, 0.2, 0.8])}, {"v": np.array([0, 0, 1])}) == pytest.approx(
        0.0
    )


def test_length_mismatch_names_the_video() -> None:
    with pytest.raises(InputError, match="video b: 3 scores for 2 labelled frames"):
        frame_auc_micro({"a": SCORES["a"], "b": np.zeros(3)}, LABELS)


def test_missing_and_extra_videos_are_errors() -> None:
    with pytest.raises(InputError, match="no scores for test video.*b"):
        frame_auc_micro({"a": SCORES["a"]}, LABELS)
    with pytest.raises(InputError, match="without labels: c"):
        frame_auc_macro({**SCORES, "c": np.zeros(2)}, LABELS)


def test_nan_scores_must_be_filled_before_auc() -> None:
    with pytest.raises(InputError, match="finite"):
        frame_auc_micro({"a": np.array([np.nan, 0.2, 0.9]), "b": SCORES["b"]}, LABELS)


def test_unknown_macro_convention_is_an_error() -> None:
    with pytest.raises(InputError, match="convention"):
        frame_auc_macro(SCORES, LABELS, "average")  # type: ignore[arg-type]
