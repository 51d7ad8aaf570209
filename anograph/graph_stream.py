"""Stream feature shards video by video into the graph builder, without holding every feature.

:func:`anograph.graph.build_graph` takes any iterable of videos and keeps only the sparse
result, so feeding it :func:`iter_shard_nodes` builds a training graph of millions of
nodes while one video's features are in memory at a time. :func:`feature_moments`
streams the per-column mean and standard deviation the same way (the standardiser's fit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from anograph.graph import VideoNodes
from anograph.shards import VideoFeatures, read_shard
from anograph.storage import Storage


def iter_shard_videos(storage: Storage, keys: Sequence[str]) -> Iterator[VideoFeatures]:
    """Read the shards at ``keys`` one at a time, in order."""
    for key in keys:
        yield read_shard(storage, key)


def iter_shard_nodes(
    storage: Storage,
    keys: Sequence[str],
    transform: Callable[[VideoFeatures], np.ndarray] | None = None,
) -> Iterator[VideoNodes]:
    """:class:`~anograph.graph.VideoNodes` of each shard; ``transform(video)`` gives its node features.

    Without ``transform`` the shard's float16 features are used as they are.
    """
    for video in iter_shard_videos(storage, keys):
        features = video.features if transform is None else transform(video)
        yield VideoNodes(video.frame_offsets(), video.boxes, features)


def feature_moments(
    videos: Iterator[VideoFeatures] | Sequence[VideoFeatures], columns: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-column mean and (population) standard deviation over all objects, streamed.

    Videos are combined with Chan et al.'s pairwise update, which stays accurate where
    summing squares would cancel. Returns ``(mean, std, n_objects)``, float64.
    """
    count, mean, squares = 0, None, None
    for video in videos:
        chunk = np.asarray(video.features if columns is None else video.features[:, columns], np.float64)
        if len(chunk) == 0:
            continue
        chunk_mean = chunk.mean(axis=0)
        chunk_squares = ((chunk - chunk_mean) ** 2).sum(axis=0)
        if mean is None or squares is None:
            count, mean, squares = len(chunk), chunk_mean, chunk_squares
            continue
        total = count + len(chunk)
        delta = chunk_mean - mean
        mean = mean + delta * (len(chunk) / total)
        squares = squares + chunk_squares + delta**2 * (count * len(chunk) / total)
        count = total
    if mean is None or squares is None:
        raise ValueError("no objects to compute feature moments from")
    return mean, np.sqrt(squares / count), count
