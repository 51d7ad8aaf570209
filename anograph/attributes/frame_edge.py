"""Mixtures over values the frame's edge can hide: fitted on whole boxes, cut boxes scored on what is left.

A box cut by the frame's edge (:meth:`anograph.attributes.objects.ObjectAttributes.cut_by_frame_edge`)
outlines only the visible part of its object: its size along the cut axis, and its centre, say
nothing about the object. A :class:`CutAwareMixture` names, per cut, which of its columns
survive (:meth:`~CutAwareMixture.intact_columns`); it is fitted on whole boxes, and a cut box
is scored by the mixture's marginal over its intact columns
(:meth:`~anograph.attributes.base.MixtureDensity.marginal_score`). A marginal over fewer
values is less peaked, so its negative log likelihood is matched to the whole boxes' scale by
quantiles of the training boxes: a cut box as unusual, in what it shows, as the training box at
quantile *q* of that marginal scores what the training box at quantile *q* of the full
likelihood does. A box with no intact column scores NaN; the caller decides what that means.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence

import numpy as np

from anograph.attributes.base import MixtureDensity
from anograph.attributes.objects import ObjectAttributes

#: The cuts a box can have: ``(width cut, height cut)``.
CUTS = {"width_cut": (True, False), "height_cut": (False, True), "both_cut": (True, True)}
#: Box sizes (frame heights) are floored here before anything is divided by them.
MIN_BOX_SIZE = 0.01
#: Quantile levels at which a cut box's marginal score is matched to the whole boxes' scores.
MATCHING_LEVELS = np.linspace(0.0, 1.0, 201)


def match_quantiles(values: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Map ``values`` from the distribution with quantiles ``source`` to the one with ``target``.

    Piecewise linear between matched quantiles; beyond either end, shifted by that end's offset,
    so a value past everything seen in training stays past it by the same margin.
    """
    mapped = np.interp(values, source, target)
    above, below = values > source[-1], values < source[0]
    mapped[above] = target[-1] + values[above] - source[-1]
    mapped[below] = target[0] + values[below] - source[0]
    return mapped


def whole_boxes(objects: ObjectAttributes) -> ObjectAttributes:
    """The objects whose box no frame edge cuts."""
    return objects.rows(~objects.cut_by_frame_edge().any(axis=1))


def whole_or_all(videos: Sequence[ObjectAttributes]) -> list[ObjectAttributes]:
    """Each video's whole boxes, or every box where the frame's edge cuts them all (a frame-filling view)."""
    whole = [whole_boxes(video) for video in videos]
    return whole if sum(len(video) for video in whole) else list(videos)


def median_height_per_width(videos: Sequence[ObjectAttributes]) -> float:
    """The normal boxes' median height per width (whole boxes where there are any)."""
    sizes = np.concatenate([video.sizes for video in whole_or_all(videos) if len(video)])
    return float(np.median(sizes[:, 1] / np.maximum(sizes[:, 0], MIN_BOX_SIZE)))


def box_heights(objects: ObjectAttributes, height_per_width: float | None) -> np.ndarray:
    """``(n,)`` box heights; one the frame's edge cuts raised to its width times ``height_per_width`` where that is more.

    A walker leaving at the bottom of the frame keeps its width while its box loses height, so
    speeds measured in box heights would make it look fast; ``None`` measures every box as it is.
    """
    heights = objects.sizes[:, 1].astype(np.float64)
    if height_per_width is not None:
        cut = objects.cut_by_frame_edge()[:, 1]
        heights[cut] = np.maximum(heights[cut], objects.sizes[cut, 0] * height_per_width)
    return heights


class CutAwareMixture(MixtureDensity):
    """A :class:`MixtureDensity` some of whose columns a cut hides (see the module docstring)."""

    @abstractmethod
    def intact_columns(self, width_cut: bool, height_cut: bool, n_columns: int) -> tuple[bool, ...] | None:
        """Which of the ``n_columns`` :meth:`values` columns a box cut so still measures (``None``: all of them)."""

    def _cut_patterns(self, n_columns: int) -> dict[str, np.ndarray]:
        """Each cut's intact columns; empty when no cut hides any column (the mixture is then a plain one)."""
        patterns = {cut: self.intact_columns(*flags, n_columns) for cut, flags in CUTS.items()}
        if all(pattern is None for pattern in patterns.values()):
            return {}
        return {cut: np.ones(n_columns, bool) if pattern is None else np.asarray(pattern, bool)
                for cut, pattern in patterns.items()}

    def fit(self, videos: Sequence[ObjectAttributes]) -> CutAwareMixture:
        self.quantiles_: dict[str, np.ndarray] = {}
        sample = next((video for video in videos if len(video)), None)
        if sample is None or not self._cut_patterns(self.values(sample.rows(np.arange(1))).shape[1]):
            return super().fit(videos)
        fitted = [video for video in whole_or_all(videos) if len(video)]
        super().fit(fitted)
        self.quantiles_["whole"] = np.quantile(
            np.concatenate([MixtureDensity.score(self, video) for video in fitted]), MATCHING_LEVELS)
        for cut, pattern in self._cut_patterns(self.mixture_.means_.shape[1]).items():
            if pattern.any():
                marginal = np.concatenate([self.marginal_score(video, np.tile(pattern, (len(video), 1)))
                                           for video in fitted])
                self.quantiles_[cut] = np.quantile(marginal, MATCHING_LEVELS)
        return self

    def score(self, objects: ObjectAttributes) -> np.ndarray:
        """Negative log likelihood on the whole boxes' scale (cut boxes matched); NaN where a cut hides every column."""
        patterns = self._cut_patterns(self.mixture_.means_.shape[1])
        if not patterns or not self.quantiles_:  # no column a cut hides, or a model saved before cuts were told apart
            return super().score(objects)
        width_cut, height_cut = objects.cut_by_frame_edge().T
        scores = np.full(len(objects), np.nan)
        whole = ~width_cut & ~height_cut
        if whole.any():
            scores[whole] = super().score(objects.rows(whole))
        for cut, (width, height) in CUTS.items():
            rows = (width_cut == width) & (height_cut == height)
            if rows.any() and cut in self.quantiles_:
                marginal = self.marginal_score(objects.rows(rows), np.tile(patterns[cut], (int(rows.sum()), 1)))
                scores[rows] = match_quantiles(marginal, self.quantiles_[cut], self.quantiles_["whole"])
        return scores

    def state(self) -> dict[str, np.ndarray]:
        return {**super().state(), **{f"quantiles_{key}": value for key, value in self.quantiles_.items()}}

    def load_state(self, state: Mapping[str, np.ndarray]) -> CutAwareMixture:
        super().load_state(state)
        self.quantiles_ = {key[len("quantiles_"):]: np.asarray(value, np.float64)
                           for key, value in state.items() if key.startswith("quantiles_")}
        return self
