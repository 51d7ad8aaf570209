"""Test-time graphs: sliding windows, and the frame scores aggregated over them.

At test time the paper (Section 4.1) builds, for each frame ``t``, the graph of frames
``t-i .. t+i`` (``i`` = one second of frames), and advances it frame by frame: each step
adds the newest frame's spatial block and its temporal block to the previous frame, and
drops the oldest frame. :class:`SlidingWindowGraph` does exactly that, computing every
block once, and yields the adjacency rows of the centre frame's objects.

**Locality of a one-layer encoder.** With ``H = PReLU(Â X W + b)``, the embedding of an
object of frame ``t`` depends only on its own row of ``Â``. For ``"none"`` and ``"row"``
normalisation that row touches frames ``t-1 .. t+1`` only; for ``"symmetric"`` it also
needs the degrees of those neighbours, which touch ``t-2 .. t+2``. So a window of radius
``i`` gives the *same* centre rows for every ``i >= 1`` (``i >= 2`` for ``"symmetric"``),
also near the ends of a video (where every window is truncated the same way), and those
rows equal the rows of the whole-video graph. The window radius therefore only matters
below that reach: this is a property of the paper's one-layer encoder, not of this code.
The class uses it to keep just ``min(i, reach)`` frames on each side of the centre and to
emit the centre frame as soon as that many later frames have arrived (latency ``reach``
frames, not ``i``).

Object scorers (higher = more anomalous) are in :mod:`anograph.models.scorers`; the frame
aggregation of their scores, :func:`frame_scores`, lives here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sparse

from anograph.errors import InputError
from anograph.graph.build import GraphConfig, build_video_graph, row_softmax, spatial_block, unit_rows
from anograph.io.shards import VideoFeatures


@dataclass
class CentreRows:
    """Adjacency rows of one centre frame's objects, in stream object numbering.

    ``weights[r, c]`` is the edge weight from object ``rows.start + r`` to object
    ``columns.start + c``; ``columns`` spans the frames that can carry weight (at most
    ``reach`` frames on each side), so ``weights @ X[columns]`` gives ``(Â X)[rows]``.
    """

    frame: int
    rows: slice
    columns: slice
    weights: np.ndarray


@dataclass
class _Frame:
    index: int
    start: int
    boxes: np.ndarray
    features: np.ndarray  # unit rows
    spatial: np.ndarray
    forward: np.ndarray | None = None  # rows of this frame -> objects of the next frame
    backward: np.ndarray | None = None  # rows of this frame -> objects of the previous frame

    @property
    def size(self) -> int:
        return len(self.boxes)


class SlidingWindowGraph:
    """Incremental window graph over a stream of frames.

    Parameters
    ----------
    radius:
        The window spans frames ``t - radius .. t + radius`` (truncated at the stream's
        ends). Must be ``>= 0``.
    config:
        How blocks are built and normalised (:class:`anograph.graph.build.GraphConfig`).
    lookahead:
        Future frames a centre frame waits for before it is emitted; ``None`` (default)
        waits for the encoder's full reach (the offline rows). ``0`` is the causal mode of
        live scoring: frame ``t`` is emitted as soon as it arrives, its rows built from
        frames ``<= t`` only, like the last frame of a video.

    Use :meth:`push` once per frame, then :meth:`finish`; or :meth:`iter_video` /
    :meth:`adjacency` for a whole video in memory.
    """

    def __init__(self, radius: int, config: GraphConfig, lookahead: int | None = None) -> None:
        if radius < 0:
            raise InputError(None, f"window radius must be >= 0 frames, not {radius}")
        self.radius = int(radius)
        self.config = config
        self.reach = 2 if config.normalization == "symmetric" else 1
        self.effective_radius = min(self.radius, self.reach)
        self.lookahead = self.effective_radius if lookahead is None else min(int(lookahead), self.effective_radius)
        self.reset()

    def reset(self) -> None:
        """Forget all frames: the next :meth:`push` starts a new stream (a new video)."""
        self._frames: deque[_Frame] = deque()
        self._next_frame = 0
        self._next_object = 0
        self._next_centre = 0

    def push(self, boxes: np.ndarray, features: np.ndarray) -> list[CentreRows]:
        """Add the next frame; return the centre frames whose window became complete."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        frame = _Frame(
            index=self._next_frame,
            start=self._next_object,
            boxes=boxes,
            features=unit_rows(features),  # normalised once, used for both frame pairs
            spatial=spatial_block(boxes),
        )
        if self._frames and self._frames[-1].index == frame.index - 1:
            previous = self._frames[-1]
            # temporal_block(a, b) and temporal_block(b, a) from one product of unit rows.
            cosine = previous.features @ frame.features.T
            if cosine.size:
                previous.forward, frame.backward = row_softmax(cosine), row_softmax(cosine.T)
            else:
                previous.forward, frame.backward = cosine, cosine.T
        self._frames.append(frame)
        self._next_frame += 1
        self._next_object += frame.size
        ready = []
        while self._next_centre + self.lookahead <= frame.index:
            ready.append(self._emit(self._next_centre, last_frame=frame.index))
        return ready

    def finish(self) -> list[CentreRows]:
        """Emit the remaining centre frames at the end of the stream, then reset."""
        last = self._next_frame - 1
        ready = [self._emit(self._next_centre, last_frame=last) for _ in range(self._next_centre, last + 1)]
        self.reset()
        return ready

    def iter_video(
        self, frame_offsets: np.ndarray, boxes: np.ndarray, features: np.ndarray
    ) -> Iterator[CentreRows]:
        """Stream one whole video (see :class:`anograph.graph.build.VideoNodes`) frame by frame."""
        self.reset()
        for start, stop in zip(frame_offsets[:-1], frame_offsets[1:], strict=True):
            yield from self.push(boxes[start:stop], features[start:stop])
        yield from self.finish()

    def adjacency(
        self, frame_offsets: np.ndarray, boxes: np.ndarray, features: np.ndarray
    ) -> sparse.csr_matrix:
        """``(n, n)`` CSR whose rows for frame ``t`` are frame ``t``'s rows in its own window."""
        n_objects = int(frame_offsets[-1])
        row_parts, column_parts, value_parts = [], [], []
        for centre in self.iter_video(frame_offsets, boxes, features):
            local_rows, local_columns = np.nonzero(centre.weights)
            row_parts.append(local_rows + centre.rows.start)
            column_parts.append(local_columns + centre.columns.start)
            value_parts.append(centre.weights[local_rows, local_columns])
        if not row_parts:
            return sparse.csr_matrix((n_objects, n_objects))
        return sparse.csr_matrix(
            (np.concatenate(value_parts), (np.concatenate(row_parts), np.concatenate(column_parts))),
            shape=(n_objects, n_objects),
        )

    def _emit(self, centre_index: int, last_frame: int) -> CentreRows:
        reach = self.effective_radius
        while self._frames and self._frames[0].index < centre_index - reach:
            self._frames.popleft()
        first_index = self._frames[0].index
        local = [frame for frame in self._frames if frame.index <= min(last_frame, centre_index + reach)]
        centre = local[centre_index - first_index]
        self._next_centre += 1
        rows = slice(centre.start, centre.start + centre.size)
        columns = slice(local[0].start, local[-1].start + local[-1].size)
        dense = self._local_adjacency(local)
        offset = centre.start - local[0].start
        weights = _normalized_rows(dense, self.config.normalization, offset, centre.size)
        return CentreRows(frame=centre_index, rows=rows, columns=columns, weights=weights)

    def _local_adjacency(self, local: list[_Frame]) -> np.ndarray:
        """Dense un-normalised adjacency of the few frames around the centre (at most 5)."""
        starts = np.cumsum([0] + [frame.size for frame in local])
        dense = np.zeros((starts[-1], starts[-1]))
        for position, frame in enumerate(local):
            here = slice(starts[position], starts[position + 1])
            if self.config.spatial:
                dense[here, here] = frame.spatial
            if self.config.temporal and position + 1 < len(local):
                after = slice(starts[position + 1], starts[position + 2])
                dense[here, after] = local[position].forward
                if self.config.temporal_direction == "both":
                    dense[after, here] = local[position + 1].backward
        return dense


