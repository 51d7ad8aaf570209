"""Mean distance to the k nearest rows of a bank, the primitive of the kNN scorers.

Exact (brute-force) Euclidean distances with ``torch.cdist`` in chunks of queries, so the
``(chunk, bank)`` distance matrix stays bounded whatever the number of queries; optional
leave-one-group-out exclusion gives the calibration scores of :mod:`anograph.models.scorers`
the situation of an unseen video.
"""

from __future__ import annotations

import numpy as np
import torch

# Query rows per chunk: keeps the (chunk, bank) distance matrix around 100-200 MB.
KNN_QUERY_CHUNK = 1024


def knn_mean_distance(
    queries: np.ndarray,
    bank: np.ndarray,
    k: int,
    query_groups: np.ndarray | None = None,
    bank_groups: np.ndarray | None = None,
) -> np.ndarray:
    """Mean Euclidean distance of each query row to its ``k`` nearest rows of ``bank``.

    Distances come from ``torch.cdist`` (matrix-multiply form, float32) in chunks of
    :data:`KNN_QUERY_CHUNK` queries. When ``query_groups`` and ``bank_groups`` are given,
    bank rows of the query's own group are excluded (leave-one-group-out). ``k`` is capped
    at the number of bank rows available.

    Returns
    -------
    numpy.ndarray
        ``(n_queries,)`` float64.
    """
    bank_tensor = torch.from_numpy(np.ascontiguousarray(bank, np.float32))
    bank_group_tensor = None if bank_groups is None else torch.from_numpy(np.asarray(bank_groups, np.int64))
    neighbours = min(int(k), len(bank_tensor))
    if neighbours < 1:
        raise ValueError("kNN needs k >= 1 and a non-empty bank")
    result = np.empty(len(queries))
    for start in range(0, len(queries), KNN_QUERY_CHUNK):
        chunk = torch.from_numpy(np.ascontiguousarray(queries[start : start + KNN_QUERY_CHUNK], np.float32))
        distances = torch.cdist(chunk, bank_tensor, compute_mode="use_mm_for_euclid_dist")
        if bank_group_tensor is not None and query_groups is not None:
            own = torch.from_numpy(np.asarray(query_groups[start : start + KNN_QUERY_CHUNK], np.int64))
            distances.masked_fill_(own[:, None] == bank_group_tensor[None, :], float("inf"))
        found = torch.topk(distances, neighbours, dim=1, largest=False)
        # The matrix-multiply form picks the neighbours fast but loses digits to cancellation on
        # rows with large norms; their distances are recomputed directly, in float64.
        exact = torch.linalg.vector_norm(chunk.double()[:, None, :] - bank_tensor.double()[found.indices], dim=2)
        nearest = torch.where(torch.isfinite(found.values), exact, torch.full_like(exact, float("inf")))
        finite = torch.isfinite(nearest)
        if not bool(finite.any(dim=1).all()):
            raise ValueError("a kNN query has no bank row outside its own group")
        # Rows with fewer than k rows outside their group average the ones they have.
        total = torch.where(finite, nearest, torch.zeros_like(nearest)).sum(dim=1)
        result[start : start + len(chunk)] = (total / finite.sum(dim=1)).numpy()
    return result
