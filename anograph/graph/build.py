"""The spatio-temporal graph of a video's objects (paper Section 3, Eqs. 1-2), as scipy.sparse.

Nodes are the detected objects, in shard row order (sorted by frame). Edges:

* **spatial** (Eq. 1): within frame ``t``, row ``i`` is the softmax over all objects ``j`` of
  the frame of ``IoU(box_i, box_j)``. The object itself is included with IoU 1, so every
  non-empty frame contributes a self-loop: a node keeps (a share of) its own features even
  in a frame where it overlaps nothing, and a lone object's row is exactly ``[1]``.
* **temporal** (Eq. 2): object ``i`` of frame ``t`` links to every object ``j`` of frame
  ``t + 1`` with the softmax over ``j`` of ``cos(x_i, x_j)``. The paper's graph is directed
  ``t -> t+1`` (``temporal_direction="forward"``); ``"both"`` also adds rows
  ``t+1 -> t``: the softmax over the objects of frame ``t`` of the same cosines (the softmax
  of the transposed similarity), so information flows from the past as well as the future.
  A frame without objects has no rows and breaks the chain: nothing links across it.

The assembled matrix is block-tridiagonal over frames and block-diagonal over videos: no
edge ever crosses two videos. It is never materialised densely (``N`` reaches 10^6).
Blocks are computed vectorised over all frames at once: every (row, column) pair of a
block is enumerated with index arithmetic, its IoU computed in one pass, the cosines of all
consecutive-frame pairs by one batched matrix product over zero-padded frames (a gather of
both feature rows per pair would move far more memory), and the softmax taken
per row with ``bincount``.

Normalisation (``GraphConfig.normalization``):

* ``"none"``: the paper's block matrix exactly as Eqs. 1-2 give it (rows sum to 1 for the
  spatial part plus 1 for each temporal direction present).
* ``"row"``: ``D^-1 A`` of the assembled matrix, so each node takes a weighted mean of its
  neighbourhood (a node whose row is empty keeps an empty row).
* ``"symmetric"``: Kipf & Welling's GCN renormalisation ``D^-1/2 (S + I) D^-1/2`` where
  ``S = max(A, A^T)`` element-wise. The authors' released code also symmetrises (it turns the
  adjacency into an undirected networkx graph) and adds ``I``, but then skips the degree
  normalisation; we follow the GCN/DGI papers' standard form instead.

Cosines use the node features given; the model passes its standardised features, because
raw non-negative (ReLU-like) features have cosines near 1 everywhere, which makes the
softmax uniform. A zero feature vector has cosine 0 with everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import scipy.sparse as sparse
import torch
from numpy.typing import DTypeLike

from anograph.errors import InputError

TEMPORAL_DIRECTIONS = ("forward", "both")
NORMALIZATIONS = ("none", "row", "symmetric")
# Feature norms below this count as zero vectors (cosine 0), instead of dividing by ~0.
NORM_FLOOR = 1e-12
# Upper bound on padded feature elements per batched cosine product: 2 MB in float32, so a
# converted chunk is still in cache when the norms and the product read it (measured fastest).
PAIR_CHUNK_ELEMENTS = 1 << 19


@dataclass(frozen=True)
class GraphConfig:
    """How the spatio-temporal graph is built.

    Parameters
    ----------
    spatial:
        Add the spatial IoU-softmax blocks (Eq. 1). Default ``True``.
    temporal:
        Add the temporal cosine-softmax blocks between consecutive frames (Eq. 2). Default ``True``.
    temporal_direction:
        ``"forward"``: only ``t -> t+1`` rows, as in the paper. ``"both"`` (default): also
        ``t+1 -> t`` rows, the softmax of the transposed similarity.
    normalization:
        ``"none"``, ``"row"`` (default) or ``"symmetric"``; see the module docstring.
    """

    spatial: bool = True
    temporal: bool = True
    temporal_direction: Literal["forward", "both"] = "both"
    normalization: Literal["none", "row", "symmetric"] = "row"

    def __post_init__(self) -> None:
        if self.temporal_direction not in TEMPORAL_DIRECTIONS:
            raise InputError(
                None,
                f"graph temporal_direction must be one of {TEMPORAL_DIRECTIONS}, not {self.temporal_direction!r}",
            )
        if self.normalization not in NORMALIZATIONS:
            raise InputError(
                None, f"graph normalization must be one of {NORMALIZATIONS}, not {self.normalization!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> GraphConfig:
        unknown = set(value) - {"spatial", "temporal", "temporal_direction", "normalization"}
        if unknown:
            raise InputError(None, f"unknown graph settings {sorted(unknown)}")
        return cls(**value)


class VideoNodes(NamedTuple):
    """One video's nodes as the graph builder needs them.

    ``frame_offsets`` is ``(n_frames + 1,)``: the objects of frame ``t`` are rows
    ``frame_offsets[t]:frame_offsets[t+1]`` of ``boxes`` ``(n, 4)`` (``x1, y1, x2, y2``) and
    ``features`` ``(n, d)`` (see :meth:`anograph.io.shards.VideoFeatures.frame_offsets`).
    """

    frame_offsets: np.ndarray
    boxes: np.ndarray
    features: np.ndarray


def paired_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of ``boxes_a[k]`` with ``boxes_b[k]`` (broadcasting over leading axes); 0 for empty unions."""
    boxes_a = np.asarray(boxes_a, np.float64)
    boxes_b = np.asarray(boxes_b, np.float64)
    # np.maximum(., 0) rather than np.clip: same values, a fraction of the per-call overhead.
    width = np.maximum(
        np.minimum(boxes_a[..., 2], boxes_b[..., 2]) - np.maximum(boxes_a[..., 0], boxes_b[..., 0]), 0
    )
    height = np.maximum(
        np.minimum(boxes_a[..., 3], boxes_b[..., 3]) - np.maximum(boxes_a[..., 1], boxes_b[..., 1]), 0
    )
    intersection = width * height
    area_a = np.maximum(boxes_a[..., 2] - boxes_a[..., 0], 0) * np.maximum(boxes_a[..., 3] - boxes_a[..., 1], 0)
    area_b = np.maximum(boxes_b[..., 2] - boxes_b[..., 0], 0) * np.maximum(boxes_b[..., 3] - boxes_b[..., 1], 0)
    union = area_a + area_b - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit Euclidean norm (float64); rows of norm ~0 become zero vectors."""
    features = np.asarray(features, np.float64)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return np.divide(features, norms, out=np.zeros_like(features), where=norms > NORM_FLOOR)


def row_softmax(values: np.ndarray) -> np.ndarray:
    """Softmax along each row: the edge weights of a block from its IoU or cosine similarities."""
    # IoU and cosine lie in [-1, 1], so exp cannot overflow and no max-shift is needed.
    weights = np.exp(values)
    return weights / weights.sum(axis=1, keepdims=True)


def spatial_block(boxes: np.ndarray) -> np.ndarray:
    """Eq. 1 for one frame: ``(n, n)`` row softmax of pairwise IoU, self included (IoU 1)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    iou = paired_iou(boxes[:, None, :], boxes[None, :, :])
    np.fill_diagonal(iou, 1.0)  # also for degenerate (zero-area) boxes
    return row_softmax(iou) if len(boxes) else iou


