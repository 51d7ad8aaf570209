"""Pseudo-anomalies: normal training objects altered the way real anomalies differ.

Each generator returns a copy of a video's :class:`ObjectAttributes` in which *every*
object is altered (validation then keeps the alteration for a third of the tracks), and changes only the
fields that alteration implies, so a density that does not read them is unaffected:

================  ===========================================================================
kind              what it stands for and how it is made
================  ===========================================================================
``speed``         the same track replayed twice as fast (frames skipped): every flow speed
                  and flow vector doubled
``reverse``       the same track played backwards, against the usual direction: flow vectors
                  negated, direction histogram turned by half a turn
``cross``         motion across the usual direction: flow vectors turned by a quarter turn,
                  direction histogram likewise
``shape``         an object of another build in a normal one's place (a vehicle among walkers):
                  the box's width and height swapped about its centre
``class``         an object of a class normal footage rarely shows, as confidently detected:
                  its class scores moved to a class from the rarer half of the training
                  class mass (needs a detector with at least two classes)
``place``         an ordinary object where normal footage has none (a walker on the lawn, a
                  walker's size where the camera sees only distant ones): the whole track moved
                  by one offset, its first box to a place drawn uniformly over the frame; its
                  box size, build and motion stay as they were
``missed``        a track replayed twice as fast that the detector missed: altered as ``speed``
                  and taken out of the object list, its motion left in the frame's cell speeds
                  (made only to judge the motion field, which reads no detection)
``follow``        one object tailing another closely: placed just behind a neighbour in the
                  same frame and moving with the neighbour's flow, so its own speed, direction
                  and look stay normal; only its relation to the neighbour is new (needs
                  frames with two or more objects)
================  ===========================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from anograph.attributes.objects import (
    MOVING_DX,
    MOVING_DY,
    MOVING_FRACTION,
    ORIENTATION_START,
    ObjectAttributes,
)

#: How far behind its neighbour a follower is placed, in the neighbour's box heights.
FOLLOW_GAP = 0.8


@dataclass(frozen=True)
class PseudoAnomalyContext:
    """What the generators may know about the training set: its class mass, per class."""

    class_mass: np.ndarray

    @property
    def rare_classes(self) -> np.ndarray:
        order = np.argsort(self.class_mass, kind="stable")
        return order[: max(1, len(order) // 2)]


def speed_up(objects: ObjectAttributes, rng: np.random.Generator, context: PseudoAnomalyContext) -> ObjectAttributes:
    flow = objects.flow.copy()
    speeds = [column for column in range(flow.shape[1]) if column != MOVING_FRACTION]
    flow[:, speeds] *= 2.0
    return objects.with_changes(flow=flow)


def reverse(objects: ObjectAttributes, rng: np.random.Generator, context: PseudoAnomalyContext) -> ObjectAttributes:
    flow = objects.flow.copy()
    flow[:, [MOVING_DX, MOVING_DY]] *= -1.0
    bins = flow[:, ORIENTATION_START:]
    flow[:, ORIENTATION_START:] = np.roll(bins, bins.shape[1] // 2, axis=1)
    return objects.with_changes(flow=flow)


def cross(objects: ObjectAttributes, rng: np.random.Generator, context: PseudoAnomalyContext) -> ObjectAttributes:
    flow = objects.flow.copy()
    flow[:, MOVING_DX], flow[:, MOVING_DY] = -objects.flow[:, MOVING_DY], objects.flow[:, MOVING_DX]
    bins = flow[:, ORIENTATION_START:]
    flow[:, ORIENTATION_START:] = np.roll(bins, bins.shape[1] // 4, axis=1)
    return objects.with_changes(flow=flow)


def swap_shape(objects: ObjectAttributes, rng: np.random.Generator, context: PseudoAnomalyContext) -> ObjectAttributes:
    return objects.with_changes(sizes=objects.sizes[:, ::-1].copy())


def swap_class(objects: ObjectAttributes, rng: np.random.Generator, context: PseudoAnomalyContext) -> ObjectAttributes:
    scores = np.zeros_like(objects.class_scores)
    confidence = objects.class_scores.max(axis=1) if scores.shape[1] else np.zeros(len(objects))
    chosen = rng.choice(context.rare_classes, size=len(objects))
    scores[np.arange(len(objects)), chosen] = np.where(confidence > 0, confidence, 1.0)
    return objects.with_changes(class_scores=scores)


def move_place(objects: ObjectAttributes, rng: np.random.Generator, context: PseudoAnomalyContext) -> ObjectAttributes:
    if not len(objects):
        return objects
    identity = np.where(objects.tracks >= 0, objects.tracks, -1 - np.arange(len(objects)))
    _, first, track_of = np.unique(identity, return_index=True, return_inverse=True)
    frame = np.array([objects.frame_width or float((objects.centres[:, 0] + objects.sizes[:, 0] / 2).max()), 1.0])
    half = objects.sizes[first] / 2
    targets = rng.uniform(half, np.maximum(frame - half, half))
    centres = objects.centres + (targets - objects.centres[first])[track_of]
    return objects.with_changes(centres=np.clip(centres, 0.0, frame).astype(objects.centres.dtype))


def follow(objects: ObjectAttributes, rng: np.random.Generator, context: PseudoAnomalyContext) -> ObjectAttributes:
    centres, flow = objects.centres.copy(), objects.flow.copy()
    offsets = np.searchsorted(objects.frames, np.arange(objects.n_frames + 1))
    for start, stop in zip(offsets[:-1], offsets[1:], strict=True):
        if stop - start < 2:
            continue
        for row in range(start, stop):
            leader = rng.choice([other for other in range(start, stop) if other != row])
            motion = objects.velocity[leader].astype(np.float64)
            norm = np.linalg.norm(motion)
            direction = motion / norm if norm > 1e-9 else np.array([1.0, 0.0])
            centres[row] = objects.centres[leader] - direction * FOLLOW_GAP * objects.sizes[leader, 1]
            flow[row] = objects.flow[leader]
    return objects.with_changes(centres=centres, flow=flow)


#: Generator of each kind, and the fields it changes.
GENERATORS: dict[str, tuple[Callable[..., ObjectAttributes], tuple[str, ...]]] = {
    "speed": (speed_up, ("flow",)),
    "reverse": (reverse, ("flow",)),
    "cross": (cross, ("flow",)),
    "shape": (swap_shape, ("sizes",)),
    "class": (swap_class, ("class_scores",)),
    "place": (move_place, ("centres",)),
    "follow": (follow, ("centres", "flow")),
}

#: Kinds whose altered objects join the frame beside their originals instead of replacing them:
#: a follower is a copy of its leader's motion, so replacing the object would take its own motion
#: out of the frame and make the frame look *less* unusual to a per-object density.
JOINING_KINDS = frozenset({"follow"})

#: The kind for an anomalous object the detector missed: a track replayed twice as fast, as ``speed``,
#: and taken out of the object list, so that only what reads the frame without detections sees it
#: (:meth:`anograph.selection.validation.ValidationScores.add_motion_field`).
MISSED = "missed"

#: The kinds each attribute family is meant to catch (used to pick a family's variant).
MOTION_KINDS = ("speed", "reverse", "cross")


def applicable_kinds(videos: list[ObjectAttributes]) -> list[str]:
    """The kinds these training videos can make: ``class`` needs two classes, ``follow`` shared frames."""
    kinds = [*MOTION_KINDS, "shape", "place"]
    if min((video.class_scores.shape[1] for video in videos), default=0) >= 2:
        kinds.append("class")
    shared = sum(int((np.bincount(video.frames, minlength=1) >= 2).sum()) for video in videos if len(video))
    if shared >= 10:
        kinds.append("follow")
    return kinds


def eligible_rows(objects: ObjectAttributes, kind: str) -> np.ndarray:
    """Boolean mask of the objects a kind can alter meaningfully (``follow``: not alone in the frame)."""
    if kind != "follow" or not len(objects):
        return np.ones(len(objects), bool)
    return np.bincount(objects.frames, minlength=objects.n_frames)[objects.frames] >= 2