def window_adjacency(
    frame_offsets: np.ndarray, boxes: np.ndarray, features: np.ndarray, radius: int, config: GraphConfig
) -> sparse.csr_matrix:
    """Every object's adjacency row in its own test window, for a whole video at once.

    At or beyond the encoder's reach those rows are the rows of the whole-video graph (see
    the module docstring), so they are built in one vectorised pass by
    :func:`anograph.graph.build.build_video_graph`, without the per-frame work of
    :class:`SlidingWindowGraph`; below the reach (radius 0, or 1 with ``"symmetric"``)
    the windows are stepped through one by one. Offline scoring uses this; live scoring,
    which gets one frame at a time, pushes frames into :class:`SlidingWindowGraph`.
    """
    window = SlidingWindowGraph(radius, config)
    if window.effective_radius == window.reach:
        return build_video_graph(frame_offsets, boxes, features, config)
    return window.adjacency(frame_offsets, boxes, features)


def _normalized_rows(dense: np.ndarray, normalization: str, offset: int, count: int) -> np.ndarray:
    """Rows ``offset:offset+count`` of the normalised local adjacency (mirrors graph.normalize_adjacency)."""
    if normalization == "none":
        return dense[offset : offset + count].copy()
    if normalization == "row":
        rows = dense[offset : offset + count]
        degree = rows.sum(axis=1, keepdims=True)
        return np.divide(rows, degree, out=np.zeros_like(rows), where=degree > 0)
    symmetric = np.maximum(dense, dense.T) + np.eye(len(dense))
    inverse_root = 1.0 / np.sqrt(symmetric.sum(axis=1))
    return (
        inverse_root[offset : offset + count, None]
        * symmetric[offset : offset + count]
        * inverse_root[None, :]
    )


