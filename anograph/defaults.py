"""The product's defaults that more than one entry point shares, each with the reason it is the default.

The command line, the flows and the deployments read these names instead of repeating the
values, so ``anograph score`` and an evaluation report always agree on, say, the default
scorer. Defaults that belong to one component (a detector's threshold, the model's
hyper-parameters) stay documented on that component.
"""

from __future__ import annotations

from typing import Any

#: The scorer behind a report's headline AUC and behind ``anograph score`` unless one is chosen.
DEFAULT_SCORER = "attributes"
#: Why :data:`DEFAULT_SCORER` is the default (printed in every report that uses it).
DEFAULT_SCORER_REASON = (
    "attributes sums per-object attribute densities (speed and direction, class, appearance, interaction), "
    "each calibrated on held-out normal footage, with the attributes and their variants chosen for this "
    "dataset on pseudo-anomalies made from its training videos alone (see the report's model selection). "
    "No test label chose it; the paper's discriminator score and the graph-node scorers are reported beside it."
)
#: The default for a model without the attribute scorer (shards without the ``flow_stats`` group).
FALLBACK_SCORER = "group_knn"
FALLBACK_SCORER_REASON = (
    "group_knn: the model's shards lack the feature groups the attributes scorer reads, so the "
    "feature-group kNN scorer stands in"
)


def default_scorer_for(available: tuple[str, ...] | list[str]) -> tuple[str, str]:
    """``(scorer, reason)`` of the default among the scorers a model offers."""
    if DEFAULT_SCORER in available:
        return DEFAULT_SCORER, DEFAULT_SCORER_REASON
    return FALLBACK_SCORER, FALLBACK_SCORER_REASON


#: GCN training epochs (at most; early stopping still applies) when the headline scorer does not read
#: the GCN. The attribute and feature scorers are the same after any training, so the GCN is then
#: trained only for the paper's reference rows (``discriminator``, ``knn``); ``--epochs`` overrides.
REFERENCE_MAX_EPOCHS = 20

#: The reference GCN's node features (when the shards have them and no ``--feature-groups`` is
#: given): the groups the label-free validation can alter consistently, so its figure is
#: measured (``bench/gcn_validation.py``), each column standardised on its own. Group scaling
#: divides a group by its total spread, and in ``flow_stats`` the direction histogram's spread
#: drowns the speeds: a GCN so fed cannot see an object move twice as fast.
REFERENCE_FEATURE_GROUPS = ("class", "geometry", "flow_stats")
REFERENCE_FEATURE_SCALING = "column"

#: What a report says when the user chose the scorer.
CHOSEN_SCORER_REASON = "chosen by the user"

#: Test-window half-width ``i`` in seconds: the paper's choice (one second each side of a frame).
DEFAULT_WINDOW_SECONDS = 1.0
#: Gaussian smoothing sigma (frames) of the smoothed AUCs.
DEFAULT_SMOOTHING_SIGMA = 3.0

#: Test windows ``i`` of the paper's Table 5: the window sweep of ``--all-ablations``.
DEFAULT_WINDOW_RADII = (1, 3, 5, 10, 15)
#: Shares of the training frames of the paper's Fig. 4 that ``--all-ablations`` retrains on.
DEFAULT_TRAINING_FRACTIONS = (0.1, 0.5)

#: Ablations a run can ask for (the ``ablations`` argument of the evaluation flows), all off by default.
ABLATION_DEFAULTS: dict[str, Any] = {
    "edges": False,  # retrain with spatial-only and temporal-only graphs
    "window_radii": [],  # test windows i to score the trained model with, e.g. [1, 3, 5, 10, 15]
    "training_fractions": [],  # shares of training frames to retrain on, e.g. [0.1, 0.5]
    "embedding": False,  # t-SNE map of test-object embeddings
    "seed": 0,  # seeds frame discarding and t-SNE
}
#: Every ablation with the paper's sweeps (``--all-ablations``).
ALL_ABLATIONS: dict[str, Any] = {
    "edges": True, "window_radii": list(DEFAULT_WINDOW_RADII),
    "training_fractions": list(DEFAULT_TRAINING_FRACTIONS), "embedding": True, "seed": 0,
}
