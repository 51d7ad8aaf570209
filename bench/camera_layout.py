"""Pool UCSD-layout datasets into one dataset of several cameras, in ShanghaiTech's official layout.

ShanghaiTech pools 13 fixed cameras; this machine has none of its footage. Each ``--camera
NAME=ROOT`` here is one UCSD-layout dataset (UCSD Ped2, or a resampled copy of it from
``bench/resampled_footage.py``) that becomes scene ``NAME``: its training videos are encoded
as ``training/videos/NAME_001.avi`` ... (lossless FFV1 at ``--fps``, so that training and test
frames carry the same compression, as in the real dataset), its test frames copied to
``testing/frames/NAME_0001/`` ..., and its frame labels written to
``testing/test_frame_mask/NAME_0001.npy``. The product's ShanghaiTech loader then reads it as
one dataset whose videos know their camera.

    python bench/resampled_footage.py --root ../shared/data/UCSD_Anomaly_Dataset.v1p2 --frame-step 2 --out /tmp/ped2_step2
    python bench/camera_layout.py --camera 01=../shared/data/UCSD_Anomaly_Dataset.v1p2 \\
        --camera 02=/tmp/ped2_step2 --out /tmp/two_cameras
    anograph run --dataset shanghaitech --root /tmp/two_cameras --detector yolox \\
        --weights ../shared/models/yolox_nano.onnx --out /tmp/two_cameras_run

Never commit the result: it is the datasets' content.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import cv2
import numpy as np

from anograph.datasets import load_dataset
from anograph.io.video import open_video


def write_avi(frames_folder: Path, target: Path, fps: float) -> int:
    """Encode a frame folder as a lossless FFV1 ``.avi``; returns the frames written."""
    reader = open_video(frames_folder)
    writer = cv2.VideoWriter(str(target), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"FFV1"), fps,
                             (int(reader.width), int(reader.height)))
    if not writer.isOpened():
        raise SystemExit(f"{target}: OpenCV cannot write FFV1 here (it needs its FFmpeg backend)")
    count = 0
    for frame in reader:
        writer.write(frame)  # the reader gives BGR, as the writer takes
        count += 1
    writer.release()
    return count


def add_camera(name: str, root: Path, out: Path, fps: float, dataset: str) -> tuple[int, int]:
    """Write one UCSD-layout dataset as scene ``name``; returns (training videos, test videos)."""
    data = load_dataset(dataset, root)
    videos, frames, masks = (out / "training" / "videos", out / "testing" / "frames", out / "testing" / "test_frame_mask")
    for folder in (videos, frames, masks):
        folder.mkdir(parents=True, exist_ok=True)
    for index, video in enumerate(data.train, start=1):
        write_avi(Path(video.path), videos / f"{name}_{index:03d}.avi", fps)
    for index, video in enumerate(data.test, start=1):
        target = frames / f"{name}_{index:04d}"
        target.mkdir(exist_ok=True)
        images = sorted(path for path in Path(video.path).iterdir() if path.suffix.lower() in {".jpg", ".png", ".tif"})
        for number, image in enumerate(images):
            shutil.copy2(image, target / f"{number:03d}{image.suffix.lower()}")
        np.save(masks / f"{name}_{index:04d}.npy", data.labels[video.name].astype(np.uint8))
    return len(data.train), len(data.test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camera", action="append", required=True, help="NAME=ROOT of a UCSD-layout dataset (repeat)")
    parser.add_argument("--dataset", default="ucsd-ped2", help="the loader of every ROOT (default ucsd-ped2)")
    parser.add_argument("--fps", type=float, default=10.0, help="frame rate written into the training videos")
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args()
    for entry in arguments.camera:
        name, _, root = entry.partition("=")
        if not name.isdigit() or len(name) != 2 or not root:
            raise SystemExit(f"--camera takes NAME=ROOT with a two-digit NAME (ShanghaiTech's scenes), got {entry!r}")
        train, test = add_camera(name, Path(root), arguments.out, arguments.fps, arguments.dataset)
        print(f"camera {name}: {train} training videos, {test} test videos from {root}")


if __name__ == "__main__":
    main()
