"""Stream feature shards video by video into the graph builder, without holding every feature.

:func:`anograph.graph.build.build_graph` takes any iterable of videos and keeps only the sparse
result, so feeding it :func:`iter_shard_nodes` builds a training graph of millions of
nodes while only the current video's features, and the next one's being read, are in memory. :func:`feature_moments`
streams the per-column mean and standard deviation the same way (the standardiser's fit),
and :class:`ShardGraphBatches` serves batches of whole videos for bounded-memory training.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import TypeVar, overload

import numpy as np
import scipy.sparse as sparse
import torch
from numpy.typing import DTypeLike

from anograph.errors import InputError
from anograph.graph.build import GraphConfig, VideoNodes, assemble_blocks, build_graph, build_video_graph
from anograph.io.shards import VideoFeatures, read_shard
from anograph.io.storage import Storage
from anograph.models.training import GraphBatch, make_batch

T = TypeVar("T")
R = TypeVar("R")


def read_ahead(items: Iterable[T], load: Callable[[T], R], prefetch: int = 1, workers: int = 1) -> Iterator[R]:
    """``load(item)`` for each item in order, computed ``prefetch`` items ahead in background threads.

    Reading and decoding a shard (Parquet, float16 conversion) release the GIL, so on two
    cores the next shard is loaded while the caller works on the current one. At most
    ``prefetch + 1`` results exist at a time; ``prefetch=0`` loads each item only when asked.
    ``workers`` threads load items concurrently (results still come in order).
    """
    remaining = iter(items)
    if prefetch <= 0:
        yield from map(load, remaining)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shard-reader") as reader:
        pending = deque(reader.submit(load, item) for item in islice(remaining, prefetch + 1))
        while pending:
            result = pending.popleft().result()
            pending.extend(reader.submit(load, item) for item in islice(remaining, 1))
            yield result


def iter_shard_videos(storage: Storage, keys: Sequence[str], prefetch: int = 1) -> Iterator[VideoFeatures]:
    """Read the shards at ``keys`` in order, ``prefetch`` shards ahead of the caller (:func:`read_ahead`)."""
    return read_ahead(keys, lambda key: read_shard(storage, key), prefetch)


class ShardVideos(Sequence[VideoFeatures]):
    """The shards at ``keys`` as a read-only sequence of videos, each read when it is indexed.

    For code that walks training videos one at a time (e.g.
    :func:`anograph.serving.calibration.calibrate_frame_scores`) without holding them all.
    """

    def __init__(self, storage: Storage, keys: Sequence[str]) -> None:
        self.storage, self.keys = storage, list(keys)

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, index: int) -> VideoFeatures: ...

    @overload
    def __getitem__(self, index: slice) -> ShardVideos: ...

    def __getitem__(self, index: int | slice) -> VideoFeatures | ShardVideos:
        if isinstance(index, slice):
            return ShardVideos(self.storage, self.keys[index])
        return read_shard(self.storage, self.keys[index])


def iter_shard_nodes(
    storage: Storage,
    keys: Sequence[str],
    transform: Callable[[VideoFeatures], np.ndarray] | None = None,
    prefetch: int = 1,
) -> Iterator[VideoNodes]:
    """:class:`~anograph.graph.build.VideoNodes` of each shard; ``transform(video)`` gives its node features.

    Without ``transform`` the shard's float16 features are used as they are (the graph
    builder converts them chunk by chunk, in cache). Reading and the transform run
    ``prefetch`` shards ahead, in the background thread of :func:`read_ahead`, so they
    overlap the graph building.
    """

    return read_ahead(keys, lambda key: shard_nodes(storage, key, transform), prefetch)


def shard_nodes(
    storage: Storage, key: str, transform: Callable[[VideoFeatures], np.ndarray] | None = None
) -> VideoNodes:
    """The :class:`~anograph.graph.build.VideoNodes` of the shard at ``key`` (see :func:`iter_shard_nodes`)."""
    video = read_shard(storage, key)
    features = video.features if transform is None else transform(video)
    return VideoNodes(video.frame_offsets(), video.boxes, features)


def build_graph_from_shards(
    storage: Storage,
    keys: Sequence[str],
    config: GraphConfig,
    dtype: DTypeLike = np.float32,
    workers: int = 2,
) -> sparse.csr_matrix:
    """:func:`anograph.graph.build.build_graph` over the shards at ``keys``, ``workers`` videos at a time.

    Each video's graph is built in the thread that read its shard, so the cosine products and
    the sparse assembly of two videos run on two cores at once; the blocks are joined in
    order. At most ``workers + 1`` videos' features are in memory.
    """

    def load_and_build(key: str) -> sparse.csr_matrix:
        return build_video_graph(*shard_nodes(storage, key), config)

    return assemble_blocks(read_ahead(keys, load_and_build, prefetch=workers, workers=workers), dtype)


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


class ShardGraphBatches:
    """Training batches of whole videos read from shards, one batch in memory at a time.

    For :func:`anograph.models.training.train_dgi_batched`: ``batches(b)`` returns batch ``b`` as a
    :class:`~anograph.models.training.GraphBatch` and ``batches.sizes`` lists the node counts.
    Consecutive shards are grouped while a batch stays within ``batch_nodes`` (a video
    larger than that is a batch of its own). Every call reads the batch's shards again and
    standardises their features ``(x - mean) / std``; the batch's sparse adjacency is built
    on the first call and kept (it is small next to the features: about 8 bytes per edge).
    Since no edge crosses two videos, each batch's graph holds its nodes' exact 1-hop
    neighbourhoods.

    Parameters
    ----------
    storage, keys:
        Where the shards are, in training order.
    mean, std:
        The standardiser, ``(width,)`` each (for example from :func:`feature_moments`).
    config:
        How each video's graph is built.
    batch_nodes:
        Upper bound on nodes per batch (unless one video is larger). Default 100000.
    columns:
        Feature columns to use; ``None`` (default) uses all.
    device, dtype:
        Where the batch's features go, and their dtype (``torch.bfloat16`` for bf16 training).
    sizes:
        Node count of each shard, when known (saves a pass over the shards); else read once.
    """

    def __init__(
        self,
        storage: Storage,
        keys: Sequence[str],
        mean: np.ndarray,
        std: np.ndarray,
        config: GraphConfig,
        batch_nodes: int = 100_000,
        columns: np.ndarray | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        sizes: Sequence[int] | None = None,
    ) -> None:
        self.storage, self.config, self.columns = storage, config, columns
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.device, self.dtype = device or torch.device("cpu"), dtype
        if sizes is None:
            sizes = [video.n_objects for video in iter_shard_videos(storage, keys)]
        self.groups: list[list[str]] = []
        self.sizes: list[int] = []
        for key, size in zip(keys, sizes, strict=True):
            # An empty batch so far (videos without objects) takes the next video whatever its size.
            if self.groups and (self.sizes[-1] + size <= batch_nodes or self.sizes[-1] == 0):
                self.groups[-1].append(key)
                self.sizes[-1] += size
            else:
                self.groups.append([key])
                self.sizes.append(int(size))
        self._adjacency: dict[int, sparse.csr_matrix] = {}

    def __len__(self) -> int:
        return len(self.groups)

    def standardized(self, video: VideoFeatures) -> np.ndarray:
        features = video.features if self.columns is None else video.features[:, self.columns]
        return (torch.from_numpy(np.ascontiguousarray(features)).float().numpy() - self.mean) / self.std

    def arrays(self, index: int) -> tuple[sparse.csr_matrix, np.ndarray]:
        """Batch ``index`` as its scipy adjacency and ``(n, width)`` standardised float32 features.

        The features are written into one array as each shard is read, so the batch's rows
        plus one video's are the most held at a time.
        """
        features: np.ndarray | None = None
        nodes: list[VideoNodes] = []
        offset = 0
        for video in iter_shard_videos(self.storage, self.groups[index]):
            chunk = self.standardized(video)
            if features is None:
                features = np.empty((self.sizes[index], chunk.shape[1]), np.float32)
            features[offset : offset + len(chunk)] = chunk
            nodes.append(VideoNodes(video.frame_offsets(), video.boxes, features[offset : offset + len(chunk)]))
            offset += len(chunk)
            del video, chunk
        if features is None or offset != self.sizes[index]:
            raise InputError(
                f"{self.storage.uri}/{self.groups[index][0]}",
                f"batch {index} holds {offset} objects now, not the {self.sizes[index]} counted before: its shards changed",
            )
        if index not in self._adjacency:
            self._adjacency[index] = build_graph(nodes, self.config, dtype=np.float32)
        return self._adjacency[index], features

    def __call__(self, index: int) -> GraphBatch:
        adjacency, features = self.arrays(index)
        return make_batch(adjacency, features, self.device, self.dtype)
