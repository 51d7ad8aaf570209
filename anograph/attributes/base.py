"""The interface every attribute density implements, and the Gaussian mixture most of them share.

An attribute density is fitted on the objects of normal videos and gives each object a rarity
(higher = less like the normal objects). Its fitted state is plain arrays, so that a model
artifact holds no pickle. The concrete densities live in :mod:`.densities` and :mod:`.shape`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from anograph.attributes.objects import ObjectAttributes
from anograph.errors import InputError


class AttributeDensity(ABC):
    """A density over one attribute of normal objects."""

    name: ClassVar[str]
    #: The :class:`ObjectAttributes` fields the score depends on (validation reuses a score
    #: when a pseudo-anomaly changed none of them).
    reads: ClassVar[tuple[str, ...]]

    @abstractmethod
    def fit(self, videos: Sequence[ObjectAttributes]) -> AttributeDensity:
        """Fit on the objects of normal videos; returns ``self``."""

    @abstractmethod
    def score(self, objects: ObjectAttributes) -> np.ndarray:
        """``(n,)`` float64 rarity of each object (higher = more anomalous)."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """The constructor's parameters (JSON)."""

    @abstractmethod
    def state(self) -> dict[str, np.ndarray]:
        """The fitted arrays."""

    @abstractmethod
    def load_state(self, state: Mapping[str, np.ndarray]) -> AttributeDensity:
        """Restore the fitted arrays of :meth:`state`; returns ``self``."""

    @property
    def label(self) -> str:
        """The name with its variant, as reports show it."""
        return self.name


def concatenate_values(videos: Sequence[ObjectAttributes], values) -> np.ndarray:
    """``values(video)`` of every non-empty video, stacked (the rows a density is fitted on)."""
    rows = [values(video) for video in videos if len(video)]
    if not rows:
        raise InputError(None, "no objects in the training videos to fit an attribute density on")
    return np.concatenate(rows)


class MixtureDensity(AttributeDensity):
    """Gaussian mixture (full covariance) over :meth:`values`; the score is the negative log likelihood.

    The values are standardised first (each column by its training mean and standard
    deviation), so that the mixture's small covariance regulariser means the same whatever a
    column's unit: speeds in frame heights, speeds in box heights and histogram bins differ by
    orders of magnitude, and an unscaled regulariser would smooth some variants far more than
    others, confounding the selection between them. A constant column is left unscaled.
    """

    n_components: int
    seed: int

    @abstractmethod
    def values(self, objects: ObjectAttributes) -> np.ndarray:
        """The rows the mixture models, one per object."""

    def fit(self, videos: Sequence[ObjectAttributes]) -> MixtureDensity:
        values = concatenate_values(videos, self.values)
        self.center_ = values.mean(axis=0)
        spread = values.std(axis=0)
        self.scale_ = np.where(spread > 0, spread, 1.0)
        components = max(1, min(self.n_components, len(values)))
        # One thread: on a busy machine the k-means initialisation's OpenMP threads spin, and a small fit crawls.
        with threadpool_limits(limits=1):
            self.mixture_ = GaussianMixture(components, covariance_type="full", reg_covar=1e-6,
                                            random_state=self.seed).fit(self._standardized(values))
        return self

    def _standardized(self, values: np.ndarray) -> np.ndarray:
        return (values - self.center_) / self.scale_

    def score(self, objects: ObjectAttributes) -> np.ndarray:
        if not len(objects):
            return np.zeros(0)
        return -self.mixture_.score_samples(self._standardized(self.values(objects)))

    def marginal_score(self, objects: ObjectAttributes, visible: np.ndarray) -> np.ndarray:
        """Negative log likelihood of each object's visible columns alone; NaN where none is visible.

        ``visible`` is ``(n, width)`` bool over :meth:`values`' columns. A Gaussian mixture's
        marginal over some columns is the mixture of its components' marginals (same weights;
        those columns' means and covariance block), so a value that could not be measured
        (a box's height where the frame edge cuts the box) is left out rather than guessed.
        """
        scores = np.full(len(objects), np.nan)
        if not len(objects):
            return scores
        values = self._standardized(self.values(objects))
        visible = np.asarray(visible, bool).reshape(len(objects), -1)
        mixture = self.mixture_
        for pattern in np.unique(visible, axis=0):
            columns = np.flatnonzero(pattern)
            if not len(columns):
                continue
            rows = (visible == pattern).all(axis=1)
            per_component = []
            for weight, mean, covariance in zip(mixture.weights_, mixture.means_, mixture.covariances_, strict=True):
                cholesky = np.linalg.cholesky(covariance[np.ix_(columns, columns)])
                whitened = np.linalg.solve(cholesky, (values[rows][:, columns] - mean[columns]).T)
                per_component.append(np.log(weight) - 0.5 * (whitened**2).sum(axis=0) - np.log(np.diag(cholesky)).sum()
                                     - 0.5 * len(columns) * np.log(2 * np.pi))
            scores[rows] = -logsumexp(np.stack(per_component), axis=0)
        return scores

    def state(self) -> dict[str, np.ndarray]:
        mixture = self.mixture_
        return {"weights": mixture.weights_, "means": mixture.means_, "covariances": mixture.covariances_,
                "precisions_cholesky": mixture.precisions_cholesky_, "center": self.center_, "scale": self.scale_}

    def load_state(self, state: Mapping[str, np.ndarray]) -> MixtureDensity:
        mixture = GaussianMixture(len(state["weights"]), covariance_type="full")
        mixture.weights_ = np.asarray(state["weights"], np.float64)
        mixture.means_ = np.asarray(state["means"], np.float64)
        mixture.covariances_ = np.asarray(state["covariances"], np.float64)
        mixture.precisions_cholesky_ = np.asarray(state["precisions_cholesky"], np.float64)
        self.mixture_ = mixture
        width = mixture.means_.shape[1]
        # A model saved before the standardisation has neither: its mixture is over raw values.
        self.center_ = np.asarray(state.get("center", np.zeros(width)), np.float64)
        self.scale_ = np.asarray(state.get("scale", np.ones(width)), np.float64)
        return self
