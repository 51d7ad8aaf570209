"""Whole-artifact integrity: every file of a model folder is checked against its manifest on load.

Each test tampers with a real saved model the way a user or a bad copy would (an edited
``model.json``, zeroed calibration scores, a model swapped in beside a stale calibration, a
missing or extra file, an old artifact without a manifest) and asserts the load is refused
with :class:`ModelArtifactError` naming the file, through the library and the CLI.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from synthetic_features import make_videos

from anograph.errors import ModelArtifactError
from anograph.io.storage import Storage
from anograph.models.estimator import AnoGraph
from anograph.models.manifest import MANIFEST_FILE, read_manifest, verify_artifact
from anograph.serving.calibration import (
    CALIBRATION_FILE,
    calibrate_frame_scores,
    load_frame_calibration,
    save_frame_calibration,
)
from anograph.serving.inference import load_scoring_model
from flows.cli import main

SMALL = {"hidden_channels": 8, "max_epochs": 5, "patience": 5, "seed": 0, "score_propagation_steps": 0}


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """Two calibrated models, ``models/a`` and ``models/b`` (different seeds), under one storage root."""
    root = tmp_path_factory.mktemp("store")
    storage = Storage(root)
    videos = make_videos(2, seed=1, n_frames=20)
    for name, seed in (("a", 0), ("b", 1)):
        model = AnoGraph(**(SMALL | {"seed": seed})).fit(videos)
        model.save(storage, f"models/{name}")
        save_frame_calibration(calibrate_frame_scores(model, videos), storage, f"models/{name}")
    return root


@pytest.fixture
def store(saved, tmp_path) -> Path:
    """A private copy of the saved models, free to tamper with."""
    shutil.copytree(saved, tmp_path / "store")
    return tmp_path / "store"


def _load(root: Path, name: str = "a") -> None:
    storage = Storage(root)
    AnoGraph.load(storage, f"models/{name}")
    load_frame_calibration(storage, f"models/{name}")


def test_the_manifest_lists_every_file_and_an_intact_model_loads(store):
    storage = Storage(store)
    entries = read_manifest(storage, "models/a")
    assert sorted(entries) == [CALIBRATION_FILE, "model.json", "tensors.safetensors"]
    assert sorted(path.name for path in (store / "models/a").iterdir()) == sorted([*entries, MANIFEST_FILE])
    scoring = load_scoring_model(store / "models/a")
    assert scoring.calibration is not None and scoring.calibration.threshold("group_knn") > 0


def test_an_edited_model_json_is_refused(store):
    sidecar_path = store / "models/a/model.json"
    sidecar = json.loads(sidecar_path.read_text())
    sidecar["params"]["knn_neighbors"] = 1
    sidecar["params"]["graph"]["temporal_edges"] = False
    sidecar_path.write_text(json.dumps(sidecar))
    with pytest.raises(ModelArtifactError, match=r"models/a/model\.json: file does not match the model's manifest"):
        AnoGraph.load(Storage(store), "models/a")


def test_zeroed_calibration_scores_are_refused(store):
    path = store / "models/a" / CALIBRATION_FILE
    calibration = json.loads(path.read_text())
    calibration["frame_scores"] = {name: [0.0] * len(values) for name, values in calibration["frame_scores"].items()}
    path.write_text(json.dumps(calibration))
    with pytest.raises(ModelArtifactError, match=r"models/a/frame_calibration\.json: file does not match"):
        load_frame_calibration(Storage(store), "models/a")


def test_another_models_files_beside_a_stale_calibration_are_refused(store):
    # The sidecar and tensors of b over a's, a's manifest kept: the bytes do not match it.
    for name in ("model.json", "tensors.safetensors"):
        shutil.copy(store / "models/b" / name, store / "models/a" / name)
    with pytest.raises(ModelArtifactError, match=r"models/a/model\.json: file does not match"):
        _load(store)
    # b's manifest too: a's calibration is then stale, and refused as different from b's.
    shutil.copy(store / "models/b" / MANIFEST_FILE, store / "models/a" / MANIFEST_FILE)
    with pytest.raises(ModelArtifactError, match=r"models/a/frame_calibration\.json: file does not match"):
        _load(store)


def test_a_missing_or_an_unlisted_file_is_refused(store):
    (store / "models/a" / CALIBRATION_FILE).unlink()
    with pytest.raises(ModelArtifactError, match=r"models/a/frame_calibration\.json: file listed .* is missing"):
        load_frame_calibration(Storage(store), "models/a")
    shutil.copy(store / "models/b" / CALIBRATION_FILE, store / "models/a" / CALIBRATION_FILE)
    (store / "models/b" / "notes.txt").write_text("added later")
    with pytest.raises(ModelArtifactError, match=r"models/b/notes\.txt: file is not in the model's manifest"):
        AnoGraph.load(Storage(store), "models/b")


def test_a_calibration_saved_beside_a_retrained_model_is_only_accepted_once_rebound(store):
    """Saving a model over an old one leaves the old calibration unlisted until the new one is saved."""
    storage = Storage(store)
    videos = make_videos(2, seed=1, n_frames=20)
    model = AnoGraph(**(SMALL | {"seed": 2})).fit(videos)
    model.save(storage, "models/a")
    with pytest.raises(ModelArtifactError, match=r"models/a/frame_calibration\.json: file is not in the model's"):
        load_frame_calibration(storage, "models/a")
    calibration = calibrate_frame_scores(model, videos)
    save_frame_calibration(calibration, storage, "models/a")
    assert load_frame_calibration(storage, "models/a").frame_scores == calibration.frame_scores
    assert set(verify_artifact(storage, "models/a")) == {CALIBRATION_FILE, "model.json", "tensors.safetensors"}


def test_a_calibration_is_never_bound_to_a_tampered_model(store):
    storage = Storage(store)
    calibration = load_frame_calibration(storage, "models/a")
    tensors = store / "models/a/tensors.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:-8])
    with pytest.raises(ModelArtifactError, match=r"tensors\.safetensors: file does not match"):
        save_frame_calibration(calibration, storage, "models/a")


def test_an_artifact_without_a_manifest_is_refused_with_advice_to_retrain(store):
    (store / "models/a" / MANIFEST_FILE).unlink()
    with pytest.raises(ModelArtifactError, match=r"models/a/manifest\.json: the model has no integrity manifest.*retrain"):
        AnoGraph.load(Storage(store), "models/a")


def test_calibration_content_that_no_training_produces_is_refused(store):
    """Even with a rebuilt manifest, empty or non-finite frame scores are not a calibration."""
    from anograph.models.manifest import write_manifest

    storage = Storage(store)
    files = verify_artifact(storage, "models/a")
    calibration = json.loads(files[CALIBRATION_FILE])
    calibration["frame_scores"]["group_knn"] = []
    files[CALIBRATION_FILE] = json.dumps(calibration).encode()
    (store / "models/a" / CALIBRATION_FILE).write_bytes(files[CALIBRATION_FILE])
    write_manifest(storage, "models/a", files)
    with pytest.raises(ModelArtifactError, match="empty or not finite"):
        load_frame_calibration(storage, "models/a")


def _tiny_video(path: Path) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for index in range(5):
        writer.write(np.full((48, 64, 3), 20 * index, np.uint8))
    writer.release()
    return path


def test_score_cli_refuses_a_tampered_model_in_one_line_naming_the_file(store, tmp_path, capsys):
    path = store / "models/a" / CALIBRATION_FILE
    calibration = json.loads(path.read_text())
    calibration["frame_scores"] = {name: [0.0] for name in calibration["frame_scores"]}
    path.write_text(json.dumps(calibration))
    video = _tiny_video(tmp_path / "clip.mp4")
    code = main(["score", str(video), "--model", str(store / "models/a"), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert len(error.splitlines()) == 1
    assert error.startswith("anograph: error: ") and "models/a/frame_calibration.json" in error
    assert not (tmp_path / "out" / "alerts.json").exists()
