"""Interaction anomalies for the synthetic scene: pairs of objects that are only wrong together.

Why: the per-object anomalies (wrong direction, too fast, unusual object) can be found by
scoring each object alone. These cannot, so they show whether the graph (edges between
objects close in space and time) adds anything:

* ``converge``: two pedestrians walk towards each other in neighbouring lanes and brush
  past within :data:`CONTACT_GAP` px (shoulder to shoulder);
* ``follow``: one pedestrian tails another in the same lane, :data:`FOLLOW_GAP` px
  behind, at the same speed.

Each walker of a pair is an ordinary pedestrian: normal sprite, horizontal direction, a
speed drawn from :data:`~anograph.datasets.synthetic_scene.NORMAL_SPEED_RANGE`, a lane on
the walkway, the same sway; it has no vertical drift, which normal walkers have in a range
around zero. What is new is only the distance between the two.

For that to be new, the normal footage keeps a rule no interaction breaks: any two
pedestrians visible at the same time stay at least :data:`PERSONAL_SPACE` px apart (the
gap between their boxes), so they pass each other in separate lanes and never tail one
another closely. :func:`keep_personal_space` enforces it by redrawing, from a separate
random stream, every planned pedestrian that would come closer to one already placed.

A frame of an interaction video is anomalous while both walkers of the pair have at least
:data:`~anograph.datasets.synthetic_scene.MIN_VISIBLE_FRACTION` of their area in the
frame and their boxes are less than :data:`INTERACTION_GAP` px apart. The thresholds sit
far from each other (:data:`CONTACT_GAP`, :data:`FOLLOW_GAP` < :data:`INTERACTION_GAP`
< :data:`PERSONAL_SPACE`), and the pair's closest gap stays wider than the gap the
``motion`` detector's closing joins, so it sees two objects, not one merged blob.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from anograph.datasets.synthetic_scene import (
    MIN_VISIBLE_FRACTION,
    NORMAL_SPEED_RANGE,
    SceneObject,
    pedestrian_sprite,
    walking_sway,
    walkway_band,
)

INTERACTION_KINDS = ("converge", "follow")
PERSONAL_SPACE = 24.0  # px: the smallest gap between two boxes in normal footage
INTERACTION_GAP = 16.0  # px: a pair closer than this is interacting (the label)
CONTACT_GAP = 10.0  # px: vertical gap between the converging walkers as they pass
FOLLOW_GAP = 10.0  # px: the follower's distance behind the leader
CONVERGE_MEETING = 0.55  # the converging walkers pass at this fraction of the video
FOLLOW_ENTRY = 0.4  # the leader enters at this fraction of the video
MIN_INTERACTION_FRAMES = 40
MIN_INTERACTION_HEIGHT = 120
REDRAW_ATTEMPTS = 8


def object_boxes(scene_object: SceneObject, frames: np.ndarray) -> np.ndarray:
    """``(n, 4)`` ``x1, y1, x2, y2`` boxes as drawn (rounded corners) at ``frames``, which it must cover."""
    corners = np.round(scene_object.positions[frames - scene_object.start_frame])
    return np.concatenate([corners, corners + (scene_object.width, scene_object.height)], axis=1)


def box_gaps(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Euclidean distance between paired boxes, per row; 0 where they overlap or touch."""
    gap_x = np.maximum(0.0, np.maximum(first[:, 0] - second[:, 2], second[:, 0] - first[:, 2]))
    gap_y = np.maximum(0.0, np.maximum(first[:, 1] - second[:, 3], second[:, 1] - first[:, 3]))
    return np.hypot(gap_x, gap_y)


