"""Bounded-memory DGI from shards: peak memory stays flat as the training graph grows.

Writes synthetic shards (``bench/synthetic_shards.py``, real shard format, ``--width``-d float16)
for the largest of ``--sizes`` once; then, for each size, a fresh process trains on the first
shards that hold that many nodes with :class:`anograph.graph_stream.ShardGraphBatches` +
:func:`anograph.training.train_dgi_batched` (batches of whole videos, at most
``--batch-nodes`` nodes; features re-read from the shards on every pass): a streamed
standardiser pass, then ``--epochs`` epochs. Each process reports the time of each stage and
its own peak RSS, next to the memory that full-batch training would need just for the
float32 feature matrix.

    nice -n 5 python bench/training_batched.py --json bench/training_batched.json

Deletes the shards afterwards.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_shards import write_synthetic_shards  # noqa: E402

from anograph.graph import GraphConfig  # noqa: E402
from anograph.graph_stream import ShardGraphBatches, feature_moments, iter_shard_videos  # noqa: E402
from anograph.model import BilinearDiscriminator, OneLayerGCN  # noqa: E402
from anograph.storage import Storage  # noqa: E402
from anograph.training import resolve_precision, train_dgi_batched  # noqa: E402


def child(directory: str, n_shards: int, args: argparse.Namespace) -> dict:
    storage = Storage(directory)
    keys = sorted(str(path.relative_to(directory)) for path in Path(directory).glob("shards/*.parquet"))[:n_shards]
    started = time.perf_counter()
    sizes: list[int] = []

    def counted():
        for video in iter_shard_videos(storage, keys):
            sizes.append(video.n_objects)
            yield video

    mean, std, n_nodes = feature_moments(counted())
    moments_seconds = time.perf_counter() - started
    batches = ShardGraphBatches(storage, keys, mean, std + 1e-3, GraphConfig(), batch_nodes=args.batch_nodes,
                                dtype=resolve_precision(args.precision), sizes=sizes)
    encoder, discriminator = OneLayerGCN(args.width, args.hidden), BilinearDiscriminator(args.hidden)
    torch.nn.init.xavier_uniform_(discriminator.weight)
    epoch_times: list[float] = []
    last = [time.perf_counter()]

    def progress(epoch: int, loss: float) -> None:
        now = time.perf_counter()
        epoch_times.append(now - last[0])
        last[0] = now

    result = train_dgi_batched(batches, batches.sizes, encoder, discriminator, torch.Generator().manual_seed(0),
                               learning_rate=1e-3, max_epochs=args.epochs, patience=args.epochs + 1,
                               progress=progress)
    return {
        "nodes": n_nodes, "shards": n_shards, "batches": len(batches), "moments_seconds": moments_seconds,
        "epoch_seconds": epoch_times, "losses": result.history,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "float32_feature_matrix_gib": n_nodes * args.width * 4 / 2**30,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,300000", help="comma-separated node counts")
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=10)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--batch-nodes", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--precision", default="bfloat16")
    parser.add_argument("--json", default="bench/training_batched.json")
    parser.add_argument("--child", nargs=2, metavar=("DIR", "SHARDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args)))
        return
    per_shard = args.frames * args.objects
    shard_counts = [max(1, int(size) // per_shard) for size in args.sizes.split(",")]
    directory = tempfile.mkdtemp(prefix="anograph-batched-bench-")
    rows = []
    try:
        started = time.perf_counter()
        write_synthetic_shards(Storage(directory), max(shard_counts), args.frames, args.objects, args.width)
        on_disk = sum(path.stat().st_size for path in Path(directory).glob("shards/*.parquet")) / 2**30
        print(f"wrote {max(shard_counts)} shards ({on_disk:.2f} GiB) in {time.perf_counter() - started:.0f} s")
        print(f"{'nodes':>9} {'batches':>7} {'moments s':>9} {'epoch s':>8} {'peak RSS GiB':>12} {'fp32 X GiB':>10}")
        for count in shard_counts:
            command = [sys.executable, __file__, "--child", directory, str(count)]
            for name in ("frames", "objects", "width", "hidden", "batch_nodes", "epochs", "precision"):
                command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            row = json.loads(output.strip().splitlines()[-1])
            rows.append(row)
            Path(args.json).write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=1))  # so far
            print(f"{row['nodes']:>9} {row['batches']:>7} {row['moments_seconds']:>9.1f} "
                  f"{max(row['epoch_seconds']):>8.1f} {row['peak_rss_gib']:>12.2f} "
                  f"{row['float32_feature_matrix_gib']:>10.2f}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    Path(args.json).write_text(json.dumps({
        "settings": {k: v for k, v in vars(args).items() if k != "child"}, "rows": rows, "gib_on_disk": on_disk,
        "machine": "2-core x86_64 CPU, 24 GiB, shared with other jobs",
    }, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
