"""The scorers (anograph.models.scorers): fit, score and held-out calibration against brute force,
and the registry through which a new scorer joins a model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from synthetic_features import make_video, make_videos

from anograph.io.storage import Storage
from anograph.models.dgi import DeepGraphInfomax
from anograph.models.estimator import AnoGraph
from anograph.models.scorers import (
    CALIBRATED_QUANTILE,
    SCORER_CLASSES,
    SCORERS,
    DiscriminatorScorer,
    FeatureKnnScorer,
    GroupKnnScorer,
    NodeRows,
    Scorer,
    ScorerContext,
    register_scorer,
    sum_calibrated,
)

K = 3
GROUPS = {"wide": np.arange(0, 4), "narrow": np.arange(4, 6)}


def _context(hidden: int = 4) -> ScorerContext:
    torch.manual_seed(0)
    dgi = DeepGraphInfomax(6, hidden)
    dgi.reset_parameters(torch.Generator().manual_seed(1))
    return ScorerContext(n_neighbors=K, group_columns=GROUPS, dgi=dgi, summary=torch.rand(hidden))


def _rows(rng: np.random.Generator, n: int, n_groups: int | None = None) -> NodeRows:
    groups = None if n_groups is None else rng.integers(0, n_groups, n)
    return NodeRows(rng.normal(size=(n, 6)).astype(np.float32), rng.normal(size=(n, 4)).astype(np.float32), groups)


def _brute_force_knn(queries, bank, query_groups=None, bank_groups=None) -> np.ndarray:
    distances = np.linalg.norm(queries[:, None, :].astype(np.float64) - bank[None, :, :], axis=2)
    if query_groups is not None:
        distances[query_groups[:, None] == bank_groups[None, :]] = np.inf
    return np.sort(distances, axis=1)[:, :K].mean(axis=1)


def test_feature_knn_scores_and_held_out_calibration_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    bank, calibration, test = _rows(rng, 80, n_groups=4), _rows(rng, 30, n_groups=4), _rows(rng, 10)
    scorer = FeatureKnnScorer(_context()).fit(bank, calibration)
    np.testing.assert_allclose(scorer.score(test, bank), _brute_force_knn(test.features, bank.features), rtol=1e-4)
    held_out = _brute_force_knn(calibration.features, bank.features, calibration.groups, bank.groups)
    np.testing.assert_allclose(scorer.calibration_scores_, np.sort(held_out), rtol=1e-4)
    # Leaving the own group out makes calibration scores larger than in-sample ones.
    assert np.all(np.sort(held_out) >= np.sort(_brute_force_knn(calibration.features, bank.features)))


def test_group_knn_scales_each_group_by_its_training_quantile() -> None:
    rng = np.random.default_rng(1)
    bank, calibration, test = _rows(rng, 60, n_groups=3), _rows(rng, 40, n_groups=3), _rows(rng, 8)
    scorer = GroupKnnScorer(_context()).fit(bank, calibration)
    held_out = {
        name: _brute_force_knn(calibration.features[:, columns], bank.features[:, columns],
                               calibration.groups, bank.groups)
        for name, columns in GROUPS.items()
    }
    expected_scale = [np.quantile(values, CALIBRATED_QUANTILE) for values in held_out.values()]
    np.testing.assert_allclose(scorer.scale_, expected_scale, rtol=1e-4)
    expected = sum(
        _brute_force_knn(test.features[:, columns], bank.features[:, columns]) / scale
        for columns, scale in zip(GROUPS.values(), expected_scale, strict=True)
    )
    np.testing.assert_allclose(scorer.score(test, bank), expected, rtol=1e-4)
    # The saved state restores the same scorer.
    restored = GroupKnnScorer(_context()).load_state(scorer.state())
    np.testing.assert_array_equal(restored.score(test, bank), scorer.score(test, bank))
    np.testing.assert_array_equal(restored.calibration_scores_, scorer.calibration_scores_)
    assert set(scorer.state()) == {"calibration.group_knn", "group_knn.scale"}


def test_discriminator_scores_are_the_negated_logits() -> None:
    rng = np.random.default_rng(2)
    context = _context()
    rows = _rows(rng, 12)
    scores = DiscriminatorScorer(context).score(rows, rows)
    weight = context.dgi.discriminator.weight.detach().double().numpy()
    bias = float(context.dgi.discriminator.bias.detach())
    expected = -(rows.embeddings.astype(np.float64) @ (weight @ context.summary.double().numpy()) + bias)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


def test_sum_calibrated_puts_scorers_on_one_scale() -> None:
    rng = np.random.default_rng(3)
    calibration = {"small": np.sort(rng.uniform(0, 0.01, 500)), "large": np.sort(rng.uniform(0, 1000, 500))}
    at_quantile = {name: np.full(3, np.quantile(values, CALIBRATED_QUANTILE)) for name, values in calibration.items()}
    np.testing.assert_allclose(sum_calibrated(at_quantile, calibration), 2.0)
    doubled = {**at_quantile, "small": 2 * at_quantile["small"]}
    np.testing.assert_allclose(sum_calibrated(doubled, calibration), 3.0)


class FeatureNormScorer(Scorer):
    """A test scorer: the Euclidean norm of the standardised features."""

    name = "test_feature_norm"

    def score(self, rows: NodeRows, bank: NodeRows) -> np.ndarray:
        return np.linalg.norm(np.asarray(rows.features, np.float64), axis=1)


def test_a_registered_scorer_is_fitted_saved_and_scored_by_the_model(tmp_path) -> None:
    assert SCORERS == ("discriminator", "knn", "feature_knn", "group_knn")
    with pytest.raises(ValueError, match="already registered"):
        register_scorer(FeatureKnnScorer)
    register_scorer(FeatureNormScorer)
    try:
        videos = make_videos(2, seed=5, n_frames=15)
        model = AnoGraph(hidden_channels=8, max_epochs=3, score_propagation_steps=0).fit(videos)
        assert list(model.scorers_) == [*SCORERS, FeatureNormScorer.name]
        calibration = model.calibration_scores_[FeatureNormScorer.name]
        assert len(calibration) == model.n_training_nodes_ and np.all(np.diff(calibration) >= 0)
        test = make_video("test", np.random.default_rng(6), n_frames=10)
        scores = model.score_video(test, window_radius=2, scorers=[FeatureNormScorer.name, "knn"])
        features, _ = model.embed_video(test, window_radius=2)
        np.testing.assert_allclose(scores[FeatureNormScorer.name], np.linalg.norm(features, axis=1), rtol=1e-6)
        combined = sum_calibrated(scores, model.calibration_scores_)
        assert combined.shape == (test.n_objects,) and np.all(combined > 0)
        model.save(Storage(tmp_path), "model")
        loaded = AnoGraph.load(Storage(tmp_path), "model")
        np.testing.assert_array_equal(loaded.calibration_scores_[FeatureNormScorer.name], calibration)
    finally:
        del SCORER_CLASSES[FeatureNormScorer.name]
    assert tuple(SCORER_CLASSES) == SCORERS
