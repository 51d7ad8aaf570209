"""Shards, models, reports and the whole pipeline through a real S3 server (SeaweedFS, tests/s3_server.py)."""

from __future__ import annotations

import json

import numpy as np
from synthetic_features import make_video, make_videos

from anograph.datasets.synthetic import generate_synthetic_dataset
from anograph.evaluation.report import build_report, store_report, write_report
from anograph.io.shards import read_metadata, read_shard, write_shard
from anograph.io.storage import Storage
from anograph.models.estimator import AnoGraph
from anograph.models.scorers import SCORERS  # the graph-node scorers: these shards have no flow_stats
from flows.cli import main


def test_shard_roundtrips_through_s3(s3_root):
    storage = Storage(s3_root)
    video = make_video("clip", np.random.default_rng(0), n_frames=12, empty_frames=[2])
    write_shard(storage, "shards/f/train/clip.parquet", video)
    loaded = read_shard(storage, "shards/f/train/clip.parquet")
    assert loaded.metadata == video.metadata
    np.testing.assert_array_equal(loaded.frames, video.frames)
    np.testing.assert_array_equal(loaded.boxes, video.boxes)
    np.testing.assert_array_equal(loaded.features, video.features)
    assert read_metadata(storage, "shards/f/train/clip.parquet").n_frames == 12


def test_model_roundtrips_through_s3(s3_root):
    storage = Storage(s3_root)
    model = AnoGraph(hidden_channels=16, max_epochs=5, seed=0).fit(make_videos(2, seed=1, n_frames=15))
    model.save(storage, "models/m")
    assert storage.list("models") == ["models/m/manifest.json", "models/m/model.json", "models/m/tensors.safetensors"]
    loaded = AnoGraph.load(storage, "models/m")
    test_video = make_video("test", np.random.default_rng(5), n_frames=15)
    before, after = model.score_video(test_video, window_radius=3), loaded.score_video(test_video, window_radius=3)
    for name in SCORERS:
        np.testing.assert_array_equal(before[name], after[name])


def test_report_is_stored_under_the_s3_root(s3_root, tmp_path):
    storage = Storage(s3_root)
    scores = {name: {"v": np.linspace(0, 1, 20)} for name in SCORERS}
    labels = {"v": np.arange(20) >= 12}
    report = build_report(scores, labels, dataset="d", detector="motion", default_scorer="knn",
                          default_scorer_reason="test")
    paths = write_report(tmp_path, report, scores, labels, "knn")
    keys = store_report(paths, storage, "reports/d-run")
    assert set(keys) == {"reports/d-run/report.json", "reports/d-run/report.md", "reports/d-run/roc.png",
                         "reports/d-run/scores_v.png"}
    assert json.loads(storage.read_bytes("reports/d-run/report.json")) == json.loads(paths["json"].read_text())


def test_pipeline_runs_with_an_s3_root_and_never_writes_the_secret(s3_root, s3_server, tmp_path, capfd):
    root = tmp_path / "data"
    generate_synthetic_dataset(root, n_train_videos=2, n_test_videos=2, n_frames=30, seed=7)
    out = tmp_path / "out"
    bare_root, endpoint = s3_root.split("?endpoint_override=")
    code = main(["run", "--dataset", "folder", "--root", str(root), "--detector", "motion", "--no-appearance",
                 "--epochs", "3", "--hidden", "16", "--out", str(out), "--storage", bare_root,
                 "--s3-endpoint", endpoint])
    output = capfd.readouterr()
    assert code == 0, output.err

    storage = Storage(s3_root)
    keys = storage.list()
    shards = [key for key in keys if key.startswith("shards/")]
    assert len(shards) == 4 and {key.split("/")[2] for key in shards} == {"train", "test"}
    assert any(key.startswith("models/") and key.endswith("tensors.safetensors") for key in keys)
    report_keys = [key for key in keys if key.startswith("reports/")]
    assert {key.rsplit("/", 1)[1] for key in report_keys} >= {"report.json", "report.md", "roc.png"}
    stored_report = json.loads(storage.read_bytes(next(k for k in report_keys if k.endswith("report.json"))))
    assert stored_report == json.loads((out / "report.json").read_text())
    assert stored_report["config"]["storage"].startswith(bare_root)
    assert not (out / "store").exists(), "nothing may go to the local default root"

    # The secret is in the environment only: not in any stored object, the local report, or the output.
    secret = s3_server.secret_key.encode()
    for key in keys:
        assert secret not in storage.read_bytes(key), key
    for path in out.rglob("*"):
        if path.is_file():
            assert secret not in path.read_bytes(), path
    assert s3_server.secret_key not in output.out + output.err
