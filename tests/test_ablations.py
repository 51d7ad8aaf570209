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
    plan_edge_variants,
    plan_training_fractions,
    plan_window_sweep,
    requested_ablations,
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


def test_window_sweep_scores_each_distinct_window_once() -> None:
    config = GraphConfig()  # reach 1 unless the normalisation is symmetric
    reach = 2 if config.normalization == "symmetric" else 1
    scorings, rows = plan_window_sweep([1, 3, 5], config, propagation_steps=1)
    assert list(rows) == ["i=1", "i=1, propagate 1", "i=3", "i=3, propagate 3", "i=5", "i=5, propagate 5"]
    plain = {rows[f"i={radius}"] for radius in (1, 3, 5)}
    # With one propagation step every radius at or above the reach scores the same.
    assert len(plain) == (1 if reach == 1 else 2)
    assert all(not scorings[index].propagate for index in plain)
    propagated = [scorings[rows[f"i={radius}, propagate {radius}"]] for radius in (1, 3, 5)]
    assert [(scoring.radius, scoring.propagate) for scoring in propagated] == [(1, True), (3, True), (5, True)]
    assert plan_window_sweep([], config, 1) == ([], {})


def test_edge_and_fraction_plans() -> None:
    options = {"max_epochs": 3, "graph": GraphConfig(spatial=True, temporal=True).to_dict()}
    plans = plan_edge_variants(options)
    assert list(plans) == ["spatial", "temporal", "both"] and plans["both"] is None  # the main model
    assert plans["spatial"]["graph"] == edge_variant(GraphConfig(), "spatial").to_dict()
    assert plans["temporal"]["max_epochs"] == 3
    assert plan_training_fractions([0.5, 1.0, 0.1]) == {"10%": 0.1, "50%": 0.5}


def test_retraining_ablations_need_training_shards() -> None:
    assert requested_ablations(None, have_training_shards=False)["edges"] is False
    assert requested_ablations({"window_radii": [1]}, have_training_shards=False)["window_radii"] == [1]
    for wanted in ({"edges": True}, {"training_fractions": [0.5]}):
        with pytest.raises(InputError, match="training shards"):
            requested_ablations(wanted, have_training_shards=False)
        assert requested_ablations(wanted, have_training_shards=True)