def temporal_block(features_t: np.ndarray, features_next: np.ndarray) -> np.ndarray:
    """Eq. 2 for one frame pair: ``(n_t, n_next)`` row softmax of cosine similarity.

    The ``t+1 -> t`` rows of ``temporal_direction="both"`` are
    ``temporal_block(features_next, features_t)``.
    """
    cosine = unit_rows(features_t) @ unit_rows(features_next).T
    return row_softmax(cosine) if cosine.size else cosine


def _frame_pairs(frame_offsets: np.ndarray, frame_shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (row, column) pair with the row in frame ``t`` and the column in frame ``t + shift``.

    Pairs come sorted by row, each row's columns contiguous and ascending.
    """
    counts = np.diff(frame_offsets)
    n_frames = len(counts)
    frame_of_row = np.repeat(np.arange(n_frames), counts)
    target_frame = frame_of_row + frame_shift
    valid = (target_frame >= 0) & (target_frame < n_frames)
    target_frame = np.where(valid, target_frame, 0)
    lengths = np.where(valid, counts[target_frame], 0)
    rows = np.repeat(np.arange(len(frame_of_row)), lengths)
    pair_starts = np.cumsum(lengths) - lengths
    within_row = np.arange(len(rows)) - np.repeat(pair_starts, lengths)
    columns = np.repeat(frame_offsets[target_frame], lengths) + within_row
    return rows, columns


def _pair_softmax(rows: np.ndarray, values: np.ndarray, n_rows: int) -> np.ndarray:
    weights = np.exp(values)  # values in [-1, 1]: no overflow
    return weights / np.bincount(rows, weights=weights, minlength=n_rows)[rows]


def _consecutive_cosines(frame_offsets: np.ndarray, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of every object pair in consecutive frames, by one batched matrix product.

    Returns ``(cosines, slot)``: ``cosines[t, a, b]`` is the cosine of object ``a`` of frame
    ``t`` with object ``b`` of frame ``t + 1`` (frames padded with zero rows to the largest
    frame of a chunk of frames), and ``slot[i]`` is object ``i``'s position within its
    frame. The product runs with torch (multi-threaded, fast float16 conversion) in the
    features' precision, at least float32, over at most :data:`PAIR_CHUNK_ELEMENTS` padded
    feature elements at a time; each raw product is divided by the two norms afterwards,
    so the features are passed over only to convert, measure and multiply them.
    """
    dtype = torch.float64 if features.dtype == np.float64 else torch.float32
    counts = np.diff(frame_offsets)
    n_frames, width = len(counts), features.shape[1]
    frame_of_row = np.repeat(np.arange(n_frames), counts)
    slot = np.arange(len(features)) - frame_offsets[frame_of_row]
    largest = int(counts.max()) if n_frames else 0
    cosines = torch.zeros((max(n_frames - 1, 0), largest, largest), dtype=dtype)
    step = max(2, PAIR_CHUNK_ELEMENTS // max(1, largest * width))
    # Two buffers reused by every chunk: a fresh multi-megabyte tensor per chunk costs more in
    # page faults than the float16 conversion itself.
    capacity = min(step, n_frames) * largest * width
    converted_buffer = torch.empty(capacity, dtype=dtype)
    padded_buffer = torch.empty(capacity, dtype=dtype)
    for first in range(0, n_frames - 1, step - 1):  # chunks overlap by one frame
        last = min(first + step, n_frames)
        size = int(counts[first:last].max())
        if size == 0:
            continue
        rows = slice(frame_offsets[first], frame_offsets[last])
        n_rows = int(frame_offsets[last] - frame_offsets[first])
        source = torch.from_numpy(np.ascontiguousarray(features[rows]))
        if source.dtype == dtype:  # already the product's dtype: use it in place
            chunk = source
        else:
            chunk = converted_buffer[: n_rows * width].view(n_rows, width)
            chunk.copy_(source)
        if np.all(counts[first:last] == size):  # equal frames: a view, no padding copy
            padded = chunk.view(last - first, size, width)
        else:
            padded = padded_buffer[: (last - first) * size * width].view(last - first, size, width)
            padded.zero_()
            padded[torch.from_numpy(frame_of_row[rows] - first), torch.from_numpy(slot[rows])] = chunk
        norms = torch.linalg.vector_norm(padded, dim=2)
        norms = torch.where(norms > NORM_FLOOR, norms, torch.inf)  # zero vectors: cosine 0
        products = torch.bmm(padded[:-1], padded[1:].transpose(1, 2))
        cosines[first : last - 1, :size, :size] = products / norms[:-1, :, None] / norms[1:, None, :]
    return cosines.numpy(), slot


def normalize_adjacency(adjacency: sparse.spmatrix, normalization: str) -> sparse.csr_matrix:
    """Apply ``"none"``, ``"row"`` or ``"symmetric"`` normalisation (see the module docstring)."""
    adjacency = sparse.csr_matrix(adjacency, dtype=np.float64)
    if normalization == "none":
        return adjacency
    if normalization == "row":
        degree = np.asarray(adjacency.sum(axis=1)).ravel()
        inverse = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
        return sparse.csr_matrix(sparse.diags(inverse) @ adjacency)
    if normalization == "symmetric":
        symmetric = adjacency.maximum(adjacency.T) + sparse.identity(adjacency.shape[0], format="csr")
        inverse_root = 1.0 / np.sqrt(np.asarray(symmetric.sum(axis=1)).ravel())  # degree >= 1 (self-loop)
        scale = sparse.diags(inverse_root)
        return sparse.csr_matrix(scale @ symmetric @ scale)
    raise InputError(None, f"graph normalization must be one of {NORMALIZATIONS}, not {normalization!r}")


def _check_video_nodes(frame_offsets: np.ndarray, boxes: np.ndarray, features: np.ndarray) -> int:
    n_objects = int(frame_offsets[-1]) if len(frame_offsets) else 0
    if len(frame_offsets) == 0 or frame_offsets[0] != 0 or np.any(np.diff(frame_offsets) < 0):
        raise ValueError("frame_offsets must start at 0 and be non-decreasing")
    if boxes.shape != (n_objects, 4) or features.shape[0] != n_objects:
        raise ValueError(
            f"{n_objects} objects by frame_offsets, but boxes {boxes.shape} and features {features.shape}"
        )
    return n_objects


def raw_video_adjacency(
    frame_offsets: np.ndarray, boxes: np.ndarray, features: np.ndarray, config: GraphConfig
) -> sparse.csr_matrix:
    """The un-normalised block matrix of one video (Eqs. 1-2 assembled), ``(n, n)`` CSR float64."""
    frame_offsets = np.asarray(frame_offsets, np.int64)
    boxes = np.asarray(boxes, np.float64)
    features = np.asarray(features)
    n_objects = _check_video_nodes(frame_offsets, boxes, features)
    all_rows, all_columns, all_values = [], [], []
    if config.spatial:
        rows, columns = _frame_pairs(frame_offsets, 0)
        iou = paired_iou(boxes[rows], boxes[columns])
        iou[rows == columns] = 1.0
        all_rows.append(rows)
        all_columns.append(columns)
        all_values.append(_pair_softmax(rows, iou, n_objects))
    if config.temporal:
        cosines, slot = _consecutive_cosines(frame_offsets, features)
        frame_of_row = np.repeat(np.arange(len(frame_offsets) - 1), np.diff(frame_offsets))
        shifts = (1, -1) if config.temporal_direction == "both" else (1,)
        for shift in shifts:
            rows, columns = _frame_pairs(frame_offsets, shift)
            earlier, later = (rows, columns) if shift == 1 else (columns, rows)
            cosine = cosines[frame_of_row[earlier], slot[earlier], slot[later]].astype(np.float64)
            all_rows.append(rows)
            all_columns.append(columns)
            all_values.append(_pair_softmax(rows, cosine, n_objects))
    if not all_rows:
        return sparse.csr_matrix((n_objects, n_objects), dtype=np.float64)
    # Spatial, forward and backward pairs never share a (row, column): the sum is a plain union.
    return sparse.csr_matrix(
        (np.concatenate(all_values), (np.concatenate(all_rows), np.concatenate(all_columns))),
        shape=(n_objects, n_objects),
    )


def build_video_graph(
    frame_offsets: np.ndarray, boxes: np.ndarray, features: np.ndarray, config: GraphConfig
) -> sparse.csr_matrix:
    """The normalised spatio-temporal adjacency of one video.

    Parameters
    ----------
    frame_offsets:
        ``(n_frames + 1,)`` int offsets; frame ``t`` owns rows ``offsets[t]:offsets[t+1]``.
    boxes:
        ``(n, 4)`` ``x1, y1, x2, y2`` boxes.
    features:
        ``(n, d)`` node features, used for the temporal cosines.
    config:
        Which blocks to add and how to normalise.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n, n)`` float64.
    """
    adjacency = raw_video_adjacency(frame_offsets, boxes, features, config)
    return normalize_adjacency(adjacency, config.normalization)


def build_graph(
    videos: Iterable[VideoNodes | tuple[np.ndarray, np.ndarray, np.ndarray]],
    config: GraphConfig,
    dtype: DTypeLike = np.float64,
) -> sparse.csr_matrix:
    """Block-diagonal adjacency of several videos, in the order given: no edge crosses videos.

    Each video is normalised on its own; since no edge crosses videos, this equals
    normalising the assembled block-diagonal matrix. ``videos`` may be a generator (for
    example :func:`anograph.graph.batches.iter_shard_nodes`): one video's features are held at
    a time, and the CSR arrays are concatenated directly (``dtype`` values, int32 indices
    while they fit), never through a dense or COO intermediate.
    """
    return assemble_blocks((build_video_graph(*video, config) for video in videos), dtype)


def assemble_blocks(blocks: Iterable[sparse.csr_matrix], dtype: DTypeLike = np.float64) -> sparse.csr_matrix:
    """The block-diagonal CSR matrix of per-video adjacencies, in order (see :func:`build_graph`)."""
    indptr_parts: list[np.ndarray] = [np.zeros(1, np.int64)]
    index_parts: list[np.ndarray] = []
    value_parts: list[np.ndarray] = []
    n_nodes, n_edges = 0, 0
    for block in blocks:
        indptr_parts.append(block.indptr[1:].astype(np.int64) + n_edges)
        fits = n_nodes + block.shape[0] < np.iinfo(np.int32).max  # int32 halves the largest array
        index_parts.append(block.indices.astype(np.int32 if fits else np.int64) + n_nodes)
        value_parts.append(block.data.astype(dtype))
        n_nodes += block.shape[0]
        n_edges += block.nnz
    index_dtype = np.int32 if max(n_nodes, n_edges) < np.iinfo(np.int32).max else np.int64
    indptr = np.concatenate(indptr_parts).astype(index_dtype)
    indices = np.concatenate(index_parts).astype(index_dtype) if index_parts else np.zeros(0, index_dtype)
    del index_parts
    values = np.concatenate(value_parts) if value_parts else np.zeros(0, dtype)
    del value_parts
    return sparse.csr_matrix((values, indices, indptr), shape=(n_nodes, n_nodes), copy=False)
