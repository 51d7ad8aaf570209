"""AnoGraph: DGI training, GCN propagation, scorers, artifacts and input checks."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import scipy.sparse as sparse
import torch
from sklearn.exceptions import NotFittedError
from synthetic_features import make_video, make_videos, random_nodes
from torch_geometric.nn import GCNConv

from anograph.errors import InputError, ModelArtifactError
from anograph.extraction.features.layout import FeatureLayout
from anograph.graph.build import GraphConfig, VideoNodes, build_graph, build_video_graph
from anograph.io.storage import Storage
from anograph.models.dgi import OneLayerGCN, RowShuffleCorruption, propagate
from anograph.models.estimator import AnoGraph
from anograph.models.manifest import write_manifest
from anograph.models.scorers import SCORERS  # the graph-node scorers: these shards have no flow_stats

# Propagation off: these tests check the raw per-object scores; propagation has its own test.
SMALL = {"hidden_channels": 32, "max_epochs": 150, "patience": 20, "seed": 0, "score_propagation_steps": 0}


@pytest.fixture(scope="module")
def training_videos():
    return make_videos(4, seed=0, n_frames=50)


@pytest.fixture(scope="module")
def fitted(training_videos) -> AnoGraph:
    return AnoGraph(**SMALL).fit(training_videos)


def test_dgi_lowers_the_loss_and_separates_clean_from_corrupted(fitted: AnoGraph, training_videos) -> None:
    history = fitted.history_
    assert fitted.n_epochs_ == len(history) > 10
    assert history[-1] < 0.5 * history[0]  # starts near log 2 = 0.69
    assert min(history) == history[fitted.best_epoch_]
    assert fitted.training_separation_ > 0.8
    # Fresh corruption draws, never seen in training: still well separated.
    assert fitted.separation(training_videos, n_draws=4, seed=123) > 0.8


def test_untrained_discriminator_does_not_separate(training_videos) -> None:
    """Control for the test above: zero epochs leaves the discriminator near chance."""
    untrained = AnoGraph(**{**SMALL, "max_epochs": 0}).fit(training_videos)
    assert untrained.history_ == []
    assert abs(untrained.separation(training_videos, seed=7) - 0.5) < 0.2


def test_corrupting_only_the_adjacency_is_useless_for_one_layer() -> None:
    """The paper's corruption (row-permute A) only permutes H's rows: the negatives equal the positives."""
    rng = np.random.default_rng(0)
    offsets, boxes, features = random_nodes(rng, [3, 4, 2, 5])
    adjacency = build_video_graph(offsets, boxes, features, GraphConfig())
    permutation = rng.permutation(adjacency.shape[0])
    encoder = OneLayerGCN(features.shape[1], 8)
    with torch.no_grad():
        clean = encoder(torch.from_numpy(propagate(adjacency, features)))
        corrupted = encoder(torch.from_numpy(propagate(adjacency[permutation], features)))
    torch.testing.assert_close(corrupted, clean[permutation])


def test_corruption_shuffles_rows_and_both_backends_agree() -> None:
    """The torch-sparse path (used on GPUs) computes the same Â X̃ as the scipy path."""
    rng = np.random.default_rng(4)
    offsets, boxes, features = random_nodes(rng, [3, 4, 2, 5, 1])
    features = features.astype(np.float32)
    adjacency = build_video_graph(offsets, boxes, features, GraphConfig())
    device = torch.device("cpu")
    with_scipy = RowShuffleCorruption(adjacency, features, device, use_scipy=True)(torch.Generator().manual_seed(3))
    with_torch = RowShuffleCorruption(adjacency, features, device, use_scipy=False)(torch.Generator().manual_seed(3))
    torch.testing.assert_close(with_scipy, with_torch, rtol=1e-5, atol=1e-6)
    permutation = torch.randperm(len(features), generator=torch.Generator().manual_seed(3)).numpy()
    np.testing.assert_allclose(with_scipy.numpy(), propagate(adjacency, features[permutation]), rtol=1e-6)
    assert not np.allclose(with_scipy.numpy(), propagate(adjacency, features))


@pytest.mark.parametrize("direction", ["forward", "both"])
def test_symmetric_gcn_equals_gcnconv_and_dense_reference(direction: str) -> None:
    rng = np.random.default_rng(1)
    offsets, boxes, features = random_nodes(rng, [3, 0, 4, 2, 5, 1], width=7)
    features = features.astype(np.float32)
    config = GraphConfig(temporal_direction=direction, normalization="symmetric")
    normalized = build_video_graph(offsets, boxes, features, config)
    encoder = OneLayerGCN(7, 5)
    with torch.no_grad():
        ours = encoder.linear(torch.from_numpy(propagate(normalized, features)))

    # GCNConv gets the symmetrised graph with Kipf's self-loops (A + I) as edge_index + edge_weight;
    # it must not add self-loops itself: it would keep the spatial self-weight instead of adding 1.
    raw = build_video_graph(offsets, boxes, features, dataclasses.replace(config, normalization="none"))
    with_loops = (raw.maximum(raw.T) + sparse.identity(raw.shape[0])).tocoo()
    edge_index = torch.from_numpy(np.vstack([with_loops.row, with_loops.col]).astype(np.int64))
    edge_weight = torch.from_numpy(with_loops.data.astype(np.float32))
    convolution = GCNConv(7, 5, add_self_loops=False, normalize=True)
    with torch.no_grad():
        convolution.lin.weight.copy_(encoder.linear.weight)
        convolution.bias.copy_(encoder.linear.bias)
        theirs = convolution(torch.from_numpy(features), edge_index, edge_weight)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)

    dense = with_loops.toarray()
    degree = dense.sum(axis=1)
    dense_normalized = dense / np.sqrt(np.outer(degree, degree))
    weight = encoder.linear.weight.detach().double().numpy()
    expected = (
        dense_normalized @ features.astype(np.float64) @ weight.T
        + encoder.linear.bias.detach().double().numpy()
    )
    np.testing.assert_allclose(ours.double().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_a_model_saved_for_cuda_loads_where_it_can_run(fitted: AnoGraph, tmp_path) -> None:
    """A model trained with ``device="cuda"`` is scored on machines without a GPU too (cameras, CI)."""
    storage = Storage(tmp_path)
    fitted.save(storage, "models/gpu")
    sidecar = json.loads(storage.read_bytes("models/gpu/model.json"))
    sidecar["params"]["device"] = "cuda"  # as `anograph run --device cuda` saves it
    edited = json.dumps(sidecar).encode()
    storage.write_bytes("models/gpu/model.json", edited)
    write_manifest(storage, "models/gpu", {"model.json": edited,
                                           "tensors.safetensors": storage.read_bytes("models/gpu/tensors.safetensors")})
    loaded = AnoGraph.load(storage, "models/gpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(loaded.encoder_.parameters()).device.type == expected
    assert AnoGraph.load(storage, "models/gpu", device="cpu").device == "cpu"


def test_save_load_roundtrip_gives_identical_scores(fitted: AnoGraph, tmp_path) -> None:
    storage = Storage(tmp_path)
    fitted.save(storage, "models/run1")
    assert storage.list("models/run1") == ["models/run1/manifest.json", "models/run1/model.json",
                                           "models/run1/tensors.safetensors"]
    loaded = AnoGraph.load(storage, "models/run1")
    test_video = make_video("test", np.random.default_rng(5), n_frames=30, empty_frames=[3, 4])
    before = fitted.score_video(test_video, window_radius=10)
    after = loaded.score_video(test_video, window_radius=10)
    assert set(before) == set(SCORERS)
    for name in SCORERS:
        assert before[name].shape == (test_video.n_objects,)
        np.testing.assert_array_equal(before[name], after[name])
    assert loaded.history_ == pytest.approx(fitted.history_)
    assert loaded.get_params()["graph"] == fitted.graph_config
    assert loaded.training_score_quantiles_ == fitted.training_score_quantiles_
    sidecar = json.loads(storage.read_bytes("models/run1/model.json"))
    assert sidecar["feature_layout"] == fitted.feature_layout_.to_json()
    assert sidecar["class_names"] == ["person", "bicycle"]


def test_broken_artifacts_raise_model_artifact_error(fitted: AnoGraph, tmp_path) -> None:
    storage = Storage(tmp_path)
    with pytest.raises(ModelArtifactError, match="nowhere: no model here"):
        AnoGraph.load(storage, "nowhere")
    fitted.save(storage, "m")
    tensors = storage.read_bytes("m/tensors.safetensors")
    storage.write_bytes("m/tensors.safetensors", tensors[:-10])
    with pytest.raises(ModelArtifactError, match="tensors.safetensors"):
        AnoGraph.load(storage, "m")
    storage.write_bytes("m/tensors.safetensors", tensors)
    storage.write_bytes("m/model.json", b"{not json")
    with pytest.raises(ModelArtifactError, match="m/model.json: file does not match the model's manifest"):
        AnoGraph.load(storage, "m")
    write_manifest(storage, "m", {"model.json": b"{not json", "tensors.safetensors": tensors})
    with pytest.raises(ModelArtifactError, match="m/model.json.*JSON"):
        AnoGraph.load(storage, "m")


def test_layout_mismatch_is_reported(fitted: AnoGraph, training_videos) -> None:
    other_layout = FeatureLayout.of([("appearance", 12), ("motion", 4)])
    other = make_video("elsewhere", np.random.default_rng(2), n_frames=10, layout=other_layout)
    with pytest.raises(
        ModelArtifactError,
        match=r"model was trained on feature layout .*appearance.*geometry.* but shard 'elsewhere' has",
    ):
        fitted.score_video(other, window_radius=5)
    with pytest.raises(InputError, match="elsewhere"):
        AnoGraph(**SMALL).fit([*training_videos[:2], other])
    with pytest.raises(InputError, match="colour"):
        AnoGraph(**SMALL, feature_groups=("colour",)).fit(training_videos)
    with pytest.raises(InputError, match="no training videos"):
        AnoGraph().fit([])
    with pytest.raises(InputError, match="unknown scorers"):
        fitted.score_video(training_videos[0], window_radius=5, scorers=("magic",))
    broken = make_video("broken", np.random.default_rng(2), n_frames=10)
    broken.features[3, 0] = np.nan
    with pytest.raises(InputError, match="broken.*NaN"):
        fitted.score_video(broken, window_radius=5)
    with pytest.raises(InputError, match="broken.*NaN"):
        AnoGraph(**SMALL).fit([training_videos[0], broken])
    with pytest.raises(NotFittedError):
        AnoGraph().score_video(training_videos[0], window_radius=5)


def test_knn_scores_an_injected_outlier_highest(fitted: AnoGraph) -> None:
    video = make_video("outlier", np.random.default_rng(8), n_frames=30, track_patterns=_patterns())
    features = video.features.astype(np.float32)
    target = video.frame_offsets()[15]  # first object of frame 15
    features[target, :12] += (
        8.0 * fitted.feature_std_[:12].astype(np.float32) * np.sign(np.arange(12) % 2 - 0.5)
    )
    video.features = features.astype(np.float16)
    scores = fitted.score_video(video, window_radius=10, scorers=("knn", "feature_knn"))
    for name in ("knn", "feature_knn"):
        others = np.delete(scores[name], target)
        assert scores[name][target] > others.max(), name
        # It would also raise an alert at a 1% false-alarm rate calibrated on training nodes.
        assert scores[name][target] > fitted.training_score_quantiles_[name]["0.99"], name


def _patterns() -> np.ndarray:
    return np.random.default_rng(12345).normal(0.0, 1.0, (4, 12))  # as make_videos


def test_window_radius_beyond_the_reach_changes_nothing(fitted: AnoGraph, training_videos) -> None:
    """Scores for radius 1, 3 and 30 agree, and equal embedding the whole-video graph (row normalisation)."""
    video = training_videos[1]
    by_radius = [fitted.score_video(video, window_radius=radius) for radius in (1, 3, 30)]
    for scores in by_radius[1:]:
        for name in SCORERS:
            np.testing.assert_allclose(scores[name], by_radius[0][name], rtol=1e-6, atol=1e-6)
    features = fitted.standardize_features(video.features)
    whole = build_graph([VideoNodes(video.frame_offsets(), video.boxes, features)], fitted.graph_config)
    with torch.no_grad():
        embeddings = fitted.encoder_(torch.from_numpy(propagate(whole, features))).numpy()
    np.testing.assert_allclose(
        fitted.score_embedded(features, embeddings, ["discriminator"])["discriminator"],
        by_radius[0]["discriminator"],
        rtol=1e-5,
        atol=1e-5,
    )
    radius_zero = fitted.score_video(video, window_radius=0)["discriminator"]
    assert np.abs(radius_zero - by_radius[0]["discriminator"]).max() > 1e-3  # no temporal edges at radius 0


def test_selected_groups_are_the_only_input(training_videos) -> None:
    model = AnoGraph(**{**SMALL, "max_epochs": 30}, feature_groups=("appearance",)).fit(training_videos)
    assert model.feature_groups_ == ("appearance",)
    video = make_video("probe", np.random.default_rng(3), n_frames=20)
    baseline = model.score_video(video, window_radius=5)
    video.features = video.features.copy()
    video.features[:, 12:] = 100.0  # the unused "geometry" group
    changed = model.score_video(video, window_radius=5)
    for name in SCORERS:
        np.testing.assert_array_equal(baseline[name], changed[name])


def test_calibration_scores_come_from_training_nodes(fitted: AnoGraph) -> None:
    for name in SCORERS:
        values = fitted.calibration_scores_[name]
        assert len(values) == fitted.n_training_nodes_  # fewer nodes than CALIBRATION_SIZE: all of them
        assert np.all(np.diff(values) >= 0)
        quantiles = list(fitted.training_score_quantiles_[name].values())
        assert quantiles == sorted(quantiles)
    # Leave-one-video-out: no training node finds itself (or its own video) in the bank.
    assert fitted.calibration_scores_["knn"].min() > 0
    assert fitted.calibration_scores_["feature_knn"].min() > 0


def test_video_without_objects_scores_to_empty_arrays(fitted: AnoGraph) -> None:
    video = make_video("empty", np.random.default_rng(0), n_frames=5, empty_frames=range(5))
    scores = fitted.score_video(video, window_radius=3)
    assert all(values.shape == (0,) for values in scores.values())


def test_group_scaling_gives_every_group_the_same_total_variance(training_videos) -> None:
    model = AnoGraph(**SMALL)
    graph = model.prepare_training_graph(training_videos)
    for columns in model.selection_.group_columns().values():
        assert np.sum(graph.node_features[:, columns].var(axis=0)) == pytest.approx(1.0, rel=1e-3)
    column_model = AnoGraph(**SMALL, feature_scaling="column")
    column_graph = column_model.prepare_training_graph(training_videos)
    assert np.allclose(column_graph.node_features.var(axis=0), 1.0, rtol=1e-3)
    with pytest.raises(InputError, match="feature_scaling"):
        AnoGraph(**SMALL, feature_scaling="minmax").prepare_training_graph(training_videos)


def test_group_knn_flags_an_object_unusual_in_one_small_group(fitted: AnoGraph) -> None:
    """An object whose 4 geometry columns are off but whose 12 appearance columns are normal."""
    video = make_video("odd-geometry", np.random.default_rng(8), n_frames=30, track_patterns=_patterns())
    features = video.features.astype(np.float32)
    target = video.frame_offsets()[15]
    features[target, 12:] += 6.0 * fitted.feature_std_[12:].astype(np.float32)
    video.features = features.astype(np.float16)
    scores = fitted.score_video(video, window_radius=10, scorers=("group_knn",))["group_knn"]
    assert scores[target] > np.delete(scores, target).max()
    assert scores[target] > fitted.training_score_quantiles_["group_knn"]["0.99"]
    assert fitted.group_scale_.shape == (2,) and np.all(fitted.group_scale_ > 0)


def test_score_propagation_spreads_an_outlier_over_its_window_graph(fitted: AnoGraph) -> None:
    video = make_video("spread", np.random.default_rng(8), n_frames=30, track_patterns=_patterns())
    features = video.features.astype(np.float32)
    offsets = video.frame_offsets()
    target = offsets[15]
    features[target, :12] += 8.0 * fitted.feature_std_[:12].astype(np.float32)
    video.features = features.astype(np.float16)
    raw = fitted.score_video(video, window_radius=5, scorers=("feature_knn",))["feature_knn"]
    model = AnoGraph(**{**fitted.get_params(), "score_propagation_steps": 2})
    for name, value in vars(fitted).items():
        if name.endswith("_") and not name.startswith("__"):
            setattr(model, name, value)
    spread = model.score_video(video, window_radius=5, scorers=("feature_knn",))["feature_knn"]
    # Scores are averages over graph neighbours: the outlier's own score drops, and objects of the
    # neighbouring frames (not of far frames) inherit part of it.
    assert spread[target] < raw[target]
    neighbours = np.setdiff1d(np.arange(offsets[14], offsets[17]), [target])
    far = np.arange(offsets[25], offsets[28])
    assert np.all(spread[neighbours] > raw[neighbours])
    assert np.abs(spread[far] - raw[far]).max() < 0.1 * (spread[neighbours] - raw[neighbours]).min()
    # The receptive field stays inside the window: with radius 2 the 2 steps are used, with radius 1 only 1.
    assert model.propagation_steps(1) == 1 and model.propagation_steps(5) == 2
    np.testing.assert_allclose(
        model.score_video(video, window_radius=2, scorers=("feature_knn",))["feature_knn"], spread, rtol=1e-9
    )


def test_fit_graph_reports_progress_every_epoch(training_videos) -> None:
    model = AnoGraph(**{**SMALL, "max_epochs": 7, "patience": 100})
    seen: list[tuple[int, float]] = []
    model.fit_graph(
        model.prepare_training_graph(training_videos), progress=lambda epoch, loss: seen.append((epoch, loss))
    )
    assert [epoch for epoch, _ in seen] == list(range(model.n_epochs_)) and model.n_epochs_ == 7
    assert [loss for _, loss in seen] == pytest.approx(model.history_)
