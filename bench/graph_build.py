"""Training-graph build: the streaming sparse builder against a dense N x N build, side by side.

1. Writes ``--videos`` synthetic shards in the real shard format (``bench/synthetic_shards.py``,
   ``--frames`` x ``--objects`` nodes each, ``--width``-d float16 features) to ``--dir``.
2. Builds the training graph from those shards with the library
   (:func:`anograph.graph.batches.build_graph_from_shards`: ``--workers`` videos read and
   built at once, in background threads, their blocks joined in order), once per ``--repeats`` value R, each shard read
   R times as R distinct videos (so R x the distinct nodes; each read decodes the Parquet
   file again, from the page cache when it fits). Each build runs in a fresh process, which
   reports its own peak RSS.
3. At ``--dense-sizes`` node counts (one in-memory video), times the sparse builder against a
   dense build like the authors' released code (every N x N matrix materialised: IoU, cosine,
   masks, softmax), each in a fresh process, checks they agree (``max_abs_difference`` of a
   random projection's checksum), and reports time and peak RSS above the pre-build RSS.
   The sparse build's peak is taken before its result is densified for the check.

    nice -n 5 python bench/graph_build.py --json bench/graph_build.json

Deletes the shards afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_shards import synthetic_video, write_synthetic_shards  # noqa: E402

from anograph.graph.batches import build_graph_from_shards  # noqa: E402
from anograph.graph.build import GraphConfig, build_graph, paired_iou, unit_rows  # noqa: E402
from anograph.io.storage import Storage  # noqa: E402


def dense_adjacency(frame_offsets: np.ndarray, boxes: np.ndarray, features: np.ndarray) -> np.ndarray:
    """The default graph (spatial + temporal both ways, row-normalised) with dense N x N matrices."""
    frame = np.repeat(np.arange(len(frame_offsets) - 1), np.diff(frame_offsets))
    iou = paired_iou(boxes[:, None, :], boxes[None, :, :])
    np.fill_diagonal(iou, 1.0)
    unit = unit_rows(features)
    cosine = unit @ unit.T

    def block_softmax(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        weights = np.where(mask, np.exp(values), 0.0)
        total = weights.sum(axis=1, keepdims=True)
        return np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)

    adjacency = block_softmax(iou, frame[:, None] == frame[None, :])
    adjacency += block_softmax(cosine, frame[None, :] == frame[:, None] + 1)
    adjacency += block_softmax(cosine, frame[None, :] == frame[:, None] - 1)
    degree = adjacency.sum(axis=1, keepdims=True)
    return np.divide(adjacency, degree, out=np.zeros_like(adjacency), where=degree > 0)


def measure_stream(directory: str, keys: list[str], repeats: int, workers: int) -> dict:
    """Child process: build from shards and report time, size and own peak RSS."""
    started = time.perf_counter()
    graph = build_graph_from_shards(Storage(directory), keys * repeats, GraphConfig(), np.float32, workers)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "nodes": graph.shape[0],
        "edges": int(graph.nnz),
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,  # whole process, including imports
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "graph_gib": (graph.data.nbytes + graph.indices.nbytes + graph.indptr.nbytes) / 2**30,
    }


def compare_dense(nodes: int, objects: int, width: int) -> dict:
    """Both builders on one in-memory video, each in a fresh process (its peak RSS is its own)."""
    row: dict = {}
    results = {}
    for name in ("sparse", "dense"):
        command = [sys.executable, __file__, "--dense-child", name, str(nodes), str(objects), str(width)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[name] = json.loads(output.strip().splitlines()[-1])
        row["nodes"] = results[name]["nodes"]
        row[f"{name}_seconds"] = results[name]["seconds"]
        row[f"{name}_peak_gib"] = results[name]["extra_peak_gib"]
    row["max_abs_difference"] = abs(results["sparse"]["checksum"] - results["dense"]["checksum"])
    row["speedup"] = row["dense_seconds"] / row["sparse_seconds"]
    row["memory_ratio"] = row["dense_peak_gib"] / max(row["sparse_peak_gib"], 1e-9)
    return row


def dense_child(name: str, nodes: int, objects: int, width: int) -> dict:
    """Build one graph; report time, peak RSS above the RSS before the build, and a checksum."""
    video = synthetic_video("dense", nodes // objects, objects, width, seed=1)
    arguments = (video.frame_offsets(), video.boxes.astype(np.float64), video.features.astype(np.float32))
    with open("/proc/self/statm") as statm:
        before = int(statm.read().split()[1]) * resource.getpagesize()
    started = time.perf_counter()
    result = build_graph([arguments], GraphConfig()) if name == "sparse" else dense_adjacency(*arguments)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if name == "sparse":
        result = result.toarray()  # after the measurement, for the check
    # A weighted checksum: equal adjacencies give equal values (to rounding).
    weights = np.random.default_rng(0).standard_normal(result.shape[1])
    checksum = float(np.abs(result @ weights).sum())
    return {"nodes": video.n_objects, "seconds": seconds, "extra_peak_gib": (peak - before) / 2**30,
            "checksum": checksum}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=10)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--repeats", default="1,5", help="comma-separated read counts per shard; '' skips")
    parser.add_argument("--dense-sizes", default="1000,2000,4000")
    parser.add_argument("--dir", default=None, help="where to write shards (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--workers", type=int, default=2, help="videos built at once (default 2, one per core)")
    parser.add_argument("--json", default="bench/graph_build.json")
    parser.add_argument("--child", nargs=2, metavar=("DIR", "REPEATS"), help=argparse.SUPPRESS)
    parser.add_argument("--dense-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dense_child:
        name, *sizes = args.dense_child
        print(json.dumps(dense_child(name, *map(int, sizes))))
        return
    if args.child:
        keys = sorted(str(path.relative_to(args.child[0])) for path in Path(args.child[0]).glob("shards/*.parquet"))
        print(json.dumps(measure_stream(args.child[0], keys, int(args.child[1]), args.workers)))
        return

    directory = args.dir or tempfile.mkdtemp(prefix="anograph-graph-bench-")
    if not args.repeats:
        args.videos = 0
    results: dict = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("child", "dense_child")},
        "machine": f"{os.cpu_count()}-core x86_64 CPU, torch CPU capability {torch.backends.cpu.get_cpu_capability()}",
    }
    try:
        started = time.perf_counter()
        write_synthetic_shards(Storage(directory), args.videos, args.frames, args.objects, args.width)
        shard_bytes = sum(path.stat().st_size for path in Path(directory).glob("shards/*.parquet"))
        results["write"] = {"seconds": time.perf_counter() - started, "gib_on_disk": shard_bytes / 2**30,
                            "distinct_nodes": args.videos * args.frames * args.objects}
        print(f"wrote {args.videos} shards, {shard_bytes / 2**30:.2f} GiB, in {results['write']['seconds']:.0f} s")
        results["stream"] = []
        print(f"{'nodes':>10} {'edges':>12} {'seconds':>8} {'us/node':>8} {'peak RSS GiB':>12} {'graph GiB':>9}")
        for repeats in [int(value) for value in args.repeats.split(",") if value]:
            output = subprocess.run(
                [sys.executable, __file__, "--child", directory, str(repeats), "--workers", str(args.workers)],
                check=True, capture_output=True, text=True,
            ).stdout
            row = json.loads(output.strip().splitlines()[-1]) | {"repeats": repeats}
            row["feature_gib_streamed"] = row["nodes"] * args.width * 2 / 2**30
            results["stream"].append(row)
            Path(args.json).write_text(json.dumps(results, indent=1))  # keep what is measured so far
            print(f"{row['nodes']:>10} {row['edges']:>12} {row['seconds']:>8.1f} "
                  f"{1e6 * row['seconds'] / row['nodes']:>8.2f} {row['peak_rss_gib']:>12.2f} {row['graph_gib']:>9.2f}")
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)

    results["dense_vs_sparse"] = []
    print(f"\n{'nodes':>7} {'sparse s':>9} {'dense s':>8} {'speedup':>8} {'sparse GiB':>10} {'dense GiB':>9} {'max |diff|':>10}")
    for nodes in [int(value) for value in args.dense_sizes.split(",") if value]:
        row = compare_dense(nodes, args.objects, args.width)
        results["dense_vs_sparse"].append(row)
        print(f"{row['nodes']:>7} {row['sparse_seconds']:>9.3f} {row['dense_seconds']:>8.2f} {row['speedup']:>8.1f} "
              f"{row['sparse_peak_gib']:>10.3f} {row['dense_peak_gib']:>9.2f} {row['max_abs_difference']:>10.1e}")
    Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
