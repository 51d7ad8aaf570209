"""Extraction CPU time a frame on one HD clip, the appearance pass shrunk to ``max_height`` and not, alternately.

The appearance pass (MobileNetV2 over the whole frame) grows with the frame's pixels; on HD
footage :class:`~anograph.extraction.features.appearance.AppearanceEmbedder` shrinks frames taller
than ``max_height`` (480 by default) before it. This runs the default extraction (YOLOX, DIS flow,
appearance) on the same clip with the default cap and with none (``max_height=0``), ``--repeats``
times each, alternately, on one thread, and records ``torch.backends.cpu.get_cpu_capability()``.
An HD clip can be made from Ped2 with ``bench/resampled_footage.py --factor 3``.

    python bench/appearance_cap_cost.py --video HD/UCSDped2/Test/Test001 \\
        --yolox-weights ../shared/models/yolox_nano.onnx --json bench/appearance_cap_cost.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import cv2
import torch

from anograph.extraction.detectors import create_detector
from anograph.extraction.extract import extract_video
from anograph.extraction.features.appearance import DEFAULT_MAX_HEIGHT, AppearanceEmbedder
from anograph.extraction.features.extractor import NodeFeatureExtractor
from anograph.io.video import open_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", required=True, type=Path, help="a video file or a folder of frames")
    parser.add_argument("--yolox-weights", required=True, type=Path)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    detector = create_detector("yolox", weights=str(arguments.yolox_weights))
    runs = []
    for _ in range(arguments.repeats):
        for max_height in (DEFAULT_MAX_HEIGHT, 0):
            extractor = NodeFeatureExtractor(appearance=AppearanceEmbedder(max_height=max_height))
            started = time.process_time()
            video = extract_video(open_video(arguments.video, fps=arguments.fps), detector, extractor)
            cpu_ms = (time.process_time() - started) / max(1, video.metadata.n_frames) * 1000
            runs.append({"max_height": max_height, "cpu_ms_per_frame": round(cpu_ms, 1), "objects": len(video.frames),
                         "frame": [int(video.metadata.width), int(video.metadata.height)]})
            print(runs[-1], flush=True)
    result = {"command": "python bench/appearance_cap_cost.py " + " ".join(
                  f"--{key.replace('_', '-')} {value}" for key, value in vars(arguments).items() if value is not None),
              "machine": {"platform": platform.platform(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                          "torch_threads": 1, "cv2_threads": 1},
              "runs": runs}
    if arguments.json:
        arguments.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
