"""Model lines: each training is a new immutable version, found by name or dataset, listed with its record."""

from __future__ import annotations

import pytest
from synthetic_features import make_videos

from anograph.errors import InputError, ModelArtifactError
from anograph.io.storage import Storage
from anograph.models.estimator import AnoGraph
from anograph.ops.model_versions import (
    list_model_versions,
    model_line,
    model_names,
    new_model_version,
    record_model_version,
    resolve_model,
)
from anograph.ops.registry import ModelRegistry, RegistryError, save_new_model
from anograph.serving.calibration import calibrate_frame_scores, save_frame_calibration

SMALL = {"hidden_channels": 8, "max_epochs": 5, "patience": 5, "seed": 0, "score_propagation_steps": 0}


@pytest.fixture(scope="module")
def videos():
    return make_videos(2, seed=1, n_frames=20)


def _train(storage: Storage, name: str, videos, seed: int, dataset: str = "ucsd-ped2"):
    """What a training flow does: fresh version, model, calibration, record."""
    version = new_model_version(storage, name)
    model = AnoGraph(**(SMALL | {"seed": seed})).fit(videos)
    save_new_model(model, storage, version.model_key)
    save_frame_calibration(calibrate_frame_scores(model, videos), storage, version.model_key)
    record = record_model_version(storage, version, {"shards": ["shards/x/train/a.parquet"]},
                                  options={"max_epochs": 5, "seed": seed}, metrics={"frame_auc_micro": 0.5 + seed / 10},
                                  dataset=dataset)
    return version, record


def test_every_training_makes_a_new_version_and_nothing_is_overwritten(tmp_path, videos):
    storage = Storage(tmp_path)
    first, first_record = _train(storage, "ucsd-ped2-motion-abc", videos, seed=0)
    second, second_record = _train(storage, "ucsd-ped2-motion-abc", videos, seed=1)
    assert first.version < second.version and first.model_key != second.model_key
    line = model_line(storage, "ucsd-ped2-motion-abc")
    assert line.versions() == [first.version, second.version]
    # Both versions keep their own files, and both still verify.
    assert line.verify(first.version).seed == 0 and line.verify(second.version).seed == 1
    assert first_record.config == {"max_epochs": 5, "seed": 0} and first_record.created_at
    assert second_record.metrics == {"frame_auc_micro": 0.6}
    with pytest.raises(RegistryError, match="never overwritten"):
        save_new_model(AnoGraph(**SMALL).fit(videos), storage, first.model_key)
    with pytest.raises(RegistryError, match="already recorded"):
        record_model_version(storage, first, {"shards": []})


def test_resolve_by_name_or_dataset_and_by_current_latest_or_id(tmp_path, videos):
    storage = Storage(tmp_path)
    first, _ = _train(storage, "ucsd-ped2-motion-abc", videos, seed=0)
    second, _ = _train(storage, "ucsd-ped2-motion-abc", videos, seed=1)
    with pytest.raises(RegistryError, match="no model has been promoted"):
        resolve_model(storage, "ucsd-ped2")
    model_line(storage, "ucsd-ped2-motion-abc").promote(first.version, reason="test")
    assert resolve_model(storage, "ucsd-ped2").version == first.version
    assert resolve_model(storage, "ucsd-ped2-motion-abc", "latest").version == second.version
    assert resolve_model(storage, "ucsd-ped2", second.version).model_key == second.model_key
    with pytest.raises(InputError, match="no model named or trained on 'avenue'"):
        resolve_model(storage, "avenue")
    _train(storage, "ucsd-ped2-yolox-def", videos, seed=2)
    with pytest.raises(InputError, match="several models were trained on 'ucsd-ped2'"):
        resolve_model(storage, "ucsd-ped2")
    with pytest.raises(InputError, match="not a model name"):
        new_model_version(storage, "../escape")


def test_listing_shows_every_line_with_options_metrics_and_creation_time(tmp_path, videos):
    storage = Storage(tmp_path)
    _train(storage, "avenue-motion-1", videos, seed=0, dataset="avenue")
    version, _ = _train(storage, "ucsd-ped2-motion-abc", videos, seed=1)
    model_line(storage, "ucsd-ped2-motion-abc").promote(version.version)
    nightly = ModelRegistry(storage).register(AnoGraph(**SMALL).fit(videos), {"shards": []})
    assert model_names(storage) == ["avenue-motion-1", "ucsd-ped2-motion-abc", "registry"]
    listed = list_model_versions(storage)
    assert [(row.name, row.current) for row in listed] == [("avenue-motion-1", False),
                                                           ("ucsd-ped2-motion-abc", True), ("registry", False)]
    assert listed[0].record.dataset == "avenue" and listed[0].record.config["seed"] == 0
    assert listed[1].record.metrics == {"frame_auc_micro": 0.6}
    assert listed[2].record.version == nightly.version
    assert all(row.record.created_at for row in listed)


def test_a_tampered_version_is_refused_by_resolve(tmp_path, videos):
    storage = Storage(tmp_path)
    version, _ = _train(storage, "ucsd-ped2-motion-abc", videos, seed=0)
    (tmp_path / version.model_key / "frame_calibration.json").write_text("{}")
    with pytest.raises(ModelArtifactError, match="frame_calibration.json: file does not match"):
        resolve_model(storage, "ucsd-ped2-motion-abc", "latest")
