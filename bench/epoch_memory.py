"""Memory of one DGI epoch: the autograd-free full-batch epoch against the autograd one.

Each method runs in its own process, on the same graph as ``bench/training.py`` (saved once
to ``--dir``), for ``--epochs`` epochs; the figure is how much the process's peak resident
memory grows over the graph and features already loaded. The methods:

* ``fused``: :func:`anograph.models.training.dgi_loss_and_gradients` with one
  :class:`~anograph.models.fused_epoch.DGIWorkspace` (what ``AnoGraph.fit`` runs);
* ``autograd``: :func:`anograph.models.training.batched_dgi_loss_and_gradients` with the whole graph
  as one batch (what ``AnoGraph.fit_shards`` runs per batch): the same loss and gradients
  through autograd.

    python bench/epoch_memory.py --json bench/epoch_memory.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sparse
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training import training_graph  # noqa: E402

from anograph.models.dgi import BilinearDiscriminator, OneLayerGCN  # noqa: E402
from anograph.models.fused_epoch import DGIWorkspace  # noqa: E402
from anograph.models.training import batched_dgi_loss_and_gradients, dgi_loss_and_gradients, make_batch  # noqa: E402


def peak_gib() -> float:
    """This process's peak resident memory: ``VmHWM`` (Linux), which starts afresh at ``exec``.

    ``ru_maxrss`` would not do here: Linux carries it across ``exec``, so a child started
    after the parent built the graph would inherit the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def measure(folder: Path, method: str, hidden: int, epochs: int) -> dict[str, float]:
    """Run in a fresh process: load the graph, then ``epochs`` epochs of ``method``."""
    adjacency, features = sparse.load_npz(folder / "adjacency.npz"), np.load(folder / "features.npy")
    batch = make_batch(adjacency, features, torch.device("cpu"), torch.float32)
    del features
    loaded = peak_gib()
    encoder, discriminator = OneLayerGCN(batch.features.shape[1], hidden), BilinearDiscriminator(hidden)
    torch.nn.init.xavier_uniform_(discriminator.weight)
    permutation = torch.randperm(batch.n_nodes, generator=torch.Generator().manual_seed(0))
    workspace = DGIWorkspace(batch.n_nodes, hidden, torch.device("cpu")) if method == "fused" else None
    for _ in range(epochs):
        if method == "fused":
            dgi_loss_and_gradients(batch, encoder, discriminator, permutation, workspace)
        else:
            batched_dgi_loss_and_gradients(lambda index: batch, 1, encoder, discriminator, [permutation])
    return {"loaded_gib": loaded, "peak_gib": peak_gib(), "added_gib": peak_gib() - loaded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/anograph-epoch-memory"))
    parser.add_argument("--json", default="bench/epoch_memory.json")
    parser.add_argument("--method", default=None, help=argparse.SUPPRESS)  # the child process's one method
    args = parser.parse_args()
    if args.method is not None:
        print(json.dumps(measure(args.dir, args.method, args.hidden, args.epochs)))
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    adjacency, features = training_graph(args.nodes, 3, args.width)
    sparse.save_npz(args.dir / "adjacency.npz", adjacency)
    np.save(args.dir / "features.npy", features)
    rows = {}
    for method in ("fused", "autograd"):
        command = [sys.executable, __file__, "--method", method, "--dir", str(args.dir),
                   "--hidden", str(args.hidden), "--epochs", str(args.epochs)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows[method] = json.loads(output.strip().splitlines()[-1])
        print(f"{method:<9} graph and features {rows[method]['loaded_gib']:.2f} GiB, "
              f"{args.epochs} epochs add {rows[method]['added_gib']:.2f} GiB")
    Path(args.json).write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()},
                                           "nodes": adjacency.shape[0], "rows": rows}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
