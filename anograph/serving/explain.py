"""Why an object got its embedding: which graph neighbours contributed most.

The encoder is one GCN layer, ``h_i = PReLU(sum_j Â_ij x_j W^T + b)``: the pre-activation of
object ``i`` is a weighted sum of one *message* ``m_j = x_j W^T`` per neighbour ``j`` (the
objects of the same frame, linked by IoU, and of the previous and next frames, linked by
feature similarity; ``i`` itself is one of them through its self-loop). We attribute the
embedding to neighbour ``j`` by the size of what it adds::

    contribution_ij = |Â_ij| * ||x_j W^T||_2        share_ij = contribution_ij / sum_k contribution_ik

Why this choice: it is exact bookkeeping of the linear part (each term of the sum is one
neighbour's vector), needs no gradients, and is non-negative, so shares add up to 1. The
alternative of projecting each message onto ``h_i`` can be negative and depends on the
PReLU slope; the edge weight alone would ignore that a neighbour with near-average
(standardised, near-zero) features sends almost nothing. This explains the GCN embedding;
with the kNN scorers on raw features (``feature_knn``, ``group_knn``) the embedding does not
enter the score, but the same ``Â`` row is what score propagation spreads scores over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sparse

DEFAULT_NEIGHBOURS = 5


@dataclass(frozen=True)
class Contribution:
    """Neighbour ``column`` (a row of the video's object table) of an object, and its share."""

    column: int
    edge_weight: float
    contribution: float
    share: float


def neighbour_contributions(
    object_index: int,
    adjacency: sparse.csr_matrix,
    features: np.ndarray,
    encoder_weight: np.ndarray,
    count: int = DEFAULT_NEIGHBOURS,
) -> list[Contribution]:
    """The ``count`` neighbours (the object itself excluded) that contribute most, largest first.

    Parameters
    ----------
    object_index:
        Row of the object in ``adjacency`` and ``features``.
    adjacency:
        The normalised test-window adjacency ``Â`` the embedding was computed with
        (:meth:`anograph.models.estimator.AnoGraph.window_graph`).
    features:
        ``(n, d)`` the model's standardised input features of the same objects.
    encoder_weight:
        ``(hidden, d)`` the GCN's linear weight ``W``.
    """
    row = sparse.csr_matrix(adjacency).getrow(int(object_index))
    columns, weights = row.indices, row.data
    if len(columns) == 0:
        return []
    messages = np.asarray(features, np.float64)[columns] @ np.asarray(encoder_weight, np.float64).T
    contributions = np.abs(weights) * np.linalg.norm(messages, axis=1)
    total = float(contributions.sum())
    order = [position for position in np.argsort(-contributions, kind="stable") if columns[position] != object_index]
    return [
        Contribution(
            column=int(columns[position]),
            edge_weight=float(weights[position]),
            contribution=float(contributions[position]),
            share=float(contributions[position] / total) if total > 0 else 0.0,
        )
        for position in order[:count]
    ]
