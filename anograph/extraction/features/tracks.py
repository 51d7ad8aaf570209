"""Box tracks: frame-to-frame box matching that keeps an id per object across frames.

Each frame's boxes are matched to the previous frame's by a minimum-cost assignment
(Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``) of box centres, with cost
= centre distance / current box height; pairs costing more than ``max_match_distance``
stay unmatched. A matched box continues its match's track (same id); an unmatched box
starts a new track with the next id (ids count from 0 within a video). A track that finds
no match in a frame ends; tracks do not bridge gaps.

Per box, the tracker reports its track id, its centre displacement from the matched box
(its velocity, pixels per frame) and the mean displacement and mean speed (length of the
displacement) over the track's last ``window`` displacements, so a one-frame jitter of a
detector box weighs less than in the single-frame velocity.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from anograph.errors import InputError


@dataclass
class TrackStep:
    """What the tracker says about one frame's ``n`` boxes.

    Attributes
    ----------
    track_ids:
        ``(n,)`` int32 track id of each box.
    matched:
        ``(n,)`` bool, whether the box continues a track of the previous frame.
    velocity:
        ``(n, 2)`` float32 centre displacement from the matched box, pixels per frame; 0 when unmatched.
    mean_velocity:
        ``(n, 2)`` float32 mean displacement over the track's last ``window`` steps; 0 for a new track.
    mean_speed:
        ``(n,)`` float32 mean displacement length over the same steps.
    steps:
        ``(n,)`` int32 how many displacements those means average (0 .. ``window``).
    """

    track_ids: np.ndarray
    matched: np.ndarray
    velocity: np.ndarray
    mean_velocity: np.ndarray
    mean_speed: np.ndarray
    steps: np.ndarray


class BoxTracker:
    """Links boxes of consecutive frames into tracks (see the module docstring).

    Parameters
    ----------
    max_match_distance:
        Largest centre displacement, in current box heights, for a box to continue a
        track of the previous frame. Default 1.0.
    window:
        How many of a track's latest displacements its mean velocity and speed average.
        Default 5.
    """

    def __init__(self, max_match_distance: float = 1.0, window: int = 5) -> None:
        if max_match_distance <= 0:
            raise InputError(None, f"max_match_distance must be positive, got {max_match_distance}")
        if window < 1:
            raise InputError(None, f"track window must be at least 1 frame, got {window}")
        self.max_match_distance = float(max_match_distance)
        self.window = int(window)
        self.reset()

    def reset(self) -> None:
        """Forget every track (call before each video)."""
        self._centres = np.zeros((0, 2), np.float32)
        self._ids = np.zeros(0, np.int32)
        self._histories: list[deque[np.ndarray]] = []
        self._next_id = 0

    def match(self, centres: np.ndarray, heights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices ``(rows, cols)`` of accepted pairs of current boxes and previous-frame boxes."""
        previous = self._centres
        if len(centres) == 0 or len(previous) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        distance = np.linalg.norm(centres[:, None, :] - previous[None, :, :], axis=2)
        cost = distance / np.maximum(heights, 1.0)[:, None]
        rows, cols = linear_sum_assignment(cost)
        accepted = cost[rows, cols] <= self.max_match_distance
        return rows[accepted], cols[accepted]

    def update(self, boxes: np.ndarray) -> TrackStep:
        """Match the ``(n, 4)`` xyxy ``boxes`` of the next frame to the tracks; advance them."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        n = len(boxes)
        centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
        heights = boxes[:, 3] - boxes[:, 1]
        rows, cols = self.match(centres, heights)
        previous_of = np.full(n, -1, np.int64)
        previous_of[rows] = cols
        step = TrackStep(
            track_ids=np.zeros(n, np.int32),
            matched=previous_of >= 0,
            velocity=np.zeros((n, 2), np.float32),
            mean_velocity=np.zeros((n, 2), np.float32),
            mean_speed=np.zeros(n, np.float32),
            steps=np.zeros(n, np.int32),
        )
        histories: list[deque[np.ndarray]] = []
        for index in range(n):
            previous = previous_of[index]
            if previous < 0:
                step.track_ids[index] = self._next_id
                self._next_id += 1
                history: deque[np.ndarray] = deque(maxlen=self.window)
            else:
                step.track_ids[index] = self._ids[previous]
                history = self._histories[previous]
                displacement = centres[index] - self._centres[previous]
                history.append(displacement)
                step.velocity[index] = displacement
                recent = np.asarray(history, np.float32)
                step.mean_velocity[index] = recent.mean(axis=0)
                step.mean_speed[index] = np.linalg.norm(recent, axis=1).mean()
                step.steps[index] = len(recent)
            histories.append(history)
        self._centres, self._ids, self._histories = centres.astype(np.float32), step.track_ids.copy(), histories
        return step

    def __repr__(self) -> str:
        return f"BoxTracker(max_match_distance={self.max_match_distance}, window={self.window})"
