"""Scoring new videos end to end: `anograph score` on a synthetic video with a known anomaly,
live scoring of a looped video against offline scoring, bounded memory over 10k frames, and
the score_videos flow. A small model is trained once on the synthetic scene (MOG2 motion
detector, no appearance features, 160x120 frames) and calibrated like the train flow does."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from anograph.attributes.motion_field import CalibratedMotionField, MotionFieldDensity
from anograph.attributes.objects import FRAME_EDGE_MARGIN, object_attributes
from anograph.datasets.synthetic import SYNTHETIC_MANIFEST, generate_synthetic_dataset
from anograph.errors import InputError, ModelArtifactError
from anograph.extraction.extract import extract_video
from anograph.graph.build import paired_iou
from anograph.graph.windows import frame_scores
from anograph.io.extraction_settings import ExtractionSettings
from anograph.io.storage import Storage
from anograph.io.video import open_video
from anograph.models.camera_scoring import CameraScorings
from anograph.models.estimator import AnoGraph
from anograph.serving.calibration import calibrate_frame_scores, save_frame_calibration
from anograph.serving.inference import build_extraction, load_scoring_model, score_source
from anograph.serving.live_scorer import StreamScorer, run_stream
from anograph.serving.live_session import resident_memory_bytes
from anograph.serving.stream_sources import iter_source_frames
from flows.cli import main

# Test video 1 of the synthetic scene is the "too fast" pedestrian (kinds cycle by index).
TOO_FAST = "test_001"
N_FRAMES = 120


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("scene")
    dataset = generate_synthetic_dataset(root / "data", n_train_videos=3, n_test_videos=2, n_frames=N_FRAMES,
                                         width=160, height=120, seed=0)
    videos = []
    for video in dataset.train:
        detector, extractor = ExtractionSettings(detector="motion", appearance=False).build()
        videos.append(extract_video(open_video(video.path), detector, extractor))
    model = AnoGraph(hidden_channels=16, max_epochs=20, patience=10, seed=0).fit(videos)
    storage = Storage(root / "store")
    model.save(storage, "models/synthetic")
    save_frame_calibration(calibrate_frame_scores(model, videos), storage, "models/synthetic")
    manifest = json.loads((root / "data" / SYNTHETIC_MANIFEST).read_text())
    return {"root": root, "model": str(root / "store" / "models" / "synthetic"), "dataset": dataset,
            "video": root / "data" / "test" / f"{TOO_FAST}.mp4", "labels": dataset.labels[TOO_FAST],
            "boxes": {row[0]: row[1:] for row in manifest["anomaly_boxes"][TOO_FAST]}}


def test_score_cli_alerts_on_the_injected_anomaly_and_names_its_object(scene, tmp_path, capsys) -> None:
    # The default scorer alerts on the anomaly too; the coverage checks below are group_knn's on this small model.
    default_out = tmp_path / "default"
    assert main(["score", str(scene["video"]), "--model", scene["model"], "--out", str(default_out)]) == 0
    truth_frames = set(np.flatnonzero(scene["labels"]))
    default_alerts = json.loads((default_out / "alerts.json").read_text())["alerts"]
    assert any(truth_frames & set(range(a["start_frame_number"] - 1, a["end_frame_number"])) for a in default_alerts)
    capsys.readouterr()

    out = tmp_path / "out"
    assert main(["score", str(scene["video"]), "--model", scene["model"], "--out", str(out),
                 "--scorer", "group_knn"]) == 0
    assert "alert: frames" in capsys.readouterr().out

    document = json.loads((out / "alerts.json").read_text())
    assert document["threshold"]["source"] == "frame_calibration" and document["threshold"]["quantile"] == 0.99
    labels = scene["labels"]
    truth = set(np.flatnonzero(labels))
    assert document["frame_numbering"].startswith("1-based")
    # alerts.json counts frames from 1, the labels array from 0.
    alerts = [a for a in document["alerts"]
              if truth & set(range(a["start_frame_number"] - 1, a["end_frame_number"]))]
    # The anomaly is alerted once, or in two stretches where its score dips for a few frames.
    assert 1 <= len(alerts) <= 2, document["alerts"]
    alert = max(alerts, key=lambda a: a["peak_score"])
    covered = set().union(*(truth & set(range(a["start_frame_number"] - 1, a["end_frame_number"]))
                            for a in alerts))
    # MOG2 needs the object to be well inside the frame: most, not all, anomalous frames are covered.
    assert len(covered) >= 0.75 * len(truth), (alert["start_frame_number"], alert["end_frame_number"], sorted(truth))
    assert alert["peak_frame_number"] - 1 in truth
    # The alert's top object is the injected pedestrian: its box overlaps the generator's box.
    top = alert["top_objects"][0]
    top_index = top["frame_number"] - 1
    assert top_index in scene["boxes"]
    assert paired_iou(np.array(top["box"]), np.array(scene["boxes"][top_index], float)) > 0.5
    assert top["score"] == max(o["score"] for o in alert["top_objects"]) == alert["peak_score"]
    neighbours = top["neighbours"]
    assert neighbours and all(abs(n["frame_number"] - top["frame_number"]) <= 1 for n in neighbours)
    assert all(0 < n["share"] <= 1 for n in neighbours) and sum(n["share"] for n in neighbours) <= 1 + 1e-9

    frames = pq.read_table(out / "frame_scores.parquet")
    assert frames.num_rows == N_FRAMES
    assert frames.column("frame_number").to_pylist() == list(range(1, N_FRAMES + 1))
    assert pacsv.read_csv(out / "frame_scores.csv").column("frame_number").to_pylist()[0] == 1
    assert pacsv.read_csv(out / "frame_scores.csv").column("score").to_pylist() == pytest.approx(
        frames.column("score").to_pylist(), nan_ok=True)
    objects = pq.read_table(out / "objects.parquet").to_pydict()
    frame_score = np.array(frames.column("score").to_pylist(), dtype=float)
    by_frame: dict[int, float] = {}
    for number, score in zip(objects["frame_number"], objects["score"], strict=True):
        by_frame[number - 1] = max(by_frame.get(number - 1, -np.inf), score)
    assert all(frame_score[f] == pytest.approx(s) for f, s in by_frame.items())
    assert set(objects["class_name"]) <= {"object", "moving region"} and len(objects["x1"]) == sum(frames.column("n_objects").to_pylist())

    capture = cv2.VideoCapture(str(out / "overlay.mp4"))
    decoded = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        decoded += 1
        assert image.shape[1] == 160 and image.shape[0] > 120  # the frame plus the score strip
    capture.release()
    assert decoded == N_FRAMES
    assert (out / "timeline.png").stat().st_size > 5000


def test_a_missing_model_or_video_is_one_clear_error(scene, tmp_path, capsys) -> None:
    assert main(["score", str(scene["video"]), "--model", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "no such model folder" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "missing.mp4"), "--model", scene["model"], "--out", str(tmp_path)]) == 2
    assert "missing.mp4: no such file" in capsys.readouterr().err


def test_score_stream_cli_scores_on_one_torch_thread_and_writes_its_report(scene, tmp_path) -> None:
    """``anograph score --stream``: one torch thread by default (small per-frame products), ``--threads`` overrides."""
    import torch

    before = torch.get_num_threads()
    out = tmp_path / "live"
    assert main(["score", str(scene["video"]), "--model", scene["model"], "--out", str(out), "--stream",
                 "--max-frames", "30"]) == 0
    report = json.loads((out / "stream_report.json").read_text())
    assert report["frames"] == 30 and report["torch_threads"] == 1
    assert torch.get_num_threads() == before  # restored after the stream
    rows = (out / "stream_frames.csv").read_text().splitlines()
    assert len(rows) == 1 + 30  # header + one row per frame
    assert rows[0].startswith("frame_number,") and rows[1].startswith("1,") and rows[-1].startswith("30,")
    threads = 2 if before != 2 else 3
    assert main(["score", str(scene["video"]), "--model", scene["model"], "--out", str(tmp_path / "two"),
                 "--stream", "--max-frames", "10", "--threads", str(threads)]) == 0
    assert json.loads((tmp_path / "two" / "stream_report.json").read_text())["torch_threads"] == threads


def looped_copy(source: Path, target: Path, times: int) -> Path:
    frames = list(open_video(source))
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, frames[0].shape[1::-1])
    for _ in range(times):
        for frame in frames:
            writer.write(frame)
    writer.release()
    return target


@pytest.mark.slow
def test_live_scoring_of_a_looped_video_equals_offline_scoring(scene, tmp_path) -> None:
    video = looped_copy(scene["video"], tmp_path / "looped.mp4", 3)
    scoring = load_scoring_model(scene["model"])
    offline = score_source(scoring, video, "group_knn")
    detector, extractor = build_extraction(scoring.model)
    scorer = StreamScorer(scoring.model, "group_knn", offline.window_radius, offline.threshold.value)
    streamed, alerts = {}, []
    report = run_stream(iter_source_frames(video), detector, extractor, scorer,
                        on_frame=lambda frame: streamed.__setitem__(frame.frame, frame.score), on_alert=alerts.append)
    assert report.frames == 3 * N_FRAMES and sorted(streamed) == list(range(3 * N_FRAMES))
    # float32 kNN distances (matrix-multiply form) differ in the last digits with the batch shape,
    # so at a near tie the live and offline paths can pick a different k-th neighbour.
    np.testing.assert_allclose([streamed[f] for f in range(3 * N_FRAMES)], offline.frame_scores, rtol=1e-3)
    assert len(offline.alerts) >= 3  # the anomaly once per loop
    assert [(a.interval.start, a.interval.end) for a in alerts] == [(a.start_frame, a.end_frame) for a in offline.alerts]
    for live, batch in zip(alerts, offline.alerts, strict=True):
        assert [(frame, box) for frame, box, _, _ in live.top_objects] == [(o.frame, o.box) for o in batch.top_objects]
    assert report.detection["mean_ms"] > 0 and report.scoring["mean_ms"] > 0


def assert_live_equals_offline(scoring, scene: dict, offline, camera: str = "") -> StreamScorer:
    """Stream the scene's video through the model's ``attributes`` scorer; its frame scores must be ``offline``'s."""
    detector, extractor = build_extraction(scoring.model)
    scorer = StreamScorer(scoring.model, "attributes", offline.window_radius, offline.threshold.value, camera=camera)
    streamed = {}
    run_stream(iter_source_frames(scene["video"]), detector, extractor, scorer,
               on_frame=lambda frame: streamed.__setitem__(frame.frame, frame.score))
    np.testing.assert_allclose([streamed[f] for f in range(N_FRAMES)], offline.frame_scores, rtol=1e-6, atol=1e-9)
    return scorer


