"""The ``speed`` attribute: how fast an object's moving pixels move, rare only when faster than normal.

A density over speed that is two-sided (a Gaussian mixture's negative log likelihood) calls an
object rare for moving *less* than usual as readily as for moving more, so slow and still objects
(people standing, a box whose pixels barely move) reach its tail on normal footage beside the fast
ones, while the speed anomalies a camera watches for (a cyclist among walkers, a runner, a cart)
are all faster than normal. So this density scores the upper tail alone:

    score(s) = -log P(S >= s)

with ``S`` the speed of a normal training object: an object no faster than most normal ones scores
near 0, a still one exactly 0, and each halving of the chance of being that fast adds log 2. Up to
the ``tail_quantile`` quantile the probability is read off the training speeds' quantiles; above
it, where training speeds are few, an exponential tail with the mean excess over that quantile as
its scale takes over, so speeds past anything seen in training keep rising in score. Direction is
the velocity mixture's business (:class:`anograph.attributes.densities.VelocityDensity`); the
selection decides per dataset whether an ensemble takes one, the other or both.

The speed read is the mean flow magnitude of the box's moving pixels, which the static background
inside a box does not dilute (:mod:`anograph.extraction.features.flow_stats`), in frame heights per
frame, or, with ``per_height``, in the object's own box heights per frame (one walking pace near and
far under perspective; a box the frame's edge cuts is measured in at least its width times the
normal boxes' median height per width, as :func:`~anograph.attributes.frame_edge.box_heights` says).
With ``track_radius``, the speed is read from the flow statistics averaged along the object's track
over that many frames on either side, as the velocity mixture may (:func:`~anograph.attributes.track_smoothing.flow_along_tracks`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from anograph.attributes.base import AttributeDensity, concatenate_values
from anograph.attributes.frame_edge import MIN_BOX_SIZE, box_heights, median_height_per_width
from anograph.attributes.objects import MOVING_MAGNITUDE, ObjectAttributes
from anograph.attributes.track_smoothing import flow_along_tracks
from anograph.errors import InputError

#: Quantile levels at which the training speeds' distribution is kept.
LEVELS = 201


class SpeedDensity(AttributeDensity):
    """Upper-tail rarity of the moving pixels' speed: ``-log P(S >= s)`` (see the module docstring).

    Parameters
    ----------
    per_height:
        Measure speeds in the object's box heights per frame instead of frame heights. Default False.
    tail_quantile:
        Above this quantile of the training speeds the tail is exponential. Default 0.99.
    track_radius:
        Read the speed averaged along the object's track over this many frames on either side
        (a frame's flow noise averages out, a real anomaly's speed lasts). Live scoring holds that
        many frames before scoring one. Default 0 (each frame's own speed).
    """

    name = "speed"
    reads = ("flow", "centres", "sizes")

    def __init__(self, per_height: bool = False, tail_quantile: float = 0.99, track_radius: int = 0) -> None:
        if not 0.5 <= tail_quantile < 1.0:
            raise InputError(None, f"tail_quantile must be in [0.5, 1), got {tail_quantile}")
        if track_radius < 0:
            raise InputError(None, f"speed's track_radius must be 0 or more, got {track_radius}")
        self.track_radius = int(track_radius)
        self.per_height = bool(per_height)
        self.tail_quantile = float(tail_quantile)
        self.height_per_width_: float | None = None

    @property
    def label(self) -> str:
        label = "speed per height" if self.per_height else "speed"
        return f"{label}(track {self.track_radius})" if self.track_radius else label

    def values(self, objects: ObjectAttributes) -> np.ndarray:
        """``(n,)`` the moving pixels' mean speed, per frame height or (``per_height``) per box height."""
        speeds = flow_along_tracks(objects, self.track_radius).flow[:, MOVING_MAGNITUDE].astype(np.float64)
        if self.per_height:
            speeds = speeds / np.maximum(box_heights(objects, self.height_per_width_), MIN_BOX_SIZE)
        return speeds

    def fit(self, videos: Sequence[ObjectAttributes]) -> SpeedDensity:
        self.height_per_width_ = median_height_per_width(videos) if self.per_height else None
        self.tail_ = UpperTail(self.tail_quantile).fit(concatenate_values(videos, self.values))
        return self

    def score(self, objects: ObjectAttributes) -> np.ndarray:
        return self.tail_.score(self.values(objects))

    def config(self) -> dict[str, Any]:
        return {"per_height": self.per_height, "tail_quantile": self.tail_quantile, "track_radius": self.track_radius}

    def state(self) -> dict[str, np.ndarray]:
        extra = {} if self.height_per_width_ is None else {"height_per_width": np.array([self.height_per_width_])}
        return {**self.tail_.state(), **extra}

    def load_state(self, state: Mapping[str, np.ndarray]) -> SpeedDensity:
        self.tail_ = UpperTail(self.tail_quantile).load_state(state)
        self.height_per_width_ = (float(np.asarray(state["height_per_width"]).reshape(-1)[0])
                                  if "height_per_width" in state else None)
        return self


class UpperTail:
    """``-log P(S >= s)`` of a value among the training values ``S`` (see the module docstring).

    Up to the ``tail_quantile`` quantile the probability is read off the training values'
    quantiles; above it an exponential tail, with the mean excess over that quantile as its scale.
    """

    def __init__(self, tail_quantile: float = 0.99) -> None:
        self.tail_quantile = float(tail_quantile)

    def fit(self, values: np.ndarray, min_scale: float = 1e-9) -> UpperTail:
        """Fit on the training ``values``; the exponential tail's scale is at least ``min_scale``
        (where few values pass the tail's start, their excess says little about how fast it falls)."""
        values = np.asarray(values, np.float64).reshape(-1)
        levels = np.linspace(0.0, self.tail_quantile, LEVELS)
        grid = np.quantile(values, levels)
        # Repeated quantiles (many still objects share speed 0): keep each value's lowest level,
        # the share of training values below it, so that a still object's P(S >= 0) is 1.
        self.grid_, first = np.unique(grid, return_index=True)
        self.levels_ = levels[first]
        excess = values[values > grid[-1]] - grid[-1]
        self.tail_start_ = float(grid[-1])
        self.tail_scale_ = max(float(excess.mean()) if len(excess) else 0.0, float(min_scale))
        return self

    def score(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, np.float64)
        below = 1.0 - np.interp(values, self.grid_, self.levels_)
        # Only values past the tail's start read the exponential (the others would overflow it).
        above = (1.0 - self.tail_quantile) * np.exp(-np.maximum(values - self.tail_start_, 0.0) / self.tail_scale_)
        survival = np.where(values <= self.tail_start_, below, above)
        return -np.log(np.maximum(survival, np.finfo(np.float64).tiny))

    def state(self) -> dict[str, np.ndarray]:
        return {"grid": self.grid_, "levels": self.levels_, "tail": np.array([self.tail_start_, self.tail_scale_])}

    def load_state(self, state: Mapping[str, np.ndarray]) -> UpperTail:
        self.grid_ = np.asarray(state["grid"], np.float64)
        self.levels_ = np.asarray(state["levels"], np.float64)
        self.tail_start_, self.tail_scale_ = (float(value) for value in np.asarray(state["tail"]).reshape(-1))
        return self
