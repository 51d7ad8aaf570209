"""Street Scene (Ramachandra and Jones, "Street Scene: A new dataset and evaluation protocol
for video anomaly detection", WACV 2020), with its anomalous regions and tracks.

Layout, as MERL's ``Train.tgz`` and ``Test.tgz`` unpack::

    ROOT/                                   (or ROOT/StreetScene/)
        Train/Train001/00001.jpg ...        46 normal videos, 1280x720 frames
        Test/Test001/00001.jpg ...          35 test videos
        Test/Test001/Test001_gt.txt         anomalous regions of Test001
        Test/Test001_gt/ ...                per-frame masks (optional, not read)

``TestNNN_gt.txt`` has one line per anomalous region (one box on one frame), fields
separated by spaces::

    Test001/00123.jpg 0 640.5 360.0 80 120

that is: the frame's image file (its number, 1-based, names the frame), the track number
of the anomalous event (0, 1, ... within the video), and the box as centre column,
centre row, width and height in pixels. A frame is anomalous when it holds a region.
The file is looked for inside the video's frame folder, beside it (``Test/TestNNN_gt.txt``)
and in ``Test/TestNNN_gt/``; exactly one must exist.

Sources, as no format document was at hand: the dataset paper (46 train / 35 test videos,
1280x720, 205 anomalous events with per-frame boxes and track numbers); the frame-label
script of the dataset's first author, which reads ``Test/TestNNN/*_gt.txt`` taking the
frame number from the first field's file name and the track from the second; and the
RBDC/TBDC reader of Georgescu et al. (TPAMI 2021), which reads the same files as
``frame track centre_col centre_row width height`` with five-digit frame numbers. Boxes
are kept as exact floats (``x1 = cx - w/2`` ...), not rounded or clipped.

Frame rate: 15 fps, the capture rate reported for the dataset (and used by other public
loaders of it); the frame folders store none. Pass ``fps`` if your copy differs.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from anograph.datasets.base import (
    Dataset,
    VideoRef,
    check_region_frames,
    frame_folders,
    labels_from_regions,
    regions_array,
    require_folder,
)
from anograph.errors import InputError
from anograph.io.video import count_frames

STREET_SCENE_FPS = 15.0
_FRAME_NUMBER = re.compile(r"(\d+)\.[A-Za-z]+$")


def _base_dir(root: Path) -> Path:
    for candidate in (root, root / "StreetScene"):
        if (candidate / "Train").is_dir() and (candidate / "Test").is_dir():
            return candidate
    raise InputError(
        root / "Train",
        "folder not found (expected the Street Scene layout: Train/TrainNNN/ and Test/TestNNN/ in ROOT "
        "or in ROOT/StreetScene/)",
    )


def ground_truth_file(video_folder: Path) -> Path:
    """The one ``<video>_gt.txt`` of a test video (see the module docstring for where it may be)."""
    name = f"{video_folder.name}_gt.txt"
    candidates = [
        video_folder / name,
        video_folder.parent / name,
        video_folder.parent / f"{video_folder.name}_gt" / name,
    ]
    found = [path for path in candidates if path.is_file()]
    if not found:
        raise InputError(
            video_folder, f"no ground truth {name} (looked in {', '.join(str(path.parent) for path in candidates)})"
        )
    if len(found) > 1:
        raise InputError(video_folder, f"ground truth found twice: {', '.join(map(str, found))}; keep one")
    return found[0]


def read_street_scene_ground_truth(gt_file: str | Path) -> np.ndarray:
    """Anomalous regions of one ``TestNNN_gt.txt``.

    Returns
    -------
    numpy.ndarray
        Float64 array ``(n_regions, 6)``: ``[frame, track_id, x1, y1, x2, y2]`` with the
        0-based frame index (see :data:`anograph.datasets.base.REGION_COLUMNS`).

    Raises
    ------
    InputError
        Naming the file and line: wrong field count, a frame name without a number,
        a non-integer or negative track, non-numeric or non-positive box sizes.
    """
    gt_file = Path(gt_file)
    rows: list[tuple[float, float, float, float, float, float]] = []
    for line_number, line in enumerate(gt_file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 6:
            raise InputError(
                gt_file,
                f"line {line_number}: expected 6 fields (frame_image track centre_col centre_row width height), "
                f"got {len(fields)}",
            )
        frame_match = _FRAME_NUMBER.search(fields[0].replace("\\", "/").rsplit("/", 1)[-1])
        if frame_match is None or int(frame_match.group(1)) < 1:
            raise InputError(gt_file, f"line {line_number}: {fields[0]!r} is not a frame image with a number from 1")
        try:
            track = int(fields[1])
            centre_x, centre_y, width, height = (float(value) for value in fields[2:])
        except ValueError:
            raise InputError(
                gt_file, f"line {line_number}: track must be an integer and the box four numbers, got {line.strip()!r}"
            ) from None
        if track < 0:
            raise InputError(gt_file, f"line {line_number}: track number {track} must be 0 or more")
        if not (width > 0 and height > 0):
            raise InputError(gt_file, f"line {line_number}: box width and height must be positive")
        rows.append((
            int(frame_match.group(1)) - 1, track,
            centre_x - width / 2, centre_y - height / 2, centre_x + width / 2, centre_y + height / 2,
        ))
    return regions_array(rows)


def load_street_scene(root: str | Path, fps: float | None = None) -> Dataset:
    """Load Street Scene with per-frame labels and each test video's ``ground_truth_regions``.

    Parameters
    ----------
    root:
        Folder holding ``Train/`` and ``Test/`` (or ``StreetScene/`` holding them).
    fps:
        Frame rate instead of Street Scene's 15 fps; ``None`` (default) keeps 15.

    Raises
    ------
    InputError
        Missing folders or ground truth, an unreadable ground-truth line, or a region on a
        frame past the end of its video (naming the video and both counts).
    """
    base = _base_dir(Path(root))
    train = [VideoRef(folder.name, folder) for folder in frame_folders(require_folder(base / "Train", "Train/"))]
    test: list[VideoRef] = []
    labels: dict[str, np.ndarray] = {}
    for folder in frame_folders(require_folder(base / "Test", "Test/")):
        gt_file = ground_truth_file(folder)
        regions = read_street_scene_ground_truth(gt_file)
        n_frames = count_frames(folder)
        check_region_frames(folder, n_frames, regions, gt_file)
        test.append(VideoRef(folder.name, folder, ground_truth_regions=regions))
        labels[folder.name] = labels_from_regions(regions, n_frames)
    return Dataset(
        name="street-scene",
        fps=STREET_SCENE_FPS if fps is None else float(fps),
        train=train,
        test=test,
        labels=labels,
    )
