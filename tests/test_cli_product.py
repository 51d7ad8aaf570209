"""The CLI as a new user meets it: versions per training, options checked first, one-line errors, shards show.

Every check goes through ``anograph`` itself (``anograph.cli.main`` or the ``anograph``
process), on a small synthetic scene extracted with the ``motion`` detector.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from anograph.datasets.synthetic import generate_synthetic_dataset
from anograph.io.storage import Storage
from anograph.ops.model_versions import list_model_versions
from flows.cli import main

RUN = ["--detector", "motion", "--epochs", "2", "--no-appearance"]


def _anograph(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flows.cli", *arguments], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def _assert_one_line_error(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("anograph: error:"), result.stderr
    for text in expected:
        assert text in last, last


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """One scene trained twice through ``anograph run`` into one store."""
    base = tmp_path_factory.mktemp("product")
    root = base / "data"
    generate_synthetic_dataset(root, n_train_videos=2, n_test_videos=1, n_frames=30, seed=5)
    store = base / "store"
    for name in ("first", "second"):
        assert main(["run", "--dataset", "folder", "--root", str(root), *RUN, "--storage", str(store),
                     "--out", str(base / name)]) == 0
    return {"root": root, "store": store, "base": base}


def test_two_trainings_give_two_immutable_versions_listed_with_options_and_metrics(trained, capsys):
    listed = list_model_versions(Storage.open_existing(trained["store"]))
    assert len(listed) == 2 and len({row.record.version for row in listed}) == 2
    assert len({row.record.model_key for row in listed}) == 2
    assert [row.current for row in listed] == [False, True]  # the newer training is current
    assert all(row.record.metrics and "frame_auc_micro" in row.record.metrics for row in listed)
    assert all(row.record.config["model_options"] == {"max_epochs": 2} for row in listed)

    capsys.readouterr()
    assert main(["models", "list", "--storage", str(trained["store"])]) == 0
    out = capsys.readouterr().out
    for row in listed:
        assert row.record.version in out and row.record.created_at in out
    assert '"max_epochs": 2' in out


def test_evaluate_takes_a_name_a_version_or_the_printed_path_and_uses_the_models_detector(trained, capsys):
    listed = list_model_versions(Storage.open_existing(trained["store"]))
    first = listed[0].record
    out = trained["base"] / "evaluated"
    # No --detector: the model's (motion) is used; yolox would need weights.
    assert main(["evaluate", "--dataset", "folder", "--root", str(trained["root"]), "--model", "folder",
                 "--version", first.version, "--storage", str(trained["store"]), "--out", str(out)]) == 0
    assert json.loads((out / "report.json").read_text())["config"]["extraction"]["detector"] == "motion"
    printed_path = trained["store"] / first.model_key
    assert main(["evaluate", "--dataset", "folder", "--root", str(trained["root"]), "--model", str(printed_path),
                 "--storage", str(trained["store"]), "--out", str(out)]) == 0
    assert json.loads((out / "report.json").read_text())["config"]["model_key"] == first.model_key


def test_score_with_weights_for_a_motion_model_and_a_missing_camera_are_clear(trained, tmp_path):
    uri = str(trained["store"] / list_model_versions(Storage.open_existing(trained["store"]))[-1].record.model_key)
    video = next((trained["root"] / "test").glob("*.mp4"))
    result = _anograph("score", str(video), "--model", uri, "--weights", str(video), "--out", str(tmp_path / "a"),
                       cwd=tmp_path)
    _assert_one_line_error(result, "takes no weights")
    result = _anograph("score", "9", "--stream", "--model", uri, "--out", str(tmp_path / "b"), cwd=tmp_path)
    _assert_one_line_error(result, "cannot open camera 9")


def test_score_prints_1_based_frames_and_reports_progress_at_once(trained, tmp_path):
    uri = str(trained["store"] / list_model_versions(Storage.open_existing(trained["store"]))[-1].record.model_key)
    video = next((trained["root"] / "test").glob("*.mp4"))
    result = _anograph("score", str(video), "--model", "folder", "--storage", str(trained["store"]),
                       "--out", str(tmp_path / "scored"), "--no-overlay", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(f"loading model {uri}")
    for line in result.stdout.splitlines():
        if line.startswith("alert: frames "):
            assert int(line.split()[2].split("-")[0]) >= 1


@pytest.mark.slow  # several CLI runs, each starting Prefect
def test_a_bad_option_is_refused_before_any_work(tmp_path):
    root = tmp_path / "data"
    generate_synthetic_dataset(root, n_train_videos=1, n_test_videos=1, n_frames=10, seed=1)
    result = _anograph("run", "--dataset", "folder", "--root", str(root), *RUN, "--scorer", "bogus",
                       "--out", str(tmp_path / "out"), cwd=tmp_path)
    _assert_one_line_error(result, "bogus")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing was started
    result = _anograph("score", str(root), "--model", str(tmp_path), "--out", "/etc/passwd", cwd=tmp_path)
    _assert_one_line_error(result, "/etc/passwd")
    help_text = _anograph("run", "--help", cwd=tmp_path).stdout
    assert "attributes" in help_text and "default 300" in help_text and "0.3 for yolox" in help_text


def test_reading_commands_refuse_a_missing_storage_root_and_create_nothing(tmp_path):
    result = _anograph("models", "list", "--storage", "typo-store", cwd=tmp_path)
    _assert_one_line_error(result, "typo-store", "does not exist")
    assert not (tmp_path / "typo-store").exists()


@pytest.mark.slow  # several CLI runs, each starting Prefect
def test_pipeline_errors_are_one_line_with_the_traceback_in_the_log_file(tmp_path):
    wrong = tmp_path / "wrong"  # a folder dataset needs train/ and test/
    (wrong / "videos").mkdir(parents=True)
    result = _anograph("run", "--dataset", "folder", "--root", str(wrong), *RUN, "--out", str(tmp_path / "o1"),
                       cwd=tmp_path)
    _assert_one_line_error(result, "anograph.log")
    assert "Traceback" in (tmp_path / "o1" / "anograph.log").read_text()

    root = tmp_path / "data"
    generate_synthetic_dataset(root, n_train_videos=1, n_test_videos=1, n_frames=10, seed=1)
    fake = tmp_path / "weights.onnx"
    fake.write_bytes(np.arange(100, dtype=np.uint8).tobytes())
    result = _anograph("run", "--dataset", "folder", "--root", str(root), "--detector", "yolox", "--weights",
                       str(fake), "--out", str(tmp_path / "o2"), cwd=tmp_path)
    _assert_one_line_error(result, "weights.onnx")


def test_shards_show_names_the_layout_counts_and_columns(trained, capsys):
    shard = next((trained["store"] / "shards").rglob("*.parquet"))
    capsys.readouterr()
    assert main(["shards", "show", str(shard), "--rows", "2"]) == 0
    out = capsys.readouterr().out
    for text in ("geometry", "flow_stats", "columns", "sources: detector", "motion_blob", "first 2 rows",
                 "cells a frame"):
        assert text in out, text
    assert "=" in out.splitlines()[-1]  # named column values
