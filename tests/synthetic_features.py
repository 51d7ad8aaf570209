"""Small synthetic feature shards for graph, model and scoring tests (no detector, no video).

Objects move along straight tracks; each track has its own feature pattern, and every
frame shares a slowly drifting "scene" component. That gives the structure real shards
have and DGI can learn: objects of one frame and of consecutive frames are alike, while a
row-shuffled feature matrix mixes frames and tracks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from anograph.extraction.features.layout import FeatureLayout
from anograph.io.shards import ShardMetadata, VideoFeatures

FRAME_WIDTH, FRAME_HEIGHT = 320, 240
DEFAULT_LAYOUT = FeatureLayout.of([("appearance", 12), ("geometry", 4)])


def make_video(
    name: str,
    rng: np.random.Generator,
    n_frames: int = 40,
    n_tracks: int = 4,
    layout: FeatureLayout = DEFAULT_LAYOUT,
    empty_frames: Sequence[int] = (),
    drop_probability: float = 0.15,
    track_patterns: np.ndarray | None = None,
) -> VideoFeatures:
    """A video of ``n_tracks`` moving boxes; ``empty_frames`` have no objects at all.

    ``track_patterns`` (``(n_tracks, appearance width)``) fixes the tracks' appearance so
    several videos share one "normal" distribution; random when ``None``.
    """
    appearance_width = layout.width - 4
    if track_patterns is None:
        track_patterns = rng.normal(0.0, 1.0, (n_tracks, appearance_width))
    starts = rng.uniform([0, 0], [FRAME_WIDTH - 60, FRAME_HEIGHT - 80], (n_tracks, 2))
    velocities = rng.normal(0.0, 1.5, (n_tracks, 2))
    sizes = rng.uniform([20, 40], [40, 70], (n_tracks, 2))
    scene = np.cumsum(rng.normal(0.0, 0.1, (n_frames, appearance_width)), axis=0)
    frames, boxes, features = [], [], []
    for frame in range(n_frames):
        if frame in set(empty_frames):
            continue
        for track in range(n_tracks):
            if rng.random() < drop_probability:
                continue
            x1, y1 = starts[track] + velocities[track] * frame
            w, h = sizes[track]
            x1, y1 = np.clip(x1, 0, FRAME_WIDTH - w), np.clip(y1, 0, FRAME_HEIGHT - h)
            box = np.array([x1, y1, x1 + w, y1 + h])
            appearance = (
                track_patterns[track % len(track_patterns)]
                + scene[frame]
                + rng.normal(0, 0.2, appearance_width)
            )
            geometry = np.array(
                [(x1 + w / 2) / FRAME_WIDTH, (y1 + h / 2) / FRAME_HEIGHT, w / FRAME_WIDTH, h / FRAME_HEIGHT]
            )
            frames.append(frame)
            boxes.append(box)
            features.append(np.concatenate([appearance, geometry]))
    n = len(frames)
    metadata = ShardMetadata(
        video=name,
        n_frames=n_frames,
        fps=10.0,
        width=FRAME_WIDTH,
        height=FRAME_HEIGHT,
        source=f"synthetic/{name}.parquet",
        detector={"name": "synthetic"},
        class_names=["person", "bicycle"],
        feature_layout=layout,
    )
    return VideoFeatures(
        metadata=metadata,
        frames=np.asarray(frames, np.int32).reshape(n),
        boxes=np.asarray(boxes, np.float32).reshape(n, 4),
        scores=np.ones(n, np.float32),
        class_ids=np.zeros(n, np.int32),
        features=np.asarray(features, np.float32).reshape(n, layout.width).astype(np.float16),
    )


def make_videos(count: int, seed: int, **kwargs) -> list[VideoFeatures]:
    """``count`` videos sharing one set of track patterns (one scene's "normal")."""
    rng = np.random.default_rng(seed)
    layout = kwargs.get("layout", DEFAULT_LAYOUT)
    patterns = np.random.default_rng(12345).normal(0.0, 1.0, (kwargs.get("n_tracks", 4), layout.width - 4))
    return [make_video(f"video{index:02d}", rng, track_patterns=patterns, **kwargs) for index in range(count)]


def random_nodes(
    rng: np.random.Generator, frame_sizes: Sequence[int], width: int = 6
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random ``(frame_offsets, boxes, features)`` with the given objects per frame.

    Boxes cluster in a small area so that many pairs overlap (non-trivial IoU).
    """
    frame_offsets = np.concatenate([[0], np.cumsum(frame_sizes)]).astype(np.int64)
    n = int(frame_offsets[-1])
    corners = rng.uniform(0, 40, (n, 2))
    sizes = rng.uniform(5, 30, (n, 2))
    boxes = np.concatenate([corners, corners + sizes], axis=1)
    features = rng.normal(0, 1, (n, width))
    return frame_offsets, boxes, features