@pytest.mark.parametrize(("track_radius", "combination", "feature_radius"),
                         [(0, "sum", 0), (3, "sum", 0), (3, "max", 0), (0, "max", 2), (3, "max", 2)])
def test_live_attribute_scores_equal_offline_ones_with_sources_and_track_smoothing(scene, track_radius,
                                                                                 combination, feature_radius) -> None:
    scoring = load_scoring_model(scene["model"])
    ensemble = scoring.model.attribute_scoring().ensemble
    assert len(ensemble.labels) > 1  # so that the two rules differ
    ensemble.track_radius, ensemble.combination = track_radius, combination  # as if the selection had chosen them
    motion = [part.density for part in ensemble.parts_ if part.density.name == "velocity"]
    assert motion, "the scene's ensemble has no velocity attribute to average along tracks"
    motion[0].track_radius = feature_radius  # its flow averaged along tracks, as if chosen
    assert ensemble.feature_radius == feature_radius
    offline = score_source(scoring, scene["video"], "attributes")
    assert (offline.video.sources == 1).any()  # motion regions are scored by their own shape mixture
    objects = object_attributes(offline.video)
    right_edge = (objects.centres[:, 0] + objects.sizes[:, 0] / 2) > objects.frame_width - FRAME_EDGE_MARGIN
    assert right_edge.any()  # boxes the right edge cuts: live scoring must know the frame's width to match
    scorer = assert_live_equals_offline(scoring, scene, offline)
    assert scorer.latency_frames >= track_radius + feature_radius


