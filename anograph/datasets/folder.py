"""Users' own videos in a simple folder layout.

Layout::

    ROOT/
        train/          normal videos: one video file (.mp4, .avi, ...) or one folder
                        of frame images per video
        test/           videos to score, same forms
        labels.csv      optional: anomalous intervals of test videos

A video's name is its file stem or folder name; names must be unique across
``train/`` and ``test/`` (shards and scores are keyed by name). Hidden entries
(``.DS_Store``, ...) are skipped; any other entry that is not a video is an error,
so a misspelt or unsupported file is never silently left out.

``labels.csv`` has the header ``video,start_frame,end_frame``; each row marks the
frames ``start_frame..end_frame`` (1-based, inclusive) of one test video as anomalous.
A video may have several rows; a test video with no row is all normal. Without
``labels.csv`` the test videos are unlabelled (``Dataset.labels`` is empty): they can
be scored but not evaluated.

The frame rate comes from the video containers; frame folders have none, so the
``fps`` argument is used for them (or ``None``: then the pipeline needs ``--fps``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from anograph.datasets.base import Dataset, VideoRef
from anograph.errors import InputError, VideoReadError
from anograph.io.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, count_frames, is_video_source, open_video

LABELS_FILE = "labels.csv"
LABELS_HEADER = ("video", "start_frame", "end_frame")

# Containers may round a rate (29.97 vs 30); anything further apart is a different rate.
_FPS_TOLERANCE = 0.05


def list_videos(split_dir: Path) -> list[VideoRef]:
    """Videos of one split folder, sorted by name."""
    if not split_dir.is_dir():
        raise InputError(split_dir, "folder not found (expected ROOT/train/ and ROOT/test/)")
    videos: list[VideoRef] = []
    for path in sorted(split_dir.iterdir()):
        if path.name.startswith("."):
            continue
        if not is_video_source(path):
            kind = "folder holds no frame images" if path.is_dir() else "not a video file"
            raise InputError(
                path,
                f"{kind}; train/ and test/ may hold only video files ({', '.join(VIDEO_EXTENSIONS)}) "
                f"or folders of frames ({', '.join(IMAGE_EXTENSIONS)})",
            )
        videos.append(VideoRef(path.stem if path.is_file() else path.name, path))
    if not videos:
        raise InputError(split_dir, "holds no videos")
    return videos


def check_unique_names(videos: list[VideoRef]) -> None:
    """Video names key the shards and the labels, so two videos of one dataset may not share one."""
    seen: dict[str, Path] = {}
    for video in videos:
        if video.name in seen:
            raise InputError(
                video.path,
                f"video name {video.name!r} is also used by {seen[video.name]}; names must be unique",
            )
        seen[video.name] = video.path


def read_labels_csv(path: str | Path, frame_counts: dict[str, int]) -> dict[str, np.ndarray]:
    """Read anomalous intervals into per-frame boolean labels.

    Parameters
    ----------
    path:
        The ``labels.csv`` file.
    frame_counts:
        Number of frames of every test video, by name; videos without a row get
        all-normal labels.

    Returns
    -------
    dict
        Video name -> boolean array of length ``frame_counts[name]``.

    Raises
    ------
    InputError
        Naming the file and line: wrong header, wrong number of fields, a value that is
        not an integer, an unknown video, ``start_frame < 1``, ``start_frame > end_frame``
        or ``end_frame`` past the video's last frame.
    """
    path = Path(path)
    labels = {name: np.zeros(count, dtype=bool) for name, count in frame_counts.items()}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = csv.reader(handle)
        header = next(rows, None)
        if header is None or tuple(field.strip().lower() for field in header) != LABELS_HEADER:
            raise InputError(
                path, f"line 1: header must be {','.join(LABELS_HEADER)!r}, got {','.join(header or [])!r}"
            )
        for row in rows:
            line = rows.line_num
            if not any(field.strip() for field in row):
                continue
            if len(row) != 3:
                raise InputError(
                    path, f"line {line}: expected 3 fields (video,start_frame,end_frame), got {len(row)}"
                )
            video = row[0].strip()
            try:
                start, end = int(row[1]), int(row[2])
            except ValueError:
                raise InputError(
                    path,
                    f"line {line}: start_frame and end_frame must be integers, got {row[1]!r}, {row[2]!r}",
                ) from None
            if video not in labels:
                raise InputError(
                    path,
                    f"line {line}: unknown test video {video!r} (test videos: {', '.join(sorted(labels))})",
                )
            n_frames = labels[video].size
            if start < 1:
                raise InputError(
                    path, f"line {line}: start_frame {start} must be 1 or more (frames are 1-based)"
                )
            if start > end:
                raise InputError(path, f"line {line}: start_frame {start} is after end_frame {end}")
            if end > n_frames:
                raise InputError(
                    path,
                    f"line {line}: end_frame {end} is past the last frame ({n_frames}) of video {video!r}",
                )
            labels[video][start - 1 : end] = True
    return labels


def dataset_fps(videos: list[VideoRef], fallback: float | None) -> float | None:
    """Frame rate shared by the video files; ``fallback`` when none reports one."""
    rates: list[tuple[float, Path]] = []
    for video in videos:
        if video.path.is_file():
            try:
                fps = open_video(video.path).fps
            except VideoReadError:
                continue  # an unreadable video fails (or is skipped) in its own extraction task, named
            if fps:
                rates.append((float(fps), video.path))
    if not rates:
        return fallback
    first_rate, first_path = rates[0]
    for rate, path in rates[1:]:
        if abs(rate - first_rate) > _FPS_TOLERANCE * first_rate:
            raise InputError(
                path,
                f"frame rate {rate:g} differs from {first_path.name}'s {first_rate:g}; convert the videos to one rate",
            )
    return first_rate


def load_folder_dataset(root: str | Path, fps: float | None = None, name: str = "folder") -> Dataset:
    """Load ``ROOT/train``, ``ROOT/test`` and ``ROOT/labels.csv``.

    Parameters
    ----------
    root:
        The dataset folder.
    fps:
        Frame rate for sources whose container does not say (frame folders). Default
        ``None``: unknown.
    name:
        Dataset name recorded in the result (``"folder"``, or ``"synthetic"`` for the
        generated demo data).

    Raises
    ------
    InputError
        Missing folders, non-video entries, duplicate names, mixed frame rates or a bad
        ``labels.csv`` (see :func:`read_labels_csv`).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "no such folder")
    train = list_videos(root / "train")
    test = list_videos(root / "test")
    check_unique_names(train + test)
    labels_path = root / LABELS_FILE
    labels: dict[str, np.ndarray] = {}
    if labels_path.is_file():
        labels = read_labels_csv(labels_path, {video.name: count_frames(video.path) for video in test})
    return Dataset(name=name, fps=dataset_fps(train + test, fps), train=train, test=test, labels=labels)
