"""Deployments against a REAL local Prefect server: deploy prefect.yaml, run nightly retraining with a
process worker, and survive faults (corrupt footage, two nights at once, a worker killed mid-task).

All runs use the weight-free ``motion`` detector on tiny synthetic MP4s, so nothing here needs ../shared.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest
from prefect_server import REPO, PrefectServer, kill_tree

from anograph.datasets.synthetic import generate_synthetic_dataset
from anograph.io.storage import Storage
from anograph.ops.registry import ModelRegistry

pytestmark = pytest.mark.slow

DEPLOYMENTS = {"pipeline/pipeline", "nightly-retrain/nightly-retrain", "evaluate-model/evaluate-model",
               "extract-dataset/extract-dataset", "extract-features/extract-shards"}
TINY_MODEL = {"max_epochs": 3, "hidden_channels": 8}
MOTION = {"detector": "motion", "appearance": False}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    generate_synthetic_dataset(root, n_train_videos=5, n_test_videos=2, n_frames=30, width=160, height=120, seed=0)
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    server = PrefectServer(home, {"PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2",
                                  "PREFECT_WORKER_QUERY_SECONDS": "1",
                                  "ANOGRAPH_STORAGE": str(home / "default-store")})
    try:
        for pool in ("anograph-cpu", "anograph-gpu"):
            created = server.cli("work-pool", "create", pool, "--type", "process")
            assert created.returncode == 0, created.stderr
        deployed = server.cli("--no-prompt", "deploy", "--all")
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        yield server
    finally:
        server.stop()


def _summary(storage: Path, run_id: str) -> dict:
    (path,) = (storage / "nightly" / "runs").glob(f"*-{run_id[:8]}.json")
    return json.loads(path.read_text())


def _nightly(storage: Path, data: Path, **overrides) -> dict:
    return {"storage_root": str(storage), "eval_dataset": "synthetic", "eval_root": str(data), **MOTION,
            "model_options": TINY_MODEL, **overrides}


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def test_prefect_yaml_deploys_with_schedule_timezone_and_one_night_at_a_time(server):
    for name in DEPLOYMENTS:
        server.deployment_id(name)
    nightly = server.request("GET", f"/deployments/{server.deployment_id('nightly-retrain/nightly-retrain')}").json()
    (schedule,) = nightly["schedules"]
    assert schedule["schedule"]["cron"] == "30 2 * * *" and schedule["schedule"]["timezone"] == "Europe/Berlin"
    assert nightly["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    assert nightly["global_concurrency_limit"]["limit"] == 1
    assert nightly["parameters"]["storage_root"].endswith("default-store")  # {{ $ANOGRAPH_STORAGE }} resolved


def test_a_bad_schedule_or_parameter_type_fails_the_deploy(server, tmp_path):
    text = (REPO / "prefect.yaml").read_text()
    bad_cron = tmp_path / "bad-cron.yaml"
    bad_cron.write_text(text.replace('"30 2 * * *"', '"61 2 * * *"'))
    result = server.cli("--no-prompt", "deploy", "--name", "nightly-retrain", "--prefect-file", str(bad_cron))
    assert result.returncode != 0 and "Invalid cron string" in result.stdout + result.stderr
    bad_type = tmp_path / "bad-type.yaml"
    bad_type.write_text(text.replace("margin: 0.01", "margin: lots"))
    result = server.cli("--no-prompt", "deploy", "--name", "nightly-retrain", "--prefect-file", str(bad_type))
    assert result.returncode != 0 and "'lots' is not of type 'number'" in result.stdout + result.stderr


def test_nightly_retrain_through_a_process_worker(server, data, tmp_path):
    """Promote, then nothing new, then a worse-by-margin candidate kept, then two nights at once."""
    storage = tmp_path / "store"
    footage = storage / "videos" / "train"
    footage.mkdir(parents=True)
    for name in ("train_000", "train_001"):
        shutil.copy(data / "train" / f"{name}.mp4", footage)
    (footage / "empty.mp4").write_bytes(b"")
    whole = (data / "train" / "train_004.mp4").read_bytes()
    (footage / "truncated.mp4").write_bytes(whole[: len(whole) // 2])

    # Night 1, run by `prefect worker start --run-once`: corrupt files reported and skipped, first model promoted.
    first = server.trigger("nightly-retrain/nightly-retrain", _nightly(storage, data))
    worker = server.cli("worker", "start", "--pool", "anograph-gpu", "--run-once", timeout=600)
    assert server.wait(first)["state_type"] == "COMPLETED", worker.stdout[-4000:]
    night = _summary(storage, first)
    assert night["extracted"] == ["train_000", "train_001"] and night["promoted"]
    assert set(night["rejected"]) == {"empty", "truncated"}
    assert "empty.mp4" in night["rejected"]["empty"] and "truncated.mp4" in night["rejected"]["truncated"]
    registry = ModelRegistry(Storage(storage))
    record, _ = registry.load("current")
    assert record.version == night["candidate_version"]
    shards = record.training_manifest["shards"]  # shards/<fingerprint>/train/<video>.<content hash>.parquet
    assert all(key.startswith(f"shards/{night['fingerprint']}/train/") for key in shards)
    assert [key.rsplit("/", 1)[1].split(".")[0] for key in shards] == ["train_000", "train_001"]
    assert 0.0 <= record.metrics["frame_auc_micro"] <= 1.0
    # Trained as the pipeline trains: the promoted model carries its alert thresholds.
    assert (storage / record.model_key / "frame_calibration.json").is_file()
    report = json.loads((storage / "reports" / "nightly" / night["run"] / "candidate" / "report.json").read_text())
    assert report["frame_auc_micro"] == record.metrics["frame_auc_micro"]
    artifact = server.artifact("nightly-retrain")
    assert artifact and "promoted" in artifact["data"] and "truncated" in artifact["data"]

    # On-demand evaluation of the current version, through the `evaluate-model` deployment on the CPU pool.
    evaluation = server.trigger("evaluate-model/evaluate-model", {
        "dataset": "synthetic", "root": str(data), "storage_root": str(storage), "out": str(tmp_path / "evaluation"),
        "model_version": "current"})
    worker = server.cli("worker", "start", "--pool", "anograph-cpu", "--run-once", timeout=600)
    assert server.wait(evaluation)["state_type"] == "COMPLETED", worker.stdout[-4000:]
    report = json.loads((tmp_path / "evaluation" / "report.json").read_text())
    assert report["config"]["model_version"] == record.version
    assert report["frame_auc_micro"] == record.metrics["frame_auc_micro"]  # same model, same fixed set

    worker = server.start_worker("anograph-gpu", log=tmp_path / "worker.log")
    try:
        # Night 2: nothing new, nothing extracted, nothing trained.
        second = server.trigger("nightly-retrain/nightly-retrain", _nightly(storage, data))
        assert server.wait(second)["state_type"] == "COMPLETED"
        night = _summary(storage, second)
        assert night["new_videos"] == [] and night["extracted"] == [] and "candidate_version" not in night
        assert registry.current() == record.version

        # Night 3: a new video, but a candidate must now beat the current model by 1.0 AUC: kept, and why.
        shutil.copy(data / "train" / "train_002.mp4", footage)
        third = server.trigger("nightly-retrain/nightly-retrain", _nightly(storage, data, margin=-1.0))
        assert server.wait(third)["state_type"] == "COMPLETED"
        night = _summary(storage, third)
        assert night["extracted"] == ["train_002"] and not night["promoted"]
        assert "keeping the current model" in night["decision"]
        assert registry.current() == record.version and len(registry.versions()) == 2
        assert "keeping the current model" in server.artifact("nightly-retrain")["data"]

        # Nights 4 and 5 at once: the second waits for the first; exactly one of them promotes. The margin
        # accepts any candidate, so that this checks the one-night-at-a-time rule, not a tiny model's AUC.
        together = [server.trigger("nightly-retrain/nightly-retrain", _nightly(storage, data, margin=1.0))
                    for _ in range(2)]
        runs = [server.wait(run_id) for run_id in together]
        assert [run["state_type"] for run in runs] == ["COMPLETED", "COMPLETED"]
        runs.sort(key=lambda run: run["start_time"])
        assert _seconds(runs[0]["end_time"]) <= _seconds(runs[1]["start_time"])
        assert "AwaitingConcurrencySlot" in server.state_names(runs[1]["id"])
        nights = [_summary(storage, run["id"]) for run in runs]
        assert [night["promoted"] for night in nights] == [True, False]
        assert "no new footage" in nights[1]["decision"]
        assert [event["action"] for event in registry.history()] == ["promote", "promote"]
        assert registry.current() == nights[0]["candidate_version"]
    finally:
        kill_tree(worker)


def test_a_worker_killed_mid_extraction_is_rerun_without_lost_or_duplicated_shards(server, data, tmp_path):
    storage = tmp_path / "store"
    videos = [{"name": f"train_00{i}", "path": str(data / "train" / f"train_00{i}.mp4")} for i in range(5)]
    parameters = {"videos": videos, "storage_root": str(storage), "split": "train",
                  "settings": {"detector": "motion", "appearance": False}}
    run_id = server.trigger("extract-features/extract-shards", parameters)
    worker = server.start_worker("anograph-gpu", log=tmp_path / "worker-killed.log")
    deadline = time.monotonic() + 300
    while not list(storage.rglob("*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.05)
    kill_tree(worker)  # the worker and its flow-run process die together, as on a lost node
    done_before = {path: path.stat().st_mtime_ns for path in storage.rglob("*.parquet")}
    assert 1 <= len(done_before) < len(videos), "the kill must land mid-run"
    assert server.flow_run(run_id)["state_type"] == "RUNNING"  # orphaned: nobody reported its end

    # The operator reruns the same flow run (as the UI's "Retry" does) and a worker picks it up.
    server.set_state(run_id, "SCHEDULED", "AwaitingRetry")
    rerun = server.cli("worker", "start", "--pool", "anograph-gpu", "--run-once", timeout=600)
    assert server.wait(run_id)["state_type"] == "COMPLETED", rerun.stdout[-4000:]
    shards = sorted(storage.rglob("*.parquet"))
    assert [path.name.split(".")[0] for path in shards] == [video["name"] for video in videos]  # none lost, none twice
    assert all(done_before[path] == path.stat().st_mtime_ns for path in done_before)  # finished ones reused
    assert Storage(storage).list() == sorted(str(path.relative_to(storage)) for path in shards)


def test_extract_dataset_fans_out_one_flow_run_per_batch_with_bounded_concurrency(server, data, tmp_path):
    storage = tmp_path / "store"
    parent_worker = server.start_worker("anograph-cpu", log=tmp_path / "cpu-worker.log")
    shard_worker = server.start_worker("anograph-gpu", "--limit", "2", log=tmp_path / "gpu-worker.log")
    try:
        run_id = server.trigger("extract-dataset/extract-dataset", {
            "dataset": "synthetic", "root": str(data), "storage_root": str(storage), **MOTION,
            "splits": ["test"], "videos_per_run": 1, "max_concurrent_runs": 1})
        assert server.wait(run_id, timeout=400)["state_type"] == "COMPLETED"
    finally:
        kill_tree(parent_worker)
        kill_tree(shard_worker)
    children = server.children(run_id)
    assert len(children) == 2 and {child["state_type"] for child in children} == {"COMPLETED"}
    children.sort(key=lambda child: child["start_time"])
    assert _seconds(children[0]["end_time"]) <= _seconds(children[1]["start_time"])  # at most one at a time
    assert {child["deployment_id"] for child in children} == {server.deployment_id("extract-features/extract-shards")}
    assert sorted(path.name.split(".")[0] for path in storage.rglob("test/*.parquet")) == ["test_000", "test_001"]



def test_nightly_retrain_on_an_s3_root_through_a_process_worker(server, data, s3_server, s3_root, tmp_path):
    """The same deployment on SeaweedFS: footage uploaded to the bucket, credentials only in the worker's env."""
    from urllib.parse import urlsplit

    storage = Storage(s3_root)
    bucket_prefix = urlsplit(s3_root).path.strip("/")
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    for name in ("train_000", "train_001"):
        shutil.copy(data / "train" / f"{name}.mp4", uploads)
    (uploads / "empty.mp4").write_bytes(b"")
    whole = (data / "train" / "train_004.mp4").read_bytes()
    (uploads / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    client = s3_server.client()  # uploaded as any S3 client would, not through anograph
    for path in sorted(uploads.iterdir()):
        client.upload_file(str(path), s3_server.bucket, f"{bucket_prefix}/videos/train/{path.name}")

    def night(run_id: str) -> dict:
        (key,) = [key for key in storage.list("nightly/runs") if key.endswith(f"-{run_id[:8]}.json")]
        return json.loads(storage.read_bytes(key))

    # Night 1: the root (with its endpoint, no credentials) is a parameter; the secret is in the worker's env only.
    first = server.trigger("nightly-retrain/nightly-retrain", _nightly(s3_root, data))
    worker = server.cli("worker", "start", "--pool", "anograph-gpu", "--run-once", env=s3_server.env(), timeout=600)
    assert server.wait(first)["state_type"] == "COMPLETED", worker.stdout[-4000:] + worker.stderr[-4000:]
    summary = night(first)
    assert summary["extracted"] == ["train_000", "train_001"] and summary["promoted"], summary
    assert set(summary["rejected"]) == {"empty", "truncated"}
    assert "videos/train/empty.mp4" in summary["rejected"]["empty"]
    assert "videos/train/truncated.mp4" in summary["rejected"]["truncated"]
    record, _ = ModelRegistry(storage).load("current")
    assert record.version == summary["candidate_version"]
    shards = record.training_manifest["shards"]
    assert [key.rsplit("/", 1)[1].split(".")[0] for key in shards] == ["train_000", "train_001"]
    assert set(shards) <= set(storage.list(f"shards/{summary['fingerprint']}/train"))
    report = json.loads(storage.read_bytes(f"reports/nightly/{summary['run']}/candidate/report.json"))
    assert report["frame_auc_micro"] == record.metrics["frame_auc_micro"]
    assert 0.0 <= report["frame_auc_micro"] <= 1.0
    assert not (Path(tempfile.gettempdir()) / f"anograph-footage-{first}").exists()  # downloaded copies dropped

    # Night 2: nothing new, nothing downloaded or extracted, the model stays.
    second = server.trigger("nightly-retrain/nightly-retrain", _nightly(s3_root, data))
    rerun = server.cli("worker", "start", "--pool", "anograph-gpu", "--run-once", env=s3_server.env(), timeout=600)
    assert server.wait(second)["state_type"] == "COMPLETED", rerun.stdout[-4000:] + rerun.stderr[-4000:]
    summary = night(second)
    assert summary["new_videos"] == [] and summary["extracted"] == [] and "candidate_version" not in summary
    assert ModelRegistry(storage).current() == record.version

    # The secret is nowhere but the environment: not in stored objects, parameters, artifacts, logs or output.
    secret = s3_server.secret_key
    for key in storage.list():
        assert secret.encode() not in storage.read_bytes(key), key
    for run_id in (first, second):
        assert secret not in json.dumps(server.flow_run(run_id))
        artifacts = server.request("POST", "/artifacts/filter",
                                   json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}).json()
        assert artifacts and all(secret not in json.dumps(artifact) for artifact in artifacts)
        logs = server.request("POST", "/logs/filter", json={"logs": {"flow_run_id": {"any_": [run_id]}}}).json()
        assert logs and all(secret not in log["message"] for log in logs)
    assert secret not in worker.stdout + worker.stderr + rerun.stdout + rerun.stderr