def test_live_scores_take_the_motion_field_beside_the_objects_as_offline_ones_do(scene) -> None:
    scoring = load_scoring_model(scene["model"])
    attributes = scoring.model.attribute_scoring()
    if attributes.motion_field is None:  # as if the selection had put it beside the ensemble
        video = score_source(scoring, scene["video"], "attributes").video
        assert video.cell_speeds is not None  # the default extraction reads cell speeds
        attributes.motion_field = CalibratedMotionField(MotionFieldDensity().fit([object_attributes(video)]), 0.0, 0.5)
    offline = score_source(scoring, scene["video"], "attributes")
    objects_only = frame_scores(offline.object_scores, offline.video.frame_offsets())
    field = attributes.field_scores(offline.video)
    np.testing.assert_allclose(offline.frame_scores, np.fmax(objects_only, field))
    assert (field > np.nan_to_num(objects_only, nan=-np.inf)).any()  # the field decides some frames
    assert offline.alerts  # each names where the frames moved most unusually, with no detection
    for alert in offline.alerts:
        place = alert.fastest_place
        assert alert.start_frame <= place.frame <= alert.end_frame
        assert place.score == pytest.approx(field[alert.start_frame : alert.end_frame + 1].max())
        x1, y1, x2, y2 = place.box
        assert 0 <= x1 < x2 <= offline.video.metadata.width and 0 <= y1 < y2 <= offline.video.metadata.height
        assert alert.to_record()["fastest_place"]["frame_number"] == place.frame + 1
    assert_live_equals_offline(scoring, scene, offline)


