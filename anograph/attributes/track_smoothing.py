"""Object scores averaged along their track: an anomaly lasts, a one-frame flow glitch does not.

A real anomalous object (a cyclist, a running person) stays anomalous over the frames it is
tracked in, while optical flow and box jitter make a normal object look odd for a frame now
and then. Averaging each object's score with its own track's scores over ``radius`` frames
on either side keeps the first and damps the second. Whether a dataset gets it, and over how
many frames, is part of the label-free model selection (:mod:`anograph.selection.choice`).
Objects without a track (id < 0) keep their own score. The same averaging serves features
too: the velocity mixture and the one-sided speed density can read their flow statistics averaged
along the track (their ``track_radius``; :func:`flow_along_tracks`), so that a frame's flow noise
is averaged out before the density judges the motion.
"""

from __future__ import annotations

import numpy as np

from anograph.attributes.objects import ObjectAttributes


def smooth_along_tracks(objects: ObjectAttributes, scores: np.ndarray, radius: int) -> np.ndarray:
    """``(n,)`` or ``(n, k)``: each object's mean value over its track's objects within ``radius`` frames of it."""
    return smooth_track_scores(objects.tracks, objects.frames, scores, radius)


def flow_along_tracks(objects: ObjectAttributes, radius: int) -> ObjectAttributes:
    """The objects with their flow statistics averaged along their tracks over ``radius`` frames (as they are at 0)."""
    if radius <= 0:
        return objects
    return objects.with_changes(flow=smooth_along_tracks(objects, objects.flow, radius))


def smooth_track_scores(tracks: np.ndarray, frames: np.ndarray, scores: np.ndarray, radius: int) -> np.ndarray:
    """:func:`smooth_along_tracks` on plain arrays: ``(n,)`` track ids (-1 untracked), frame indices, and
    ``(n,)`` scores or ``(n, k)`` rows (each column averaged on its own).

    Live scoring (:class:`anograph.serving.live_scorer.StreamScorer`) calls it on the frames it holds.
    """
    scores = np.asarray(scores, np.float64)
    if radius <= 0 or not len(scores):
        return scores
    tracks, frames = np.asarray(tracks), np.asarray(frames)
    smoothed = scores.copy()
    tracked = np.nonzero(tracks >= 0)[0]
    if not len(tracked):
        return smoothed
    order = tracked[np.lexsort((frames[tracked], tracks[tracked]))]
    track_of, frame_of = tracks[order], frames[order]
    cumulative = np.concatenate([np.zeros((1, *scores.shape[1:])), np.cumsum(scores[order], axis=0)])
    starts = np.r_[0, np.nonzero(np.diff(track_of))[0] + 1]
    stops = np.r_[starts[1:], len(order)]
    for start, stop in zip(starts, stops, strict=True):
        track_frames = frame_of[start:stop]
        low = start + np.searchsorted(track_frames, track_frames - radius, side="left")
        high = start + np.searchsorted(track_frames, track_frames + radius, side="right")
        counts = (high - low).reshape(-1, *([1] * (scores.ndim - 1)))
        smoothed[order[start:stop]] = (cumulative[high] - cumulative[low]) / counts
    return smoothed
