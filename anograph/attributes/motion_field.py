"""The motion field: how unusually fast the fastest place of a frame moves, with no detection.

An object-level score can only see what a box holds, and a box needs a detection or a moving
region no detection explains (:mod:`anograph.extraction.features.motion_boxes`): a cyclist passing
behind a crowd has neither. The shard keeps, per frame, the moving speed of every cell of a fixed
grid (:mod:`anograph.extraction.features.cell_motion`). The motion field scores each cell's speed
by the one-sided ``speed`` rarity (:class:`~anograph.attributes.speed.UpperTail`:
``-log P(S >= s)``), over every normal training cell pooled (one density for the whole frame: a
place seen moving rarely in training is not called odd for ordinary motion) or, in the variant
``per place``, over each cell's own training speeds (a fixed camera's places differ: a lane where
cyclists pass, a lawn nobody crosses), and a frame takes its worst cell's score. Like an attribute, it is calibrated on held-out training frames to
``(s - low) / (high - low)`` (:class:`CalibratedMotionField`), and it stands *beside* the objects:
the frame score is the worse of the objects' and the field's. The selection decides per dataset
whether it does (:mod:`anograph.selection.choice`, step 4).

For the validation's pseudo-anomalies, :func:`imprint` writes an altered object's speed into the
cells it covers: cells record the speed of the fastest thing moving in them, so a track replayed
twice as fast raises them to its doubled speed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from anograph.attributes.objects import MOVING_MAGNITUDE, ObjectAttributes
from anograph.attributes.speed import UpperTail
from anograph.errors import InputError

#: The motion field's label in reports.
MOTION_FIELD = "motion field"


class MotionFieldDensity:
    """Upper-tail rarity of cell speeds in normal training frames, pooled or per cell (``per_place``).

    Parameters
    ----------
    per_place:
        One density per cell of the grid instead of one for all cells. Default False.
    tail_quantile:
        Above this quantile of the training cell speeds the tail is exponential. Default 0.99.
    """

    def __init__(self, per_place: bool = False, tail_quantile: float = 0.99) -> None:
        self.per_place = bool(per_place)
        self.tail_quantile = float(tail_quantile)

    @property
    def label(self) -> str:
        return f"{MOTION_FIELD} per place" if self.per_place else MOTION_FIELD

    def fit(self, videos: Sequence[ObjectAttributes]) -> MotionFieldDensity:
        speeds = [video.cell_speeds for video in videos if video.cell_speeds is not None]
        if not speeds:
            raise InputError(None, "no cell speeds in the training videos to fit the motion field on")
        every = np.concatenate(speeds)
        pooled = UpperTail(self.tail_quantile).fit(every.reshape(-1))
        if not self.per_place:
            self.tails_ = [pooled]
            return self
        # A place seldom or never seen moving fast has no tail of its own to measure: its tail falls
        # no faster than the whole frame's does.
        self.tails_ = [UpperTail(self.tail_quantile).fit(every[:, cell], min_scale=pooled.tail_scale_)
                       for cell in range(every.shape[1])]
        return self

    def frame_scores(self, cell_speeds: np.ndarray) -> np.ndarray:
        """``(n_frames,)`` each frame's worst cell's rarity, from ``(n_frames, n_cells)`` speeds."""
        cell_speeds = np.asarray(cell_speeds, np.float64)
        if cell_speeds.size == 0:
            return np.zeros(len(cell_speeds))
        if not self.per_place:
            return self.tails_[0].score(cell_speeds.max(axis=1))  # one rarity, growing with speed
        if cell_speeds.shape[1] != len(self.tails_):
            raise InputError(None, f"{cell_speeds.shape[1]} cells a frame, but the motion field was fitted on "
                                   f"{len(self.tails_)}")
        return np.max([tail.score(cell_speeds[:, cell]) for cell, tail in enumerate(self.tails_)], axis=0)

    def worst_cells(self, cell_speeds: np.ndarray) -> np.ndarray:
        """``(n_frames,)`` the index of each frame's worst cell (the one :meth:`frame_scores` reads)."""
        cell_speeds = np.asarray(cell_speeds, np.float64)
        if not self.per_place:
            return cell_speeds.argmax(axis=1)
        return np.argmax([tail.score(cell_speeds[:, cell]) for cell, tail in enumerate(self.tails_)], axis=0)

    def config(self) -> dict[str, Any]:
        return {"per_place": self.per_place, "tail_quantile": self.tail_quantile}

    def state(self) -> dict[str, np.ndarray]:
        """Each cell's tail (one for all when pooled) as ``<cell>.grid``, ``<cell>.levels``, ``<cell>.tail``."""
        return {f"{cell}.{key}": value for cell, tail in enumerate(self.tails_) for key, value in tail.state().items()}

    def load_state(self, state: Mapping[str, np.ndarray]) -> MotionFieldDensity:
        n_tails = len({key.split(".")[0] for key in state})
        self.tails_ = [UpperTail(self.tail_quantile).load_state(
            {key.split(".", 1)[1]: value for key, value in state.items() if key.split(".")[0] == str(cell)})
            for cell in range(n_tails)]
        return self


