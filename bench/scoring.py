"""Test-time cost per object: sliding-window graph + GCN + discriminator, vs the paper's 1.98 ms.

A model with ``--width``-d input and ``--hidden`` hidden units (random weights: the cost does
not depend on their values; fitted with zero epochs on a small synthetic training set) scores
a synthetic test video of ``--frames`` x ``--objects`` objects with the discriminator scorer,
two ways, through public APIs:

* **offline**, :meth:`anograph.models.estimator.AnoGraph.score_video` on the whole video: standardise,
  every object's test-window rows (:func:`anograph.graph.windows.window_adjacency`), ``X W``, the
  sparse product, PReLU, discriminator;
* **live**, :class:`anograph.serving.live_scorer.StreamScorer` fed one frame at a time (the window graph
  updated incrementally, each frame embedded and scored once its window is complete).

The window graph alone is also timed both ways. The table gives microseconds per object and
the ratio to the paper's 1.98 ms per object (graph building plus scoring, GTX 1080 Ti).
All rows run in the same process, alternating, median of ``--repeats``. Besides wall time it
records the process's CPU time (all threads): on a machine shared with other jobs the wall
time includes waiting for a core, the CPU time does not. ``--threads`` sets torch's threads
(default: all cores). ``--device cuda`` puts the model on a GPU: the window graph stays on
the CPU, ``X W``, the sparse product and the discriminator run on the GPU.

    nice -n 5 python bench/scoring.py --json bench/scoring.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_shards import synthetic_video  # noqa: E402

from anograph.graph.windows import SlidingWindowGraph, window_adjacency  # noqa: E402
from anograph.models.estimator import AnoGraph  # noqa: E402
from anograph.serving.live_scorer import StreamScorer  # noqa: E402

PAPER_MS_PER_OBJECT = 1.98


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--objects", type=int, default=10)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--radius", type=int, default=25, help="window radius in frames (1 s at 25 fps)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cpu", help='"cpu" (default) or "cuda"')
    parser.add_argument("--json", default="bench/scoring.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    training = [synthetic_video(f"train{i}", 100, args.objects, args.width, seed=i) for i in range(2)]
    test = synthetic_video("test", args.frames, args.objects, args.width, seed=99)
    model = AnoGraph(hidden_channels=args.hidden, max_epochs=0, device=args.device).fit(training)
    config = model.graph_config
    standardized = model.standardize_features(test.features)
    offsets = test.frame_offsets()

    def stream() -> None:
        scorer = StreamScorer(model, "discriminator", args.radius, threshold=math.inf)
        for start, stop in zip(offsets[:-1], offsets[1:], strict=True):
            scorer.push(test.boxes[start:stop], test.class_ids[start:stop], test.features[start:stop])
        scorer.finish()

    runs = {
        "window graph, live": lambda: SlidingWindowGraph(args.radius, config).adjacency(offsets, test.boxes, standardized),
        "window graph, offline": lambda: window_adjacency(offsets, test.boxes, standardized, args.radius, config),
        "score_video (offline)": lambda: model.score_video(test, args.radius, ["discriminator"]),
        "StreamScorer (live)": stream,
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu_times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            run()
            times[name].append(time.perf_counter() - started)
            cpu_times[name].append(time.process_time() - cpu_started)
    n = test.n_objects
    rows = []
    print(f"{n} test objects ({args.frames} frames x {args.objects}), {args.width}-d -> {args.hidden}, radius {args.radius}")
    print(f"{'path':<24} {'wall us/object':>14} {'CPU us/object':>13} {'paper / this (wall)':>19}")
    for name, values in times.items():
        micro = 1e6 * statistics.median(values) / n
        cpu_micro = 1e6 * statistics.median(cpu_times[name]) / n
        row = {"path": name, "microseconds_per_object": micro, "cpu_microseconds_per_object": cpu_micro,
               "all_seconds": values, "all_cpu_seconds": cpu_times[name],
               "paper_ratio_wall": PAPER_MS_PER_OBJECT * 1000 / micro,
               "paper_ratio_cpu": PAPER_MS_PER_OBJECT * 1000 / cpu_micro}
        rows.append(row)
        print(f"{name:<24} {micro:>14.1f} {cpu_micro:>13.1f} {row['paper_ratio_wall']:>18.0f}x")
    Path(args.json).write_text(json.dumps({
        "settings": vars(args), "objects": n, "rows": rows, "paper_ms_per_object": PAPER_MS_PER_OBJECT,
        "machine": (f"{torch.cuda.get_device_name()} (torch {torch.__version__}) with " if args.device == "cuda" else "")
        + f"{os.cpu_count()}-core x86_64 CPU, torch CPU capability {torch.backends.cpu.get_cpu_capability()}; "
        "the paper: GTX 1080 Ti",
    }, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
