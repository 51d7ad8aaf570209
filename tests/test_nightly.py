"""Nightly decisions without Prefect: new footage, what to extract, the ledger, and the promotion rule."""

from __future__ import annotations

import pytest

from anograph.errors import InputError
from anograph.io.extraction_settings import shard_key
from anograph.io.storage import Storage
from anograph.ops.nightly import (
    LEDGER_KEY,
    decide_promotion,
    list_footage,
    load_ledger,
    local_video,
    night_summary_markdown,
    plan_night,
    reason_not_to_train,
    training_manifest,
    update_ledger,
)

FINGERPRINT = "motion-0123456789ab"


def _storage(tmp_path) -> Storage:
    storage = Storage(tmp_path)
    for name in ("a.mp4", "b.avi", "c.mp4"):
        storage.write_bytes(f"videos/train/{name}", b"x" * (len(name) + 10))
    storage.write_bytes("videos/train/notes.txt", b"hello")
    storage.write_bytes("videos/train/day2/d.mp4", b"xxxx")
    storage.write_bytes("videos/train/a.mov", b"xxxx")
    return storage


def test_footage_listing_names_what_it_ignores(tmp_path):
    footage, ignored = list_footage(_storage(tmp_path))
    assert [(video.name, video.key, video.size) for video in footage] == [
        ("a", "videos/train/a.mov", 4), ("b", "videos/train/b.avi", 15), ("c", "videos/train/c.mp4", 15)]
    assert set(ignored) == {"videos/train/a.mp4", "videos/train/notes.txt", "videos/train/day2/d.mp4"}
    assert "already used" in ignored["videos/train/a.mp4"] and "sub-folders" in ignored["videos/train/day2/d.mp4"]


def test_plan_ledger_and_rejected_footage_across_nights(tmp_path):
    storage = _storage(tmp_path)
    plan = plan_night(storage, FINGERPRINT)
    assert plan.new == ["a", "b", "c"] and [video.name for video in plan.to_extract] == ["a", "b", "c"]

    # Night 1: a and b extracted, c rejected as bad input.
    assert plan.shard_key("a") is None  # nothing extracted yet
    for name in ("a", "b"):  # what the flow records from tonight's extraction results
        plan.shards[name] = shard_key(FINGERPRINT, "train", name, name * 64)
        storage.write_bytes(plan.shards[name], b"shard")
    update_ledger(storage, plan, {"c": "c.mp4: cannot open video"}, run="night-1", at="t1")
    ledger = load_ledger(storage)["videos"]
    assert {name: entry["status"] for name, entry in ledger.items()} == {"a": "ok", "b": "ok", "c": "rejected"}

    # Night 2: nothing new; c stays rejected and is not retried.
    plan = plan_night(storage, FINGERPRINT)
    assert plan.new == [] and plan.to_extract == [] and plan.still_rejected == {"c": "c.mp4: cannot open video"}
    assert plan.shards == {name: shard_key(FINGERPRINT, "train", name, name * 64) for name in ("a", "b")}

    # Replacing c (other size) makes it new again; other settings (fingerprint) re-extract everything good.
    storage.write_bytes("videos/train/c.mp4", b"a fixed video, longer")
    plan = plan_night(storage, FINGERPRINT)
    assert plan.new == ["c"] and [video.name for video in plan.to_extract] == ["c"]
    plan = plan_night(storage, "motion-ffffffffffff")
    assert [video.name for video in plan.to_extract] == ["a", "b", "c"]

    # A failure that is not bad input is not recorded: the next night tries again.
    plan = plan_night(storage, FINGERPRINT)
    update_ledger(storage, plan, {}, run="night-3", at="t3")
    assert load_ledger(storage)["videos"]["c"]["status"] == "rejected"  # untouched: no shard, no new verdict
    assert load_ledger(storage)["videos"]["a"]["first_seen_run"] == "night-1"
    assert storage.exists(LEDGER_KEY)


def test_local_video_is_the_file_itself_on_a_local_root(tmp_path):
    storage = _storage(tmp_path)
    assert local_video(storage, "videos/train/b.avi", tmp_path / "cache") == tmp_path / "videos/train/b.avi"


def test_local_video_copies_an_s3_object_once_and_again_when_it_changes(s3_root, tmp_path):
    storage, cache = Storage(s3_root), tmp_path / "cache"
    storage.write_bytes("videos/train/a.mp4", b"first bytes")
    copy = local_video(storage, "videos/train/a.mp4", cache)
    assert copy.name == "a.mp4" and copy.is_relative_to(cache) and copy.read_bytes() == b"first bytes"
    stamp = copy.stat().st_mtime_ns
    assert local_video(storage, "videos/train/a.mp4", cache) == copy and copy.stat().st_mtime_ns == stamp  # reused
    copy.write_bytes(b"first")  # a torn copy (wrong size) is never handed out
    assert local_video(storage, "videos/train/a.mp4", cache).read_bytes() == b"first bytes"

    storage.write_bytes("videos/train/a.mp4", b"replaced, longer bytes")
    fresh = local_video(storage, "videos/train/a.mp4", cache)
    assert fresh != copy and fresh.read_bytes() == b"replaced, longer bytes"
    storage.write_bytes("videos/train/empty.mp4", b"")
    assert local_video(storage, "videos/train/empty.mp4", cache).read_bytes() == b""  # copied; the reader rejects it
    assert sorted(path.name for path in cache.rglob("*") if path.is_file()) == ["a.mp4", "a.mp4", "empty.mp4"]

    with pytest.raises(InputError, match="no such object"):
        local_video(storage, "videos/train/gone.mp4", cache)
    with pytest.raises(InputError, match="escapes"):
        local_video(storage, "videos/../../elsewhere.mp4", cache)


