"""Object scores averaged along their track: an anomaly lasts, a one-frame flow glitch does not.

A real anomalous object (a cyclist, a running person) stays anomalous over the frames it is
tracked in, while optical flow and box jitter make a normal object look odd for a frame now
and then. Averaging each object's score with its own track's scores over ``radius`` frames
on either side keeps the first and damps the second. Whether a dataset gets it, and over how
many frames, is part of the label-free model selection (:mod:`anograph.selection.choice`).
Objects without a track (id < 0) keep their own score.
"""

from __future__ import annotations

import numpy as np

from anograph.attributes.objects import ObjectAttributes


def smooth_along_tracks(objects: ObjectAttributes, scores: np.ndarray, radius: int) -> np.ndarray:
    """``(n,)`` each object's mean score over its track's objects within ``radius`` frames of it."""
    scores = np.asarray(scores, np.float64)
    if radius <= 0 or not len(scores):
        return scores
    smoothed = scores.copy()
    tracked = np.nonzero(objects.tracks >= 0)[0]
    if not len(tracked):
        return smoothed
    order = tracked[np.lexsort((objects.frames[tracked], objects.tracks[tracked]))]
    tracks, frames = objects.tracks[order], objects.frames[order]
    values = scores[order]
    starts = np.r_[0, np.nonzero(np.diff(tracks))[0] + 1]
    stops = np.r_[starts[1:], len(order)]
    cumulative = np.r_[0.0, np.cumsum(values)]
    for start, stop in zip(starts, stops, strict=True):
        track_frames = frames[start:stop]
        low = start + np.searchsorted(track_frames, track_frames - radius, side="left")
        high = start + np.searchsorted(track_frames, track_frames + radius, side="right")
        smoothed[order[start:stop]] = (cumulative[high] - cumulative[low]) / (high - low)
    return smoothed
