"""Read videos as BGR frames: video files through OpenCV, or folders of frame images.

A frame folder is read in name order; any common image extension is accepted
(UCSD ships ``.tif``, our copy of it ``.jpg``). Grey images are expanded to three
channels so every detector sees ``(H, W, 3)`` uint8 BGR.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from anograph.errors import VideoReadError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".webm", ".wmv")


def is_video_source(path: Path) -> bool:
    """True for a video file or a folder that holds at least one image."""
    if path.is_file():
        return path.suffix.lower() in VIDEO_EXTENSIONS
    return path.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir())


def frame_files(folder: Path) -> list[Path]:
    """The frame images of a frame folder, in reading (name) order."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def _as_bgr(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


class VideoReader:
    """Frames of one video, iterated in order.

    Use :func:`open_video` to construct one. Attributes: ``path``, ``name`` (file stem or
    folder name), ``n_frames``, ``fps`` (from the container, else the ``fps`` given,
    else ``None``), ``width`` and ``height``.
    """

    def __init__(self, path: Path, fps: float | None = None) -> None:
        self.path = path
        self.name = path.stem if path.is_file() else path.name
        if path.is_dir():
            self._images = frame_files(path)
            if not self._images:
                raise VideoReadError(path, f"folder holds no frame images ({', '.join(IMAGE_EXTENSIONS)})")
            first = self._read_image(self._images[0])
            self.n_frames = len(self._images)
            self.fps = fps
        else:
            self._images = None
            capture = cv2.VideoCapture(str(path))
            try:
                if not capture.isOpened():
                    raise VideoReadError(path, "cannot open video (unknown container or codec)")
                ok, first = capture.read()
                if not ok:
                    raise VideoReadError(path, "video has no decodable frames")
                self.n_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
                container_fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
                self.fps = container_fps if container_fps > 0 else fps
            finally:
                capture.release()
            first = _as_bgr(first)
        self.height, self.width = first.shape[:2]

    def __len__(self) -> int:
        return self.n_frames

    def __repr__(self) -> str:
        return f"VideoReader({str(self.path)!r}, n_frames={self.n_frames}, fps={self.fps})"

    def _read_image(self, image: Path) -> np.ndarray:
        frame = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
        if frame is None:
            raise VideoReadError(image, "cannot decode image")
        if frame.dtype != np.uint8:
            frame = cv2.convertScaleAbs(frame, alpha=255.0 / max(float(frame.max()), 1.0))
        return _as_bgr(frame)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._images is not None:
            for image in self._images:
                frame = self._read_image(image)
                if frame.shape[:2] != (self.height, self.width):
                    raise VideoReadError(
                        image,
                        f"frame size {frame.shape[1]}x{frame.shape[0]} differs from the first frame's {self.width}x{self.height}",
                    )
                yield frame
            return
        capture = cv2.VideoCapture(str(self.path))
        try:
            count = 0
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                count += 1
                yield _as_bgr(frame)
        finally:
            capture.release()
        # Container frame counts are estimates; trust what decodes, but never silently lose most of a video.
        if count == 0:
            raise VideoReadError(self.path, "video has no decodable frames")
        if count < 0.9 * self.n_frames:
            raise VideoReadError(self.path, f"decoding stopped after {count} of {self.n_frames} frames")
        self.n_frames = count


def open_video(path: str | Path, fps: float | None = None) -> VideoReader:
    """Open a video file or frame folder, failing with a :class:`VideoReadError` naming it.

    Parameters
    ----------
    path:
        A video file (any container OpenCV can decode) or a folder of frame images.
    fps:
        Frame rate to assume when the source does not say (frame folders, odd containers).
    """
    path = Path(path)
    if not path.exists():
        raise VideoReadError(path, "no such file or folder")
    if path.is_file() and path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise VideoReadError(path, f"not a video file (extensions: {', '.join(VIDEO_EXTENSIONS)})")
    return VideoReader(path, fps=fps)


def count_frames(path: str | Path) -> int:
    """Number of frames, decoding a video file fully (container counts can be wrong)."""
    reader = open_video(path)
    if reader._images is not None:
        return reader.n_frames
    return sum(1 for _ in reader)