def window_radius(window_seconds: float, fps: float) -> int:
    """Test-window half-width ``i`` in frames for ``window_seconds`` at ``fps`` (at least 1)."""
    return max(1, round(window_seconds * fps))


def window_radius_for(
    video_or_fps: VideoFeatures | float | None,
    window_seconds: float,
    default_fps: float | None = None,
    source: object = None,
) -> int:
    """The test-window radius of one video: its own frame rate, else ``default_fps``.

    ``video_or_fps`` is an extracted video (its ``metadata.fps``) or a frame rate (``None``
    or 0 when unknown). Without any frame rate the window cannot be sized: an
    :class:`InputError` naming the video's source (or ``source``) says to pass ``--fps``.
    """
    if isinstance(video_or_fps, VideoFeatures):
        fps, source = video_or_fps.metadata.fps, video_or_fps.metadata.source
    else:
        fps = video_or_fps
    fps = fps or default_fps
    if not fps:
        raise InputError(source, "frame rate unknown; pass --fps to size the test window")
    return window_radius(window_seconds, fps)


def frame_scores(object_scores: np.ndarray, frame_offsets: np.ndarray) -> np.ndarray:
    """Frame score = max over the frame's objects; ``NaN`` for a frame without objects.

    ``NaN`` marks "no evidence" rather than inventing a value here: the metrics layer fills
    it with the lowest score of the video set (the paper scores an empty frame as normal).

    Parameters
    ----------
    object_scores:
        ``(n,)`` one score per object, in shard row order.
    frame_offsets:
        ``(n_frames + 1,)`` as :meth:`anograph.io.shards.VideoFeatures.frame_offsets`.
    """
    object_scores = np.asarray(object_scores, np.float64)
    frame_offsets = np.asarray(frame_offsets, np.int64)
    if len(object_scores) != frame_offsets[-1]:
        raise ValueError(
            f"{len(object_scores)} object scores but frame_offsets count {frame_offsets[-1]} objects"
        )
    scores = np.full(len(frame_offsets) - 1, np.nan)
    non_empty = np.flatnonzero(np.diff(frame_offsets) > 0)
    if len(non_empty):
        scores[non_empty] = np.maximum.reduceat(object_scores, frame_offsets[non_empty])
    return scores


@dataclass(frozen=True)
class WindowGraph:
    """A test video as the model sees it: its sliding-window graph and its objects' model rows.

    ``features``: standardised input features ``(n, d)``; ``embeddings``: GCN embeddings
    ``(n, hidden_channels)`` (both float32); ``adjacency``: every object's adjacency row in
    its own test window ``(n, n)``, stitched into one CSR matrix.
    """

    features: np.ndarray
    embeddings: np.ndarray
    adjacency: sparse.csr_matrix