@pytest.mark.parametrize(
    ("candidate", "current", "margin", "promote", "phrase"),
    [
        ({"frame_auc_micro": 0.80}, None, 0.01, True, "no current model"),
        ({"frame_auc_micro": 0.80}, {"frame_auc_micro": 0.805}, 0.01, True, ">="),
        ({"frame_auc_micro": 0.80}, {"frame_auc_micro": 0.82}, 0.01, False, "keeping the current model"),
        ({"frame_auc_micro": 0.90}, {"frame_auc_micro": 0.85}, -0.1, False, "more than -0.1 below"),
        ({"frame_auc_micro": None}, {"frame_auc_micro": 0.5}, 0.01, False, "has no frame_auc_micro"),
    ],
)
def test_promotion_rule(candidate, current, margin, promote, phrase):
    decision, reason = decide_promotion(candidate, current, "frame_auc_micro", margin)
    assert decision is promote and phrase in reason


def test_night_summary_markdown_says_what_was_decided_and_skipped():
    summary = {"run": "r1", "decision": "kept v1: worse", "n_footage": 3, "new_videos": ["c"], "extracted": [],
               "n_training_shards": 2, "current_version": "v1", "rejected": {"c": "c.mp4: truncated"},
               "metrics_compared": ["frame_auc_micro"],
               "metrics": {"candidate": {"frame_auc_micro": 0.5}, "current": {"frame_auc_micro": 0.75}}}
    markdown = night_summary_markdown(summary)
    assert "kept v1: worse" in markdown and "c.mp4: truncated" in markdown
    assert "| candidate | 0.5000 |" in markdown and "| current | 0.7500 |" in markdown


def test_training_manifest_and_when_nothing_is_trained(tmp_path):
    storage = _storage(tmp_path)
    plan = plan_night(storage, FINGERPRINT)
    plan.shards.update({video.name: f"shards/{FINGERPRINT}/train/{video.name}.x.parquet" for video in plan.footage})
    manifest = training_manifest(plan, FINGERPRINT, skipped={"b"})
    assert manifest["fingerprint"] == FINGERPRINT
    assert [key.rsplit("/", 1)[1].split(".")[0] for key in manifest["shards"]] == [
        video.name for video in plan.footage if video.name != "b"]
    assert "no usable" in reason_not_to_train({"fingerprint": FINGERPRINT, "shards": []}, None)
    assert reason_not_to_train(manifest, None) is None
    current = {"version": "v1", "training_manifest": manifest}
    assert "v1" in reason_not_to_train(manifest, current)
    assert reason_not_to_train(training_manifest(plan, FINGERPRINT, skipped=()), current) is None


@pytest.mark.slow
def test_a_model_promoted_by_the_nightly_flow_carries_its_frame_calibration(tmp_path, monkeypatch):
    """Nightly retraining trains as the pipeline does: the served model has its alert thresholds."""
    import shutil

    from anograph.datasets.synthetic import generate_synthetic_dataset
    from anograph.ops.registry import ModelRegistry
    from anograph.serving.calibration import alert_threshold, load_frame_calibration
    from anograph.serving.inference import load_scoring_model

    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.nightly_retrain import nightly_retrain

    data = tmp_path / "data"
    generate_synthetic_dataset(data, n_train_videos=2, n_test_videos=2, n_frames=30, width=160, height=120, seed=0)
    root = tmp_path / "store"
    (root / "videos" / "train").mkdir(parents=True)
    for name in ("train_000", "train_001"):
        shutil.copy(data / "train" / f"{name}.mp4", root / "videos" / "train")

    summary = nightly_retrain(str(root), "synthetic", str(data), detector="motion", appearance=False,
                              model_options={"max_epochs": 3, "hidden_channels": 8})
    assert summary["promoted"], summary["decision"]
    record, _ = ModelRegistry(Storage(root)).load("current")
    assert record.version == summary["candidate_version"]
    calibration = load_frame_calibration(Storage(root), record.model_key)
    assert calibration is not None, "the promoted model has no frame_calibration.json"
    assert calibration.n_videos == 2 and calibration.window_seconds == 1.0
    scoring = load_scoring_model(root / record.model_key)
    assert alert_threshold(scoring.model, scoring.calibration, "group_knn").source == "frame_calibration"