def test_a_model_of_several_cameras_scores_each_source_with_its_cameras_model_live_and_offline(scene) -> None:
    scoring = load_scoring_model(scene["model"])
    one_camera = scoring.model.attribute_scoring()
    single = score_source(scoring, scene["video"], "attributes")
    # The same fitted ensemble as camera "gate" of a model of two cameras ("yard" fitted alike).
    scoring.model.attribute_scoring_ = CameraScorings({"gate": one_camera, "yard": one_camera}, {})
    offline = score_source(scoring, scene["video"], "attributes", camera="gate")
    np.testing.assert_array_equal(offline.frame_scores, single.frame_scores)
    with pytest.raises(InputError, match="gate, yard.*'street'"):
        score_source(scoring, scene["video"], "attributes", camera="street")
    with pytest.raises(InputError, match="--camera"):
        StreamScorer(scoring.model, "attributes", offline.window_radius, offline.threshold.value)
    assert_live_equals_offline(scoring, scene, offline, camera="gate")


def test_serving_refuses_to_extract_with_other_settings_than_the_model_was_trained_with(scene) -> None:
    scoring = load_scoring_model(scene["model"])
    build_extraction(scoring.model)  # this anograph's defaults are the model's own
    trained = scoring.model.extraction_features_
    # As if the model had been trained before a default changed.
    scoring.model.extraction_features_ = {**trained, "flow": {**trained["flow"], "preset": "fast"}}
    with pytest.raises(ModelArtifactError, match=r"flow\.preset: fast -> medium"):
        build_extraction(scoring.model)
    # The default scorer reads the shard's rows directly; it refuses them too.
    shard = score_source(load_scoring_model(scene["model"]), scene["video"], "attributes").video
    with pytest.raises(ModelArtifactError, match=r"flow\.preset: fast -> medium"):
        scoring.model.score_video(shard, 3, ["attributes"])


@pytest.mark.slow
def test_ten_thousand_looped_frames_keep_memory_and_the_window_bounded(scene) -> None:
    scoring = load_scoring_model(scene["model"])
    detector, extractor = build_extraction(scoring.model)
    detector.reset()
    extractor.reset()
    # The detector's per-frame output of the real video, looped: 10k frames of the full
    # detector would take minutes here, and its state (MOG2) does not grow with time.
    per_frame = []
    for frame in iter_source_frames(scene["video"]):
        detections = detector.detect(frame)
        per_frame.append((detections.boxes, detections.class_ids, extractor.features(frame, detections)))
    scorer = StreamScorer(scoring.model, "knn", 10, load_scoring_model(scene["model"]).calibration.threshold("knn"))
    held, alerts, traced = set(), [], {}
    try:
        for index in range(10_000):
            if index == 2_000:  # from here on, every allocation still alive at the end is growth
                tracemalloc.start()
            if index in (2_000, 10_000 - 1):
                traced[index] = (tracemalloc.get_traced_memory()[0], resident_memory_bytes())
            _, closed = scorer.push(*per_frame[index % N_FRAMES])
            alerts += [alert.interval for alert in closed]
            held.add(scorer.frames_held)
    finally:
        tracemalloc.stop()
    python_growth = traced[9_999][0] - traced[2_000][0]
    assert python_growth < 512 * 1024, python_growth  # bytes of Python/numpy allocations still alive
    if traced[2_000][1] is not None:
        assert traced[9_999][1] - traced[2_000][1] < 32 * 2**20
    assert max(held) <= 2 and len(held) <= 2  # the window: this frame and, non-causal, the one before
    # The anomaly recurs once per loop, at the same place in every loop after the first.
    later = [(a.start % N_FRAMES, a.end - a.start) for a in alerts if a.start >= N_FRAMES]
    assert len(later) >= 10_000 // N_FRAMES - 2 and len(set(later)) <= 2


@pytest.mark.slow
def test_score_videos_flow_scores_a_batch_and_names_a_bad_video(scene, tmp_path) -> None:
    from flows.score_videos import ScoringFailed, score_videos

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    videos = [{"name": "good", "path": str(scene["video"])}, {"name": "broken", "path": str(bad)}]
    with pytest.raises(ScoringFailed, match="broken"):
        score_videos(scene["model"], videos, str(tmp_path / "out"), overlay=False)
    assert (tmp_path / "out" / "good" / "alerts.json").is_file()
    report = (tmp_path / "out" / "scoring_report.md").read_text()
    assert "| good | 120 |" in report and "broken" in report.split("## Failed videos")[1]
