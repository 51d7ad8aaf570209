"""Sliding test windows, kNN distances and frame scores."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors
from synthetic_features import random_nodes

from anograph.errors import InputError
from anograph.graph.build import GraphConfig, build_video_graph
from anograph.graph.windows import SlidingWindowGraph, frame_scores, window_adjacency
from anograph.models.knn import knn_mean_distance

FRAME_SIZES = [2, 0, 3, 1, 4, 2, 0, 0, 3, 1, 2, 5, 1]
CONFIGS = [
    GraphConfig(temporal_direction=direction, normalization=normalization)
    for direction, normalization in itertools.product(["forward", "both"], ["none", "row", "symmetric"])
] + [GraphConfig(spatial=False, normalization="symmetric"), GraphConfig(temporal=False)]


def window_reference(offsets, boxes, features, config, radius, centre):
    """Build the whole window t-i..t+i from scratch and take the centre frame's rows."""
    first, last = max(0, centre - radius), min(len(offsets) - 2, centre + radius)
    start, stop = offsets[first], offsets[last + 1]
    window_offsets = offsets[first : last + 2] - start
    graph = build_video_graph(window_offsets, boxes[start:stop], features[start:stop], config).toarray()
    rows = slice(offsets[centre] - start, offsets[centre + 1] - start)
    return graph[rows], start


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda config: "-".join(map(str, config.to_dict().values())))
def test_incremental_window_equals_full_rebuild(radius: int, config: GraphConfig) -> None:
    rng = np.random.default_rng(radius)
    offsets, boxes, features = random_nodes(rng, FRAME_SIZES)
    n = offsets[-1]
    centres = list(SlidingWindowGraph(radius, config).iter_video(offsets, boxes, features))
    assert [centre.frame for centre in centres] == list(range(len(FRAME_SIZES)))
    for centre in centres:
        expected, start = window_reference(offsets, boxes, features, config, radius, centre.frame)
        got = np.zeros((centre.rows.stop - centre.rows.start, n))
        got[:, centre.columns] = centre.weights
        full_width = np.zeros_like(got)
        full_width[:, start : start + expected.shape[1]] = expected
        np.testing.assert_allclose(got, full_width, rtol=1e-10, atol=1e-12)
        assert centre.rows == slice(offsets[centre.frame], offsets[centre.frame + 1])


@pytest.mark.parametrize("config", CONFIGS, ids=lambda config: "-".join(map(str, config.to_dict().values())))
def test_window_rows_equal_whole_video_graph_beyond_the_encoder_reach(config: GraphConfig) -> None:
    """A one-layer GCN sees frames t-1..t+1 (t-2..t+2 for symmetric degrees): larger radii change nothing."""
    rng = np.random.default_rng(4)
    offsets, boxes, features = random_nodes(rng, FRAME_SIZES)
    whole = build_video_graph(offsets, boxes, features, config).toarray()
    reach = 2 if config.normalization == "symmetric" else 1
    for radius in (reach, reach + 1, 6, 50):
        window = SlidingWindowGraph(radius, config).adjacency(offsets, boxes, features).toarray()
        np.testing.assert_allclose(window, whole, rtol=1e-10, atol=1e-12)
    if reach == 2 and config.temporal:
        smaller = SlidingWindowGraph(1, config).adjacency(offsets, boxes, features).toarray()
        assert np.abs(smaller - whole).max() > 1e-6  # truncated neighbour degrees do matter below the reach


def test_stream_emits_each_centre_once_its_reach_has_arrived() -> None:
    rng = np.random.default_rng(1)
    offsets, boxes, features = random_nodes(rng, [2, 1, 3, 2, 2])
    window = SlidingWindowGraph(radius=10, config=GraphConfig())  # reach 1: latency one frame
    emitted = []
    for frame in range(5):
        ready = window.push(
            boxes[offsets[frame] : offsets[frame + 1]], features[offsets[frame] : offsets[frame + 1]]
        )
        emitted.append([centre.frame for centre in ready])
    assert emitted == [[], [0], [1], [2], [3]]
    assert [centre.frame for centre in window.finish()] == [4]
    # Only the frames within the reach are kept, however large the radius.
    assert window.effective_radius == 1
    with pytest.raises(InputError, match="radius"):
        SlidingWindowGraph(-1, GraphConfig())


def test_knn_mean_distance_matches_sklearn_and_excludes_groups() -> None:
    rng = np.random.default_rng(0)
    bank = rng.normal(size=(300, 8))
    queries = rng.normal(size=(2100, 8))  # more than one query chunk
    expected = NearestNeighbors(n_neighbors=4).fit(bank).kneighbors(queries)[0].mean(axis=1)
    np.testing.assert_allclose(knn_mean_distance(queries, bank, 4), expected, rtol=1e-4, atol=1e-4)
    # Leave-one-out: querying the bank itself, excluding each row's own index.
    own = knn_mean_distance(bank, bank, 3, np.arange(300), np.arange(300))
    expected_loo = NearestNeighbors(n_neighbors=4).fit(bank).kneighbors(bank)[0][:, 1:].mean(axis=1)
    np.testing.assert_allclose(own, expected_loo, rtol=1e-4, atol=1e-4)
    assert np.all(knn_mean_distance(bank, bank, 3) < own)  # without exclusion each row finds itself at 0


def test_frame_scores_take_the_max_and_mark_empty_frames() -> None:
    offsets = np.array([0, 0, 2, 2, 5, 6, 6])
    scores = np.array([0.1, 0.7, -3.0, 2.5, 1.0, -0.5])
    result = frame_scores(scores, offsets)
    assert result.shape == (6,)
    assert np.isnan(result[[0, 2, 5]]).all()
    np.testing.assert_array_equal(result[[1, 3, 4]], [0.7, 2.5, -0.5])
    assert np.isnan(frame_scores(np.zeros(0), np.array([0, 0, 0]))).all()
    with pytest.raises(ValueError, match="object scores"):
        frame_scores(scores[:3], offsets)


def test_window_radius_is_one_second_of_frames_and_at_least_one():
    from anograph.graph.windows import window_radius

    assert window_radius(1.0, 10.0) == 10
    assert window_radius(1.0, 25.0) == 25
    assert window_radius(0.5, 3.0) == 2
    assert window_radius(0.01, 3.0) == 1


@pytest.mark.parametrize("config", CONFIGS, ids=lambda config: "-".join(map(str, config.to_dict().values())))
def test_offline_window_adjacency_equals_stepping_the_windows(config: GraphConfig) -> None:
    """The vectorised whole-video shortcut offline scoring takes gives the incremental windows' rows."""
    rng = np.random.default_rng(5)
    offsets, boxes, features = random_nodes(rng, FRAME_SIZES)
    for radius in (0, 1, 2, 3, 25):
        stepped = SlidingWindowGraph(radius, config).adjacency(offsets, boxes, features).toarray()
        np.testing.assert_allclose(
            window_adjacency(offsets, boxes, features, radius, config).toarray(), stepped, rtol=1e-10, atol=1e-12
        )
