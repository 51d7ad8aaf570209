"""``anograph run --detector detectron2`` end to end through the CLI, on a tiny synthetic dataset.

Writes a randomly initialised R101-C4 (detectron2's model-zoo config, zero-initialised
residual branches so that boxes are proposed) and a config deriving from it with a small
input size and few proposals, generates a tiny synthetic dataset, then runs the real CLI
(extract -> train -> evaluate -> report) as a subprocess and prints the report's headline.
The weights are random, so the AUC means nothing: this checks that the path runs, not how
well it detects. At the model zoo's default size R101-C4 costs about 56 CPU-seconds per
frame, hence the small size. Needs detectron2 (README "Optional: detectron2").

    python bench/detectron2_smoke.py --work /tmp/d2-smoke --json bench/detectron2_smoke.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from anograph.datasets.synthetic import generate_synthetic_dataset
from anograph.extraction.detectors.detectron2_rcnn import model_zoo_config, write_random_weights
from anograph.io.shards import read_shard
from anograph.io.storage import Storage

HEADLINE = ("default_scorer", "frame_auc_micro", "frame_auc_macro", "frame_auc_micro_smoothed")


def small_config(path: Path, min_size: int, max_size: int, proposals: int, detections: int) -> Path:
    """A detectron2 config deriving from the model zoo's R101-C4 with a small input and few proposals."""
    path.write_text(
        f"_BASE_: {model_zoo_config()}\n"
        f"INPUT:\n  MIN_SIZE_TEST: {min_size}\n  MAX_SIZE_TEST: {max_size}\n"
        f"MODEL:\n  RPN:\n    POST_NMS_TOPK_TEST: {proposals}\n"
        f"TEST:\n  DETECTIONS_PER_IMAGE: {detections}\n"
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for model, data and run (replaced)")
    parser.add_argument("--train-videos", type=int, default=2, help="synthetic training videos (default 2)")
    parser.add_argument("--test-videos", type=int, default=2, help="synthetic test videos (default 2)")
    parser.add_argument("--frames", type=int, default=12, help="frames per video (default 12)")
    parser.add_argument("--width", type=int, default=160, help="frame width (default 160)")
    parser.add_argument("--height", type=int, default=120, help="frame height (default 120)")
    parser.add_argument("--min-size", type=int, default=120, help="INPUT.MIN_SIZE_TEST (default 120)")
    parser.add_argument("--max-size", type=int, default=240, help="INPUT.MAX_SIZE_TEST (default 240)")
    parser.add_argument("--proposals", type=int, default=30, help="MODEL.RPN.POST_NMS_TOPK_TEST (default 30)")
    parser.add_argument("--detections", type=int, default=5, help="TEST.DETECTIONS_PER_IMAGE (default 5)")
    parser.add_argument("--epochs", type=int, default=5, help="DGI training epochs (default 5)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    arguments = parser.parse_args()

    work = arguments.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = small_config(work / "r101_c4_small.yaml", arguments.min_size, arguments.max_size,
                          arguments.proposals, arguments.detections)
    weights = write_random_weights(model_zoo_config(), work / "r101_c4_random.pth")
    data = work / "data"
    generate_synthetic_dataset(data, n_train_videos=arguments.train_videos, n_test_videos=arguments.test_videos,
                               n_frames=arguments.frames, width=arguments.width, height=arguments.height)
    out = work / "run"
    command = [str(Path(sys.executable).with_name("anograph")), "run", "--dataset", "synthetic", "--root", str(data),
               "--detector", "detectron2", "--detector-config", str(config), "--weights", str(weights),
               "--confidence", "0", "--no-appearance", "--epochs", str(arguments.epochs), "--out", str(out)]
    print(" ".join(command), flush=True)
    started = time.perf_counter()
    completed = subprocess.run(command, env=os.environ.copy(), capture_output=True, text=True)
    wall_seconds = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit(f"anograph run failed ({completed.returncode}):\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    report = json.loads((out / "report.json").read_text())
    store = Storage(str(out / "store"))
    videos = [read_shard(store, key) for key in store.list("shards") if key.endswith(".parquet")]
    result = {
        "command": " ".join(command),
        "wall_seconds": round(wall_seconds, 1),
        "videos": len(videos),
        "frames": sum(video.metadata.n_frames for video in videos),
        "objects": sum(video.n_objects for video in videos),
        **{key: report.get(key) for key in HEADLINE},
    }
    print("| " + " | ".join(result) + " |")
    print("|" + "---|" * len(result))
    print("| " + " | ".join(str(value) for value in result.values()) + " |")
    if arguments.json:
        arguments.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
