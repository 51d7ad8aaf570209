"""Frames of a live source: a video file or frame folder (optionally looped), a camera index or a URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from anograph.errors import InputError, VideoReadError
from anograph.io.video import open_video


def iter_source_frames(source: str | int | Path, loop: bool = False, max_frames: int | None = None,
                       fps: float | None = None) -> Iterator[np.ndarray]:
    """BGR frames from a video file or frame folder (optionally looped), a camera index or a URL.

    Files and folders go through :func:`anograph.io.video.open_video`; a camera index
    (``0``, ``"0"``) or a URL (``rtsp://``, ``http://`` ...) through ``cv2.VideoCapture``.
    Stops after ``max_frames`` frames when given.
    """
    produced = 0
    text = str(source)
    if "://" in text or text.isdigit():
        if loop:
            raise InputError(text, "--loop needs a video file or frame folder, not a camera or URL")
        capture = cv2.VideoCapture(int(text) if text.isdigit() else text)
        try:
            if not capture.isOpened():
                raise VideoReadError(text, "cannot open camera or stream")
            while max_frames is None or produced < max_frames:
                ok, frame = capture.read()
                if not ok:
                    break
                produced += 1
                yield frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        finally:
            capture.release()
        return
    reader = open_video(Path(source), fps=fps)
    while True:
        for frame in reader:
            if max_frames is not None and produced >= max_frames:
                return
            produced += 1
            yield frame
        if not loop:
            return
