"""Ablation helpers: edge variants, frame discarding, propagation override, embedding map."""

from __future__ import annotations

import numpy as np
import pytest

from anograph.errors import InputError
from anograph.evaluation.ablations import (
    ablation_model_key,
    discard_training_frames,
    edge_variant,
    embedding_map,
    with_propagation,
)
from anograph.graph.build import GraphConfig, build_video_graph
from anograph.models.estimator import AnoGraph
from tests.synthetic_features import make_videos


def test_edge_variants_keep_only_their_blocks() -> None:
    base = GraphConfig(normalization="none")
    video = make_videos(1, seed=3, n_frames=6)[0]
    offsets = video.frame_offsets()
    spatial = build_video_graph(offsets, video.boxes, video.features, edge_variant(base, "spatial"))
    temporal = build_video_graph(offsets, video.boxes, video.features, edge_variant(base, "temporal"))
    both = build_video_graph(offsets, video.boxes, video.features, edge_variant(base, "both"))
    frame_of = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    rows, columns = spatial.nonzero()
    assert np.all(frame_of[rows] == frame_of[columns])  # spatial: same frame only
    rows, columns = temporal.nonzero()
    assert np.all(np.abs(frame_of[rows] - frame_of[columns]) == 1)  # temporal: neighbouring frames only
    np.testing.assert_allclose((spatial + temporal).toarray(), both.toarray())
    assert edge_variant(base, "spatial").normalization == "none"  # the rest of the config is kept
    with pytest.raises(InputError, match="edge variant"):
        edge_variant(base, "diagonal")


def test_discarding_frames_is_seeded_and_empties_frames() -> None:
    videos = make_videos(3, seed=1, n_frames=40)
    kept = discard_training_frames(videos, 0.25, seed=7)
    again = discard_training_frames(videos, 0.25, seed=7)
    other = discard_training_frames(videos, 0.25, seed=8)
    kept_frames = [np.unique(video.frames) for video in kept]
    # 25% of 120 frames = 30 frames kept (counting only frames that had objects to begin with).
    chosen = sum(len(frames) for frames in kept_frames)
    assert chosen <= 30 and chosen >= 20
    for before, after, repeat in zip(videos, kept, again, strict=True):
        assert after.metadata.n_frames == before.metadata.n_frames  # frames stay, emptied
        assert np.array_equal(after.frames, repeat.frames)
        for frame in np.unique(after.frames):  # a kept frame keeps all its objects
            np.testing.assert_array_equal(after.boxes[after.frames == frame], before.boxes[before.frames == frame])
    assert any(not np.array_equal(a.frames, b.frames) for a, b in zip(kept, other, strict=True))
    full = discard_training_frames(videos, 1.0)
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(videos, full, strict=True))
    with pytest.raises(InputError, match="fraction"):
        discard_training_frames(videos, 0.0)


def test_discarded_frames_break_the_temporal_chain() -> None:
    video = discard_training_frames(make_videos(1, seed=2, n_frames=30), 0.5, seed=0)[0]
    graph = build_video_graph(video.frame_offsets(), video.boxes, video.features, GraphConfig())
    frame_of = video.frames
    rows, columns = graph.nonzero()
    assert np.all(np.abs(frame_of[rows] - frame_of[columns]) <= 1)  # no edge jumps over an emptied frame


def test_with_propagation_copies_and_embedding_map_has_one_point_per_row() -> None:
    videos = make_videos(2, seed=4, n_frames=20)
    model = AnoGraph(hidden_channels=8, max_epochs=3, score_propagation_steps=0).fit(videos)
    wide = with_propagation(model, 4)
    assert model.score_propagation_steps == 0 and wide.score_propagation_steps == 4
    plain = model.score_video(videos[0], window_radius=4)["feature_knn"]
    spread = wide.score_video(videos[0], window_radius=4)["feature_knn"]
    assert not np.allclose(plain, spread)  # propagation really ran on the copy
    _, embeddings = model.embed_video(videos[0], window_radius=1)
    rows, coordinates = embedding_map(embeddings, max_points=50, seed=0)
    assert coordinates.shape == (len(rows), 2) and len(rows) == min(50, len(embeddings))
    assert np.all(np.diff(rows) > 0) and np.isfinite(coordinates).all()


def test_ablation_model_key_depends_on_the_options() -> None:
    first = ablation_model_key("models/x", "edges-spatial", {"max_epochs": 10})
    assert first == ablation_model_key("models/x", "edges-spatial", {"max_epochs": 10})
    assert first != ablation_model_key("models/x", "edges-spatial", {"max_epochs": 11})
    assert first.startswith("models/x-ablation-edges-spatial-")
