"""Small synthetic :class:`ObjectAttributes` for the attribute and selection tests (no shard, no video).

Objects are drawn independently per frame: a box centre and a perspective height (boxes
lower in the frame are nearer, so taller), a flow vector from a scene's speed and heading
rules, ``flow_stats`` columns consistent with that vector (the 15 columns of
:mod:`anograph.extraction.features.flow_stats`, 8 orientation bins), class scores from a
detector whose class 0 dominates, and an 8-d appearance vector per class.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from anograph.attributes.objects import ObjectAttributes
from anograph.extraction.features.layout import FeatureLayout
from anograph.io.shards import ShardMetadata, VideoFeatures

N_ORIENTATION_BINS = 8
APPEARANCE_WIDTH = 8
#: Frame width in frame heights (4:3).
FRAME_ASPECT = 4 / 3


def flow_rows(velocity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(n, 15)`` ``flow_stats`` columns of boxes whose moving pixels have mean flow ``velocity``."""
    velocity = np.asarray(velocity, np.float64).reshape(-1, 2)
    magnitude = np.linalg.norm(velocity, axis=1)
    n = len(velocity)
    fraction = rng.uniform(0.3, 0.7, n)
    flow = np.zeros((n, 7 + N_ORIENTATION_BINS))
    flow[:, 0] = fraction * magnitude  # the box mean mixes in the still background
    flow[:, 1] = 0.5 * fraction * magnitude
    flow[:, 2] = 0.95 * magnitude
    flow[:, 3:5] = velocity
    flow[:, 5] = magnitude
    flow[:, 6] = fraction
    angle = np.arctan2(velocity[:, 1], velocity[:, 0])
    bins = np.rint(angle / (2 * np.pi / N_ORIENTATION_BINS)).astype(np.int64) % N_ORIENTATION_BINS
    flow[np.arange(n), 7 + bins] = 0.8 * magnitude  # most moving pixels in the main bin ...
    flow[np.arange(n), 7 + (bins + 1) % N_ORIENTATION_BINS] = 0.2 * magnitude  # ... the rest beside it
    return flow.astype(np.float32)


