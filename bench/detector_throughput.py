"""Extraction throughput of every available detector on one real video, side by side in one run.

Runs ``extract_video`` (detector + the default node features: MobileNetV2 appearance and
optical-flow motion) on one video's frames with each detector in turn, one torch thread
each (as the pipeline's tasks do), and reports wall-clock frames/s and objects/s, the
detector's own share, and CPU seconds per frame (less disturbed than wall time when other
processes share the cores). Ratios to YOLOX come from this same run. With YOLOX it also
runs the previous default node features (half-scale Farneback flow, no ``flow_stats``
group) on the same detector, so the default features' cost can be compared to them in one
run (row ``features: previous``). OpenCV runs on one thread too; the JSON records
``torch.backends.cpu.get_cpu_capability()``.

Faster R-CNN detectors run with *random* weights (no download here), at confidence 0 and at
most ``--objects`` objects per frame, so their object counts resemble Ped2's; their speed does
not depend on the weights' values (detectron2's random R101 gets zero-initialised residual
branches, or its activations explode and nothing is proposed). They are slow on a CPU, so
they run on the first ``--slow-frames`` frames only. ``precomputed`` imports YOLOX's detections of the same video,
with a random 1024-d vector per object.

``--device cuda`` runs the Faster R-CNNs on a GPU, with float16 autocast and without, each after
a discarded two-frame warm-up (CUDA context, cuDNN's algorithm search); the other detectors and
the node features stay on the CPU.

    python bench/detector_throughput.py --root ../shared/data/UCSD_Anomaly_Dataset.v1p2 \
        --video Test001 --yolox-weights ../shared/models/yolox_nano.onnx --json bench/detector_throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from anograph.extraction.detectors import create_detector
from anograph.extraction.extract import extract_video
from anograph.extraction.features.extractor import NodeFeatureExtractor
from anograph.extraction.features.motion import MotionFeatures
from anograph.io.extraction_settings import ExtractionSettings
from anograph.io.shards import VideoFeatures
from anograph.io.video import open_video


def clip_of(source: Path, n_frames: int, folder: Path) -> Path:
    """A frame folder of the first ``n_frames`` frames of ``source`` (symbolic links)."""
    folder.mkdir(parents=True, exist_ok=True)
    for image in sorted(source.iterdir())[:n_frames]:
        (folder / image.name).symlink_to(image.resolve())
    return folder


def random_torchvision_weights(path: Path) -> Path:
    from torchvision.models.detection import faster_rcnn

    torch.manual_seed(0)
    torch.save(faster_rcnn.fasterrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None).state_dict(), path)
    return path


def random_detectron2_model(folder: Path) -> tuple[Path, Path] | None:
    """Model-zoo R101-C4 config and randomly initialised weights, or ``None`` without detectron2."""
    try:
        import detectron2  # noqa: F401 - only to know whether it is installed
    except ImportError:
        return None
    from anograph.extraction.detectors.detectron2_rcnn import model_zoo_config, write_random_weights

    config = model_zoo_config()
    return config, write_random_weights(config, folder / "detectron2_r101_c4_random.pth")


def previous_default_features() -> NodeFeatureExtractor:
    """The node features the pipeline used before DIS flow: half-scale Farneback, no ``flow_stats``."""
    return NodeFeatureExtractor(motion=MotionFeatures(flow_method="farneback"), flow_stats=False)


def measure(
    name: str, clip: Path, options: dict[str, Any], extractor: NodeFeatureExtractor | None = None,
    features: str = "default",
) -> tuple[dict[str, Any], VideoFeatures]:
    detector = create_detector(name, **options)
    # The product's default features: ExtractionSettings' (motion-region objects included).
    extractor = ExtractionSettings(appearance=True).build()[1] if extractor is None else extractor
    cpu_started = time.process_time()
    video = extract_video(open_video(clip, fps=10), detector, extractor)
    cpu_seconds = time.process_time() - cpu_started
    extraction = video.metadata.extraction
    n_frames = video.metadata.n_frames
    return {
        "detector": name,
        "features": features,
        "options": {key: value for key, value in options.items() if key not in ("weights", "root", "config")},
        "frames": n_frames,
        "objects": video.n_objects,
        "seconds": extraction["seconds"],
        "frames_per_second": extraction["frames_per_second"],
        "objects_per_second": extraction["objects_per_second"],
        "detector_seconds": extraction["detector_seconds"],
        "detector_share": round(extraction["detector_seconds"] / extraction["seconds"], 3),
        "cpu_seconds_per_frame": round(cpu_seconds / n_frames, 4),
    }, video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path, help="UCSD dataset root (holding UCSDped2)")
    parser.add_argument("--video", default="Test001", help="Ped2 test video (default Test001)")
    parser.add_argument("--yolox-weights", type=Path, default=None, help="YOLOX ONNX file (skipped without)")
    parser.add_argument("--slow-frames", type=int, default=4, help="frames for the Faster R-CNN detectors")
    parser.add_argument("--objects", type=int, default=10, help="objects per frame for random-weight detectors")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--device", default="cpu", help='where the Faster R-CNNs run: "cpu" (default) or "cuda"')
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)

    source = arguments.root / "UCSDped2" / "Test" / arguments.video
    n_video_frames = len(list(source.iterdir()))
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        full = clip_of(source, n_video_frames, work / "full" / arguments.video)
        short = clip_of(source, arguments.slow_frames, work / "short" / arguments.video)

        row, _ = measure("motion", full, {})
        rows.append(row)
        if arguments.yolox_weights is not None:
            row, yolox_video = measure("yolox", full, {"weights": str(arguments.yolox_weights)})
            rows.append(row)
            row, _ = measure("yolox", full, {"weights": str(arguments.yolox_weights)},
                             previous_default_features(), "previous")
            rows.append(row)
            # The same detections again, imported, each with a random 1024-d vector.
            folder = work / "precomputed"
            folder.mkdir()
            rng = np.random.default_rng(0)
            detected = yolox_video.sources == 0  # the detector's own objects, not the motion regions
            np.savez(folder / f"{arguments.video}.npz", frame=yolox_video.frames[detected],
                     box=yolox_video.boxes[detected], score=yolox_video.scores[detected],
                     class_id=yolox_video.class_ids[detected],
                     feature=rng.normal(size=(int(detected.sum()), 1024)).astype(np.float32))
            row, _ = measure("precomputed", full, {"root": str(folder)})
            rows.append(row)

        weights = random_torchvision_weights(work / "torchvision_random.pth")
        random_options: dict[str, Any] = {"confidence_threshold": 0.0, "max_detections": arguments.objects}
        variants: list[dict[str, Any]] = [{}, {"min_size": 480, "max_proposals": 300}]
        if arguments.device != "cpu":
            random_options["device"] = arguments.device
            variants += [{**variant, "half_precision": False} for variant in variants]
            measure("torchvision", clip_of(source, 2, work / "warm-up" / arguments.video),
                    {"weights": str(weights), **random_options})
        for extra in variants:
            row, _ = measure("torchvision", short, {"weights": str(weights), **random_options, **extra})
            rows.append(row)

        detectron2_model = random_detectron2_model(work)
        if detectron2_model is not None:
            config, d2_weights = detectron2_model
            for extra in variants:
                row, _ = measure("detectron2", short, {"config": str(config), "weights": str(d2_weights),
                                                       **random_options, **extra})
                rows.append(row)

    reference = next((row for row in rows if row["detector"] == "yolox" and row["features"] == "default"), rows[0])
    for row in rows:
        row["cpu_per_frame_vs_" + reference["detector"]] = round(
            row["cpu_seconds_per_frame"] / reference["cpu_seconds_per_frame"], 2
        )
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch_threads": 1, "cv2_threads": 1,
                    "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "video": arguments.video,
        "rows": rows,
    }
    header = (f"| detector | features | options | frames | objects | frames/s | objects/s | detector share | "
              f"CPU s/frame | CPU vs {reference['detector']} |")
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for row in rows:
        options = ", ".join(f"{key}={value}" for key, value in row["options"].items()) or "defaults"
        print(f"| {row['detector']} | {row['features']} | {options} | {row['frames']} | {row['objects']} | {row['frames_per_second']} | "
              f"{row['objects_per_second']} | {row['detector_share']:.0%} | {row['cpu_seconds_per_frame']} | "
              f"{row['cpu_per_frame_vs_' + reference['detector']]}x |")
    print(f"load average before/after: {load_before} / {os.getloadavg()} on {os.cpu_count()} CPUs")
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
