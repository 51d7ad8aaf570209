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

The planning functions (:func:`requested_ablations`, :func:`plan_window_sweep`,
:func:`plan_edge_variants`, :func:`plan_training_fractions`) decide which models to train
and which scorings to run for a request; the evaluation flow only carries them out.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

from anograph.defaults import ABLATION_DEFAULTS, DEFAULT_WINDOW_RADII  # noqa: F401 - DEFAULT_WINDOW_RADII re-exported
from anograph.errors import InputError
from anograph.graph.build import GraphConfig
from anograph.graph.windows import SlidingWindowGraph
from anograph.io.shards import VideoFeatures
from anograph.models.estimator import AnoGraph

#: Edge variant name -> which blocks the graph keeps.
EDGE_VARIANTS: dict[str, dict[str, bool]] = {
    "spatial": {"spatial": True, "temporal": False},
    "temporal": {"spatial": False, "temporal": True},
    "both": {"spatial": True, "temporal": True},
}
#: Points drawn in the embedding map (t-SNE is quadratic-ish in memory and slow beyond this).
EMBEDDING_MAP_POINTS = 2000


def edge_variant(base: GraphConfig, variant: str) -> GraphConfig:
    """``base`` with only the edges of ``variant`` (``"spatial"``, ``"temporal"`` or ``"both"``)."""
    if variant not in EDGE_VARIANTS:
        raise InputError(None, f"edge variant must be one of {sorted(EDGE_VARIANTS)}, not {variant!r}")
    return replace(base, **EDGE_VARIANTS[variant])


WINDOW_NOTE = (
    "One trained model, no retraining. For this one-layer encoder an object's embedding depends only on "
    "frames t-1..t+1 (t-2..t+2 with symmetric normalisation), so any i at or above that reach gives the "
    "same embeddings and raw scores (anograph.graph.windows); i matters here through score propagation, capped at "
    "i steps. Rows 'i=N' use the model's own propagation setting ({steps} steps); rows 'i=N, propagate i' "
    "spread scores i steps over the window graph, so the score of frame t sees frames t-i..t+i."
)
EDGES_NOTE = (
    "One model per row, retrained with only those edges (all else equal). Scorers that do not use the "
    "graph (feature_knn, group_knn without propagation) cannot change between rows; knn and discriminator "
    "use the GCN embeddings and can."
)
FRACTION_NOTE = (
    "One model per row, retrained on a seeded random share of the training frames (seed {seed}); the other "
    "frames are emptied, so no temporal edge spans a discarded frame. 100% is the main model."
)
#: The report label of the main model among the training fractions.
FULL_TRAINING_LABEL = "100%"


def requested_ablations(ablations: Mapping[str, Any] | None, have_training_shards: bool) -> dict[str, Any]:
    """The ablations asked for, over :data:`anograph.defaults.ABLATION_DEFAULTS`.

    The edge and training-fraction ablations retrain, so without training shards asking
    for them is an :class:`InputError`.
    """
    wanted = {**ABLATION_DEFAULTS, **(ablations or {})}
    if needs_retraining(wanted) and not have_training_shards:
        raise InputError(None, "the edge and training-fraction ablations retrain, so they need training shards")
    return wanted


def needs_retraining(ablations: Mapping[str, Any]) -> bool:
    """Whether the ablations retrain models (edges, training fractions), and so need the training shards."""
    return bool(ablations.get("edges") or ablations.get("training_fractions"))


@dataclass(frozen=True)
class WindowScoring:
    """One scoring of the window ablation: test-window ``radius``, and whether to propagate ``radius`` steps."""

    radius: int
    propagate: bool


def plan_window_sweep(radii: Sequence[int], config: GraphConfig,
                      propagation_steps: int) -> tuple[list[WindowScoring], dict[str, int]]:
    """The scorings the window sweep needs, and for each report row (in order) the scoring that fills it.

    Row ``i=N`` scores with the model's own ``propagation_steps``, row ``i=N, propagate N`` with
    :func:`with_propagation` ``(model, N)``. Scores depend on the radius only through
    ``min(radius, reach)`` (the window the encoder sees,
    :attr:`anograph.graph.windows.SlidingWindowGraph.effective_radius`) and
    ``min(propagation_steps, radius)``, so ``i=N`` rows equal in both share one scoring.
    """
    if not radii:
        return [], {}
    reach = SlidingWindowGraph(max(radii), config).effective_radius
    scorings: list[WindowScoring] = []
    rows: dict[str, int] = {}
    shared: dict[tuple[int, int], int] = {}
    for radius in radii:
        effective = (min(radius, reach), min(propagation_steps, radius))
        if effective not in shared:
            shared[effective] = len(scorings)
            scorings.append(WindowScoring(int(radius), propagate=False))
        rows[f"i={radius}"] = shared[effective]
        rows[f"i={radius}, propagate {radius}"] = len(scorings)
        scorings.append(WindowScoring(int(radius), propagate=True))
    return scorings, rows


def plan_edge_variants(options: Mapping[str, Any]) -> dict[str, dict[str, Any] | None]:
    """Per edge variant, the model options to retrain with, or ``None`` where the main model is that variant.

    ``options`` are the main model's JSON-friendly options (``graph`` as a dict).
    """
    base = GraphConfig.from_dict(options["graph"])
    plans: dict[str, dict[str, Any] | None] = {}
    for variant in EDGE_VARIANTS:
        config = edge_variant(base, variant)
        plans[variant] = None if config == base else {**options, "graph": config.to_dict()}
    return plans


def plan_training_fractions(fractions: Sequence[float]) -> dict[str, float]:
    """Report label (``"10%"``) -> share of training frames to retrain on, ascending; shares >= 1 are the main model."""
    return {f"{fraction:.0%}": fraction for fraction in sorted(float(value) for value in fractions) if fraction < 1.0}


def embedding_map_scorers(default_scorer: str) -> list[str]:
    """Scorers whose scores colour the embedding map: the default one and the paper's discriminator."""
    return list(dict.fromkeys([default_scorer, "discriminator"]))


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
                sources=video.sources[rows],
                track_ids=video.track_ids[rows],
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


ATTRIBUTES_NOTE = (
    "Each attribute of the chosen ensemble alone, and the ensemble without it: what every attribute "
    "adds on this test set. The choice itself was made on training footage (see Model selection)."
)
#: The variant holding the whole chosen ensemble in the attribute ablation.
ALL_ATTRIBUTES_LABEL = "all chosen"


def attribute_subsets(labels: Sequence[str]) -> dict[str, list[str]]:
    """Variant name -> attribute labels of the per-attribute ablation: the whole ensemble, each part
    alone, the rest without it (scored by :meth:`~anograph.attributes.ensemble.AttributeEnsemble.score_subsets`,
    which combines them by the ensemble's own rule)."""
    subsets = {ALL_ATTRIBUTES_LABEL: list(labels)}
    if len(labels) > 1:
        for label in labels:
            subsets[f"only {label}"] = [label]
            subsets[f"without {label}"] = [other for other in labels if other != label]
    return subsets


def attribute_ablation(results: Sequence[tuple[str, Mapping[str, np.ndarray]]], chosen: Sequence[str],
                       scorer: str) -> dict[str, Any]:
    """The report's attribute ablation from per-video ``(video, variant -> frame scores)`` results."""
    variants: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for video, by_variant in results:
        for variant, frames in by_variant.items():
            variants.setdefault(variant, {scorer: {}})[scorer][video] = frames
    return {"variants": variants, "note": ATTRIBUTES_NOTE, "details": {"chosen": list(chosen)}}
