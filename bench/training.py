"""One DGI epoch: the library's loop (float32 and bfloat16) against PyG's stock DGI, side by side.

The graph: ``--nodes`` objects of synthetic videos (``bench/synthetic_shards.py``, ``--objects``
per frame, ``--width``-d features), built by :func:`anograph.graph.build.build_graph` with the default
config (spatial + temporal both ways, row-normalised). The same ``Â`` feeds both:

* **PyG**: ``DeepGraphInfomax`` with a ``GCNConv(width, hidden, normalize=False)`` + PReLU
  encoder given ``Â``'s ``edge_index`` and ``edge_weight``, corruption = row shuffle of ``X``,
  readout ``sigmoid(mean)``, Adam; the stock message-passing path.
* **anograph**: the epoch of :func:`anograph.models.training.train_dgi` (``X W`` once per epoch, sparse
  products with a stored transpose, hand-written gradients in buffers reused across epochs:
  :mod:`anograph.models.fused_epoch`), in float32 and in bfloat16.

``--device cuda`` runs all of it on a GPU (CUDA-synchronised timings; the matmul reference on
the same GPU). Rounds alternate between the methods so that load on this shared machine hits all of them;
the table reports the median epoch time per method and its ratio to PyG. It also measures a
plain ``(N x width) @ (width x hidden)`` matmul in float32 and bfloat16 in the same run and
reports the GFLOP/s the training loop achieves against it: the loop's FLOPs are its two
dense products (forward ``X W``, backward ``Xᵀ G``) plus four sparse products at ``hidden``
width; PyG's GCNConv multiplies ``X`` by ``W`` for the clean and the corrupted branch, twice
the dense FLOPs.

    nice -n 5 python bench/training.py --json bench/training.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_shards import synthetic_video  # noqa: E402

from anograph.graph.build import GraphConfig, VideoNodes, build_graph  # noqa: E402
from anograph.models.dgi import BilinearDiscriminator, OneLayerGCN  # noqa: E402
from anograph.models.fused_epoch import DGIWorkspace  # noqa: E402
from anograph.models.training import dgi_loss_and_gradients, make_batch, resolve_device, resolve_precision  # noqa: E402


def training_graph(nodes: int, objects: int, width: int, frames_per_video: int = 1000):
    videos, total, index = [], 0, 0
    while total < nodes:
        frames = min(frames_per_video, -(-(nodes - total) // objects))
        video = synthetic_video(f"v{index}", frames, objects, width, seed=index)
        features = video.features.astype(np.float32)
        videos.append(VideoNodes(video.frame_offsets(), video.boxes, features))
        total += video.n_objects
        index += 1
    adjacency = build_graph(videos, GraphConfig(), dtype=np.float32)
    features = np.concatenate([video.features for video in videos])
    features = (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-3)
    return adjacency, features.astype(np.float32)


class PygRunner:
    """PyG's DeepGraphInfomax over GCNConv on the same normalised adjacency."""

    def __init__(self, adjacency, features: np.ndarray, hidden: int, device: torch.device) -> None:
        from torch_geometric.nn import DeepGraphInfomax, GCNConv

        coo = adjacency.tocoo()
        edge_index = np.vstack([coo.col, coo.row]).astype(np.int64)  # source -> target
        self.edge_index = torch.from_numpy(edge_index).to(device)
        self.edge_weight = torch.from_numpy(coo.data.astype(np.float32)).to(device)
        self.x = torch.from_numpy(features).to(device)

        class Encoder(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = GCNConv(features.shape[1], hidden, normalize=False)
                self.activation = torch.nn.PReLU(hidden)

            def forward(self, x, edge_index, edge_weight):
                return self.activation(self.conv(x, edge_index, edge_weight))

        self.model = DeepGraphInfomax(
            hidden,
            encoder=Encoder(),
            summary=lambda z, *args, **kwargs: torch.sigmoid(z.mean(dim=0)),
            corruption=lambda x, edge_index, edge_weight: (
                x[torch.randperm(x.size(0), device=x.device)], edge_index, edge_weight
            ),
        ).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def epoch(self) -> float:
        self.optimizer.zero_grad()
        positive, negative, summary = self.model(self.x, self.edge_index, self.edge_weight)
        loss = self.model.loss(positive, negative, summary)
        loss.backward()
        self.optimizer.step()
        return float(loss)


class AnographRunner:
    """The library's epoch as :func:`anograph.models.training.train_dgi` runs it, one epoch per call.

    A fresh row shuffle, :func:`anograph.models.training.dgi_loss_and_gradients` with the run's one
    :class:`~anograph.models.fused_epoch.DGIWorkspace`, and an Adam step (``train_dgi`` adds only the
    early-stopping bookkeeping, a copy of the 1M parameters).
    """

    def __init__(self, adjacency, features: np.ndarray, hidden: int, dtype: torch.dtype, device: torch.device) -> None:
        self.batch = make_batch(adjacency, features, device, dtype)
        self.encoder = OneLayerGCN(features.shape[1], hidden).to(device)
        self.discriminator = BilinearDiscriminator(hidden).to(device)
        self.generator = torch.Generator().manual_seed(0)
        self.workspace = DGIWorkspace(self.batch.n_nodes, hidden, device)
        parameters = [*self.encoder.parameters(), *self.discriminator.parameters()]
        self.optimizer = torch.optim.Adam(parameters, lr=1e-3)

    def epoch(self) -> float:
        self.optimizer.zero_grad()
        permutation = torch.randperm(self.batch.n_nodes, generator=self.generator).to(self.batch.features.device)
        loss = dgi_loss_and_gradients(self.batch, self.encoder, self.discriminator, permutation, self.workspace)
        self.optimizer.step()
        return loss


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a host clock times it (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(
    nodes: int, width: int, hidden: int, dtype: torch.dtype, device: torch.device, repeats: int = 3
) -> float:
    left = torch.randn(nodes, width, device=device).to(dtype)
    right = torch.randn(width, hidden, device=device).to(dtype)
    left @ right
    repeats = repeats if device.type == "cpu" else 20 * repeats  # GPU products take milliseconds
    times = []
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        left @ right
        synchronize(device)
        times.append(time.perf_counter() - started)
    return 2 * nodes * width * hidden / statistics.median(times) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--objects", type=int, default=3, help="objects per frame (3: about 9 edges per node)")
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs per method (after one warm-up)")
    parser.add_argument("--precisions", default="float32",
                        help="comma-separated dtypes of the library loop: float32, bfloat16 (bf16 only pays on CPUs "
                             "with native bf16, AVX-512 BF16 or AMX, and on GPUs)")
    parser.add_argument("--skip-pyg", action="store_true")
    parser.add_argument("--device", default="cpu", help='"cpu" (default) or "cuda"')
    parser.add_argument("--json", default="bench/training.json")
    args = parser.parse_args()
    device = resolve_device(args.device)

    adjacency, features = training_graph(args.nodes, args.objects, args.width)
    n, nnz = adjacency.shape[0], adjacency.nnz
    print(f"graph: {n} nodes, {nnz} edges ({nnz / n:.1f} per node), {args.width}-d, hidden {args.hidden}")
    runners = {
        f"anograph {precision}": AnographRunner(adjacency, features, args.hidden, resolve_precision(precision), device)
        for precision in args.precisions.split(",")
    }
    if not args.skip_pyg:
        runners["PyG DGI + GCNConv"] = PygRunner(adjacency, features, args.hidden, device)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for round_index in range(args.rounds + 1):
        for name, runner in runners.items():
            synchronize(device)
            started = time.perf_counter()
            runner.epoch()
            synchronize(device)
            if round_index > 0:  # round 0 warms up
                times[name].append(time.perf_counter() - started)
            print(f"round {round_index} {name}: {time.perf_counter() - started:.2f} s", flush=True)
    gflops = {
        precision: matmul_gflops(n, args.width, args.hidden, resolve_precision(precision), device)
        for precision in args.precisions.split(",")
    }
    dense = 2 * n * args.width * args.hidden
    loop_flops = 2 * dense + 4 * 2 * nnz * args.hidden
    reference = statistics.median(times["PyG DGI + GCNConv"]) if not args.skip_pyg else None
    rows = []
    print(f"\n{'method':<20} {'epoch s':>8} {'vs PyG':>7} {'GFLOP/s':>8} {'matmul GFLOP/s':>14} {'of matmul':>9}")
    for name, values in times.items():
        seconds = statistics.median(values)
        flops = 2 * loop_flops - 8 * nnz * args.hidden if name.startswith("PyG") else loop_flops
        precision = "bfloat16" if "bfloat16" in name else "float32"
        row = {
            "method": name, "epoch_seconds": seconds, "all_epoch_seconds": values,
            "speedup_vs_pyg": reference / seconds if reference else None,
            "gflops": flops / seconds / 1e9, "matmul_gflops": gflops[precision],
        }
        row["fraction_of_matmul"] = row["gflops"] / row["matmul_gflops"]
        rows.append(row)
        ratio = f"{row['speedup_vs_pyg']:.1f}x" if reference else "-"
        print(f"{name:<20} {seconds:>8.2f} {ratio:>7} {row['gflops']:>8.1f} {row['matmul_gflops']:>14.1f} "
              f"{row['fraction_of_matmul']:>9.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak RSS of the whole run: {peak:.1f} GiB")
    machine = f"{os.cpu_count()}-core x86_64 CPU, torch CPU capability {torch.backends.cpu.get_cpu_capability()}"
    gpu_peak = None
    if device.type == "cuda":
        machine = f"{torch.cuda.get_device_name(device)} (torch {torch.__version__}); {machine}"
        gpu_peak = torch.cuda.max_memory_allocated(device) / 2**30
        print(f"peak GPU memory allocated: {gpu_peak:.1f} GiB")
    Path(args.json).write_text(json.dumps({
        "settings": vars(args), "nodes": n, "edges": int(nnz), "rows": rows, "peak_rss_gib": peak,
        "peak_gpu_gib": gpu_peak, "machine": machine,
        "threads": torch.get_num_threads(),
    }, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
