"""Offline scoring cost per object of a fitted model's scorers, on the shards of a real run.

Loads a model written by ``anograph run`` (``--store`` is the run's ``OUT/store``) and scores
every test shard of its extraction with each scorer in turn, through
:meth:`anograph.models.estimator.AnoGraph.score_video` and then to frame scores
(:func:`anograph.models.frame_scoring.scorer_frame_scores`, which adds the motion field where the
model has one), the path ``anograph run`` and ``anograph evaluate`` take. Scorers alternate within each repeat, so that they share the
machine's load; the figure is the median over ``--repeats`` of the time per object, wall and
CPU (all threads). The issue's budget is 50 microseconds per object for offline scoring.

    python bench/attribute_scoring.py --store OUT/store --json bench/attribute_scoring.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from anograph.io.extraction_settings import fingerprint_of
from anograph.io.shards import read_shard
from anograph.io.storage import Storage
from anograph.models.estimator import AnoGraph
from anograph.models.frame_scoring import scorer_frame_scores
from anograph.ops.model_versions import model_names, resolve_model

BUDGET_MICROSECONDS = 50.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True, help="the store of an `anograph run` (OUT/store)")
    parser.add_argument("--model", help="model name (default: the only one); its current version is timed")
    parser.add_argument("--scorers", nargs="+", default=["attributes", "group_knn", "discriminator"])
    parser.add_argument("--radius", type=int, default=10, help="test-window radius in frames (default 10: one second of Ped2)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", default="bench/attribute_scoring.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    storage = Storage(args.store)
    names = model_names(storage)
    name = args.model or (names[0] if len(names) == 1 else parser.error(f"pick --model from {names}"))
    record = resolve_model(storage, name)
    model = AnoGraph.load(storage, record.model_key)
    # The test shards of the model's own extraction: the fingerprint of its training shards.
    fingerprint = fingerprint_of(record.training_manifest["shards"][0])
    videos = [read_shard(storage, key) for key in sorted(storage.list(f"shards/{fingerprint}/test"))
              if key.endswith(".parquet")]
    if not videos:
        parser.error(f"no test shards of model {name} under {args.store}/shards/{fingerprint}/test")
    radius = args.radius
    n_objects = sum(video.n_objects for video in videos)

    wall: dict[str, list[float]] = {scorer: [] for scorer in args.scorers}
    cpu: dict[str, list[float]] = {scorer: [] for scorer in args.scorers}
    for _ in range(args.repeats):
        for scorer in args.scorers:
            started, cpu_started = time.perf_counter(), time.process_time()
            for video in videos:  # object scores, then frame scores (the motion field, where a model has one)
                scorer_frame_scores(model, video, scorer, model.score_video(video, radius, [scorer])[scorer])
            wall[scorer].append(time.perf_counter() - started)
            cpu[scorer].append(time.process_time() - cpu_started)

    capability = torch.backends.cpu.get_cpu_capability()
    print(f"{n_objects} objects in {len(videos)} test videos, radius {radius}, {args.threads} threads, CPU {capability}")
    print(f"{'scorer':<14} {'wall us/object':>14} {'CPU us/object':>13} {'within 50 us':>12}")
    rows = []
    for scorer in args.scorers:
        micro = 1e6 * statistics.median(wall[scorer]) / n_objects
        cpu_micro = 1e6 * statistics.median(cpu[scorer]) / n_objects
        rows.append({"scorer": scorer, "microseconds_per_object": micro, "cpu_microseconds_per_object": cpu_micro,
                     "all_seconds": wall[scorer], "all_cpu_seconds": cpu[scorer],
                     "within_budget": micro <= BUDGET_MICROSECONDS})
        print(f"{scorer:<14} {micro:>14.1f} {cpu_micro:>13.1f} {'yes' if micro <= BUDGET_MICROSECONDS else 'no':>12}")
    Path(args.json).write_text(json.dumps({
        "settings": vars(args), "model": name, "objects": n_objects, "videos": len(videos), "radius": radius,
        "budget_microseconds_per_object": BUDGET_MICROSECONDS, "rows": rows,
        "machine": f"{os.cpu_count()}-core x86_64 CPU, torch CPU capability {capability}",
    }, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
