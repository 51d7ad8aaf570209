"""`anograph evaluate`: re-score a trained model without re-extracting, with every ablation and report section."""

from __future__ import annotations

import json

import cv2
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort

from anograph.datasets.synthetic import generate_synthetic_dataset
from flows.cli import main


@pytest.mark.slow
def test_evaluate_reuses_shards_runs_ablations_and_writes_every_section(tmp_path, capsys):
    root = tmp_path / "data"
    generate_synthetic_dataset(root, n_train_videos=2, n_test_videos=2, n_frames=40, seed=5)
    store = tmp_path / "store"
    common = ["--dataset", "folder", "--root", str(root), "--detector", "motion", "--no-appearance"]
    assert main(["run", *common, "--out", str(tmp_path / "run"), "--storage", str(store),
                 "--epochs", "5", "--hidden", "16"]) == 0
    shards = {path: path.stat().st_mtime_ns for path in store.rglob("*.parquet")}
    (model_key,) = [path.parent.relative_to(store).as_posix() for path in store.rglob("model.json")]

    out = tmp_path / "evaluate"
    arguments = ["evaluate", *common, "--model", model_key, "--storage", str(store), "--out", str(out),
                 "--ablate-edges", "--window-sweep", "1,2", "--training-fractions", "0.5", "--embedding-map"]
    assert main(arguments) == 0
    # No shard was extracted again.
    assert {path: path.stat().st_mtime_ns for path in store.rglob("*.parquet")} == shards

    report = json.loads((out / "report.json").read_text())
    assert report["schema_version"] == 2 and report["versions"]["anograph"]
    assert report["config"]["model_detector"]["name"] == "motion"
    youden = report["youden"][report["default_scorer"]]
    assert youden["true_positives"] + youden["false_negatives"] == report["n_anomalous_frames"]
    assert youden["true_negatives"] + youden["false_positives"] == report["n_test_frames"] - report["n_anomalous_frames"]
    assert report["region_metrics"]["available"] is False  # the folder layout has no boxes
    assert report["published"] is None and report["nlilo_accuracy"] is None
    ablations = report["ablations"]
    assert list(ablations["edges"]["variants"]) == ["spatial", "temporal", "both"]
    assert list(ablations["window"]["variants"]) == ["i=1", "i=1, propagate 1", "i=2", "i=2, propagate 2"]
    assert list(ablations["training_fraction"]["variants"]) == ["50%", "100%"]
    half = ablations["training_fraction"]["details"]["50%"]
    assert 0 < half["n_training_nodes"] < report["config"]["model_training"]["n_nodes"]
    for name, ablation in ablations.items():
        for per_scorer in ablation["variants"].values():
            # The attribute ablation varies the attributes scorer alone; the others rescore every scorer.
            assert set(per_scorer) == ({"attributes"} if name == "attributes" else set(report["scorers"]))
    assert "all chosen" in ablations["attributes"]["variants"]
    markdown = (out / "report.md").read_text()
    for text in ("Table 1 layout", "Table 2 layout", "Table 3 layout", "Table 4 layout", "Table 5 layout",
                 "Fig. 4", "nlilo-accuracy", "embedding.png"):
        assert text in markdown, text
    image = cv2.imread(str(out / "embedding.png"))
    assert image is not None and image.std() > 10
    # The flow run published the report and links to its key figures as Prefect artifacts.
    with get_client(sync_client=True) as client:
        keys = ArtifactFilter(key=ArtifactFilterKey(any_=["anograph-report-folder", "anograph-report-folder-embedding"]))
        published = [(artifact.key, str(artifact.data))
                     for artifact in client.read_artifacts(artifact_filter=keys, sort=ArtifactSort.CREATED_DESC, limit=20)]
    assert any(key == "anograph-report-folder" and "Table 1 layout" in data for key, data in published)
    link = (out / "embedding.png").resolve().as_uri()
    assert any(key == "anograph-report-folder-embedding" and link in data for key, data in published)

    # A second evaluation finds the ablation models instead of training them again.
    assert main([*arguments[:-5], "--training-fractions", "0.5", "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "report.json").read_text())
    assert again["ablations"]["training_fraction"]["details"]["50%"]["reused"] is True
    assert '"frame_auc_micro"' in capsys.readouterr().out


def test_evaluate_with_a_missing_model_is_a_clear_error(tmp_path, capsys):
    root = tmp_path / "data"
    generate_synthetic_dataset(root, n_train_videos=1, n_test_videos=1, n_frames=10, seed=1)
    (tmp_path / "store").mkdir()  # evaluate only reads: a missing storage root is refused first
    code = main(["evaluate", "--dataset", "folder", "--root", str(root), "--detector", "motion", "--no-appearance",
                 "--model", "models/nothing-here", "--storage", str(tmp_path / "store"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "models/nothing-here" in capsys.readouterr().err
