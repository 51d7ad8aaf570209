"""FeatureSelection and GroupStandardizer (anograph.models.scaling) against plain numpy."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from synthetic_features import make_video, make_videos

from anograph.errors import InputError
from anograph.extraction.features.layout import FeatureLayout
from anograph.models.scaling import STD_FLOOR, FeatureSelection, GroupStandardizer, shared_layout

LAYOUT = FeatureLayout.of([("appearance", 5), ("class", 3), ("motion", 2)])


def _features(rng: np.random.Generator, n: int = 400) -> np.ndarray:
    scales = np.array([1.0, 2.0, 0.5, 3.0, 1.5, 0.1, 0.2, 0.3, 4.0, 0.7])
    return rng.normal(0.0, 1.0, (n, LAYOUT.width)) * scales + np.arange(LAYOUT.width)


def test_column_scaling_is_a_plain_z_score() -> None:
    features = _features(np.random.default_rng(0))
    standardizer = GroupStandardizer("column").fit(features)
    np.testing.assert_allclose(standardizer.mean_, features.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(standardizer.std_, features.std(axis=0), rtol=1e-12)
    transformed = standardizer.transform(features)
    assert transformed.dtype == np.float32
    expected = (features - features.mean(axis=0)) / features.std(axis=0)
    np.testing.assert_allclose(transformed, expected, rtol=1e-4, atol=1e-5)


def test_group_scaling_divides_each_group_by_its_total_spread() -> None:
    features = _features(np.random.default_rng(1))
    selection = FeatureSelection.of(LAYOUT)
    groups = list(selection.group_columns().values())
    standardizer = GroupStandardizer("group", groups).fit(features)
    for columns in groups:
        total = np.sqrt(np.sum(features[:, columns].var(axis=0)))
        np.testing.assert_allclose(standardizer.std_[columns], total, rtol=1e-10)
        transformed = standardizer.transform(features)[:, columns]
        assert np.sum(transformed.var(axis=0)) == pytest.approx(1.0, rel=1e-4)


def test_streamed_fit_equals_the_fit_in_memory_and_constant_columns_hit_the_floor() -> None:
    videos = make_videos(3, seed=4, n_frames=15)
    for video in videos:
        video.features = video.features.copy()
        video.features[:, 0] = 2.0  # a constant column
    selection = FeatureSelection.of(videos[0].metadata.feature_layout, ("appearance", "geometry"))
    groups = list(selection.group_columns().values())
    streamed = GroupStandardizer("column", groups).fit_videos(videos, selection.columns)
    stacked = np.concatenate([video.features[:, selection.columns] for video in videos]).astype(np.float64)
    in_memory = GroupStandardizer("column", groups).fit(stacked)
    assert streamed.n_objects_ == len(stacked) == in_memory.n_objects_
    np.testing.assert_allclose(streamed.mean_, in_memory.mean_, rtol=1e-10)
    np.testing.assert_allclose(streamed.std_, in_memory.std_, rtol=1e-8)
    assert streamed.std_[0] == STD_FLOOR
    assert np.all(np.isfinite(streamed.transform(stacked)))


def test_standardizer_input_errors() -> None:
    features = _features(np.random.default_rng(2), n=10)
    with pytest.raises(InputError, match="feature_scaling"):
        GroupStandardizer("minmax").fit(features)
    with pytest.raises(InputError, match="1 objects; at least 2"):
        GroupStandardizer().fit(features[:1])
    with pytest.raises(InputError, match="0 objects"):
        GroupStandardizer().fit_videos([], None)


def test_feature_selection_picks_groups_in_order() -> None:
    every = FeatureSelection.of(LAYOUT)
    assert every.groups == ("appearance", "class", "motion") and every.width == LAYOUT.width
    features = _features(np.random.default_rng(3), n=6)
    assert every.select(features) is features  # no copy when every column is used
    motion_first = FeatureSelection.of(LAYOUT, ("motion", "appearance"))
    np.testing.assert_array_equal(motion_first.columns, [8, 9, 0, 1, 2, 3, 4])
    np.testing.assert_array_equal(motion_first.select(features), features[:, [8, 9, 0, 1, 2, 3, 4]])
    # Group columns index the *selected* matrix, in the selection's order.
    columns = motion_first.group_columns()
    assert list(columns) == ["motion", "appearance"]
    np.testing.assert_array_equal(columns["motion"], [0, 1])
    np.testing.assert_array_equal(columns["appearance"], [2, 3, 4, 5, 6])
    with pytest.raises(InputError, match="colour"):
        FeatureSelection.of(LAYOUT, ("colour",))
    with pytest.raises(InputError, match="not usable"):
        FeatureSelection.of(LAYOUT, ())


def test_layouts_must_match_and_nan_features_are_named() -> None:
    first = make_video("first", np.random.default_rng(0), n_frames=5)
    other_layout = FeatureLayout.of([("appearance", 12), ("motion", 4)])
    other = make_video("other", np.random.default_rng(1), n_frames=5, layout=other_layout)
    assert shared_layout([first.metadata, first.metadata], ["a", "b"]) == first.metadata.feature_layout
    with pytest.raises(InputError, match="shards/other.parquet.*'other' has feature layout"):
        shared_layout([first.metadata, other.metadata], ["shards/first.parquet", "shards/other.parquet"])
    selection = FeatureSelection.of(first.metadata.feature_layout, ("geometry",))
    broken = dataclasses.replace(first, features=first.features.copy())
    broken.features[0, 0] = np.nan  # appearance: not selected, so not checked
    selection.check_finite(broken, "shards/first.parquet")
    broken.features[0, 13] = np.inf
    with pytest.raises(InputError, match="shards/first.parquet.*NaN or infinite"):
        selection.check_finite(broken, "shards/first.parquet")
