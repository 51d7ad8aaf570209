"""Model registry: versions with records, integrity checks, promotion, rollback, crashes mid-promotion."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from synthetic_features import make_videos

from anograph.errors import InputError, ModelArtifactError
from anograph.io.storage import Storage
from anograph.models.estimator import AnoGraph
from anograph.ops.registry import POINTER_KEY, ModelRegistry, RegistryError
from flows.cli import main

REPO = Path(__file__).resolve().parents[1]
SMALL = {"hidden_channels": 8, "max_epochs": 5, "patience": 5, "seed": 0, "score_propagation_steps": 0}


@pytest.fixture(scope="module")
def fitted_models() -> list[AnoGraph]:
    videos = make_videos(2, seed=1, n_frames=20)
    return [AnoGraph(**SMALL).fit(videos), AnoGraph(**(SMALL | {"seed": 1})).fit(videos)]


def _manifest(name: str) -> dict:
    return {"fingerprint": "motion-abc", "shards": [f"shards/motion-abc/train/{name}.parquet"]}


def test_register_promote_rollback_and_history(tmp_path, fitted_models):
    registry = ModelRegistry(Storage(tmp_path))
    assert registry.versions() == [] and registry.current() is None
    with pytest.raises(RegistryError, match="no model has been promoted"):
        registry.load("current")

    first = registry.register(fitted_models[0], _manifest("a"), config={"epochs": 20})
    second = registry.register(fitted_models[1], _manifest("b"), metrics={"frame_auc_micro": 0.9})
    assert registry.versions() == sorted([first.version, second.version])
    assert registry.record(second.version).training_manifest == _manifest("b")
    assert registry.record(second.version).metrics == {"frame_auc_micro": 0.9}
    assert registry.record(first.version).config == {"epochs": 20}

    registry.promote(first.version, reason="first", expected_current=None)
    registry.promote(second.version, reason="better", expected_current=first.version)
    record, model = registry.load()
    assert record.version == second.version
    assert np.array_equal(model.feature_mean_, fitted_models[1].feature_mean_)

    # The pointer moved since the caller compared: refused, pointer unchanged.
    with pytest.raises(RegistryError, match="moved"):
        registry.promote(first.version, expected_current=first.version)
    assert registry.current() == second.version

    assert registry.rollback("bad night") == first.version
    assert registry.current() == first.version
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback()
    actions = [(event["action"], event["from"], event["to"]) for event in registry.history()]
    assert actions == [("promote", None, first.version), ("promote", first.version, second.version),
                       ("rollback", second.version, first.version)]

    registry.record_metrics(first.version, {"frame_auc_micro": 0.8})
    assert registry.record(first.version).metrics == {"frame_auc_micro": 0.8}


def test_tampered_or_swapped_artifacts_are_refused(tmp_path, fitted_models):
    storage = Storage(tmp_path)
    registry = ModelRegistry(storage)
    first = registry.register(fitted_models[0], _manifest("a"))
    second = registry.register(fitted_models[1], _manifest("b"))
    registry.promote(first.version)

    tensors = tmp_path / first.model_key / "tensors.safetensors"
    blob = bytearray(tensors.read_bytes())
    blob[-10] ^= 0xFF
    tensors.write_bytes(bytes(blob))
    with pytest.raises(ModelArtifactError, match="tensors.safetensors: file does not match the model's manifest"):
        registry.load("current")
    with pytest.raises(ModelArtifactError):
        registry.promote(first.version)

    # Another version's (self-consistent) artifact copied in: caught by the record's manifest hash.
    for name in ("manifest.json", "model.json", "tensors.safetensors"):
        (tmp_path / first.model_key / name).write_bytes((tmp_path / second.model_key / name).read_bytes())
    with pytest.raises(ModelArtifactError, match="does not match the registry record"):
        registry.verify(first.version)

    with pytest.raises(RegistryError, match="no model version"):
        registry.verify("20200101T000000000000Z-abcdef")
    with pytest.raises(InputError, match="not a registry version id"):
        registry.verify("../../etc")


class _Crash(Exception):
    pass


def test_a_crash_at_any_write_leaves_current_on_a_complete_model(tmp_path, fitted_models, monkeypatch):
    storage = Storage(tmp_path)
    registry = ModelRegistry(storage)
    old = registry.register(fitted_models[0], _manifest("a"))
    registry.promote(old.version)

    original_write = Storage.write_bytes
    writes_of_a_promotion = 0
    crashed_at = 0
    while True:
        budget = [crashed_at]

        def crashing_write(self, key, data, budget=budget):
            if budget[0] == 0:
                raise _Crash(key)
            budget[0] -= 1
            return original_write(self, key, data)

        monkeypatch.setattr(Storage, "write_bytes", crashing_write)
        try:
            record = registry.register(fitted_models[1], _manifest("b"))
            registry.promote(record.version, expected_current=old.version)
            completed = True
        except _Crash:
            completed = False
        monkeypatch.setattr(Storage, "write_bytes", original_write)

        current_record, model = registry.load("current")  # always a complete, verified model
        if completed:
            writes_of_a_promotion = crashed_at
            assert current_record.version == record.version
            break
        assert current_record.version == old.version
        for version in registry.versions():  # only complete versions are listed, and each verifies
            registry.verify(version)
        crashed_at += 1
    assert writes_of_a_promotion == 5  # tensors, model.json, manifest.json, record.json, current.json


_CHURN = """
import sys
from anograph.models.estimator import AnoGraph
from anograph.ops.registry import ModelRegistry
from anograph.io.storage import Storage
storage = Storage(sys.argv[1])
registry = ModelRegistry(storage)
model = AnoGraph.load(storage, "seed-model")
while True:
    record = registry.register(model, {"shards": []})
    registry.promote(record.version)
    print("promoted", flush=True)
