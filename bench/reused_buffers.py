"""Why the DGI epoch writes into reused buffers: each large step, into a fresh tensor and into a reused one.

On the graph of ``bench/training.py`` (``--nodes`` objects, 2048-d, 512 hidden), times
the steps of one epoch of :mod:`anograph.models.fused_epoch` side by side, median of ``--repeats``:

* a sparse product ``Â Z`` at the hidden width: ``Â @ Z`` (a new tensor) against
  ``torch.addmm(b, Â, Z, out=buffer)``;
* the corrupted branch's row gather: ``Z[P]`` against ``torch.index_select(..., out=buffer)``;
* the two dense products with ``W`` (forward ``X Wᵀ`` and backward ``Gᵀ X``), into reused
  buffers, which set the floor of an epoch;
* the whole epoch (:func:`anograph.models.training.dgi_loss_and_gradients` with one workspace).

    python bench/reused_buffers.py --json bench/reused_buffers.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training import training_graph  # noqa: E402

from anograph.models.dgi import BilinearDiscriminator, OneLayerGCN  # noqa: E402
from anograph.models.fused_epoch import DGIWorkspace  # noqa: E402
from anograph.models.training import dgi_loss_and_gradients, make_batch  # noqa: E402


def median_seconds(step: Callable[[], object], repeats: int) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default="bench/reused_buffers.json")
    args = parser.parse_args()

    adjacency, features = training_graph(args.nodes, 3, args.width)
    batch = make_batch(adjacency, features, torch.device("cpu"), torch.float32)
    matrix, inputs, n = batch.operator.forward_matrix, batch.features, batch.n_nodes
    projected, gradient = torch.randn(n, args.hidden), torch.randn(n, args.hidden)
    weight, bias = torch.randn(args.hidden, args.width) * 0.02, torch.zeros(args.hidden)
    buffer, weight_buffer = torch.empty(n, args.hidden), torch.empty(args.hidden, args.width)
    permutation = torch.randperm(n)
    encoder, discriminator = OneLayerGCN(args.width, args.hidden), BilinearDiscriminator(args.hidden)
    torch.nn.init.xavier_uniform_(discriminator.weight)
    workspace = DGIWorkspace(n, args.hidden, torch.device("cpu"))

    steps = {
        "sparse product, new tensor": lambda: matrix @ projected,
        "sparse product, addmm(out=)": lambda: torch.addmm(bias, matrix, projected, out=buffer),
        "row gather, new tensor": lambda: projected[permutation],
        "row gather, index_select(out=)": lambda: torch.index_select(projected, 0, permutation, out=buffer),
        "dense X W^T, out=": lambda: torch.mm(inputs, weight.T, out=buffer),
        "dense G^T X, out=": lambda: torch.mm(gradient.T, inputs, out=weight_buffer),
        "whole epoch (dgi_epoch)": lambda: dgi_loss_and_gradients(batch, encoder, discriminator, permutation, workspace),
    }
    rows = {name: median_seconds(step, args.repeats) for name, step in steps.items()}
    for name, seconds in rows.items():
        print(f"{name:<32} {seconds:7.3f} s")
    Path(args.json).write_text(json.dumps({"settings": vars(args), "nodes": n, "edges": int(adjacency.nnz),
                                           "threads": torch.get_num_threads(), "seconds": rows}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
