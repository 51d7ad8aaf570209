"""The ``shape`` attribute: a box's build at its place, judged on the part the frame shows.

A box cut by the frame's edge outlines only the visible part of its object: a walker leaving
at the bottom of the frame has a short, wide box there, which says nothing about the walker's
build. So the shape density is fitted on whole boxes, and a cut box is scored on the values
its cut leaves intact (the mixture's marginal over them), never on a size the frame edge made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from anograph.attributes.base import AttributeDensity, MixtureDensity
from anograph.attributes.objects import ObjectAttributes

#: The cuts a box can have, as :meth:`BuildMixture.values` columns left intact: a cut width
#: hides the log width; a cut height hides the log height and the vertical centre (the box's
#: centre moves with the cut).
CUT_PATTERNS = {"width_cut": (False, True, True), "height_cut": (True, False, False)}
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


class BuildMixture(MixtureDensity):
    """Gaussian mixture over log width, log height and vertical position (one source's whole boxes).

    A cut box's negative log likelihood over its intact values alone is on another scale than a
    whole box's over all three (a marginal over fewer values is less peaked), so it is matched
    to the whole boxes' scale by quantiles: a cut box as unusual, in what it shows, as the
    training box at quantile *q* of that marginal scores what the training box at quantile *q*
    of the full likelihood does.
    """

    name = "build"
    reads = ("centres", "sizes")

    def __init__(self, n_components: int = 2, seed: int = 0) -> None:
        self.n_components = int(n_components)
        self.seed = int(seed)

    def values(self, objects: ObjectAttributes) -> np.ndarray:
        sizes = np.log(np.maximum(objects.sizes.astype(np.float64), 1e-4))
        return np.concatenate([sizes, objects.centres[:, 1:].astype(np.float64)], axis=1)

    def config(self) -> dict[str, Any]:
        return {"n_components": self.n_components, "seed": self.seed}

    def fit(self, videos: Sequence[ObjectAttributes]) -> BuildMixture:
        super().fit(videos)
        fitted = [video for video in videos if len(video)]
        full = np.concatenate([MixtureDensity.score(self, video) for video in fitted])
        self.quantiles_ = {"whole": np.quantile(full, MATCHING_LEVELS)}
        for cut, pattern in CUT_PATTERNS.items():
            marginal = np.concatenate([self.marginal_score(video, np.tile(pattern, (len(video), 1))) for video in fitted])
            self.quantiles_[cut] = np.quantile(marginal, MATCHING_LEVELS)
        return self

    def score(self, objects: ObjectAttributes) -> np.ndarray:
        """Negative log likelihood on the whole boxes' scale (cut boxes matched); NaN for a box cut both ways."""
        if not self.quantiles_:  # a model saved before cut boxes were told apart scores every box as whole
            return super().score(objects)
        width_cut, height_cut = objects.cut_by_frame_edge().T
        scores = np.full(len(objects), np.nan)
        whole = ~width_cut & ~height_cut
        if whole.any():
            scores[whole] = super().score(objects.rows(whole))
        for cut, rows in (("width_cut", width_cut & ~height_cut), ("height_cut", height_cut & ~width_cut)):
            if rows.any():
                pattern = np.tile(CUT_PATTERNS[cut], (int(rows.sum()), 1))
                marginal = self.marginal_score(objects.rows(rows), pattern)
                scores[rows] = match_quantiles(marginal, self.quantiles_[cut], self.quantiles_["whole"])
        return scores

    def state(self) -> dict[str, np.ndarray]:
        return {**super().state(), **{f"quantiles_{key}": value for key, value in self.quantiles_.items()}}

    def load_state(self, state: Mapping[str, np.ndarray]) -> BuildMixture:
        super().load_state(state)
        keys = ("whole", *CUT_PATTERNS)
        self.quantiles_ = ({key: np.asarray(state[f"quantiles_{key}"], np.float64) for key in keys}
                           if all(f"quantiles_{key}" in state for key in keys) else {})
        return self


def whole_boxes(objects: ObjectAttributes) -> ObjectAttributes:
    """The objects whose box no frame edge cuts."""
    return objects.rows(~objects.cut_by_frame_edge().any(axis=1))


class ShapeDensity(AttributeDensity):
    """The box's build at its place, against the normal objects of the same source.

    A wide vehicle among upright walkers, or an object far bigger than what usually appears
    at that distance from the camera. Detector boxes outline objects, while a moving region's
    box outlines its motion, so each source (:data:`anograph.io.shards.OBJECT_SOURCES`) gets
    its own :class:`BuildMixture`, fitted on that source's whole training boxes (see the
    module docstring for cut ones): a moving region is compared with the moving regions of
    normal footage. A source with fewer than ``min_objects`` whole training boxes (or none)
    has no mixture, and its objects score as the most ordinary training object does; so does
    a box cut both across and along.

    Parameters
    ----------
    n_components:
        Mixture components per source. Default 2.
    min_objects:
        Whole training boxes a source needs for a mixture of its own. Default 50.
    seed:
        Seeds the mixtures' initialisation. Default 0.
    """

    name = "shape"
    reads = ("centres", "sizes")

    def __init__(self, n_components: int = 2, min_objects: int = 50, seed: int = 0) -> None:
        self.n_components = int(n_components)
        self.min_objects = int(min_objects)
        self.seed = int(seed)

    def fit(self, videos: Sequence[ObjectAttributes]) -> ShapeDensity:
        whole = [whole_boxes(video) for video in videos]
        if not sum(len(video) for video in whole):  # every box cut (a frame-filling object): use them as they are
            whole = list(videos)
        sources = np.unique(np.concatenate([video.sources for video in whole]))
        self.mixtures_: dict[int, BuildMixture] = {}
        for source in sources:
            of_source = [video.rows(video.sources == source) for video in whole]
            if sum(len(video) for video in of_source) >= self.min_objects:
                self.mixtures_[int(source)] = BuildMixture(self.n_components, self.seed).fit(of_source)
        if not self.mixtures_:  # too few objects of any one source: one mixture over all of them
            self.mixtures_ = {int(source): BuildMixture(self.n_components, self.seed).fit(whole) for source in sources}
        self.floor_ = np.nan  # while the floor itself is computed: no mixture's objects are left out of the min
        self.floor_ = float(np.nanmin(np.concatenate([self.score(video) for video in videos if len(video)])))
        return self

    def score(self, objects: ObjectAttributes) -> np.ndarray:
        scores = np.full(len(objects), np.nan)
        for source, mixture in self.mixtures_.items():
            rows = objects.sources == source
            if rows.any():
                scores[rows] = mixture.score(objects.rows(rows))
        return np.where(np.isnan(scores), self.floor_, scores)

    def config(self) -> dict[str, Any]:
        return {"n_components": self.n_components, "min_objects": self.min_objects, "seed": self.seed}

    def state(self) -> dict[str, np.ndarray]:
        arrays = {"floor": np.array([self.floor_]), "sources": np.array(sorted(self.mixtures_), np.int64)}
        for source, mixture in self.mixtures_.items():
            arrays.update({f"source{source}_{key}": value for key, value in mixture.state().items()})
        return arrays

    def load_state(self, state: Mapping[str, np.ndarray]) -> ShapeDensity:
        self.floor_ = float(np.asarray(state["floor"]).reshape(-1)[0])
        self.mixtures_ = {}
        for source in np.asarray(state["sources"]).reshape(-1).tolist():
            prefix = f"source{source}_"
            own = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
            self.mixtures_[int(source)] = BuildMixture(self.n_components, self.seed).load_state(own)
        return self
