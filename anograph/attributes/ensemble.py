"""Calibrated sums of attribute densities, fitted leave-one-video-out on normal footage.

Each density's raw score has its own scale (a log-likelihood, a distance, a class rarity),
so a sum needs a common one. As in AI-VAD (Reiss & Hoshen, 2022), each attribute's score is
mapped to ``(s - low) / (high - low)``, where ``low`` is the minimum and ``high`` the
:data:`CALIBRATION_QUANTILE` quantile of its *held-out* scores on the training objects:
every training video is scored by a density fitted without it, as an unseen normal video
would be (in-sample scores are optimistic, most of all for kNN, where every object finds
itself at distance 0). A normal object then scores about 0..1 in every attribute.

The ensemble's score combines them by one of :data:`COMBINATIONS`: the **sum** (AI-VAD's rule:
evidence adds up, but every attribute's noise on normal objects adds up too) or the **max**
(an object is as odd as its oddest attribute: an attribute that sees nothing raises the score
only where its own noise exceeds the others'). Model selection chooses the rule per dataset.

The held-out fits (:class:`HeldOutFits`) serve twice: for this calibration, and for the
label-free model selection (:mod:`anograph.selection`), which scores pseudo-anomalies of
each held-out video with the fit that never saw it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from anograph.attributes.densities import AttributeDensity, make_density
from anograph.attributes.objects import ObjectAttributes
from anograph.attributes.track_smoothing import smooth_along_tracks
from anograph.errors import InputError

#: Quantile of the held-out training scores that maps to 1 (AI-VAD: the 99.9th percentile).
CALIBRATION_QUANTILE = 0.999
#: At most this many held-out folds: with more training videos, each fold holds several.
MAX_FOLDS = 8
#: How calibrated attribute scores combine into an object's score, simplest (and AI-VAD's) first.
COMBINATIONS = ("sum", "max")


def check_combination(combination: str) -> str:
    """``combination`` if it is one of :data:`COMBINATIONS`, else an :class:`InputError` naming them."""
    if combination not in COMBINATIONS:
        raise InputError(None, f"attribute combination must be one of {list(COMBINATIONS)}, not {combination!r}")
    return combination


def combine_scores(parts: Sequence[np.ndarray], combination: str = "sum") -> np.ndarray:
    """``(n,)`` the calibrated ``parts`` (each ``(n,)``) combined by ``combination`` (:data:`COMBINATIONS`)."""
    check_combination(combination)
    if not len(parts):
        raise InputError(None, "nothing to combine: no attribute scores")
    stacked = np.asarray(parts, np.float64)
    return stacked.sum(axis=0) if combination == "sum" else stacked.max(axis=0)


def held_out_parts(videos: Sequence[ObjectAttributes], max_folds: int = MAX_FOLDS) -> list[list[ObjectAttributes]]:
    """The training objects split into folds of whole videos (at most ``max_folds``).

    A single training video is split into its first and second half by frame, so that there
    is still something to hold out.
    """
    videos = [video for video in videos if len(video)]
    if not videos:
        raise InputError(None, "no objects in the training videos")
    if len(videos) == 1:
        video = videos[0]
        middle = video.n_frames // 2
        halves = [video.rows(video.frames < middle), video.rows(video.frames >= middle)]
        halves = [half for half in halves if len(half)]
        return [[half] for half in halves] if len(halves) == 2 else [[video]]
    n_folds = min(len(videos), max_folds)
    return [list(videos[start::n_folds]) for start in range(n_folds)]


class HeldOutFits:
    """One density fitted per fold without that fold, plus its held-out training scores.

    Parameters
    ----------
    make:
        Builds a fresh, unfitted density.
    folds:
        From :func:`held_out_parts`.
    """

    def __init__(self, make: Callable[[], AttributeDensity], folds: Sequence[Sequence[ObjectAttributes]]) -> None:
        self.make = make
        self.folds = [list(fold) for fold in folds]
        if len(self.folds) == 1:  # nothing to hold out: in-sample, and said so by `held_out`
            self.models = [make().fit(self.folds[0])]
            self.held_out = False
        else:
            self.models = [
                make().fit([video for other, fold in enumerate(self.folds) if other != index for video in fold])
                for index in range(len(self.folds))
            ]
            self.held_out = True
        self.scores = [[model.score(video) for video in fold] for model, fold in zip(self.models, self.folds, strict=True)]

    def score(self, fold: int, objects: ObjectAttributes) -> np.ndarray:
        """Raw scores of (a variant of) an object table of ``fold``, by the fit that did not see it."""
        return self.models[fold].score(objects)

    def calibration(self, quantile: float = CALIBRATION_QUANTILE) -> tuple[float, float]:
        """``(low, high)`` of the held-out training scores (see the module docstring)."""
        return calibration_bounds(np.concatenate([scores for fold in self.scores for scores in fold]), quantile)


def calibration_bounds(values: np.ndarray, quantile: float = CALIBRATION_QUANTILE) -> tuple[float, float]:
    """``(low, high)``: the minimum and the ``quantile`` quantile of held-out ``values``, ``high > low``."""
    low, high = float(np.min(values)), float(np.quantile(values, quantile))
    return low, max(high, low + 1e-12)


@dataclass
class CalibratedDensity:
    """A fitted density and the ``(low, high)`` that put its scores on the common scale."""

    density: AttributeDensity
    low: float
    high: float

    def score(self, objects: ObjectAttributes) -> np.ndarray:
        return (self.density.score(objects) - self.low) / (self.high - self.low)


class AttributeEnsemble:
    """Calibrated attribute densities, combined: ``fit`` on normal videos, ``score`` objects.

    Parameters
    ----------
    attributes:
        ``(name, constructor parameters)`` of each density (:data:`DENSITY_CLASSES` names).
    calibration_quantile:
        See :data:`CALIBRATION_QUANTILE`.
    max_folds:
        See :data:`MAX_FOLDS`.
    track_radius:
        Average the combined score along each object's track over this many frames on either side
        (:mod:`anograph.attributes.track_smoothing`). Default 0 (off).
    combination:
        How the calibrated scores combine (:data:`COMBINATIONS`). Default ``"sum"``.
    """

    def __init__(self, attributes: Sequence[tuple[str, Mapping[str, Any]]],
                 calibration_quantile: float = CALIBRATION_QUANTILE, max_folds: int = MAX_FOLDS,
                 track_radius: int = 0, combination: str = "sum") -> None:
        if not attributes:
            raise InputError(None, "an attribute ensemble needs at least one attribute")
        self.attributes = [(str(name), dict(config)) for name, config in attributes]
        self.calibration_quantile = float(calibration_quantile)
        self.max_folds = int(max_folds)
        self.track_radius = int(track_radius)
        self.combination = check_combination(combination)  # now, not at scoring time

    def fit(self, videos: Sequence[ObjectAttributes],
            held_out: Mapping[int, HeldOutFits] | None = None) -> AttributeEnsemble:
        """Fit every density on all ``videos`` and calibrate it on held-out scores.

        ``held_out`` maps an attribute's position to fits already made on the same folds
        (model selection makes them), so they are not made twice.
        """
        folds = held_out_parts(videos, self.max_folds)
        self.parts_ = []
        # In memory only: the alert calibration scores each training video with its fold's fits.
        self.held_out_fits_: list[HeldOutFits] = []
        for index, (name, config) in enumerate(self.attributes):
            fits = (held_out or {}).get(index) or HeldOutFits(lambda name=name, config=config: make_density(name, config), folds)
            low, high = fits.calibration(self.calibration_quantile)
            self.parts_.append(CalibratedDensity(make_density(name, config).fit(videos), low, high))
            self.held_out_fits_.append(fits)
        return self

    @property
    def labels(self) -> list[str]:
        return [part.density.label for part in self.parts_]

    def score_subsets(self, objects: ObjectAttributes, subsets: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
        """``name -> (n,)`` scores of each subset of the attributes (by label), combined and smoothed as
        :meth:`score` does; each density scores once (the per-attribute ablation)."""
        parts = {part.density.label: part.score(objects) for part in self.parts_}
        return {name: smooth_along_tracks(objects, combine_scores([parts[label] for label in labels], self.combination),
                                          self.track_radius)
                for name, labels in subsets.items()}

    @property
    def feature_radius(self) -> int:
        """Frames on either side whose features an object's score reads (a density averaging along tracks)."""
        return max((int(getattr(part.density, "track_radius", 0)) for part in self.parts_), default=0)

    def combined(self, objects: ObjectAttributes) -> np.ndarray:
        """``(n,)`` the calibrated attribute scores combined by :attr:`combination`, before track smoothing."""
        return combine_scores([part.score(objects) for part in self.parts_], self.combination)

    def score(self, objects: ObjectAttributes) -> np.ndarray:
        """``(n,)`` :meth:`combined`, smoothed along tracks."""
        return smooth_along_tracks(objects, self.combined(objects), self.track_radius)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(JSON description, arrays)`` for the model artifact."""
        description = {
            "calibration_quantile": self.calibration_quantile,
            "track_radius": self.track_radius,
            "combination": self.combination,
            "attributes": [
                {"name": name, "config": part.density.config(), "low": part.low, "high": part.high}
                for (name, _), part in zip(self.attributes, self.parts_, strict=True)
            ],
        }
        arrays = {
            f"{index}.{key}": np.asarray(value)
            for index, part in enumerate(self.parts_)
            for key, value in part.density.state().items()
        }
        return description, arrays

    @classmethod
    def from_state(cls, description: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> AttributeEnsemble:
        """The ensemble :meth:`state` described."""
        entries = description["attributes"]
        ensemble = cls([(entry["name"], entry["config"]) for entry in entries], description["calibration_quantile"],
                       track_radius=int(description.get("track_radius", 0)),
                       combination=description.get("combination", "sum"))  # saved before the rule was chosen
        ensemble.parts_ = []
        for index, entry in enumerate(entries):
            prefix = f"{index}."
            state = {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}
            density = make_density(entry["name"], entry["config"]).load_state(state)
            ensemble.parts_.append(CalibratedDensity(density, float(entry["low"]), float(entry["high"])))
        return ensemble
