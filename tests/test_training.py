"""The fast DGI loop against the simple formulation: full batch, batched, and bfloat16."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sparse
import torch
from synthetic_features import make_videos

from anograph.errors import InputError
from anograph.graph.batches import ShardGraphBatches, feature_moments, iter_shard_videos
from anograph.graph.build import GraphConfig, VideoNodes, build_graph
from anograph.io.shards import write_shard
from anograph.io.storage import Storage
from anograph.models.dgi import BilinearDiscriminator, OneLayerGCN, propagate
from anograph.models.estimator import AnoGraph
from anograph.models.training import (
    batched_dgi_loss_and_gradients,
    dgi_loss_and_gradients,
    make_batch,
    resolve_device,
    resolve_precision,
    train_dgi,
    train_dgi_batched,
)

HIDDEN = 16
CPU = torch.device("cpu")


def small_graph(n_videos: int = 3, seed: int = 0) -> tuple[list[sparse.csr_matrix], list[np.ndarray]]:
    """Per-video adjacencies and standardised-ish features of a few synthetic videos."""
    videos = make_videos(n_videos, seed=seed, n_frames=25)
    adjacencies, features = [], []
    for video in videos:
        chunk = video.features.astype(np.float32)
        chunk = (chunk - chunk.mean(axis=0)) / (chunk.std(axis=0) + 1e-3)
        adjacencies.append(build_graph([VideoNodes(video.frame_offsets(), video.boxes, chunk)], GraphConfig()))
        features.append(chunk)
    return adjacencies, features


def fresh_modules(width: int, seed: int = 0) -> tuple[OneLayerGCN, BilinearDiscriminator]:
    generator = torch.Generator().manual_seed(seed)
    encoder, discriminator = OneLayerGCN(width, HIDDEN), BilinearDiscriminator(HIDDEN)
    torch.nn.init.xavier_uniform_(encoder.linear.weight, generator=generator)
    torch.nn.init.normal_(encoder.linear.bias, generator=generator)
    torch.nn.init.xavier_uniform_(discriminator.weight, generator=generator)
    return encoder, discriminator


def gradients(*modules: torch.nn.Module) -> list[torch.Tensor]:
    return [parameter.grad.clone() for module in modules for parameter in module.parameters()]


def simple_loss(adjacency, features, permutation, encoder, discriminator) -> torch.Tensor:
    """The textbook formulation: ``Â X`` and ``Â X̃`` first, then the encoder, then DGI's BCE."""
    positive = encoder(torch.from_numpy(propagate(adjacency, features)))
    negative = encoder(torch.from_numpy(propagate(adjacency, features[permutation])))
    summary = torch.sigmoid(positive.mean(dim=0))
    logits = torch.cat([discriminator(positive, summary), discriminator(negative, summary)])
    labels = torch.cat([torch.ones(len(positive)), torch.zeros(len(negative))])
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)


