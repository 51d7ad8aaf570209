"""The sparse spatio-temporal graph against a slow, obviously-correct dense reference."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sparse
from synthetic_features import random_nodes

from anograph.errors import InputError
from anograph.graph.build import (
    GraphConfig,
    VideoNodes,
    build_graph,
    build_video_graph,
    spatial_block,
    temporal_block,
)

ALL_CONFIGS = [
    GraphConfig(spatial=spatial, temporal=temporal, temporal_direction=direction, normalization=normalization)
    for spatial, temporal, direction, normalization in itertools.product(
        [True, False], [True, False], ["forward", "both"], ["none", "row", "symmetric"]
    )
]
# Empty frames (start, middle, end), single-object frames, and busier ones.
FRAME_SIZES = [0, 3, 1, 0, 4, 2, 1, 1, 5, 0]


def reference_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def reference_cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = math.sqrt(sum(v * v for v in a)), math.sqrt(sum(v * v for v in b))
    if na <= 1e-12 or nb <= 1e-12:
        return 0.0
    return sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb)


def dense_reference(frame_offsets, boxes, features, config: GraphConfig) -> np.ndarray:
    """Eqs. 1-2 with explicit loops over object pairs, then the chosen normalisation."""
    n = int(frame_offsets[-1])
    matrix = np.zeros((n, n))
    frames = [list(range(frame_offsets[t], frame_offsets[t + 1])) for t in range(len(frame_offsets) - 1)]
    for t, objects in enumerate(frames):
        if config.spatial:
            for i in objects:
                logits = {j: (1.0 if i == j else reference_iou(boxes[i], boxes[j])) for j in objects}
                total = sum(math.exp(value) for value in logits.values())
                for j, value in logits.items():
                    matrix[i, j] += math.exp(value) / total
        if config.temporal and t + 1 < len(frames):
            following = frames[t + 1]
            for i in objects:
                total = sum(math.exp(reference_cosine(features[i], features[j])) for j in following)
                for j in following:
                    matrix[i, j] += math.exp(reference_cosine(features[i], features[j])) / total
            if config.temporal_direction == "both":
                for j in following:
                    total = sum(math.exp(reference_cosine(features[j], features[i])) for i in objects)
                    for i in objects:
                        matrix[j, i] += math.exp(reference_cosine(features[j], features[i])) / total
    if config.normalization == "row":
        for i in range(n):
            total = matrix[i].sum()
            if total > 0:
                matrix[i] /= total
    elif config.normalization == "symmetric":
        symmetric = np.maximum(matrix, matrix.T) + np.eye(n)
        degree = symmetric.sum(axis=1)
        matrix = np.array(
            [[symmetric[i, j] / math.sqrt(degree[i] * degree[j]) for j in range(n)] for i in range(n)]
        )
    return matrix


@pytest.mark.parametrize(
    "config", ALL_CONFIGS, ids=lambda config: "-".join(map(str, config.to_dict().values()))
)
def test_sparse_graph_equals_dense_reference(config: GraphConfig) -> None:
    rng = np.random.default_rng(7)
    offsets, boxes, features = random_nodes(rng, FRAME_SIZES)
    features[2] = 0.0  # a zero feature vector: cosine 0 with everything
    boxes[5, 2:] = boxes[5, :2]  # a degenerate zero-area box: IoU 0 with others, 1 with itself
    graph = build_video_graph(offsets, boxes, features, config)
    assert sparse.issparse(graph) and graph.shape == (offsets[-1], offsets[-1])
    np.testing.assert_allclose(
        graph.toarray(), dense_reference(offsets, boxes, features, config), rtol=1e-10, atol=1e-12
    )


def test_blocks_equal_reference_and_are_row_stochastic() -> None:
    rng = np.random.default_rng(3)
    offsets, boxes, features = random_nodes(rng, [4, 3])
    spatial = spatial_block(boxes[:4])
    temporal = temporal_block(features[:4], features[4:])
    reference = dense_reference(
        offsets, boxes, features, GraphConfig(temporal_direction="forward", normalization="none")
    )
    np.testing.assert_allclose(spatial, reference[:4, :4], rtol=1e-12)
    np.testing.assert_allclose(temporal, reference[:4, 4:], rtol=1e-12)
    np.testing.assert_allclose(spatial.sum(axis=1), 1.0)
    np.testing.assert_allclose(temporal.sum(axis=1), 1.0)
    # The object itself gets the largest spatial weight (IoU 1 is the maximum).
    assert np.all(np.argmax(spatial, axis=1) == np.arange(4))
    assert spatial_block(np.zeros((0, 4))).shape == (0, 0)
    assert temporal_block(features[:4], np.zeros((0, 6))).shape == (4, 0)


def test_paper_matrix_rows_sum_to_number_of_blocks() -> None:
    """normalization="none": each row holds one softmax per block present (Eqs. 1-2)."""
    rng = np.random.default_rng(11)
    sizes = [2, 3, 0, 1, 2]
    offsets, boxes, features = random_nodes(rng, sizes)
    graph = build_video_graph(
        offsets, boxes, features, GraphConfig(temporal_direction="forward", normalization="none")
    )
    row_sums = np.asarray(graph.sum(axis=1)).ravel()
    expected = np.concatenate(
        [np.full(size, 1.0 + (t + 1 < len(sizes) and sizes[t + 1] > 0)) for t, size in enumerate(sizes)]
    )
    np.testing.assert_allclose(row_sums, expected)


def test_multiple_videos_are_block_diagonal_without_cross_edges() -> None:
    rng = np.random.default_rng(5)
    videos = [VideoNodes(*random_nodes(rng, sizes)) for sizes in ([2, 3, 1], [0, 0], [1, 4, 0, 2], [3])]
    for config in (GraphConfig(), GraphConfig(temporal_direction="forward", normalization="symmetric")):
        graph = build_graph(videos, config)
        expected = sparse.block_diag(
            [dense_reference(*video, config) for video in videos if video.frame_offsets[-1] > 0]
        )
        np.testing.assert_allclose(graph.toarray(), expected.toarray(), rtol=1e-10, atol=1e-12)
        video_of_node = np.repeat(np.arange(len(videos)), [video.frame_offsets[-1] for video in videos])
        rows, columns = graph.nonzero()
        assert len(rows) > 0
        assert np.all(video_of_node[rows] == video_of_node[columns])


def test_degenerate_inputs() -> None:
    rng = np.random.default_rng(2)
    offsets, boxes, features = random_nodes(rng, [0, 0, 0])
    assert build_video_graph(offsets, boxes, features, GraphConfig()).shape == (0, 0)
    assert build_graph([], GraphConfig()).shape == (0, 0)
    offsets, boxes, features = random_nodes(rng, [1])
    for normalization in ("none", "row", "symmetric"):
        graph = build_video_graph(offsets, boxes, features, GraphConfig(normalization=normalization))
        np.testing.assert_allclose(graph.toarray(), [[1.0]], rtol=1e-12)
    with pytest.raises(ValueError, match="objects"):
        build_video_graph(np.array([0, 2]), boxes, features, GraphConfig())


def test_symmetric_normalization_is_symmetric_and_row_normalization_stochastic() -> None:
    rng = np.random.default_rng(9)
    offsets, boxes, features = random_nodes(rng, [3, 2, 4, 1])
    symmetric = build_video_graph(
        offsets, boxes, features, GraphConfig(temporal_direction="forward", normalization="symmetric")
    )
    assert abs(symmetric - symmetric.T).max() < 1e-12
    row = build_video_graph(
        offsets, boxes, features, GraphConfig(spatial=False, temporal_direction="forward")
    )
    sums = np.asarray(row.sum(axis=1)).ravel()
    np.testing.assert_allclose(sums[: offsets[-2]], 1.0)
    assert np.all(sums[offsets[-2] :] == 0.0)  # last frame, no spatial block: empty rows stay empty


def test_graph_config_roundtrip_and_validation() -> None:
    config = GraphConfig(spatial=False, temporal_direction="forward", normalization="symmetric")
    assert GraphConfig.from_dict(config.to_dict()) == config
    with pytest.raises(InputError, match="normalization"):
        GraphConfig(normalization="l2")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="temporal_direction"):
        GraphConfig(temporal_direction="backward")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="unknown graph settings"):
        GraphConfig.from_dict({"spatial": True, "radius": 3})
