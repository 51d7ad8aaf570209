"""Live-scoring latency and memory over a long looped run (``anograph score --stream --loop``).

Loops a video file or frame folder for ``--frames`` frames through the model's detector,
node features and :class:`anograph.serving.live_scorer.StreamScorer`, exactly as ``anograph score
--stream`` does, and reports per-frame latency split into detection + features and
scoring (graph, embedding, scorer, propagation, alert rules), and the process's resident
memory every 1000 frames. Prints a table and writes JSON.

    python bench/stream_latency.py --model STORE/models/NAME --source VIDEO_OR_FOLDER \
        --weights ../shared/models/yolox_nano.onnx --fps 10 --frames 36000 --json bench/stream_latency.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from anograph.serving.inference import load_scoring_model
from anograph.serving.live_session import run_live


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--fps", type=float, default=None)
    parser.add_argument("--frames", type=int, default=36000, help="frames to score (36000 = 1 h at 10 fps)")
    parser.add_argument("--scorer", default="group_knn")
    parser.add_argument("--causal", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch / ONNX threads (default 1)")
    parser.add_argument("--json", type=Path, default=None)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    scoring = load_scoring_model(arguments.model)
    with tempfile.TemporaryDirectory() as out:
        report = run_live(scoring, arguments.source, out, scorer=arguments.scorer, weights=arguments.weights,
                          fps=arguments.fps, causal=arguments.causal, loop=True, max_frames=arguments.frames)
    print(f"{report['frames']} frames in {report['wall_seconds']:.0f} s, {report['alerts']} alerts, "
          f"latency {report['latency_frames']} frames, at most {report['max_frames_held']} frames held")
    print("| part | mean ms | p50 ms | p95 ms | max ms | CPU ms |")
    print("|---|---|---|---|---|---|")
    for name, key in (("detection + features", "detection_and_features"), ("scoring", "scoring")):
        part = report[key]
        print(f"| {name} | {part['mean_ms']:.2f} | {part['p50_ms']:.2f} | {part['p95_ms']:.2f} | {part['max_ms']:.1f} | "
              f"{part['cpu_mean_ms']:.2f} |")
    samples = report["memory"]
    if samples:
        print("RSS MiB at frames " + ", ".join(f"{s['frame']}: {s['rss_mib']:.0f}" for s in samples))
    if arguments.json:
        arguments.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
