"""Attribute densities: one small estimator per attribute, fitted on normal objects.

Every density has the same interface: :meth:`~AttributeDensity.fit` on the objects of normal
videos, :meth:`~AttributeDensity.score` giving each object a rarity (higher = less like the
normal objects), and :meth:`~AttributeDensity.state` / :meth:`~AttributeDensity.from_state`
for the model artifact (arrays and JSON only, no pickle). Scores of different densities are
on different scales; :mod:`anograph.attributes.ensemble` puts them on one.

=====================  ========================================================================
name                   what is rare
=====================  ========================================================================
``velocity``           the box's flow speed (mean and 90th percentile magnitude), optionally its
                       direction (mean vector or histogram), per box height, or with its place in
                       the frame: Gaussian mixture, negative log likelihood (AI-VAD's velocity
                       density, on box flow statistics)
``shape``              the box's build at its place (log width and height, vertical position),
                       against normal whole boxes of the same source: Gaussian mixture per
                       source, negative log likelihood of what the frame edge leaves intact
                       (:mod:`.shape`)
``class``              the detector's class: each class weighted by minus the log of its share
                       of the training objects' class scores
``appearance``         the appearance vector: mean distance to the k nearest training vectors
``interaction``        the object's relation to its nearest neighbour in the frame (distance,
                       direction agreement, speed contrast): the graph context no single object's
                       attributes show; mean distance to the k nearest training relations
=====================  ========================================================================
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from anograph.attributes.base import AttributeDensity, concatenate_values
from anograph.attributes.frame_edge import MIN_BOX_SIZE, CutAwareMixture, box_heights, median_height_per_width
from anograph.attributes.objects import (
    FLOW_MEAN,
    FLOW_P90,
    MOVING_DX,
    MOVING_DY,
    MOVING_FRACTION,
    ORIENTATION_START,
    ObjectAttributes,
)
from anograph.attributes.place import PlaceDensity
from anograph.attributes.shape import ShapeDensity
from anograph.attributes.speed import SpeedDensity
from anograph.attributes.track_smoothing import flow_along_tracks
from anograph.errors import InputError
from anograph.models.knn import knn_mean_distance

#: Class shares are floored here before the log, so an unseen class gets a finite rarity.
CLASS_SHARE_FLOOR = 1e-4
#: Neighbour distances (in mean box heights) are capped here: farther is "alone".
ALONE_DISTANCE = 4.0
#: Standard deviations below this are treated as this when standardising kNN inputs.
SPREAD_FLOOR = 1e-6


class VelocityDensity(CutAwareMixture):
    """Gaussian mixture over the box's flow speed (and optionally direction and position).

    Parameters
    ----------
    direction:
        Add the moving pixels' mean flow vector (heading and speed together, as a flow
        histogram would), so that motion against the usual direction is rare. Default False.
    position_aware:
        Add the box centre and height, so that speed is judged against what is usual at that
        place and scale (fixed cameras with strong perspective). Default False.
    histogram:
        Add the moving pixels' direction histogram instead of their mean flow vector: flow
        magnitude per direction bin, per box pixel (AI-VAD's velocity feature). Motion in
        several directions at once (limbs, a scuffle) cancels in a mean vector but not here.
        Default False.
    per_height:
        Measure speeds in the object's own box heights per frame instead of frame heights, so
        that a near and a far walker at the same pace look alike under perspective (AI-VAD
        divides person speeds by box height on ShanghaiTech). A box whose height the frame's
        edge cuts is at least as tall as its width times the normal boxes' median height per
        width, and is measured in that height. Default False.
    track_radius:
        Read the flow statistics averaged along the object's track over this many frames on
        either side (:mod:`anograph.attributes.track_smoothing`): a real anomaly's motion lasts,
        while optical flow is noisy from one frame to the next. Live scoring holds that many
        frames before scoring one. Default 0 (each frame's own statistics).
    n_components:
        Mixture components. Default 2.
    seed:
        Seeds the mixture's initialisation. Default 0.
    """

    name = "velocity"
    reads = ("flow", "centres", "sizes")

    def __init__(self, direction: bool = False, position_aware: bool = False, per_height: bool = False,
                 histogram: bool = False, track_radius: int = 0, n_components: int = 2, seed: int = 0) -> None:
        if direction and histogram:
            raise InputError(None, "velocity takes the flow vector (direction) or the histogram, not both")
        if track_radius < 0:
            raise InputError(None, f"velocity's track_radius must be 0 or more, got {track_radius}")
        self.track_radius = int(track_radius)
        self.direction = bool(direction)
        self.histogram = bool(histogram)
        self.position_aware = bool(position_aware)
        self.per_height = bool(per_height)
        self.height_per_width_: float | None = None
        self.n_components = int(n_components)
        self.seed = int(seed)

    @property
    def label(self) -> str:
        parts = (["speed per height" if self.per_height else "speed"] + (["direction"] if self.direction else [])
                 + (["histogram"] if self.histogram else []))
        parts += (["position"] if self.position_aware else []) + (
            [f"track {self.track_radius}"] if self.track_radius else [])
        return "velocity(" + "+".join(parts) + ")"

    def fit(self, videos: Sequence[ObjectAttributes]) -> VelocityDensity:
        self.height_per_width_ = median_height_per_width(videos) if self.per_height else None
        return super().fit([flow_along_tracks(video, self.track_radius) for video in videos])

    def score(self, objects: ObjectAttributes) -> np.ndarray:
        # Averaged over whole tracks first, so that the cut and whole boxes scored apart share it.
        return super().score(flow_along_tracks(objects, self.track_radius))

    def intact_columns(self, width_cut: bool, height_cut: bool, n_columns: int) -> tuple[bool, ...] | None:
        """Position-aware: a cut width hides the centre's x, a cut height its y and the box height (the last three)."""
        if not self.position_aware:
            return None
        return (True,) * (n_columns - 3) + (not width_cut, not height_cut, not height_cut)

    def values(self, objects: ObjectAttributes) -> np.ndarray:
        columns = [FLOW_MEAN, FLOW_P90] + ([MOVING_DX, MOVING_DY] if self.direction else [])
        values = objects.flow[:, columns].astype(np.float64)
        if self.histogram:  # the bins are per moving pixel; times the moving share, per box pixel
            bins = objects.flow[:, ORIENTATION_START:] * objects.flow[:, MOVING_FRACTION : MOVING_FRACTION + 1]
            values = np.concatenate([values, bins.astype(np.float64)], axis=1)
        if self.per_height:
            values = values / np.maximum(box_heights(objects, self.height_per_width_), MIN_BOX_SIZE)[:, None]
        if self.position_aware:
            values = np.concatenate([values, objects.centres, objects.sizes[:, 1:]], axis=1)
        return values

    def state(self) -> dict[str, np.ndarray]:
        extra = {} if self.height_per_width_ is None else {"height_per_width": np.array([self.height_per_width_])}
        return {**super().state(), **extra}

    def load_state(self, state: Mapping[str, np.ndarray]) -> VelocityDensity:
        super().load_state(state)
        # A model saved before cut heights were raised has none, and measures every box as it is.
        self.height_per_width_ = (float(np.asarray(state["height_per_width"]).reshape(-1)[0])
                                  if "height_per_width" in state else None)
        return self

    def config(self) -> dict[str, Any]:
        return {"direction": self.direction, "position_aware": self.position_aware, "per_height": self.per_height,
                "histogram": self.histogram, "track_radius": self.track_radius, "n_components": self.n_components,
                "seed": self.seed}


class ClassRarity(AttributeDensity):
    """Each class scored by minus the log of its share of the normal objects' class scores.

    ``score = class_scores @ rarity`` with ``rarity_c = -log(max(share_c, floor))``, shifted so
    the commonest class costs 0: a confident detection of a class normal footage rarely shows
    scores high, a weak one less. Objects without a class (motion blobs) score 0 here; their
    motion speaks for them.
    """

    name = "class"
    reads = ("class_scores",)

    def fit(self, videos: Sequence[ObjectAttributes]) -> ClassRarity:
        mass = concatenate_values(videos, lambda video: video.class_scores).sum(axis=0).astype(np.float64)
        share = mass / max(mass.sum(), 1e-12)
        rarity = -np.log(np.maximum(share, CLASS_SHARE_FLOOR))
        self.rarity_ = rarity - rarity.min()
        return self

    @property
    def informative(self) -> bool:
        """False for a detector with a single class column, where every object is alike here."""
        return len(getattr(self, "rarity_", ())) > 1

    def score(self, objects: ObjectAttributes) -> np.ndarray:
        return objects.class_scores.astype(np.float64) @ self.rarity_

    def config(self) -> dict[str, Any]:
        return {}

    def state(self) -> dict[str, np.ndarray]:
        return {"rarity": self.rarity_}

    def load_state(self, state: Mapping[str, np.ndarray]) -> ClassRarity:
        self.rarity_ = np.asarray(state["rarity"], np.float64)
        return self


class KnnDensity(AttributeDensity):
    """Mean distance to the ``k`` nearest standardised training rows (a bank of at most ``bank_size``).

    Parameters
    ----------
    k:
        Neighbours. Default 5.
    bank_size:
        Training rows kept (a seeded random subsample when there are more). Default 20000.
    seed:
        Seeds the subsample. Default 0.
    """

    def __init__(self, k: int = 5, bank_size: int = 20000, seed: int = 0) -> None:
        self.k = int(k)
        self.bank_size = int(bank_size)
        self.seed = int(seed)

    @abstractmethod
    def values(self, objects: ObjectAttributes) -> np.ndarray:
        """The rows compared, one per object."""

    def fit(self, videos: Sequence[ObjectAttributes]) -> KnnDensity:
        values = concatenate_values(videos, self.values).astype(np.float32)
        self.mean_ = values.mean(axis=0)
        self.spread_ = np.maximum(values.std(axis=0), SPREAD_FLOOR)
        rng = np.random.default_rng(self.seed)
        if len(values) > self.bank_size:
            values = values[np.sort(rng.choice(len(values), self.bank_size, replace=False))]
        self.bank_ = (values - self.mean_) / self.spread_
        return self

    def score(self, objects: ObjectAttributes) -> np.ndarray:
        if not len(objects):
            return np.zeros(0)
        queries = (self.values(objects).astype(np.float32) - self.mean_) / self.spread_
        return knn_mean_distance(queries, self.bank_, self.k).astype(np.float64)

    def config(self) -> dict[str, Any]:
        return {"k": self.k, "bank_size": self.bank_size, "seed": self.seed}

    def state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_, "spread": self.spread_, "bank": self.bank_}

    def load_state(self, state: Mapping[str, np.ndarray]) -> KnnDensity:
        self.mean_, self.spread_, self.bank_ = (np.asarray(state[key], np.float32) for key in ("mean", "spread", "bank"))
        return self


class AppearanceKnn(KnnDensity):
    """kNN rarity of the appearance vector (the shard's ``appearance`` group)."""

    name = "appearance"
    reads = ("appearance",)

    def values(self, objects: ObjectAttributes) -> np.ndarray:
        if objects.appearance is None:
            raise InputError(None, f"video {objects.video!r} has no appearance features")
        return objects.appearance


def neighbour_relations(objects: ObjectAttributes) -> np.ndarray:
    """``(n, 3)`` each object's relation to its nearest neighbour in the same frame.

    Columns: the centre distance in mean box heights of the pair (capped at
    :data:`ALONE_DISTANCE`, which also stands for "alone in the frame"); the cosine between
    the two objects' flow vectors (0 when either is still); and their speed contrast
    ``|v_i - v_j| / (|v_i| + |v_j|)`` (0 for a pair moving alike, 1 for opposite or one still).
    These are the spatial graph's edges as features: two walkers converging until they touch,
    or one tailing another, are each ordinary alone. The last two are scale-free, so how fast
    the scene moves overall is the velocity density's business, not this one's.
    """
    relations = np.zeros((len(objects), 3))
    relations[:, 0] = ALONE_DISTANCE
    if not len(objects):
        return relations
    offsets = np.searchsorted(objects.frames, np.arange(objects.n_frames + 1))
    velocity = objects.velocity.astype(np.float64)
    speed = np.linalg.norm(velocity, axis=1)
    for start, stop in zip(offsets[:-1], offsets[1:], strict=True):
        if stop - start < 2:
            continue
        centres = objects.centres[start:stop].astype(np.float64)
        heights = objects.sizes[start:stop, 1].astype(np.float64)
        scale = np.maximum((heights[:, None] + heights[None, :]) / 2, 1e-6)
        distance = np.linalg.norm(centres[None, :, :] - centres[:, None, :], axis=2) / scale
        np.fill_diagonal(distance, np.inf)
        nearest = distance.argmin(axis=1)
        rows = np.arange(stop - start)
        own, other = velocity[start:stop], velocity[start:stop][nearest]
        own_speed, other_speed = speed[start:stop], speed[start:stop][nearest]
        relations[start:stop, 0] = np.minimum(distance[rows, nearest], ALONE_DISTANCE)
        relations[start:stop, 1] = (own * other).sum(axis=1) / np.maximum(own_speed * other_speed, 1e-12)
        relations[start:stop, 2] = np.linalg.norm(own - other, axis=1) / np.maximum(own_speed + other_speed, 1e-12)
    return relations


class InteractionDensity(KnnDensity):
    """kNN rarity of the object's relation to its nearest neighbour (:func:`neighbour_relations`)."""

    name = "interaction"
    reads = ("frames", "flow", "centres", "sizes")

    def values(self, objects: ObjectAttributes) -> np.ndarray:
        return neighbour_relations(objects)


DENSITY_CLASSES: dict[str, type[AttributeDensity]] = {
    cls.name: cls for cls in (VelocityDensity, SpeedDensity, ShapeDensity, ClassRarity, AppearanceKnn,
                               PlaceDensity, InteractionDensity)
}


def make_density(name: str, config: Mapping[str, Any] | None = None) -> AttributeDensity:
    """A density by registry name and constructor parameters."""
    if name not in DENSITY_CLASSES:
        raise InputError(None, f"unknown attribute {name!r}; choose from {', '.join(DENSITY_CLASSES)}")
    return DENSITY_CLASSES[name](**dict(config or {}))
