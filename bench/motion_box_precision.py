"""How well motion-region objects stand in for missed detections, on normal training footage only.

Motion-region objects (:class:`anograph.extraction.features.motion_boxes.MotionBoxes`) are
meant for objects the detector missed. Normal footage has no annotation of misses, so this
makes them: in every ``--step``-th frame of each training video, one detector box (from the
run's shards) is hidden at random, and the proposer runs against the remaining boxes.

* **recall**: share of hidden boxes that some proposed box matches (IoU >= 0.3);
* **precision**: matched proposals over all proposals made with one box hidden;
* **spurious per frame**: proposals with every detector box present (fragments of detected
  objects, flow smear, or real misses).

Each ``--covered`` x ``--iou`` pair of :class:`MotionBoxes` thresholds is measured on the same
frames and the same hidden boxes, at the default border margin; each ``--margins`` entry is
measured at the default thresholds; each ``--floors`` entry scales the flow's moving floor
(:attr:`OpticalFlow.min_moving_speed`, turned into pixels a frame at ``--fps``) at the default
thresholds. The default ``max_covered_fraction`` and ``border_margin`` are the best F1 here on
UCSD Ped2's training videos; no test video is read.

    python bench/motion_box_precision.py --store OUT/store \\
        --frames ../shared/data/UCSD_Anomaly_Dataset.v1p2/UCSDped2/Train --json bench/motion_box_precision.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from pathlib import Path

import numpy as np
import torch
import torchvision

from anograph.extraction.features.motion_boxes import MotionBoxes
from anograph.extraction.features.optical_flow import FrameFlow, OpticalFlow, camera_motion
from anograph.io.extraction_settings import fingerprint_of
from anograph.io.shards import read_shard
from anograph.io.storage import Storage
from anograph.io.video import open_video

MATCH_IOU = 0.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True, help="the store of an `anograph run` (OUT/store)")
    parser.add_argument("--frames", required=True, help="folder holding the training videos, by shard video name")
    parser.add_argument("--fingerprint", help="shard folder under shards/ (default: the only one)")
    parser.add_argument("--covered", type=float, nargs="+", default=[0.5, 0.25, 0.1])
    parser.add_argument("--iou", type=float, nargs="+", default=[0.3, 0.1])
    parser.add_argument("--margins", type=int, nargs="+", default=[0, 4, 8, 12],
                        help="border margins (pixels) to measure at the default thresholds")
    parser.add_argument("--floors", type=float, nargs="+", default=[1.0],
                        help="moving floors to measure, as multiples of the default speed (default 1)")
    parser.add_argument("--fps", type=float, default=None, help="the footage's frame rate (default 10, UCSD's)")
    parser.add_argument("--step", type=int, default=4, help="every step-th frame (default 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default="bench/motion_box_precision.json")
    args = parser.parse_args()

    storage = Storage(args.store)
    fingerprints = sorted({fingerprint_of(key) for key in storage.list("shards") if key.endswith(".parquet")})
    fingerprint = args.fingerprint or (fingerprints[0] if len(fingerprints) == 1 else
                                       parser.error(f"pick --fingerprint from {fingerprints}"))
    keys = sorted(key for key in storage.list(f"shards/{fingerprint}/train") if key.endswith(".parquet"))
    if not keys:
        parser.error(f"no training shards under {args.store}/shards/{fingerprint}/train")
    proposers = {("thresholds", covered, iou): MotionBoxes(max_covered_fraction=covered, max_iou=iou)
                 for covered, iou in itertools.product(args.covered, args.iou)}
    proposers.update({("margin", margin): MotionBoxes(border_margin=margin) for margin in args.margins})
    proposers.update({("floor", floor): MotionBoxes() for floor in args.floors if floor != 1.0})
    counts = {setting: {"recovered": 0, "proposed": 0, "spurious": 0} for setting in proposers}
    rng = np.random.default_rng(args.seed)
    flow = OpticalFlow()
    flow.start_video(args.fps)
    n_frames = 0
    for key in keys:
        video = read_shard(storage, key)
        frames = [frame for frame in open_video(Path(args.frames) / video.metadata.video)]
        greys = [flow.grey(frame) for frame in frames]
        offsets = video.frame_offsets()
        for index in range(1, len(frames), args.step):
            rows = np.arange(offsets[index], offsets[index + 1])
            detected = video.boxes[rows][video.sources[rows] == 0].astype(np.float32)
            if not len(detected):
                continue
            raw = flow.at_current(greys[index - 1], greys[index], greys[index].shape)
            frame_flow = flow.frame_flow(raw)
            default_floor = flow.moving_floor(raw.shape[0])
            floored = {floor: FrameFlow.of(raw - camera_motion(raw), floor * default_floor)
                       for floor in args.floors if floor != 1.0}
            hidden = int(rng.integers(len(detected)))
            rest, target = np.delete(detected, hidden, axis=0), torch.from_numpy(detected[hidden : hidden + 1])
            n_frames += 1
            for setting, proposer in proposers.items():
                this_flow = floored[setting[1]] if setting[0] == "floor" else frame_flow
                counts[setting]["spurious"] += len(proposer.propose(this_flow, detected)[0])
                boxes = proposer.propose(this_flow, rest)[0]
                counts[setting]["proposed"] += len(boxes)
                if len(boxes):
                    matched = torchvision.ops.box_iou(torch.from_numpy(boxes), target).numpy()[:, 0] >= MATCH_IOU
                    counts[setting]["recovered"] += int(matched.any())
        print(f"{video.metadata.video}: {n_frames} frames so far", flush=True)

    rows = []
    print(f"{'covered':>7} {'iou':>5} {'margin':>6} {'floor':>5} {'recall':>7} {'precision':>9} {'F1':>6} "
          f"{'spurious/frame':>14}")
    for setting, count in counts.items():
        proposer = proposers[setting]
        recall = count["recovered"] / n_frames
        precision = count["recovered"] / max(count["proposed"], 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        floor = setting[1] if setting[0] == "floor" else 1.0
        rows.append({"max_covered_fraction": proposer.max_covered_fraction, "max_iou": proposer.max_iou,
                     "border_margin": proposer.border_margin, "moving_floor_factor": floor,
                     "recall": recall, "precision": precision,
                     "f1": f1, "spurious_per_frame": count["spurious"] / n_frames})
        print(f"{proposer.max_covered_fraction:>7} {proposer.max_iou:>5} {proposer.border_margin:>6} {floor:>5} {recall:>7.3f} "
              f"{precision:>9.3f} {f1:>6.3f} {rows[-1]['spurious_per_frame']:>14.3f}")
    Path(args.json).write_text(json.dumps({
        "settings": vars(args), "frames": n_frames, "match_iou": MATCH_IOU, "rows": rows,
        "machine": f"{os.cpu_count()}-core x86_64 CPU, torch CPU capability {torch.backends.cpu.get_cpu_capability()}",
    }, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