"""


@pytest.mark.slow
def test_killing_a_process_mid_promotion_never_breaks_current(tmp_path, fitted_models):
    """A real process registers and promotes in a loop and is SIGKILLed at arbitrary moments."""
    storage = Storage(tmp_path)
    fitted_models[0].save(storage, "seed-model")
    registry = ModelRegistry(storage)
    registry.promote(registry.register(fitted_models[0], {"shards": []}).version)
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = np.random.default_rng(0)
    for _ in range(2):
        process = subprocess.Popen([sys.executable, "-c", _CHURN, str(tmp_path)], stdout=subprocess.PIPE,
                                   env=environment, text=True)
        assert process.stdout.readline().strip() == "promoted"
        time.sleep(float(rng.uniform(0.0, 0.3)))  # lands anywhere inside a register+promote cycle
        process.send_signal(signal.SIGKILL)
        process.wait()
        record, _ = registry.load("current")
        assert record.version in registry.versions()
        pointer = json.loads((tmp_path / POINTER_KEY).read_text())
        assert all(event["to"] in registry.versions() for event in pointer["history"])
    assert len(registry.history()) >= 3  # each process really promoted before being killed


def test_models_cli_lists_shows_promotes_and_rolls_back(tmp_path, fitted_models, capsys):
    registry = ModelRegistry(Storage(tmp_path))
    first = registry.register(fitted_models[0], _manifest("a"), metrics={"frame_auc_micro": 0.75})
    second = registry.register(fitted_models[1], _manifest("b"))
    storage = ["--storage", str(tmp_path)]

    assert main(["models", "promote", first.version, *storage]) == 0
    assert main(["models", "promote", second.version, *storage]) == 0
    capsys.readouterr()
    assert main(["models", "list", *storage]) == 0
    listing = capsys.readouterr().out
    assert first.version in listing and second.version in listing and "0.7500" in listing
    assert [line.startswith("*") for line in listing.splitlines()[1:]] == [False, True]

    assert main(["models", "show", "current", *storage]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["record"]["version"] == second.version and shown["current"] is True

    assert main(["models", "rollback", *storage]) == 0
    assert registry.current() == first.version
    assert main(["models", "rollback", *storage]) == 2
    assert "nothing to roll back" in capsys.readouterr().err
    assert main(["models", "show", "20200101T000000000000Z-abcdef", *storage]) == 2
