"""Synthetic feature shards at benchmark scale, in the real shard format (anograph.io.shards).

Each video has ``objects`` tracks moving across a 640x360 frame for ``frames`` frames (every
track present in every frame, so the graph has ``objects`` spatial and ``2 * objects``
temporal edges per node). A node's feature is its track's pattern plus noise, as float16:
consecutive frames are alike, which is what the temporal cosines see in real data.
Generation is vectorised; writing goes through :func:`anograph.io.shards.write_shard`.
"""

from __future__ import annotations

import numpy as np

from anograph.extraction.features.layout import FeatureLayout
from anograph.io.shards import ShardMetadata, VideoFeatures, write_shard
from anograph.io.storage import Storage

WIDTH, HEIGHT = 640, 360


def synthetic_video(name: str, frames: int, objects: int, width: int, seed: int) -> VideoFeatures:
    """One video of ``frames x objects`` nodes with ``width``-d float16 features."""
    rng = np.random.default_rng(seed)
    starts = rng.uniform([0, 0], [WIDTH - 80, HEIGHT - 120], (objects, 2))
    velocities = rng.normal(0.0, 1.0, (objects, 2))
    sizes = rng.uniform([20, 40], [80, 120], (objects, 2))
    time = np.arange(frames)[:, None, None]
    corners = np.clip(starts[None] + velocities[None] * time, 0, [WIDTH - 80, HEIGHT - 120])
    boxes = np.concatenate([corners, corners + sizes[None]], axis=2).reshape(-1, 4).astype(np.float32)
    patterns = rng.normal(0.0, 1.0, (objects, width)).astype(np.float32)
    features = np.empty((frames * objects, width), np.float16)
    for start in range(0, frames, 256):  # bounded float32 temporaries
        stop = min(start + 256, frames)
        noise = rng.standard_normal((stop - start, objects, width), dtype=np.float32)
        features[start * objects : stop * objects] = (patterns[None] + 0.5 * noise).reshape(-1, width)
    n = frames * objects
    metadata = ShardMetadata(
        video=name,
        n_frames=frames,
        fps=25.0,
        width=WIDTH,
        height=HEIGHT,
        source=f"synthetic/{name}",
        detector={"name": "synthetic"},
        class_names=["person"],
        feature_layout=FeatureLayout.of([("appearance", width)]),
    )
    return VideoFeatures(
        metadata=metadata,
        frames=np.repeat(np.arange(frames, dtype=np.int32), objects),
        boxes=boxes,
        scores=np.ones(n, np.float32),
        class_ids=np.zeros(n, np.int32),
        features=features,
    )


def write_synthetic_shards(
    storage: Storage, videos: int, frames: int, objects: int, width: int, seed: int = 0, keep: bool = False
) -> list[str]:
    """Write ``videos`` shards under ``shards/``, one in memory at a time; returns their keys.

    ``keep``: leave a shard that already exists at its key (a complete one: writes are atomic).
    """
    keys = []
    for index in range(videos):
        key = f"shards/video{index:05d}.parquet"
        if not (keep and storage.exists(key)):
            write_shard(storage, key, synthetic_video(f"video{index:05d}", frames, objects, width, seed + index))
        keys.append(key)
    return keys
