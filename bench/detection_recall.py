"""Detection recall on UCSD Ped2 test anomalies, with and without tiling and motion-blob objects.

For each chosen Ped2 test video, YOLOX-Nano runs on every frame on the full frame alone and
with ``tiles=2`` (a 2 x 2 grid of 60% tiles plus the full frame, merged across tiles); for
each, the node-feature extractor (no appearance: it does not change the boxes) runs with
and without motion-blob objects. Four configurations in all.

Recall is measured against the pixel-level ground truth: every connected region (8-connected,
at least ``--min-region`` pixels) of a ``TestNNN_gt`` mask is one anomaly region, and it is
*covered* when some box overlaps the region's bounding box at IoU >= 0.3, or covers at least
half of the region's pixels. The test masks only report here; no setting is chosen from them.

Cost is CPU time per frame (``time.process_time``) with one torch, onnxruntime and OpenCV
thread: the detector alone (full frame, tiled), and the extractor's flow-based work (DIS
MEDIUM flow, ``motion``, ``track`` and ``flow_stats`` groups) without and with motion blobs,
next to the previous default's half-scale Farneback flow without ``flow_stats``.

    python bench/detection_recall.py --root ../shared/data/UCSD_Anomaly_Dataset.v1p2 \\
        --videos Test001 Test002 --yolox-weights ../shared/models/yolox_nano.onnx \\
        --json bench/detection_recall.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from anograph.extraction.detectors.base import Detections
from anograph.extraction.detectors.yolox import YoloxDetector
from anograph.extraction.features.extractor import FrameObjects, NodeFeatureExtractor
from anograph.extraction.features.motion import MotionFeatures
from anograph.io.video import open_video

IOU_COVERED = 0.3
PIXELS_COVERED = 0.5


def mask_files(folder: Path) -> list[Path]:
    """The masks of a ``TestNNN_gt`` folder in frame order (``001.bmp`` or ``frame001.bmp`` onwards)."""
    return sorted((path for path in folder.iterdir() if path.suffix.lower() == ".bmp"),
                  key=lambda path: int("".join(ch for ch in path.stem if ch.isdigit())))


def regions(mask: np.ndarray, min_pixels: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(bounding box xyxy, pixel mask)`` of each connected anomaly region of at least ``min_pixels``."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    found = []
    for label in range(1, count):
        x, y, width, height, area = stats[label]
        if area >= min_pixels:
            found.append((np.array([x, y, x + width, y + height], np.float32), labels == label))
    return found


def covered(region_box: np.ndarray, region_pixels: np.ndarray, boxes: np.ndarray) -> bool:
    """Whether some box overlaps the region at IoU >= 0.3 or covers half its pixels."""
    for x1, y1, x2, y2 in boxes:
        ix = max(0.0, min(x2, region_box[2]) - max(x1, region_box[0]))
        iy = max(0.0, min(y2, region_box[3]) - max(y1, region_box[1]))
        union = (x2 - x1) * (y2 - y1) + np.prod(region_box[2:] - region_box[:2]) - ix * iy
        if union > 0 and ix * iy / union >= IOU_COVERED:
            return True
        inside = region_pixels[max(0, int(y1)) : max(0, int(np.ceil(y2))), max(0, int(x1)) : max(0, int(np.ceil(x2)))]
        if inside.sum() >= PIXELS_COVERED * region_pixels.sum():
            return True
    return False


def detect_all(detector: YoloxDetector, frames: list[np.ndarray]) -> tuple[list[Detections], float]:
    started = time.process_time()
    detections = [detector.detect(frame) for frame in frames]
    return detections, (time.process_time() - started) / len(frames)


def extract_all(extractor: NodeFeatureExtractor, frames: list[np.ndarray],
                detections: list[Detections]) -> tuple[list[FrameObjects], float]:
    started = time.process_time()
    extractor.reset()
    objects: list[FrameObjects] = []
    for frame, found in zip(frames, detections, strict=True):
        objects += extractor.push(frame, found)
    objects += extractor.finish()
    return objects, (time.process_time() - started) / len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path, help="UCSD dataset root (holding UCSDped2)")
    parser.add_argument("--videos", nargs="+", default=["Test001", "Test002"], help="Ped2 test videos")
    parser.add_argument("--yolox-weights", required=True, type=Path, help="YOLOX ONNX file")
    parser.add_argument("--frames", type=int, default=None, help="first frames of each video only")
    parser.add_argument("--min-region", type=int, default=16, help="smallest anomaly region counted, pixels")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)

    detectors = {"full": YoloxDetector(weights=arguments.yolox_weights),
                 "tiled": YoloxDetector(weights=arguments.yolox_weights, tiles=2)}
    extractors = {"no_blobs": NodeFeatureExtractor(appearance=None),
                  "blobs": NodeFeatureExtractor(appearance=None, motion_boxes=True)}
    previous = NodeFeatureExtractor(appearance=None, motion=MotionFeatures(flow_method="farneback"), flow_stats=False)
    totals: dict[str, dict[str, float]] = {}
    videos: list[dict[str, Any]] = []
    for name in arguments.videos:
        folder = arguments.root / "UCSDped2" / "Test" / name
        frames = list(open_video(folder, fps=10))[: arguments.frames]
        masks = [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path in mask_files(folder.with_name(name + "_gt"))]
        frame_regions = [regions(mask, arguments.min_region) for mask in masks[: len(frames)]]
        n_regions = sum(len(found) for found in frame_regions)
        row: dict[str, Any] = {"video": name, "frames": len(frames), "anomaly_regions": n_regions,
                               "cpu_ms_per_frame": {}, "configurations": {}}
        for detector_name, detector in detectors.items():
            detections, seconds = detect_all(detector, frames)
            row["cpu_ms_per_frame"][f"detector_{detector_name}"] = round(1000 * seconds, 1)
            _, seconds = extract_all(previous, frames, detections)
            row["cpu_ms_per_frame"][f"features_previous_farneback_{detector_name}"] = round(1000 * seconds, 1)
            for extractor_name, extractor in extractors.items():
                objects, seconds = extract_all(extractor, frames, detections)
                row["cpu_ms_per_frame"][f"features_dis_{extractor_name}_{detector_name}"] = round(1000 * seconds, 1)
                hits = sum(covered(box, pixels, frame.detections.boxes)
                           for frame, found in zip(objects, frame_regions, strict=True) for box, pixels in found)
                key = f"{detector_name}+{extractor_name}"
                result = {
                    "objects_per_frame": round(float(np.mean([len(frame.detections) for frame in objects])), 2),
                    "blob_objects_per_frame": round(float(np.mean([(frame.sources == 1).sum() for frame in objects])), 2),
                    "regions_covered": int(hits),
                    "recall": round(hits / n_regions, 3) if n_regions else None,
                }
                row["configurations"][key] = result
                total = totals.setdefault(key, {"regions_covered": 0, "anomaly_regions": 0})
                total["regions_covered"] += hits
                total["anomaly_regions"] += n_regions
        videos.append(row)
        print(json.dumps(row, indent=1), flush=True)
    for total in totals.values():
        total["recall"] = round(total["regions_covered"] / max(1, total["anomaly_regions"]), 3)
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"platform": platform.platform(), "torch_threads": 1, "cv2_threads": 1, "onnx_threads": 1,
                    "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "criterion": f"region covered: box IoU >= {IOU_COVERED} with its bounding box, or box holds "
                     f">= {PIXELS_COVERED:.0%} of its pixels; regions >= {arguments.min_region} px",
        "videos": videos,
        "totals": totals,
    }
    print(json.dumps(totals, indent=1))
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
