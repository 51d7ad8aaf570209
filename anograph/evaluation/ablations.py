"""The paper's ablations as plain functions: edge types, test window, training fraction, embedding map.

The Ano-Graph paper reports (Section 5):

* **edges** (Table 4): spatial edges only, temporal only, or both. :func:`edge_variant`
  gives the :class:`~anograph.graph.build.GraphConfig` of each; every variant is a new model.
* **test window** ``i`` (Table 5): one trained model scored with windows of several radii,
  without retraining. For this one-layer encoder the window only reaches the embeddings
  through the first one or two frames (see :mod:`anograph.graph.windows`), so the radius changes
  a score only through score propagation, which is capped at ``i`` steps.
  :func:`with_propagation` gives a copy of a fitted model whose propagation runs to the
  window's edge (``steps = i``), the one way a wider window can matter here.
* **training fraction** (Fig. 4): train on a seeded random share of the training frames.
  :func:`discard_training_frames` empties the other frames rather than removing them, so
  no temporal edge ever joins two frames that were not consecutive.
* **embedding map** (Fig. 3): t-SNE of test-node embeddings, coloured by anomaly score
  (:func:`embedding_map`, scikit-learn's :class:`~sklearn.manifold.TSNE` with its defaults,
  as the paper says it used).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

from anograph.errors import InputError
from anograph.graph.build import GraphConfig
from anograph.io.shards import VideoFeatures
from anograph.models.estimator import AnoGraph

#: Edge variant name -> which blocks the graph keeps.
EDGE_VARIANTS: dict[str, dict[str, bool]] = {
    "spatial": {"spatial": True, "temporal": False},
    "temporal": {"spatial": False, "temporal": True},
    "both": {"spatial": True, "temporal": True},
}
#: Test windows of the paper's Table 5.
DEFAULT_WINDOW_RADII = (1, 3, 5, 10, 15)
#: Points drawn in the embedding map (t-SNE is quadratic-ish in memory and slow beyond this).
EMBEDDING_MAP_POINTS = 2000


def edge_variant(base: GraphConfig, variant: str) -> GraphConfig:
    """``base`` with only the edges of ``variant`` (``"spatial"``, ``"temporal"`` or ``"both"``)."""
    if variant not in EDGE_VARIANTS:
        raise InputError(None, f"edge variant must be one of {sorted(EDGE_VARIANTS)}, not {variant!r}")
    return replace(base, **EDGE_VARIANTS[variant])


def with_propagation(model: AnoGraph, steps: int) -> AnoGraph:
    """A shallow copy of a fitted model with ``score_propagation_steps = steps`` (the original is untouched)."""
    if steps < 0:
        raise InputError(None, f"score propagation steps must be >= 0, not {steps}")
    copied = copy.copy(model)
    copied.score_propagation_steps = int(steps)
    return copied


def discard_training_frames(videos: Sequence[VideoFeatures], fraction: float, seed: int = 0) -> list[VideoFeatures]:
    """Keep a random ``fraction`` of all training frames (pooled over videos); empty the rest.

    Parameters
    ----------
    videos:
        Training videos.
    fraction:
        Share of frames kept, in ``(0, 1]``; ``round(fraction * total)`` frames, at least 1.
    seed:
        Seeds the choice, so a fraction always keeps the same frames.

    Returns
    -------
    list of VideoFeatures
        Same videos and frame counts; objects of discarded frames removed. A discarded
        frame is an empty frame, which breaks the temporal chain (no edge across it).
    """
    if not 0 < fraction <= 1:
        raise InputError(None, f"training fraction must lie in (0, 1], got {fraction}")
    videos = list(videos)
    counts = [video.metadata.n_frames for video in videos]
    total = int(sum(counts))
    if total == 0:
        raise InputError(None, "the training videos have no frames")
    keep = max(1, round(fraction * total))
    chosen = np.zeros(total, bool)
    chosen[np.random.default_rng(seed).choice(total, size=keep, replace=False)] = True
    kept_videos, start = [], 0
    for video, count in zip(videos, counts, strict=True):
        kept_frames = chosen[start : start + count]
        start += count
        rows = kept_frames[video.frames] if video.n_objects else np.zeros(0, bool)
        kept_videos.append(
            VideoFeatures(
                metadata=video.metadata,
                frames=video.frames[rows],
                boxes=video.boxes[rows],
                scores=video.scores[rows],
                class_ids=video.class_ids[rows],
                features=video.features[rows],
            )
        )
    return kept_videos


def embedding_map(
    embeddings: np.ndarray, max_points: int = EMBEDDING_MAP_POINTS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """2-D t-SNE of (a seeded sample of at most ``max_points``) embedding rows.

    Returns ``(rows, coordinates)``: the sampled row indices (sorted) and their ``(k, 2)``
    t-SNE coordinates. scikit-learn's defaults are kept (perplexity 30, capped below the
    number of points), with ``random_state=seed``. It runs on one thread: on a busy shared
    2-core machine t-SNE's OpenMP threads spun, 67 points took 88 s against 4 s on one thread.
    """
    embeddings = np.asarray(embeddings, np.float32)
    if len(embeddings) < 3:
        raise InputError(None, f"an embedding map needs at least 3 objects, got {len(embeddings)}")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(embeddings), size=min(len(embeddings), max_points), replace=False))
    perplexity = min(30.0, (len(rows) - 1) / 3)
    with threadpool_limits(limits=1):
        coordinates = TSNE(n_components=2, perplexity=perplexity, random_state=seed).fit_transform(
            embeddings[rows]
        )
    return rows, coordinates


def ablation_model_key(model_key: str, variant: str, options: dict[str, Any]) -> str:
    """Storage key of an ablation's retrained model: the main key, the variant, a hash of the options.

    A rerun with the same options finds the model again instead of retraining it.
    """
    digest = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{model_key}-ablation-{variant}-{digest}"
