"""Object anomaly scorers (higher = more anomalous), one small class each, registered by name.

Every scorer reads :class:`NodeRows` (an object's standardised features and its GCN
embedding) and may compare them with the model's *bank*: the rows of up to
``knn_bank_size`` random training nodes. The built-in scorers:

* ``"discriminator"``: ``-(h^T W s_train + c)``, the logit of Eq. 5 negated. It ranks exactly
  like the paper's ``1 - D(h, s_train)`` but does not saturate: in float32 ``1 - sigmoid``
  is exactly 0 for a few percent of test objects, which creates ties.
* ``"knn"``: mean Euclidean distance of the object's GCN embedding to its ``k`` nearest
  bank embeddings.
* ``"feature_knn"``: the same on the standardised input features, without the graph: the
  baseline that shows what the graph and the encoder add.
* ``"group_knn"``: one kNN distance per feature group (appearance, class, motion, ...) on
  the standardised input features of that group alone, each divided by the
  :data:`CALIBRATED_QUANTILE` quantile of its held-out training distances, then summed.
  Each group votes on its own scale, so an object that is unusual in one respect only (a
  normal-looking walker moving at a biker's speed) is not averaged away by the groups in
  which it is ordinary.

Calibration without test labels: fitting a scorer sets ``calibration_scores_``, the sorted
scores of up to ``CALIBRATION_SIZE`` random training nodes, embedded with the whole
training graph. The kNN scorers compute them *leave-one-video-out*
(:meth:`Scorer.held_out_scores`: bank rows of the node's own group are excluded, which
mimics scoring an unseen video; with a single training video the group is the node
itself). The discriminator's are in-sample (it was trained on every training node), so
they are somewhat optimistic. These are object scores; a frame score is the max over a
frame's objects, so frame-level thresholds sit higher.

Adding a scorer (a velocity density, a class-frequency prior, ...): subclass
:class:`Scorer`, give it a ``name``, implement :meth:`Scorer.score` (and
:meth:`Scorer.fit` / :meth:`Scorer.state` / :meth:`Scorer.load_state` if it learns
parameters), and decorate it with :func:`register_scorer`. Scores of several scorers can be
combined on a common scale with :func:`sum_calibrated`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np
import torch

from anograph.models.dgi import DeepGraphInfomax
from anograph.models.knn import knn_mean_distance

# The training-score quantile that puts a score (or a group of group_knn) on a common scale.
CALIBRATED_QUANTILE = 0.99
# Smallest scale used, so a scorer whose training scores are all 0 does not divide by 0.
SCALE_FLOOR = 1e-12


@dataclass(frozen=True)
class NodeRows:
    """Per-object scorer inputs, aligned by row.

    ``features``: standardised input features ``(n, d)``; ``embeddings``: GCN embeddings
    ``(n, hidden)``; ``groups``: for training rows, the group left out in
    :meth:`Scorer.held_out_scores` (the video, or the node itself), else ``None``.
    """

    features: np.ndarray
    embeddings: np.ndarray
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.features)


@dataclass(frozen=True)
class ScorerContext:
    """What scorers are built with: the model's settings and its trained parts.

    ``n_neighbors``: ``k`` of the kNN scorers. ``group_columns``: the columns of each
    selected feature group within the standardised features, by group name. ``dgi`` and
    ``summary``: the trained modules and the training readout ``s_train``.
    """

    n_neighbors: int
    group_columns: Mapping[str, np.ndarray]
    dgi: DeepGraphInfomax
    summary: torch.Tensor


class Scorer(ABC):
    """One anomaly score per object. Subclasses set ``name`` and implement :meth:`score`.

    Attributes (after :meth:`fit` or :meth:`load_state`)
    ----------------------------------------------------
    calibration_scores_ : numpy.ndarray
        Sorted held-out scores of the calibration nodes (see the module docstring).
    """

    name: ClassVar[str]
    #: Whether the score reads the trained GCN (its embeddings or its discriminator).
    reads_gcn: ClassVar[bool] = False

    def __init__(self, context: ScorerContext) -> None:
        self.context = context

    def fit(self, bank: NodeRows, calibration: NodeRows) -> Scorer:
        """Learn from the training rows (by default nothing) and set ``calibration_scores_``."""
        self.calibration_scores_ = np.sort(self.held_out_scores(calibration, bank))
        return self

    @abstractmethod
    def score(self, rows: NodeRows, bank: NodeRows) -> np.ndarray:
        """``(len(rows),)`` float64 scores of unseen objects against the training ``bank``."""

    def held_out_scores(self, calibration: NodeRows, bank: NodeRows) -> np.ndarray:
        """Scores of training rows as if their group were unseen; by default in-sample :meth:`score`."""
        return self.score(calibration, bank)

    def state(self) -> dict[str, np.ndarray]:
        """Fitted arrays to save, by artifact key (``calibration.<name>``, plus the scorer's own)."""
        return {f"calibration.{self.name}": np.asarray(self.calibration_scores_, np.float64)}

    def load_state(self, state: Mapping[str, np.ndarray]) -> Scorer:
        """Restore what :meth:`state` saved."""
        self.calibration_scores_ = np.asarray(state[f"calibration.{self.name}"])
        return self


ScorerType = TypeVar("ScorerType", bound=type[Scorer])

# Every scorer a model fits, saves and can score with, by name, in registration order.
SCORER_CLASSES: dict[str, type[Scorer]] = {}


def register_scorer(scorer_class: ScorerType) -> ScorerType:
    """Class decorator: make ``scorer_class`` available under its ``name``."""
    if scorer_class.name in SCORER_CLASSES:
        raise ValueError(f"a scorer named {scorer_class.name!r} is already registered")
    SCORER_CLASSES[scorer_class.name] = scorer_class
    return scorer_class


def make_scorers(names: Iterable[str], context: ScorerContext) -> dict[str, Scorer]:
    """Unfitted scorers ``names`` (registered names), built with ``context``."""
    return {name: SCORER_CLASSES[name](context) for name in names}


def quantile_scale(values: np.ndarray, quantile: float = CALIBRATED_QUANTILE) -> float:
    """The ``quantile`` of ``values``, at least :data:`SCALE_FLOOR`: the divisor that calibrates a score."""
    return max(float(np.quantile(values, quantile)), SCALE_FLOOR)


def sum_calibrated(
    scores: Mapping[str, np.ndarray],
    calibration_scores: Mapping[str, np.ndarray],
    quantile: float = CALIBRATED_QUANTILE,
) -> np.ndarray:
    """Combine scorers: each score divided by the ``quantile`` of its training scores, summed.

    ``calibration_scores`` is a fitted model's ``calibration_scores_``; every scorer then
    counts 1 at its own training ``quantile``, whatever its units.
    """
    return sum(
        np.asarray(values, np.float64) / quantile_scale(calibration_scores[name], quantile)
        for name, values in scores.items()
    )


@register_scorer
class DiscriminatorScorer(Scorer):
    """``-(h^T W s_train + c)``: the negated DGI logit against the training readout."""

    name = "discriminator"
    reads_gcn = True

    def score(self, rows: NodeRows, bank: NodeRows) -> np.ndarray:
        summary = self.context.summary
        with torch.no_grad():
            logits = self.context.dgi.discriminate(
                torch.from_numpy(np.asarray(rows.embeddings, np.float32)).to(summary.device), summary
            )
        return -logits.double().cpu().numpy()


class KnnScorer(Scorer):
    """Mean distance of an object's :meth:`values` to the ``k`` nearest bank rows' values."""

    @abstractmethod
    def values(self, rows: NodeRows) -> np.ndarray:
        """The vectors of ``rows`` that are compared."""

    def score(self, rows: NodeRows, bank: NodeRows) -> np.ndarray:
        return knn_mean_distance(self.values(rows), self.values(bank), self.context.n_neighbors)

    def held_out_scores(self, calibration: NodeRows, bank: NodeRows) -> np.ndarray:
        return knn_mean_distance(
            self.values(calibration), self.values(bank), self.context.n_neighbors, calibration.groups, bank.groups
        )


@register_scorer
class EmbeddingKnnScorer(KnnScorer):
    """kNN on the GCN embeddings."""

    name = "knn"
    reads_gcn = True

    def values(self, rows: NodeRows) -> np.ndarray:
        return rows.embeddings


@register_scorer
class FeatureKnnScorer(KnnScorer):
    """kNN on the standardised input features (no graph, no encoder)."""

    name = "feature_knn"

    def values(self, rows: NodeRows) -> np.ndarray:
        return rows.features


@register_scorer
class GroupKnnScorer(Scorer):
    """Per feature group, the kNN distance on that group's columns over its training scale; summed.

    Attributes (after :meth:`fit` or :meth:`load_state`)
    ----------------------------------------------------
    scale_ : numpy.ndarray
        ``(n_groups,)`` the :data:`CALIBRATED_QUANTILE` quantile of each group's held-out
        training distances.
    """

    name = "group_knn"

    def fit(self, bank: NodeRows, calibration: NodeRows) -> GroupKnnScorer:
        distances = self._distances(calibration, bank, held_out=True)
        self.scale_ = np.array([quantile_scale(group) for group in distances])
        self.calibration_scores_ = np.sort(self._combine(distances))
        return self

    def score(self, rows: NodeRows, bank: NodeRows) -> np.ndarray:
        return self._combine(self._distances(rows, bank, held_out=False))

    def held_out_scores(self, calibration: NodeRows, bank: NodeRows) -> np.ndarray:
        return self._combine(self._distances(calibration, bank, held_out=True))

    def state(self) -> dict[str, np.ndarray]:
        return {**super().state(), "group_knn.scale": np.asarray(self.scale_, np.float64)}

    def load_state(self, state: Mapping[str, np.ndarray]) -> GroupKnnScorer:
        super().load_state(state)
        self.scale_ = np.asarray(state["group_knn.scale"])
        return self

    def _distances(self, rows: NodeRows, bank: NodeRows, held_out: bool) -> list[np.ndarray]:
        groups = (rows.groups, bank.groups) if held_out else (None, None)
        return [
            knn_mean_distance(rows.features[:, columns], bank.features[:, columns], self.context.n_neighbors, *groups)
            for columns in self.context.group_columns.values()
        ]

    def _combine(self, distances: list[np.ndarray]) -> np.ndarray:
        return sum(group / scale for group, scale in zip(distances, self.scale_, strict=True))


# The built-in scorers, in the order models report them.
SCORERS = tuple(SCORER_CLASSES)
#: The scorers that need a trained GCN; the others (and ``attributes``) are the same after any training.
GCN_SCORERS = tuple(name for name, cls in SCORER_CLASSES.items() if cls.reads_gcn)