def perspective_speed(centres: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """Image speed proportional to box height: the same walking pace, nearer is faster (about 3x at the bottom)."""
    return 0.1 * heights


def uniform_speed(centres: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """The same image speed everywhere in the frame."""
    return np.full(len(centres), 0.01)


def any_heading(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(-np.pi, np.pi, n)


def rightward_heading(rng: np.random.Generator, n: int) -> np.ndarray:
    """A one-way lane: everyone moves to the right, give or take a little."""
    return rng.normal(0.0, 0.15, n)


def make_video(
    name: str,
    rng: np.random.Generator,
    n_frames: int = 100,
    objects_per_frame: tuple[int, int] = (1, 4),
    speed: Callable[[np.ndarray, np.ndarray], np.ndarray] = uniform_speed,
    heading: Callable[[np.random.Generator, int], np.ndarray] = any_heading,
    class_shares: tuple[float, ...] = (0.9, 0.07, 0.03),
    speed_spread: float = 0.1,
    x_range: tuple[float, float] = (0.1, FRAME_ASPECT - 0.1),
    perspective: bool = True,
) -> ObjectAttributes:
    """A video of ``n_frames`` frames, each with ``objects_per_frame`` (inclusive range) objects.

    Box centres are spread over ``x_range`` across (frame heights) and over most of the height;
    with ``perspective`` boxes lower in the frame are taller, without it all are 0.12 tall.
    """
    counts = rng.integers(objects_per_frame[0], objects_per_frame[1] + 1, n_frames)
    frames = np.repeat(np.arange(n_frames), counts).astype(np.int64)
    n = len(frames)
    centres = np.stack([rng.uniform(*x_range, n), rng.uniform(0.1, 0.9, n)], axis=1)
    # Perspective: 0.065 tall at the top to 0.185 at the bottom.
    heights = 0.05 + 0.15 * centres[:, 1] if perspective else np.full(n, 0.12)
    sizes = np.stack([0.4 * heights, heights], axis=1)
    speeds = speed(centres, heights) * rng.lognormal(0.0, speed_spread, n)
    angles = heading(rng, n)
    velocity = speeds[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    classes = rng.choice(len(class_shares), size=n, p=np.asarray(class_shares) / sum(class_shares))
    class_scores = np.zeros((n, len(class_shares)), np.float32)
    class_scores[np.arange(n), classes] = rng.uniform(0.5, 0.95, n)
    prototypes = np.random.default_rng(1234).normal(0.0, 1.0, (len(class_shares), APPEARANCE_WIDTH))
    appearance = prototypes[classes] + rng.normal(0.0, 0.3, (n, APPEARANCE_WIDTH))
    return ObjectAttributes(
        video=name, frames=frames, n_frames=n_frames,
        centres=centres.astype(np.float32), sizes=sizes.astype(np.float32),
        flow=flow_rows(velocity, rng), class_scores=class_scores,
        appearance=appearance.astype(np.float32), frame_width=FRAME_ASPECT,
    )


def make_videos(n_videos: int = 4, seed: int = 0, **options) -> list[ObjectAttributes]:
    """``n_videos`` videos of one scene (``options`` as :func:`make_video`)."""
    rng = np.random.default_rng(seed)
    return [make_video(f"video_{index}", rng, **options) for index in range(n_videos)]


def hand_made(frames: list[int], centres: list[tuple[float, float]], velocities: list[tuple[float, float]],
              height: float = 0.1, n_frames: int | None = None) -> ObjectAttributes:
    """Objects placed by hand, all of one height, one class and a constant appearance."""
    n = len(frames)
    rng = np.random.default_rng(0)
    return ObjectAttributes(
        video="hand", frames=np.asarray(frames, np.int64),
        n_frames=n_frames if n_frames is not None else max(frames) + 1,
        centres=np.asarray(centres, np.float32), sizes=np.tile(np.float32([0.4 * height, height]), (n, 1)),
        flow=flow_rows(np.asarray(velocities, np.float64), rng),
        class_scores=np.ones((n, 1), np.float32), appearance=np.zeros((n, APPEARANCE_WIDTH), np.float32),
    )


def make_tracked_video(name: str, rng: np.random.Generator, n_tracks: int = 12, n_frames: int = 60,
                       flow_noise: float = 0.6) -> ObjectAttributes:
    """Walkers each followed over every frame: a steady velocity per track, its flow noisy from frame to frame.

    Each frame's flow statistics are the track's velocity times a log-normal factor of spread
    ``flow_noise`` (optical flow's frame-to-frame noise); averaged along the track, it is steady.
    """
    tracks = np.tile(np.arange(n_tracks), n_frames)
    frames = np.repeat(np.arange(n_frames), n_tracks).astype(np.int64)
    n = len(frames)
    start = np.stack([rng.uniform(0.1, FRAME_ASPECT - 0.1, n_tracks), rng.uniform(0.2, 0.8, n_tracks)], axis=1)
    heading = rng.uniform(-np.pi, np.pi, n_tracks)
    pace = 0.01 * rng.lognormal(0.0, 0.1, n_tracks)
    velocity = (pace[:, None] * np.stack([np.cos(heading), np.sin(heading)], axis=1))[tracks]
    centres = start[tracks] + 0.1 * velocity * frames[:, None]
    heights = np.full(n, 0.12)
    noisy = velocity * rng.lognormal(0.0, flow_noise, n)[:, None]
    class_scores = np.zeros((n, 2), np.float32)
    class_scores[:, 0] = 0.9
    return ObjectAttributes(
        video=name, frames=frames, n_frames=n_frames, centres=centres.astype(np.float32),
        sizes=np.stack([0.4 * heights, heights], axis=1).astype(np.float32), flow=flow_rows(noisy, rng),
        class_scores=class_scores, appearance=None, tracks=tracks.astype(np.int64),
    )


def as_video_features(objects: ObjectAttributes, camera: str = "", frame_height: int = 240,
                      fps: float = 10.0) -> VideoFeatures:
    """The shard an extraction would have written for ``objects`` (boxes in pixels of ``frame_height``-high
    frames; the class, flow statistics and appearance groups), recording ``camera``."""
    layout = FeatureLayout.of([("class", objects.class_scores.shape[1]), ("flow_stats", objects.flow.shape[1]),
                               ("appearance", APPEARANCE_WIDTH)])
    corners = np.concatenate([objects.centres - objects.sizes / 2, objects.centres + objects.sizes / 2], axis=1)
    appearance = objects.appearance if objects.appearance is not None else np.zeros((len(objects), APPEARANCE_WIDTH))
    metadata = ShardMetadata(
        video=objects.video, n_frames=objects.n_frames, fps=fps,
        width=int(round((objects.frame_width or FRAME_ASPECT) * frame_height)), height=frame_height,
        source=f"synthetic/{objects.video}", detector={"name": "synthetic"},
        class_names=[f"class{index}" for index in range(objects.class_scores.shape[1])],
        feature_layout=layout, camera=camera,
    )
    features = np.concatenate([objects.class_scores, objects.flow, appearance], axis=1)
    return VideoFeatures(metadata=metadata, frames=objects.frames.astype(np.int32),
                         boxes=(corners * frame_height).astype(np.float32), scores=np.ones(len(objects), np.float32),
                         class_ids=objects.class_scores.argmax(axis=1).astype(np.int32),
                         features=features.astype(np.float16), sources=objects.sources.astype(np.int8),
                         track_ids=objects.tracks.astype(np.int32))
