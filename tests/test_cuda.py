"""The GPU paths against the CPU: training, scoring, the live scorer, saving, and the Faster R-CNN detector.

Every test skips with a reason where torch sees no CUDA device, as in CI. They ran on a lent
GPU (README, "Performance"). Comparisons use float32 on both sides with TF32 off, so the CPU
and the GPU compute the same function up to the order of float32 operations; the bfloat16
and float16 paths are checked against float32 on the same GPU within a tolerance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sparse
import torch
from synthetic_features import make_videos
from test_training import fresh_modules, gradients, small_graph

from anograph.io.storage import Storage
from anograph.models.estimator import AnoGraph
from anograph.models.scorers import SCORERS  # the graph-node scorers: these shards have no flow_stats
from anograph.models.training import dgi_loss_and_gradients, make_batch
from anograph.serving.live_scorer import StreamScorer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: torch sees no GPU")

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
OPTIONS = {"hidden_channels": 16, "max_epochs": 20, "patience": 50, "seed": 5, "score_propagation_steps": 0,
           "learning_rate": 1e-2}
RADIUS = 3


@pytest.fixture(autouse=True)
def no_tf32():
    """TF32 rounds float32 products to 10 mantissa bits; off, so float32 means float32 on both devices."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def _loss_and_gradients(device: torch.device, precision: torch.dtype) -> tuple[float, list[torch.Tensor]]:
    adjacencies, features = small_graph(seed=3)
    adjacency, stacked = sparse.block_diag(adjacencies, format="csr"), np.concatenate(features)
    encoder, discriminator = fresh_modules(stacked.shape[1], seed=4)
    encoder, discriminator = encoder.to(device), discriminator.to(device)
    batch = make_batch(adjacency, stacked, device, precision)
    permutation = torch.randperm(len(stacked), generator=torch.Generator().manual_seed(8)).to(device)
    loss = dgi_loss_and_gradients(batch, encoder, discriminator, permutation)
    return loss, [gradient.cpu() for gradient in gradients(encoder, discriminator)]


def test_dgi_loss_and_gradients_on_cuda_equal_the_cpu() -> None:
    """The sparse products (cuSPARSE), the stored-transpose backward and the loss, float32."""
    cpu_loss, cpu_gradients = _loss_and_gradients(CPU, torch.float32)
    cuda_loss, cuda_gradients = _loss_and_gradients(CUDA, torch.float32)
    assert cuda_loss == pytest.approx(cpu_loss, rel=1e-5)
    for on_cpu, on_cuda in zip(cpu_gradients, cuda_gradients, strict=True):
        torch.testing.assert_close(on_cuda, on_cpu, rtol=1e-4, atol=1e-5)


def test_bfloat16_gradients_on_cuda_track_float32() -> None:
    loss32, gradients32 = _loss_and_gradients(CUDA, torch.float32)
    loss16, gradients16 = _loss_and_gradients(CUDA, torch.bfloat16)
    assert loss16 == pytest.approx(loss32, rel=0.02)
    assert loss16 != loss32  # bf16 really ran
    for full, half in zip(gradients32, gradients16, strict=True):
        assert torch.linalg.norm(half - full) <= 0.05 * torch.linalg.norm(full) + 1e-6


@pytest.fixture(scope="module")
def videos():
    return make_videos(4, seed=13, n_frames=30)


@pytest.fixture(scope="module")
def cpu_model(videos) -> AnoGraph:
    return AnoGraph(**OPTIONS, device="cpu").fit(videos[:3])


@pytest.fixture(scope="module")
def cuda_model(videos) -> AnoGraph:
    return AnoGraph(**OPTIONS, device="cuda").fit(videos[:3])


def test_a_model_trained_on_cuda_equals_one_trained_on_the_cpu(cpu_model: AnoGraph, cuda_model: AnoGraph, videos):
    """The same draws, then 20 Adam steps on each device: weights and every scorer's scores agree."""
    assert next(cuda_model.encoder_.parameters()).device.type == "cuda"
    assert cuda_model.n_epochs_ == cpu_model.n_epochs_ and cuda_model.best_epoch_ == cpu_model.best_epoch_
    np.testing.assert_allclose(cuda_model.history_, cpu_model.history_, rtol=1e-4)
    for name, value in cpu_model.encoder_.state_dict().items():
        torch.testing.assert_close(cuda_model.encoder_.state_dict()[name].cpu(), value, rtol=1e-3, atol=1e-4)
    on_cpu = cpu_model.score_video(videos[3], window_radius=RADIUS, scorers=SCORERS)
    on_cuda = cuda_model.score_video(videos[3], window_radius=RADIUS, scorers=SCORERS)
    for name in SCORERS:
        assert on_cuda[name].shape == (videos[3].n_objects,)
        np.testing.assert_allclose(on_cuda[name], on_cpu[name], rtol=1e-3, atol=1e-3)


