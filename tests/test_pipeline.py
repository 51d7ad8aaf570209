"""The whole pipeline as users run it: the CLI demo, and a failed video failing the flow visibly."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from anograph.datasets.synthetic import generate_synthetic_dataset
from anograph.defaults import REFERENCE_FEATURE_GROUPS
from anograph.io.extraction_settings import ExtractionSettings
from flows.cli import main
from flows.extract_features import ExtractionFailed, extract_features


@pytest.mark.slow
def test_demo_runs_end_to_end_and_writes_the_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "40"]) == 0

    report = json.loads((out / "report.json").read_text())
    for key in ("dataset", "detector", "frame_auc_micro", "frame_auc_macro", "n_test_frames",
                "n_anomalous_frames", "stage_seconds", "scorers", "default_scorer"):
        assert key in report, key
    assert report["dataset"] == "synthetic" and report["detector"] == "motion"
    assert report["n_test_frames"] == 3 * 150 + 2 * 100 and 0 < report["n_anomalous_frames"] < report["n_test_frames"]
    assert set(report["stage_seconds"]) >= {"extract", "graph", "train", "score"}
    # The synthetic anomalies (wrong direction, too fast, unusual object, converging, following) must be found well above chance.
    assert report["default_scorer"] == "attributes"
    assert report["frame_auc_micro"] > 0.8, report["scorers"]
    # The reference GCN reads the groups the label-free validation measured, each column scaled.
    gcn = report["config"]["training"]["gcn"]
    assert gcn["role"] == "reference"
    assert gcn["feature_groups"] == list(REFERENCE_FEATURE_GROUPS) and gcn["feature_scaling"] == "column"
    assert (out / "report.md").read_text().count("![") >= 2
    assert (out / "roc.png").stat().st_size > 5000
    shards = list((out / "store" / "shards").rglob("*.parquet"))
    assert len(shards) == 4 + 5
    assert '"frame_auc_micro"' in capsys.readouterr().out


def test_a_video_that_does_not_decode_fails_the_run_naming_it(tmp_path, capsys):
    root = tmp_path / "data"
    generate_synthetic_dataset(root, n_train_videos=2, n_test_videos=1, n_frames=30, seed=3)
    broken = root / "train" / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not really a video" * 10)

    code = main(["run", "--dataset", "folder", "--root", str(root), "--detector", "motion",
                 "--out", str(tmp_path / "out"), "--epochs", "2", "--no-appearance"])
    assert code == 2
    assert "broken.mp4" in capsys.readouterr().err


def test_one_bad_video_fails_extraction_visibly_and_keeps_the_others(tmp_path):
    root = tmp_path / "data"
    dataset = generate_synthetic_dataset(root, n_train_videos=2, n_test_videos=1, n_frames=20, seed=4)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not really a video" * 10)
    videos = [{"name": video.name, "path": str(video.path)} for video in dataset.train]
    settings = ExtractionSettings(detector="motion", appearance=False).to_dict()
    storage = str(tmp_path / "store")

    with pytest.raises(ExtractionFailed, match=r"1 of 3 train videos failed:\n.*broken.*broken\.mp4"):
        extract_features([videos[0], {"name": "broken", "path": str(broken)}, videos[1]], storage, settings)
    written = sorted(path.name.split(".")[0] for path in (tmp_path / "store").rglob("train/*.parquet"))
    assert written == sorted(video["name"] for video in videos)

    # A rerun without the bad video reuses the finished shards instead of extracting again.
    before = {path: path.stat().st_mtime_ns for path in (tmp_path / "store").rglob("*.parquet")}
    keys = extract_features(videos, storage, settings)["shards"]
    assert [key.rsplit("/", 1)[1].split(".")[0] for key in keys] == [video["name"] for video in videos]
    assert {path: path.stat().st_mtime_ns for path in (tmp_path / "store").rglob("*.parquet")} == before


def test_run_with_a_missing_root_is_a_clear_error(tmp_path, capsys):
    code = main(["run", "--dataset", "ucsd-ped2", "--root", str(tmp_path / "nowhere"), "--detector", "motion",
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert "nowhere" in capsys.readouterr().err


def test_yolox_weights_that_are_not_onnx_are_a_clear_error(tmp_path, capsys):
    root = tmp_path / "data"
    generate_synthetic_dataset(root, n_train_videos=1, n_test_videos=1, n_frames=10, seed=1)
    fake = tmp_path / "weights.onnx"
    fake.write_bytes(np.arange(100, dtype=np.uint8).tobytes())
    code = main(["run", "--dataset", "folder", "--root", str(root), "--detector", "yolox", "--weights", str(fake),
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert "weights.onnx" in capsys.readouterr().err


def test_synthetic_videos_are_real_decodable_files(tmp_path):
    dataset = generate_synthetic_dataset(tmp_path, n_train_videos=1, n_test_videos=1, n_frames=12, seed=2)
    capture = cv2.VideoCapture(str(dataset.test[0].path))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 12
