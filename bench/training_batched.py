"""Bounded-memory training from shards with ``AnoGraph.fit_shards``: peak memory stays flat as the graph grows.

Writes synthetic shards (``bench/synthetic_shards.py``, real shard format, ``--width``-d float16,
``--frames`` x ``--objects`` nodes per shard, one shard in memory at a time) for the largest of
``--sizes`` into ``--dir`` (default: a temporary folder, deleted at the end; a ``--dir`` you give
is left in place, and ``--keep`` reuses the shards already there). Then, for each size, a fresh
process trains the public estimator on the first shards holding that many nodes::

    AnoGraph(hidden_channels=--hidden, max_epochs=--epochs, precision=--precision)
        .fit_shards(storage, keys, batch_nodes=--batch-nodes)

which is what ``anograph run --batch-nodes N`` runs. Each process reports the streamed
standardiser pass (timed by wrapping ``anograph.models.scaling.feature_moments``), each epoch (epoch 0
also builds every batch's sparse graph), the final pass (readout, kNN bank, calibration,
separation), its own peak RSS, and the memory full-batch training would need for the float32
feature matrix alone. The 3M-node measurement of the issue (about 12 GB of float16 shards)::

    nice -n 5 python bench/training_batched.py --sizes 300000,1000000,3000000 \\
        --dir /data/anograph-3m --keep --epochs 1 --json bench/training_batched.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_shards import write_synthetic_shards  # noqa: E402

import anograph.models.scaling as scaling_module  # noqa: E402
import anograph.models.streamed_fit as streamed_module  # noqa: E402
from anograph.io.shards import read_metadata  # noqa: E402
from anograph.io.storage import Storage  # noqa: E402
from anograph.models.estimator import AnoGraph  # noqa: E402

SETTINGS = ("frames", "objects", "width", "hidden", "batch_nodes", "epochs", "precision", "bank_size")


def child(directory: str, n_shards: int, args: argparse.Namespace) -> dict:
    """Train on the first ``n_shards`` shards in this (fresh) process; report times and peak RSS."""
    storage = Storage(directory)
    keys = sorted(str(path.relative_to(directory)) for path in Path(directory).glob("shards/*.parquet"))[:n_shards]
    stages: dict[str, float] = {}
    moments = scaling_module.feature_moments

    def timed_moments(*arguments, **options):
        started = time.perf_counter()
        result = moments(*arguments, **options)
        stages["standardiser"] = time.perf_counter() - started
        stages["standardiser_done"] = time.perf_counter()
        return result

    scaling_module.feature_moments = timed_moments

    class CountedBatches(streamed_module.ShardGraphBatches):
        def __init__(self, *arguments, **options) -> None:
            super().__init__(*arguments, **options)
            stages["batches"] = len(self)

    streamed_module.ShardGraphBatches = CountedBatches
    epoch_ends: list[float] = []
    model = AnoGraph(hidden_channels=args.hidden, max_epochs=args.epochs, patience=args.epochs + 1,
                     precision=args.precision, knn_bank_size=args.bank_size)
    started = time.perf_counter()
    model.fit_shards(storage, keys, batch_nodes=args.batch_nodes,
                     progress=lambda epoch, loss: epoch_ends.append(time.perf_counter()))
    finished = time.perf_counter()
    starts = [stages["standardiser_done"], *epoch_ends[:-1]]
    return {
        "nodes": model.n_training_nodes_, "shards": n_shards,
        "batches": int(stages["batches"]),
        "standardiser_seconds": stages["standardiser"],
        "epoch_seconds": [end - start for start, end in zip(starts, epoch_ends, strict=True)],
        "final_pass_seconds": finished - epoch_ends[-1], "fit_seconds": finished - started,
        "losses": model.history_, "training_separation": model.training_separation_,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "float32_feature_matrix_gib": model.n_training_nodes_ * args.width * 4 / 2**30,
    }


def prepare_shards(directory: str, count: int, args: argparse.Namespace) -> float:
    """Write (or, with ``--keep``, reuse) ``count`` shards; returns their size on disk in GiB."""
    storage = Storage(directory)
    started = time.perf_counter()
    keys = write_synthetic_shards(storage, count, args.frames, args.objects, args.width, keep=args.keep)
    for key in keys:  # a reused shard must have the sizes asked for (footer only)
        metadata = read_metadata(storage, key)
        if metadata.n_frames != args.frames or metadata.feature_layout.width != args.width:
            raise SystemExit(f"{directory}/{key} has {metadata.n_frames} frames of {metadata.feature_layout.width}-d "
                             f"features, not {args.frames} of {args.width}-d: use another --dir or drop --keep")
    on_disk = sum((Path(directory) / key).stat().st_size for key in keys) / 2**30
    print(f"{count} shards ready in {directory} ({on_disk:.2f} GiB) after {time.perf_counter() - started:.0f} s")
    return on_disk


def machine() -> dict:
    """What this ran on, and how busy it was (the load average at the end)."""
    memory = Path("/proc/meminfo").read_text().split()[1] if Path("/proc/meminfo").exists() else "0"
    return {"cpus": os.cpu_count(), "processor": platform.machine(), "memory_gib": int(memory) / 2**20,
            "load_average": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,300000", help="comma-separated node counts (default 100000,300000)")
    parser.add_argument("--frames", type=int, default=1000, help="frames per shard (default 1000)")
    parser.add_argument("--objects", type=int, default=10, help="objects per frame (default 10)")
    parser.add_argument("--width", type=int, default=2048, help="feature width (default 2048)")
    parser.add_argument("--hidden", type=int, default=512, help="hidden channels (default 512)")
    parser.add_argument("--batch-nodes", type=int, default=50_000, help="fit_shards batch_nodes (default 50000)")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs (default 1)")
    parser.add_argument("--precision", default="float32",
                        help="model precision (default float32; bfloat16 only pays on CPUs with native bf16 and on GPUs)")
    parser.add_argument("--bank-size", type=int, default=AnoGraph().knn_bank_size,
                        help="the model's knn_bank_size (default: the model's, 50000): the kNN bank is the one "
                             "part of fit_shards' memory that grows with the graph, up to this many nodes")
    parser.add_argument("--dir", default=None, help="folder for the shards (default: a temporary one, deleted)")
    parser.add_argument("--keep", action="store_true", help="reuse the shards already in --dir")
    parser.add_argument("--json", default="bench/training_batched.json")
    parser.add_argument("--child", nargs=2, metavar=("DIR", "SHARDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args)))
        return
    if args.keep and not args.dir:
        parser.error("--keep needs --dir")
    per_shard = args.frames * args.objects
    shard_counts = [max(1, int(size) // per_shard) for size in args.sizes.split(",")]
    directory = args.dir or tempfile.mkdtemp(prefix="anograph-batched-bench-")
    rows = []
    settings = {name: getattr(args, name) for name in (*SETTINGS, "sizes", "dir", "keep")}
    try:
        on_disk = prepare_shards(directory, max(shard_counts), args)
        print(f"{'nodes':>9} {'batches':>7} {'standardiser s':>14} {'epoch s':>8} {'final pass s':>12} "
              f"{'peak RSS GiB':>12} {'fp32 X GiB':>10}")
        for count in shard_counts:
            command = [sys.executable, __file__, "--child", directory, str(count)]
            for name in SETTINGS:
                command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            row = json.loads(output.strip().splitlines()[-1])
            rows.append(row)
            Path(args.json).write_text(json.dumps({"settings": settings, "rows": rows}, indent=1))  # so far
            print(f"{row['nodes']:>9} {row['batches']:>7} {row['standardiser_seconds']:>14.1f} "
                  f"{max(row['epoch_seconds']):>8.1f} {row['final_pass_seconds']:>12.1f} "
                  f"{row['peak_rss_gib']:>12.2f} {row['float32_feature_matrix_gib']:>10.2f}")
    finally:
        if not args.dir:
            shutil.rmtree(directory, ignore_errors=True)
    Path(args.json).write_text(json.dumps({
        "settings": settings, "rows": rows, "gib_on_disk": on_disk,
        "machine": machine(),
    }, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