def visible_fractions(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Fraction of each box inside a ``width`` x ``height`` frame."""
    inside_w = np.clip(np.minimum(boxes[:, 2], width) - np.maximum(boxes[:, 0], 0), 0, None)
    inside_h = np.clip(np.minimum(boxes[:, 3], height) - np.maximum(boxes[:, 1], 0), 0, None)
    return inside_w * inside_h / ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))


def shared_frames(first: SceneObject, second: SceneObject, n_frames: int) -> np.ndarray:
    """Frames of the video in which both objects have a planned position."""
    start = max(first.start_frame, second.start_frame, 0)
    stop = min(first.start_frame + len(first.positions), second.start_frame + len(second.positions), n_frames)
    return np.arange(start, max(start, stop))


def pair_gaps(
    first: SceneObject, second: SceneObject, n_frames: int, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(frames, gaps, both_shown)``: box gap per shared frame, and whether both count as shown."""
    frames = shared_frames(first, second, n_frames)
    first_boxes, second_boxes = object_boxes(first, frames), object_boxes(second, frames)
    both_shown = (visible_fractions(first_boxes, width, height) >= MIN_VISIBLE_FRACTION) & (
        visible_fractions(second_boxes, width, height) >= MIN_VISIBLE_FRACTION
    )
    return frames, box_gaps(first_boxes, second_boxes), both_shown


def closest_visible_gap(first: SceneObject, second: SceneObject, n_frames: int, width: int, height: int) -> float:
    """Smallest box gap while both objects are at least partly in the frame (inf if never)."""
    frames = shared_frames(first, second, n_frames)
    first_boxes, second_boxes = object_boxes(first, frames), object_boxes(second, frames)
    in_view = (visible_fractions(first_boxes, width, height) > 0) & (visible_fractions(second_boxes, width, height) > 0)
    gaps = box_gaps(first_boxes[in_view], second_boxes[in_view])
    return float(gaps.min()) if gaps.size else float("inf")


def keep_personal_space(
    planned: list[SceneObject],
    fixed: list[SceneObject],
    redraw: Callable[[SceneObject], SceneObject],
    n_frames: int,
    width: int,
    height: int,
) -> list[SceneObject]:
    """The ``planned`` pedestrians, each kept :data:`PERSONAL_SPACE` px from all placed before it.

    ``fixed`` objects (an anomaly, an interacting pair) are placed first and never moved.
    A planned pedestrian that comes too close is replaced by ``redraw(pedestrian)`` (a new
    one with the same entry), up to :data:`REDRAW_ATTEMPTS` times, then left out. Returns
    the kept pedestrians followed by ``fixed``, so the fixed objects are drawn on top.
    """
    placed = list(fixed)
    kept: list[SceneObject] = []
    for pedestrian in planned:
        candidate = pedestrian
        for attempt in range(REDRAW_ATTEMPTS + 1):
            if attempt:
                candidate = redraw(pedestrian)
            if all(
                closest_visible_gap(candidate, other, n_frames, width, height) >= PERSONAL_SPACE for other in placed
            ):
                placed.append(candidate)
                kept.append(candidate)
                break
    return kept + list(fixed)


def _straight_walker(
    rng: np.random.Generator,
    n_frames: int,
    width: int,
    x_at_frame: Callable[[np.ndarray, int], np.ndarray],
    y_top: float,
    sprite: tuple[list[np.ndarray], list[np.ndarray]],
) -> SceneObject:
    """A pedestrian on a straight horizontal line, kept for the frames it is (partly) on screen."""
    images, masks = sprite
    sprite_w = images[0].shape[1]
    frames = np.arange(n_frames)
    xs = x_at_frame(frames, sprite_w)
    on_screen = frames[(xs > -sprite_w) & (xs < width)]
    start, stop = int(on_screen[0]), int(on_screen[-1]) + 1
    steps = np.arange(stop - start, dtype=np.float64)
    ys = y_top + walking_sway(rng, steps)
    positions = np.stack([xs[start:stop], ys], axis=1)
    return SceneObject(images, masks, start, positions, np.zeros(len(positions), dtype=bool))


def converging_pair(rng: np.random.Generator, n_frames: int, width: int, height: int) -> list[SceneObject]:
    """Two walkers heading for each other in neighbouring lanes, passing :data:`CONTACT_GAP` px apart."""
    sprites = [pedestrian_sprite(rng), pedestrian_sprite(rng)]
    heights = [images[0].shape[0] for images, _ in sprites]
    low, _ = walkway_band(height, 0)
    _, high = walkway_band(height, heights[0] + CONTACT_GAP + heights[1])
    upper_y = float(rng.uniform(low, high))
    lanes = [upper_y, upper_y + heights[0] + CONTACT_GAP]
    meeting_frame = int(round(CONVERGE_MEETING * n_frames))
    meeting_x = width / 2.0 + float(rng.uniform(-0.1, 0.1)) * width
    upper_direction = 1.0 if rng.random() < 0.5 else -1.0
    pair = []
    for sprite, lane, direction in zip(sprites, lanes, (upper_direction, -upper_direction), strict=True):
        speed = float(rng.uniform(*NORMAL_SPEED_RANGE))

        def x_at_frame(frames: np.ndarray, sprite_w: int, speed: float = speed, direction: float = direction) -> np.ndarray:
            return meeting_x - sprite_w / 2.0 + direction * speed * (frames - meeting_frame)

        pair.append(_straight_walker(rng, n_frames, width, x_at_frame, lane, sprite))
    return pair


def following_pair(rng: np.random.Generator, n_frames: int, width: int, height: int) -> list[SceneObject]:
    """A leader and a follower :data:`FOLLOW_GAP` px behind it, same lane, same speed."""
    leader_sprite, follower_sprite = pedestrian_sprite(rng), pedestrian_sprite(rng)
    leader_h, leader_w = leader_sprite[0][0].shape[:2]
    follower_h = follower_sprite[0][0].shape[0]
    low, high = walkway_band(height, max(leader_h, follower_h))
    leader_y = float(rng.uniform(low + abs(follower_h - leader_h), high))
    follower_y = leader_y + leader_h - follower_h  # feet on the same line
    speed = float(rng.uniform(*NORMAL_SPEED_RANGE))
    direction = 1.0 if rng.random() < 0.5 else -1.0
    entry_frame = int(round(FOLLOW_ENTRY * n_frames))

    def leader_x(frames: np.ndarray, sprite_w: int) -> np.ndarray:
        edge = -float(sprite_w) if direction > 0 else float(width)
        return edge + direction * speed * (frames - entry_frame)

    def follower_x(frames: np.ndarray, sprite_w: int) -> np.ndarray:
        behind = -(FOLLOW_GAP + sprite_w) if direction > 0 else leader_w + FOLLOW_GAP
        return leader_x(frames, leader_w) + behind

    return [
        _straight_walker(rng, n_frames, width, leader_x, leader_y, leader_sprite),
        _straight_walker(rng, n_frames, width, follower_x, follower_y, follower_sprite),
    ]


def interacting_pair(rng: np.random.Generator, kind: str, n_frames: int, width: int, height: int) -> list[SceneObject]:
    """The pair of one :data:`INTERACTION_KINDS` kind, labelled anomalous while it interacts."""
    if kind == "converge":
        pair = converging_pair(rng, n_frames, width, height)
    elif kind == "follow":
        pair = following_pair(rng, n_frames, width, height)
    else:
        raise ValueError(f"unknown interaction kind {kind!r}")
    frames, gaps, both_shown = pair_gaps(pair[0], pair[1], n_frames, width, height)
    interacting = frames[both_shown & (gaps < INTERACTION_GAP)]
    for member in pair:
        member.anomalous[interacting - member.start_frame] = True
        member.kind = kind
    return pair
