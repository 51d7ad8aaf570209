"""The dataset contract: named train and test videos, plus per-frame test labels.

Datasets whose ground truth localises anomalies with boxes (Street Scene, ADOC) also give
each test video its anomalous regions, for region- and track-based metrics (RBDC, TBDC).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anograph.errors import InputError
from anograph.io.video import is_video_source

#: Columns of :attr:`VideoRef.ground_truth_regions`, one row per anomalous region.
REGION_COLUMNS = ("frame", "track_id", "x1", "y1", "x2", "y2")


@dataclass(frozen=True)
class VideoRef:
    """One video: a video file, or a folder of frame images sorted by name.

    Attributes
    ----------
    name, path:
        Unique video name and where its frames are.
    ground_truth_regions:
        For test videos of datasets annotated with boxes: a float64 array of shape
        ``(n_regions, 6)`` with the columns :data:`REGION_COLUMNS`: ``frame`` (0-based
        frame index), ``track_id`` (an integer per anomalous event / track, unique within
        the video), and the box corners ``x1, y1, x2, y2`` in pixels. Zero rows when the
        video holds no anomaly. UCSD's are derived from its pixel masks
        (:mod:`anograph.datasets.pixel_masks`). ``None`` for training videos and for
        datasets without boxes (Avenue and ShanghaiTech masks are not read as regions).
    camera:
        The camera (scene) that filmed the video, for datasets that pool several fixed cameras
        (ShanghaiTech's 13 scenes); ``""`` for a single-camera dataset. A camera's normal footage
        gets an attribute model of its own where it validates better than a shared one
        (:mod:`anograph.models.camera_scoring`).
    """

    name: str
    path: Path
    ground_truth_regions: np.ndarray | None = field(default=None, compare=False, repr=False)
    camera: str = ""


@dataclass
class Dataset:
    """A set of normal training videos and labelled test videos.

    Attributes
    ----------
    name:
        Dataset name as used on the command line (``ucsd-ped2``, ``folder``, ...).
    fps:
        Frame rate, used to size the test window (one second each side by default).
        ``None`` when unknown; the pipeline then needs ``--fps``.
    train, test:
        Videos, in a fixed order.
    labels:
        For each test video name, a boolean array with one entry per frame,
        ``True`` for anomalous frames.
    """

    name: str
    fps: float | None
    train: list[VideoRef]
    test: list[VideoRef]
    labels: dict[str, np.ndarray] = field(default_factory=dict)


def require_folder(path: Path, expected: str) -> Path:
    """``path`` if it is a folder, else an :class:`InputError` saying what was expected there."""
    if not path.is_dir():
        raise InputError(path, f"folder not found (expected {expected})")
    return path


def frame_folders(split_dir: Path) -> list[Path]:
    """Frame folders of one split, sorted by name; ``*_gt`` pixel-mask folders and stray files skipped.

    Raises
    ------
    InputError
        When the split holds no frame folder.
    """
    folders = [
        path
        for path in sorted(split_dir.iterdir())
        if path.is_dir() and not path.name.startswith(".") and not path.name.endswith("_gt") and is_video_source(path)
    ]
    if not folders:
        raise InputError(split_dir, "holds no frame folders")
    return folders


def check_label_count(video: Path, n_frames: int, n_labels: int, label_source: Path) -> None:
    """Fail unless a video's frame count equals the number of per-frame labels for it.

    Raises
    ------
    InputError
        Naming the video, both counts and the file the labels came from.
    """
    if n_frames != n_labels:
        raise InputError(
            video,
            f"video has {n_frames} frames but its ground truth {label_source} labels {n_labels}",
        )


def labels_from_regions(regions: np.ndarray, n_frames: int) -> np.ndarray:
    """Per-frame labels: a frame is anomalous when it holds at least one ground-truth region."""
    labels = np.zeros(n_frames, dtype=bool)
    labels[regions[:, 0].astype(np.int64)] = True
    return labels


def regions_array(rows: list[tuple[float, float, float, float, float, float]]) -> np.ndarray:
    """Rows ``(frame, track_id, x1, y1, x2, y2)`` as the ``(n, 6)`` float64 region array, sorted by frame."""
    regions = np.asarray(rows, dtype=np.float64).reshape(-1, len(REGION_COLUMNS))
    return regions[np.lexsort((regions[:, 1], regions[:, 0]))]


def check_region_frames(video: Path, n_frames: int, regions: np.ndarray, label_source: Path) -> None:
    """Fail when a ground-truth region lies on a frame the video does not have.

    Raises
    ------
    InputError
        Naming the video, its frame count, the last annotated frame and the annotation file.
    """
    if regions.size and int(regions[:, 0].max()) >= n_frames:
        last = int(regions[:, 0].max()) + 1
        raise InputError(
            video,
            f"video has {n_frames} frames but its ground truth {label_source} annotates frame {last}",
        )


def video_references(videos: Sequence[VideoRef]) -> list[dict[str, str]]:
    """``{"name", "path", "camera"}`` of each video: how flows hand videos to extraction (JSON-friendly parameters)."""
    return [{"name": video.name, "path": str(video.path), "camera": video.camera} for video in videos]


def recorded_source(path: str | Path, root: str | Path | None) -> str:
    """The source path a shard records for a video: relative to the dataset ``root`` when below it.

    A shard then does not carry the local absolute path (its content hash identifies the
    video); a path outside ``root``, or no ``root``, is recorded as given.
    """
    if root is None:
        return str(path)
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)