def test_fast_loss_and_gradients_equal_the_simple_formulation() -> None:
    adjacencies, features = small_graph()
    adjacency, node_features = sparse.block_diag(adjacencies, format="csr"), np.concatenate(features)
    permutation = np.random.default_rng(1).permutation(len(node_features))
    encoder, discriminator = fresh_modules(node_features.shape[1])
    reference = simple_loss(adjacency, node_features, permutation, encoder, discriminator)
    reference.backward()
    expected = gradients(encoder, discriminator)
    encoder.zero_grad()
    discriminator.zero_grad()
    batch = make_batch(adjacency, node_features, CPU, torch.float32)
    fast = dgi_loss_and_gradients(batch, encoder, discriminator, torch.from_numpy(permutation))
    assert fast == pytest.approx(float(reference.detach()), rel=1e-5)
    for got, want in zip(gradients(encoder, discriminator), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_batched_gradients_equal_full_batch_gradients() -> None:
    """Exactness of the streamed readout: same loss and gradients when each batch shuffles its own rows."""
    adjacencies, features = small_graph(4, seed=3)
    sizes = [len(chunk) for chunk in features]
    rng = np.random.default_rng(2)
    local = [rng.permutation(size) for size in sizes]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    global_permutation = np.concatenate([perm + start for perm, start in zip(local, offsets, strict=False)])
    encoder, discriminator = fresh_modules(features[0].shape[1], seed=5)
    full = make_batch(sparse.block_diag(adjacencies, format="csr"), np.concatenate(features), CPU, torch.float32)
    full_loss = dgi_loss_and_gradients(full, encoder, discriminator, torch.from_numpy(global_permutation))
    expected = gradients(encoder, discriminator)
    encoder.zero_grad()
    discriminator.zero_grad()
    # Two batches of two videos each, as the block-diagonal graph allows.
    batches = [
        make_batch(sparse.block_diag(adjacencies[:2], format="csr"), np.concatenate(features[:2]), CPU, torch.float32),
        make_batch(sparse.block_diag(adjacencies[2:], format="csr"), np.concatenate(features[2:]), CPU, torch.float32),
    ]
    batch_permutations = [
        torch.from_numpy(global_permutation[: offsets[2]]),
        torch.from_numpy(global_permutation[offsets[2] :] - offsets[2]),
    ]
    batched_loss = batched_dgi_loss_and_gradients(
        batches.__getitem__, 2, encoder, discriminator, batch_permutations
    )
    assert batched_loss == pytest.approx(full_loss, rel=1e-5)
    for got, want in zip(gradients(encoder, discriminator), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_batched_training_with_one_batch_repeats_full_batch_training() -> None:
    adjacencies, features = small_graph(2, seed=4)
    batch = make_batch(sparse.block_diag(adjacencies, format="csr"), np.concatenate(features), CPU, torch.float32)
    runs = []
    for trainer in ("full", "batched"):
        encoder, discriminator = fresh_modules(features[0].shape[1], seed=6)
        generator = torch.Generator().manual_seed(7)
        options = {"learning_rate": 1e-2, "max_epochs": 15, "patience": 50}
        if trainer == "full":
            result = train_dgi(batch, encoder, discriminator, generator, **options)
        else:
            result = train_dgi_batched(
                lambda index: batch, [batch.n_nodes], encoder, discriminator, generator, **options
            )
        runs.append((result.history, encoder.linear.weight.detach().clone()))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-4)
    torch.testing.assert_close(runs[0][1], runs[1][1], rtol=1e-3, atol=1e-5)
    assert runs[0][0][-1] < runs[0][0][0]  # it did train


def test_batched_training_learns_like_full_batch_training() -> None:
    """Several batches (own shuffles per batch): the loss falls as far as with one full batch."""
    adjacencies, features = small_graph(4, seed=8)
    full = make_batch(sparse.block_diag(adjacencies, format="csr"), np.concatenate(features), CPU, torch.float32)
    per_video = [make_batch(a, f, CPU, torch.float32) for a, f in zip(adjacencies, features, strict=True)]
    options = {"learning_rate": 1e-2, "max_epochs": 25, "patience": 50}
    encoder, discriminator = fresh_modules(features[0].shape[1], seed=9)
    full_result = train_dgi(full, encoder, discriminator, torch.Generator().manual_seed(1), **options)
    encoder, discriminator = fresh_modules(features[0].shape[1], seed=9)
    batched_result = train_dgi_batched(
        per_video.__getitem__,
        [batch.n_nodes for batch in per_video],
        encoder,
        discriminator,
        torch.Generator().manual_seed(1),
        **options,
    )
    assert batched_result.history[0] == pytest.approx(full_result.history[0], abs=0.02)
    assert min(batched_result.history) < batched_result.history[0] - 0.3
    assert min(batched_result.history) == pytest.approx(min(full_result.history), abs=0.1)


def test_bfloat16_training_tracks_float32() -> None:
    videos = make_videos(3, seed=2, n_frames=30)
    common = {"hidden_channels": HIDDEN, "max_epochs": 30, "patience": 50, "score_propagation_steps": 0}
    fp32 = AnoGraph(**common).fit(videos)
    bf16 = AnoGraph(**common, precision="bfloat16").fit(videos)
    np.testing.assert_allclose(bf16.history_, fp32.history_, rtol=0.05, atol=0.01)
    scores32 = fp32.score_video(videos[0], window_radius=2, scorers=["discriminator"])["discriminator"]
    scores16 = bf16.score_video(videos[0], window_radius=2, scorers=["discriminator"])["discriminator"]
    assert np.corrcoef(scores32, scores16)[0, 1] > 0.98
    assert not np.array_equal(scores32, scores16)  # bf16 really ran


def test_fast_embedding_equals_propagate_then_encode() -> None:
    """Scoring's X W-first path against ``encoder(Â X)`` on a sliding-window adjacency."""
    videos = make_videos(2, seed=6, n_frames=20)
    model = AnoGraph(hidden_channels=HIDDEN, max_epochs=3, score_propagation_steps=0).fit(videos)
    window = model.window_graph(videos[1], window_radius=3)
    features, embeddings, adjacency = window.features, window.embeddings, window.adjacency
    with torch.no_grad():
        expected = model.encoder_(torch.from_numpy(propagate(adjacency, features))).numpy()
    np.testing.assert_allclose(embeddings, expected, rtol=1e-4, atol=1e-5)
    scores = model.score_video(videos[1], window_radius=3, scorers=["discriminator"])["discriminator"]
    with torch.no_grad():
        logits = model.discriminator_(torch.from_numpy(expected), model.summary_).numpy()
    np.testing.assert_allclose(scores, -logits, rtol=1e-4, atol=1e-5)


def test_device_and_precision_are_checked() -> None:
    assert resolve_device("cpu") == CPU
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_precision("bfloat16") == torch.bfloat16
    with pytest.raises(InputError, match="precision"):
        resolve_precision("float8")
    with pytest.raises(InputError, match="device"):
        resolve_device("abacus")


def test_shard_batches_hold_whole_videos_and_match_in_memory_data(tmp_path) -> None:
    """Streamed moments equal numpy's; each batch is its videos' exact graph and standardised features."""
    videos = make_videos(3, seed=11, n_frames=15)
    storage = Storage(str(tmp_path))
    keys = [f"shards/{video.metadata.video}.parquet" for video in videos]
    for key, video in zip(keys, videos, strict=True):
        write_shard(storage, key, video)
    stacked = np.concatenate([video.features for video in videos]).astype(np.float64)
    mean, std, count = feature_moments(iter_shard_videos(storage, keys))
    np.testing.assert_allclose(mean, stacked.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(std, stacked.std(axis=0), rtol=1e-10)
    assert count == len(stacked)
    sizes = [video.n_objects for video in videos]
    batches = ShardGraphBatches(storage, keys, mean, std, GraphConfig(), batch_nodes=sizes[0] + sizes[1])
    assert batches.sizes == [sizes[0] + sizes[1], sizes[2]]  # grouped in order, never splitting a video
    first = batches(0)
    standardized = [((video.features.astype(np.float32) - mean) / std).astype(np.float32) for video in videos[:2]]
    expected = build_graph(
        [VideoNodes(v.frame_offsets(), v.boxes, f) for v, f in zip(videos[:2], standardized, strict=True)],
        GraphConfig(),
    )
    torch.testing.assert_close(first.features, torch.from_numpy(np.concatenate(standardized)), rtol=1e-5, atol=1e-5)
    dense = first.operator.forward_matrix.to_dense().numpy()
    np.testing.assert_allclose(dense, expected.toarray(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(first.operator.transpose_matrix.to_dense().numpy(), dense.T, rtol=1e-6)