class CalibratedMotionField:
    """A fitted :class:`MotionFieldDensity` and its calibration ``(s - low) / (high - low)``."""

    def __init__(self, density: MotionFieldDensity, low: float, high: float) -> None:
        self.density, self.low, self.high = density, float(low), float(high)

    def frame_scores(self, cell_speeds: np.ndarray) -> np.ndarray:
        """``(n_frames,)`` calibrated frame scores (about 0..1 on normal frames)."""
        return (self.density.frame_scores(cell_speeds) - self.low) / (self.high - self.low)

    def state(self, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(JSON description, arrays named prefix + ...)`` for the model artifact."""
        return ({"config": self.density.config(), "low": self.low, "high": self.high},
                {prefix + key: value for key, value in self.density.state().items()})

    @classmethod
    def from_state(cls, description: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
                   prefix: str) -> CalibratedMotionField:
        own = {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}
        density = MotionFieldDensity(**description["config"]).load_state(own)
        return cls(density, description["low"], description["high"])


def covered_cells(objects: ObjectAttributes) -> tuple[np.ndarray, np.ndarray]:
    """``(object rows, cell indices)`` pairs: the cells each object covers.

    A cell is covered when its centre lies in the object's box, and every object covers the cell
    its centre lies in (a walker narrower than a cell covers no cell centre).
    """
    if objects.cell_grid is None:
        raise InputError(None, f"video {objects.video!r} has no cell grid")
    rows, columns = objects.cell_grid
    width = objects.frame_width or float(columns) / rows  # cells are square where the width is unknown
    cell_width, cell_height = width / columns, 1.0 / rows
    centre_x = (np.arange(columns) + 0.5) * cell_width
    centre_y = (np.arange(rows) + 0.5) * cell_height
    low, high = objects.centres - objects.sizes / 2, objects.centres + objects.sizes / 2
    inside_x = (centre_x[None, :] >= low[:, :1]) & (centre_x[None, :] <= high[:, :1])
    inside_y = (centre_y[None, :] >= low[:, 1:]) & (centre_y[None, :] <= high[:, 1:])
    inside = inside_y[:, :, None] & inside_x[:, None, :]
    own_row = np.clip((objects.centres[:, 1] / cell_height).astype(np.int64), 0, rows - 1)
    own_column = np.clip((objects.centres[:, 0] / cell_width).astype(np.int64), 0, columns - 1)
    inside[np.arange(len(objects)), own_row, own_column] = True
    object_rows, cell_rows, cell_columns = np.nonzero(inside)
    return object_rows, cell_rows * columns + cell_columns


def imprint(cell_speeds: np.ndarray, objects: ObjectAttributes) -> np.ndarray:
    """``cell_speeds`` with each of ``objects``' moving speeds written into the cells it covers, where faster."""
    result = np.array(cell_speeds, np.float32, copy=True)
    if not len(objects):
        return result
    object_rows, cells = covered_cells(objects)
    speeds = objects.flow[object_rows, MOVING_MAGNITUDE].astype(np.float32)
    np.maximum.at(result, (objects.frames[object_rows], cells), speeds)
    return result
