"""The dataset contract: named train and test videos, plus per-frame test labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class VideoRef:
    """One video: a video file, or a folder of frame images sorted by name."""

    name: str
    path: Path


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
