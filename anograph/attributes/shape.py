"""The ``shape`` attribute: a box's build at its place, judged on the part the frame shows.

A box cut by the frame's edge outlines only the visible part of its object: a walker leaving
at the bottom of the frame has a short, wide box there, which says nothing about the walker's
build. So the shape density is fitted on whole boxes, and a cut box is scored on the values
its cut leaves intact (:mod:`.frame_edge`), never on a size the frame edge made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from anograph.attributes.base import AttributeDensity
from anograph.attributes.frame_edge import CutAwareMixture, whole_or_all
from anograph.attributes.objects import ObjectAttributes


class BuildMixture(CutAwareMixture):
    """Gaussian mixture over log width, log height and vertical position (one source's whole boxes)."""

    name = "build"
    reads = ("centres", "sizes")

    def __init__(self, n_components: int = 2, seed: int = 0) -> None:
        self.n_components = int(n_components)
        self.seed = int(seed)

    def values(self, objects: ObjectAttributes) -> np.ndarray:
        sizes = np.log(np.maximum(objects.sizes.astype(np.float64), 1e-4))
        return np.concatenate([sizes, objects.centres[:, 1:].astype(np.float64)], axis=1)

    def intact_columns(self, width_cut: bool, height_cut: bool, n_columns: int) -> tuple[bool, ...]:
        # A cut width hides the log width; a cut height hides the log height and the vertical
        # centre (the box's centre moves with the cut).
        return (not width_cut, not height_cut, not height_cut)

    def config(self) -> dict[str, Any]:
        return {"n_components": self.n_components, "seed": self.seed}


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
        whole = whole_or_all(videos)
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
