"""The GCN's training budget follows the headline scorer: full for a GCN scorer, a reference budget otherwise."""

from __future__ import annotations

import pytest
from synthetic_features import make_videos

from anograph.defaults import (
    DEFAULT_SCORER,
    REFERENCE_FEATURE_GROUPS,
    REFERENCE_FEATURE_SCALING,
    REFERENCE_MAX_EPOCHS,
)
from anograph.evaluation.report.markdown import gcn_training_note
from anograph.io.shards import write_shard
from anograph.io.storage import Storage
from anograph.models.estimator import AnoGraph
from anograph.models.scorers import GCN_SCORERS
from anograph.ops.training_run import gcn_role, options_for_headline, train_model

FULL_EPOCHS = AnoGraph().max_epochs


def test_only_the_scorers_reading_the_gcn_need_it_trained():
    assert set(GCN_SCORERS) == {"discriminator", "knn"}
    assert DEFAULT_SCORER not in GCN_SCORERS
    assert gcn_role(None) == "reference"
    assert gcn_role("group_knn") == "reference"
    assert gcn_role("discriminator") == "headline"


def test_a_reference_gcn_gets_the_reference_budget_unless_epochs_are_chosen():
    assert options_for_headline({}, None)["max_epochs"] == REFERENCE_MAX_EPOCHS < FULL_EPOCHS
    assert "max_epochs" not in options_for_headline({"hidden_channels": 8}, "knn")
    assert options_for_headline({"max_epochs": 7}, "attributes")["max_epochs"] == 7
    assert options_for_headline({"max_epochs": None}, "attributes")["max_epochs"] == REFERENCE_MAX_EPOCHS


def test_a_reference_gcn_reads_the_validated_groups_where_the_shards_have_them():
    layout = ["appearance", *REFERENCE_FEATURE_GROUPS, "motion"]
    options = options_for_headline({}, "attributes", layout)
    assert options["feature_groups"] == list(REFERENCE_FEATURE_GROUPS)
    assert options["feature_scaling"] == REFERENCE_FEATURE_SCALING == "column"
    # Shards without one of them (no flow statistics), a chosen input, or a GCN headline: untouched.
    assert "feature_groups" not in options_for_headline({}, "attributes", ["class", "geometry", "motion"])
    assert options_for_headline({"feature_groups": ["class"]}, None, layout)["feature_groups"] == ["class"]
    assert "feature_groups" not in options_for_headline({"feature_scaling": "group"}, None, layout)
    assert "feature_groups" not in options_for_headline({}, "knn", layout)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> tuple[Storage, list[str]]:
    storage = Storage(str(tmp_path_factory.mktemp("gcn-budget")))
    keys = []
    for video in make_videos(3, seed=5, n_frames=20):
        keys.append(f"shards/train/{video.metadata.video}.parquet")
        write_shard(storage, keys[-1], video)
    return storage, keys


@pytest.mark.parametrize("headline, budget", [(None, REFERENCE_MAX_EPOCHS), ("discriminator", FULL_EPOCHS)])
def test_training_runs_with_the_budget_of_its_headline_and_says_so(shards, headline, budget):
    storage, keys = shards
    options = {"hidden_channels": 8, "patience": 1000, "seed": 0}  # no early stop: the budget is what runs
    trained = train_model(storage, keys, options, calibrate=False, headline_scorer=headline)
    summary = trained.summary("models/x")
    gcn = summary["gcn"]
    assert trained.model.max_epochs == gcn["max_epochs"] == budget
    assert summary["n_epochs"] == trained.model.n_epochs_ == budget
    assert gcn["role"] == gcn_role(headline)
    note = gcn_training_note(summary, headline or DEFAULT_SCORER)
    assert (f"at most {REFERENCE_MAX_EPOCHS} epochs" in note) == (headline is None)
    assert ("does not read the trained GCN" in note) == (headline is None)
