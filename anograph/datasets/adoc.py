"""ADOC, "A Day on Campus" (Mantini, Li and Shah, ACCV 2020), in a documented conversion layout.

The dataset is 24 contiguous hours of one 1080p campus camera at 3 fps, with 721 instances
of 25 event types annotated by bounding boxes. Ano-Graph (Table 2) runs three experiments:
day only, night only, and day and night, each for training and testing alike.

**The layout of the official release could not be verified** (no copy, and no
public description of its files was found), so this loader reads the following
layout, into which a copy has to be arranged once::

    ROOT/
        train/day/<video>.mp4 | <video>/  normal footage, video files or frame folders
        train/night/...
        test/day/...                      footage to score
        test/night/...
        events.csv                        the event annotations of the test videos

``events.csv`` has the header ``video,event_id,frame,x1,y1,x2,y2`` and one row per box:
the test video's name (file stem or folder name), an integer id of the annotated event
instance (its track), the frame number (1-based, as in ``labels.csv`` of the ``folder``
layout) and the box corners in pixels. Every annotated event counts as anomalous, as in
the ADOC paper's frame-level evaluation; a frame is anomalous when it holds a box. A test
video without rows is all normal. Videos must be cut at the day/night boundary; names
must be unique across all four folders.

``split`` selects the experiment: ``"day"``, ``"night"`` or ``"all"`` (both, the default).

Frame rate: 3 fps (the camera's rate, from the dataset paper), unless ``fps`` is given.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from anograph.datasets.base import (
    Dataset,
    VideoRef,
    check_region_frames,
    labels_from_regions,
    regions_array,
    require_folder,
)
from anograph.datasets.folder import check_unique_names, list_videos
from anograph.errors import InputError
from anograph.io.video import count_frames

ADOC_FPS = 3.0
ADOC_SPLITS = ("day", "night", "all")
ADOC_PERIODS = ("day", "night")
EVENTS_FILE = "events.csv"
EVENTS_HEADER = ("video", "event_id", "frame", "x1", "y1", "x2", "y2")


def read_adoc_events(path: str | Path, video_names: set[str]) -> dict[str, np.ndarray]:
    """Read ``events.csv`` into region arrays per video.

    Parameters
    ----------
    path:
        The ``events.csv`` file.
    video_names:
        Names of all test videos (of every period, so that rows of videos left out by a
        day/night split are not mistaken for unknown videos).

    Returns
    -------
    dict
        Video name -> float64 ``(n, 6)`` array ``[frame, track_id, x1, y1, x2, y2]`` with
        0-based frames; only videos that have rows.

    Raises
    ------
    InputError
        Naming the file and line: wrong header or field count, an unknown video, a frame
        below 1, non-numeric values, or a box with ``x2 <= x1`` or ``y2 <= y1``.
    """
    path = Path(path)
    rows_by_video: dict[str, list[tuple[float, float, float, float, float, float]]] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = csv.reader(handle)
        header = next(rows, None)
        if header is None or tuple(field.strip().lower() for field in header) != EVENTS_HEADER:
            raise InputError(path, f"line 1: header must be {','.join(EVENTS_HEADER)!r}, got {','.join(header or [])!r}")
        for row in rows:
            line = rows.line_num
            if not any(field.strip() for field in row):
                continue
            if len(row) != len(EVENTS_HEADER):
                raise InputError(path, f"line {line}: expected {len(EVENTS_HEADER)} fields, got {len(row)}")
            video = row[0].strip()
            if video not in video_names:
                raise InputError(path, f"line {line}: unknown test video {video!r}")
            try:
                event_id, frame = int(row[1]), int(row[2])
                x1, y1, x2, y2 = (float(value) for value in row[3:])
            except ValueError:
                raise InputError(
                    path, f"line {line}: event_id and frame must be integers and the box four numbers"
                ) from None
            if frame < 1:
                raise InputError(path, f"line {line}: frame {frame} must be 1 or more (frames are 1-based)")
            if not (x2 > x1 and y2 > y1):
                raise InputError(path, f"line {line}: box must have x2 > x1 and y2 > y1")
            rows_by_video.setdefault(video, []).append((frame - 1, event_id, x1, y1, x2, y2))
    return {video: regions_array(rows) for video, rows in rows_by_video.items()}


def _period_videos(root: Path, split_name: str, periods: tuple[str, ...]) -> dict[str, list[VideoRef]]:
    """Videos of ``root/split_name/{day,night}``; the periods in use must exist and hold videos."""
    split_dir = require_folder(root / split_name, f"the ADOC layout: {split_name}/day/ and {split_name}/night/")
    videos: dict[str, list[VideoRef]] = {}
    for period in ADOC_PERIODS:
        folder = split_dir / period
        if period in periods:
            require_folder(folder, f"the ADOC layout: {split_name}/{period}/")
        # Unused periods are still read when present: their names and events must be valid too.
        read = period in periods or (folder.is_dir() and any(folder.iterdir()))
        videos[period] = list_videos(folder) if read else []
    return videos


def load_adoc(root: str | Path, split: str = "all", fps: float | None = None) -> Dataset:
    """Load ADOC from the layout of the module docstring.

    Parameters
    ----------
    root:
        The converted ADOC folder.
    split:
        ``"day"``, ``"night"`` or ``"all"`` (default): which footage is used, for training
        and testing alike. The dataset is named ``adoc``, ``adoc-day`` or ``adoc-night``.
    fps:
        Frame rate instead of ADOC's 3 fps; ``None`` (default) keeps 3.

    Raises
    ------
    InputError
        Unknown split, missing folders or ``events.csv``, a bad row, or a box on a frame past
        the end of its video (naming the video and both counts).
    """
    if split not in ADOC_SPLITS:
        raise InputError(None, f"unknown ADOC split {split!r}; choose one of {', '.join(ADOC_SPLITS)}")
    root = Path(root)
    periods = ADOC_PERIODS if split == "all" else (split,)
    train_by_period = _period_videos(root, "train", periods)
    test_by_period = _period_videos(root, "test", periods)
    check_unique_names([video for videos in (*train_by_period.values(), *test_by_period.values()) for video in videos])
    events_path = root / EVENTS_FILE
    if not events_path.is_file():
        raise InputError(events_path, f"event annotations not found (header {','.join(EVENTS_HEADER)})")
    all_test = [video for videos in test_by_period.values() for video in videos]
    regions_by_video = read_adoc_events(events_path, {video.name for video in all_test})

    train = [video for period in periods for video in train_by_period[period]]
    test: list[VideoRef] = []
    labels: dict[str, np.ndarray] = {}
    for period in periods:
        for video in test_by_period[period]:
            regions = regions_by_video.get(video.name, regions_array([]))
            n_frames = count_frames(video.path)
            check_region_frames(video.path, n_frames, regions, events_path)
            test.append(VideoRef(video.name, video.path, ground_truth_regions=regions))
            labels[video.name] = labels_from_regions(regions, n_frames)
    return Dataset(
        name="adoc" if split == "all" else f"adoc-{split}",
        fps=ADOC_FPS if fps is None else float(fps),
        train=train,
        test=test,
        labels=labels,
    )
