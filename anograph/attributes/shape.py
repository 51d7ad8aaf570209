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

#: Mixture keys from here on are detected classes (``CLASS_GROUPS + class id``); below it, object sources.
CLASS_GROUPS = 1000


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
    """The box's build at its place, against the normal objects of the same source (and class).

    A wide vehicle among upright walkers, or an object far bigger than what usually appears
    at that distance from the camera. Detector boxes outline objects, while a moving region's
    box outlines its motion, so each source (:data:`anograph.io.shards.OBJECT_SOURCES`) gets
    its own :class:`BuildMixture`, fitted on that source's whole training boxes (see the
    module docstring for cut ones): a moving region is compared with the moving regions of
    normal footage. A source with fewer than ``min_objects`` whole training boxes (or none)
    has no mixture, and its objects score as the most ordinary training object does; so does
    a box cut both across and along.

    With ``per_class``, a detector box is compared with the normal boxes of its detected class
    (its highest class score) where that class has ``min_objects`` whole training boxes, and
    with all detector boxes otherwise: a detector that outlines a walker's feet as "skis" makes
    wide, short boxes that are ordinary for that class and rare for a person, and a person's
    box as wide as it is tall is rare among persons though not among all boxes.

    Parameters
    ----------
    n_components:
        Mixture components per source (and class). Default 2.
    min_objects:
        Whole training boxes a source (or a class) needs for a mixture of its own. Default 50.
    per_class:
        Judge detector boxes against their detected class's (see above). Default False.
    seed:
        Seeds the mixtures' initialisation. Default 0.
    """

    name = "shape"
    reads = ("centres", "sizes", "class_scores")

    def __init__(self, n_components: int = 2, min_objects: int = 50, per_class: bool = False, seed: int = 0) -> None:
        self.n_components = int(n_components)
        self.min_objects = int(min_objects)
        self.per_class = bool(per_class)
        self.seed = int(seed)
        self.classes_ = np.zeros(0, np.int64)

    @property
    def label(self) -> str:
        return "shape per class" if self.per_class else "shape"

    def _groups(self, objects: ObjectAttributes) -> np.ndarray:
        """``(n,)`` the mixture each object is judged by: its source, or ``CLASS_GROUPS + class`` for a detector box of a
        class with a mixture of its own (:attr:`classes_`)."""
        groups = objects.sources.astype(np.int64)
        if len(self.classes_) and objects.class_scores.shape[1]:
            detected = objects.class_scores.argmax(axis=1)
            own = (objects.sources == 0) & np.isin(detected, self.classes_)
            groups[own] = CLASS_GROUPS + detected[own]
        return groups

    def fit(self, videos: Sequence[ObjectAttributes]) -> ShapeDensity:
        whole = whole_or_all(videos)
        self.classes_ = np.zeros(0, np.int64)
        if self.per_class:
            detected = [video.class_scores.argmax(axis=1)[video.sources == 0] for video in whole
                        if video.class_scores.shape[1]]
            counts = np.bincount(np.concatenate(detected)) if detected else np.zeros(0, np.int64)
            self.classes_ = np.flatnonzero(counts >= self.min_objects).astype(np.int64)
        # Every source's mixture over all its boxes (a detector box of a class without one falls back
        # to it), then one per class with enough boxes.
        sources = np.unique(np.concatenate([video.sources for video in whole]))
        selections = {int(source): [video.sources == source for video in whole] for source in sources}
        groups = [self._groups(video) for video in whole]
        selections.update({CLASS_GROUPS + int(c): [of_video == CLASS_GROUPS + c for of_video in groups]
                           for c in self.classes_})
        self.mixtures_: dict[int, BuildMixture] = {}
        for group, masks in selections.items():
            of_group = [video.rows(mask) for video, mask in zip(whole, masks, strict=True)]
            if sum(len(video) for video in of_group) >= self.min_objects:
                self.mixtures_[group] = BuildMixture(self.n_components, self.seed).fit(of_group)
        if not self.mixtures_:  # too few objects of any one source: one mixture over all of them
            self.mixtures_ = {int(source): BuildMixture(self.n_components, self.seed).fit(whole) for source in sources}
        self.floor_ = np.nan  # while the floor itself is computed: no mixture's objects are left out of the min
        self.floor_ = float(np.nanmin(np.concatenate([self.score(video) for video in videos if len(video)])))
        return self

    def score(self, objects: ObjectAttributes) -> np.ndarray:
        scores = np.full(len(objects), np.nan)
        groups = self._groups(objects)
        groups = np.where(np.isin(groups, list(self.mixtures_)), groups, objects.sources)  # a class without a mixture
        for group, mixture in self.mixtures_.items():
            rows = groups == group
            if rows.any():
                scores[rows] = mixture.score(objects.rows(rows))
        return np.where(np.isnan(scores), self.floor_, scores)

    def config(self) -> dict[str, Any]:
        return {"n_components": self.n_components, "min_objects": self.min_objects, "per_class": self.per_class,
                "seed": self.seed}

    def state(self) -> dict[str, np.ndarray]:
        arrays = {"floor": np.array([self.floor_]), "sources": np.array(sorted(self.mixtures_), np.int64),
                  "classes": self.classes_}
        for group, mixture in self.mixtures_.items():
            arrays.update({f"source{group}_{key}": value for key, value in mixture.state().items()})
        return arrays

    def load_state(self, state: Mapping[str, np.ndarray]) -> ShapeDensity:
        self.floor_ = float(np.asarray(state["floor"]).reshape(-1)[0])
        # A model saved before per-class shapes has no classes: every detector box by its source.
        self.classes_ = np.asarray(state.get("classes", np.zeros(0)), np.int64).reshape(-1)
        self.mixtures_ = {}
        for group in np.asarray(state["sources"]).reshape(-1).tolist():
            prefix = f"source{group}_"
            own = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
            self.mixtures_[int(group)] = BuildMixture(self.n_components, self.seed).load_state(own)
        return self
