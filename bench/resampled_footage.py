"""Write a resized or frame-subsampled copy of a UCSD-layout dataset: the same scene, other footage.

The plain command is meant to work on footage it was never tuned on. A resampled copy of a real
dataset is the nearest such footage this machine has: the same people and anomalies, smaller or
larger in pixels (``--factor``), or at a lower frame rate (``--frame-step``: every k-th frame), so
moving fewer or more pixels a frame. Frames are resized with area averaging (down) or bicubic
interpolation (up), pixel masks with nearest neighbour; the frame-level ground truth (`*.m`) is
rewritten for the frames kept.

    python bench/resampled_footage.py --root ../shared/data/UCSD_Anomaly_Dataset.v1p2 --factor 0.5 --out /tmp/ped2_half
    anograph run --dataset ucsd-ped2 --root /tmp/ped2_half --detector yolox \\
        --weights ../shared/models/yolox_nano.onnx --out /tmp/ped2_half_run

A copy with ``--frame-step 2`` is footage at 5 frames a second: run it with ``--fps 5``.
Never commit a copy: it is the dataset's content.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
from pathlib import Path

import cv2

FRAME_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff"}
MASK_SUFFIXES = {".bmp"}
RANGE = re.compile(r"(\d+)\s*:\s*(\d+)")


def resize_image(source: Path, target: Path, factor: float, mask: bool) -> None:
    """Write ``source`` resized by ``factor`` to ``target`` (nearest neighbour for masks)."""
    image = cv2.imread(str(source), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SystemExit(f"{source}: not a readable image")
    if factor != 1.0:
        height, width = image.shape[:2]
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        interpolation = cv2.INTER_NEAREST if mask else (cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
        image = cv2.resize(image, size, interpolation=interpolation)
    if not cv2.imwrite(str(target), image):
        raise SystemExit(f"{target}: could not be written")


def kept_range(first: int, last: int, step: int) -> tuple[int, int]:
    """The 1-based range ``[first:last]`` of the original frames, in the numbers of the frames kept.

    Kept frame ``i`` (1-based) is original frame ``(i - 1) * step + 1``.
    """
    return math.ceil((first - 1) / step) + 1, (last - 1) // step + 1


def rewrite_ground_truth(text: str, step: int) -> str:
    """A UCSD ``.m`` file with every ``a:b`` range renumbered for every ``step``-th frame."""
    return RANGE.sub(lambda match: "{}:{}".format(*kept_range(int(match[1]), int(match[2]), step)), text)


def resample_dataset(root: Path, out: Path, factor: float = 1.0, step: int = 1, subset: str = "UCSDped2") -> int:
    """Copy ``root/subset`` to ``out/subset``, every ``step``-th frame resized by ``factor``; returns the images written."""
    source_root, target_root = root / subset, out / subset
    if not source_root.is_dir():
        raise SystemExit(f"{source_root}: no such dataset folder")
    written = 0
    for folder in sorted([source_root, *(path for path in source_root.rglob("*") if path.is_dir())]):
        target_folder = target_root / folder.relative_to(source_root)
        target_folder.mkdir(parents=True, exist_ok=True)
        files = sorted(path for path in folder.iterdir() if path.is_file())
        images = [path for path in files if path.suffix.lower() in FRAME_SUFFIXES | MASK_SUFFIXES]
        for number, path in enumerate(images[::step], start=1):
            # Renumbered so that the kept frames are 1, 2, ... in the folder's own naming.
            name = re.sub(r"\d+(?=\.\w+$)", lambda match, n=number: f"{n:0{len(match[0])}d}", path.name)
            resize_image(path, target_folder / name, factor, mask=path.suffix.lower() in MASK_SUFFIXES)
            written += 1
        for path in files:
            if path.suffix.lower() == ".m":
                (target_folder / path.name).write_text(rewrite_ground_truth(path.read_text(), step))
            elif path not in images:
                shutil.copy2(path, target_folder / path.name)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="folder holding the UCSD subset (UCSDped2/)")
    parser.add_argument("--subset", default="UCSDped2")
    parser.add_argument("--factor", type=float, default=1.0, help="size factor, e.g. 0.5 or 2 (default 1)")
    parser.add_argument("--frame-step", type=int, default=1, help="keep every k-th frame (default 1: all)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the copy into")
    arguments = parser.parse_args()
    if arguments.factor <= 0 or arguments.frame_step < 1:
        raise SystemExit("--factor must be positive and --frame-step at least 1")
    count = resample_dataset(arguments.root, arguments.out, arguments.factor, arguments.frame_step, arguments.subset)
    print(f"{count} images (factor {arguments.factor}, every {arguments.frame_step}) into {arguments.out / arguments.subset}")


if __name__ == "__main__":
    main()