def test_the_live_scorer_runs_a_cuda_model(cuda_model: AnoGraph, videos) -> None:
    """StreamScorer feeds each frame's window to the model on its device; equal to offline scoring."""
    video = videos[3]
    scorer = StreamScorer(cuda_model, "discriminator", RADIUS, threshold=np.inf)
    offsets = video.frame_offsets()
    live = []
    for start, stop in zip(offsets[:-1], offsets[1:], strict=True):
        live += scorer.push(video.boxes[start:stop], video.class_ids[start:stop], video.features[start:stop])[0]
    live += scorer.finish()[0]
    assert [frame.frame for frame in live] == list(range(len(offsets) - 1))
    offline = cuda_model.score_video(video, window_radius=RADIUS, scorers=["discriminator"])["discriminator"]
    live_scores = np.concatenate([np.asarray(frame.object_scores, np.float64) for frame in live])
    np.testing.assert_allclose(live_scores, offline, rtol=1e-4, atol=1e-4)


def test_a_cuda_model_saves_and_loads_on_the_cpu(cuda_model: AnoGraph, videos, tmp_path: Path) -> None:
    storage = Storage(str(tmp_path))
    cuda_model.save(storage, "models/gpu")
    loaded = AnoGraph.load(storage, "models/gpu", device="cpu")
    assert next(loaded.encoder_.parameters()).device.type == "cpu"
    expected = cuda_model.score_video(videos[3], window_radius=RADIUS, scorers=["discriminator"])["discriminator"]
    actual = loaded.score_video(videos[3], window_radius=RADIUS, scorers=["discriminator"])["discriminator"]
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_bounded_memory_training_on_cuda_equals_full_batch(videos, cuda_model: AnoGraph, tmp_path: Path) -> None:
    """fit_shards with every node in one batch repeats fit, on the GPU too."""
    from anograph.io.shards import write_shard

    storage = Storage(str(tmp_path))
    keys = [f"shards/{video.metadata.video}.parquet" for video in videos[:3]]
    for key, video in zip(keys, videos[:3], strict=True):
        write_shard(storage, key, video)
    n_nodes = sum(video.n_objects for video in videos[:3])
    batched = AnoGraph(**OPTIONS, device="cuda").fit_shards(storage, keys, batch_nodes=n_nodes)
    np.testing.assert_allclose(batched.history_, cuda_model.history_, rtol=1e-4)
    torch.testing.assert_close(batched.summary_, cuda_model.summary_, rtol=1e-3, atol=1e-4)


@pytest.fixture(scope="module")
def ped2_frames(ped2_root: Path) -> list[np.ndarray]:
    import cv2

    folder = ped2_root / "UCSDped2" / "Test" / "Test001"
    return [cv2.imread(str(path)) for path in sorted(folder.iterdir())[:4]]


def _detect(weights: Path, frames: list[np.ndarray], **options):
    from anograph.extraction.detectors.faster_rcnn import TorchvisionDetector

    small = {"min_size": 256, "max_size": 512, "max_proposals": 100, "max_detections": 20,
             "confidence_threshold": 0.0}
    detector = TorchvisionDetector(weights=weights, **small, **options)
    return detector, detector.detect_batch(frames)


def test_faster_rcnn_on_cuda_matches_the_cpu_and_float16_stays_close(random_faster_rcnn_weights: Path, ped2_frames):
    """Real Ped2 frames, random weights: the float32 GPU run equals the CPU's; float16 autocast runs."""
    _, on_cpu = _detect(random_faster_rcnn_weights, ped2_frames, device="cpu")
    detector32, on_cuda = _detect(random_faster_rcnn_weights, ped2_frames, device="cuda", half_precision=False)
    detector16, half = _detect(random_faster_rcnn_weights, ped2_frames, device="cuda", half_precision=True)
    assert not detector32.half_precision and detector16.half_precision
    for cpu_frame, cuda_frame, half_frame in zip(on_cpu, on_cuda, half, strict=True):
        assert len(cpu_frame.boxes) == len(cuda_frame.boxes) > 0
        np.testing.assert_allclose(cuda_frame.boxes, cpu_frame.boxes, atol=0.5)
        np.testing.assert_allclose(cuda_frame.features, cpu_frame.features, rtol=1e-2, atol=1e-3)
        assert half_frame.features.dtype == np.float32 and half_frame.features.shape[1] == cpu_frame.features.shape[1]
        assert np.isfinite(half_frame.features).all() and np.isfinite(half_frame.boxes).all()
        assert len(half_frame.boxes) > 0
