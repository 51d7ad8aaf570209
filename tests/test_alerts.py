"""Alert rules, neighbour explanations, frame calibration and live scoring on feature shards (no video)."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import scipy.sparse as sparse
from synthetic_features import DEFAULT_LAYOUT, make_video, make_videos

from anograph.errors import ModelArtifactError
from anograph.evaluation.report.alert_threshold import training_videos_markdown
from anograph.graph.windows import frame_scores
from anograph.io.storage import Storage
from anograph.models.estimator import AnoGraph
from anograph.serving.alerts import (
    AlertObject,
    IntervalTracker,
    Neighbour,
    alert_intervals,
    describe_interval,
    top_objects,
)
from anograph.serving.calibration import (
    FrameCalibration,
    alert_threshold,
    calibrate_frame_scores,
    load_frame_calibration,
    save_frame_calibration,
)
from anograph.serving.explain import neighbour_contributions
from anograph.serving.live_scorer import StreamScorer

SMALL = {"hidden_channels": 16, "max_epochs": 30, "patience": 10, "seed": 0}


def reference_intervals(scores: np.ndarray, threshold: float, min_frames: int, max_gap: int) -> list[tuple[int, int]]:
    """The rules written the batch way: runs of over frames, merge small gaps, drop short ones."""
    over = np.isfinite(scores) & (scores > threshold)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], over.astype(int), [0]])))
    runs = [[start, end - 1] for start, end in zip(edges[::2], edges[1::2], strict=True)]
    merged: list[list[int]] = []
    for run in runs:
        if merged and run[0] - merged[-1][1] - 1 <= max_gap:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    return [(start, end) for start, end in merged if end - start + 1 >= min_frames]


def test_gap_merge_and_minimum_duration() -> None:
    scores = np.array([0, 5, 5, 0, 0, 5, 0, 0, 0, 0, 0, 0, 5, np.nan, 5, 5, 0, 5, 0, 0], float)
    intervals = alert_intervals(scores, threshold=1.0, min_frames=3, max_gap=2)
    # 1-2 and 5 merge (gap 2); 12 and 14-15 and 17 merge (NaN is not over); nothing else.
    assert [(i.start, i.end) for i in intervals] == [(1, 5), (12, 17)]
    assert [i.n_over for i in intervals] == [3, 4]
    assert alert_intervals(scores, threshold=1.0, min_frames=7, max_gap=2) == []
    assert len(alert_intervals(scores, threshold=1.0, min_frames=1, max_gap=0)) == 5


@pytest.mark.parametrize("seed", range(5))
def test_incremental_tracker_equals_the_batch_rules(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.normal(0, 1, 400) + np.repeat(rng.normal(0, 1.5, 40), 10)
    scores[rng.random(400) < 0.05] = np.nan
    for min_frames, max_gap in ((1, 0), (3, 2), (5, 6)):
        tracker = IntervalTracker(1.0, min_frames, max_gap)
        closed_when = []
        for frame, score in enumerate(scores):
            for interval in tracker.push(score):
                closed_when.append((interval.start, interval.end, frame))
        closed_when += [(i.start, i.end, len(scores)) for i in tracker.finish()]
        assert [(s, e) for s, e, _ in closed_when] == reference_intervals(scores, 1.0, min_frames, max_gap)
        # Closed exactly when no later frame could extend it: max_gap + 1 frames after its end.
        assert all(when == min(end + max_gap + 1, len(scores)) for _, end, when in closed_when)


def test_top_objects_are_the_highest_scores_inside_the_interval() -> None:
    frames = np.array([0, 1, 1, 2, 3, 3, 4])
    scores = np.array([9.0, 1.0, 3.0, 2.0, 5.0, 0.5, 8.0])
    interval = alert_intervals(np.array([0, 5, 5, 5, 0]), 1.0, min_frames=1, max_gap=0)[0]
    assert list(top_objects(frames, scores, interval, count=2)) == [4, 2]  # frames 1-3 only


def test_alert_records_count_frames_from_one_and_say_so() -> None:
    scores = np.array([0.0, 0.0, 5.0, 5.0, 5.0, 0.0])
    interval = alert_intervals(scores, 1.0, min_frames=1, max_gap=0)[0]
    objects = [AlertObject(frame=3, object_index=0, box=[0, 0, 1, 1], class_name="person", score=5.0,
                           neighbours=[Neighbour(frame=2, object_index=1, box=[0, 0, 1, 1], class_name="person",
                                                 score=1.0, edge_weight=0.5, contribution=1.0, share=1.0)])]
    alert = describe_interval("clip", interval, scores, 1.0, 10.0, objects)
    assert (alert.start_frame, alert.end_frame) == (2, 4)  # internal: 0-based
    record = alert.to_record()
    assert (record["start_frame_number"], record["end_frame_number"], record["peak_frame_number"]) == (3, 5, 3)
    assert record["top_objects"][0]["frame_number"] == 4
    assert record["top_objects"][0]["neighbours"][0]["frame_number"] == 3
    assert not {"start_frame", "end_frame", "peak_frame", "frame"} & (set(record) | set(record["top_objects"][0]))
    assert record["start_seconds"] == 0.2  # seconds stay measured from the first frame's start


def test_neighbour_contributions_are_weight_times_message_norm() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(0, 1, (5, 4))
    weight = rng.normal(0, 1, (3, 4))
    adjacency = sparse.csr_matrix(np.array([
        [0.4, 0.3, 0.0, 0.2, 0.1],
        [0.5, 0.5, 0.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0, 0.0],
        [0.3, 0.0, 0.0, 0.7, 0.0],
        [0.2, 0.0, 0.0, 0.0, 0.8],
    ]))
    parts = neighbour_contributions(0, adjacency, features, weight, count=2)
    expected = adjacency.toarray()[0] * np.linalg.norm(features @ weight.T, axis=1)
    order = [j for j in np.argsort(-expected) if j != 0]  # the object itself is not its own neighbour
    assert [part.column for part in parts] == order[:2]
    assert parts[0].contribution == pytest.approx(expected[order[0]])
    assert parts[0].share == pytest.approx(expected[order[0]] / expected.sum())
    assert neighbour_contributions(2, adjacency, features, weight) == []


@pytest.fixture(scope="module")
def training_videos():
    return make_videos(3, seed=0, n_frames=40)


@pytest.fixture(scope="module")
def fitted(training_videos) -> AnoGraph:
    return AnoGraph(**SMALL, score_propagation_steps=3).fit(training_videos)


def test_frame_calibration_leaves_each_video_out(fitted: AnoGraph, training_videos, tmp_path) -> None:
    calibration = calibrate_frame_scores(fitted, training_videos)
    n_frames = sum(int(np.sum(np.diff(video.frame_offsets()) > 0)) for video in training_videos)
    assert all(len(values) == n_frames for values in calibration.frame_scores.values())
    in_sample = np.concatenate([
        frame_scores(fitted.score_video(video, 10, ["feature_knn"])["feature_knn"], video.frame_offsets())
        for video in training_videos
    ])
    # Left out, an object no longer finds itself in the kNN bank: its distances grow.
    assert np.median(calibration.frame_scores["feature_knn"]) > np.nanmedian(in_sample)
    assert calibration.threshold("feature_knn", 0.5) == pytest.approx(np.median(calibration.frame_scores["feature_knn"]))
    assert calibration.threshold("knn", 0.99) > calibration.threshold("knn", 0.9)

    storage = Storage(tmp_path)
    with pytest.raises(ModelArtifactError, match="no model here"):  # a calibration is bound to a saved model
        save_frame_calibration(calibration, storage, "models/m")
    fitted.save(storage, "models/m")
    save_frame_calibration(calibration, storage, "models/m")
    loaded = load_frame_calibration(storage, "models/m")
    assert isinstance(loaded, FrameCalibration) and loaded.frame_scores == calibration.frame_scores
    fitted.save(storage, "models/none")
    assert load_frame_calibration(storage, "models/none") is None
    from_frames = alert_threshold(fitted, loaded, "knn", 0.95)
    assert from_frames.source == "frame_calibration" and from_frames.value == calibration.threshold("knn", 0.95)
    # A model saved before frame calibration existed falls back to its object-level training scores.
    older = alert_threshold(fitted, None, "knn", 0.95)
    assert older.source == "object_calibration"
    assert older.value == pytest.approx(np.quantile(fitted.calibration_scores_["knn"], 0.95))


def test_a_training_video_unlike_the_others_has_the_most_frames_over_when_held_out() -> None:
    normal = make_videos(4, seed=1, n_frames=40)
    odd = make_video("odd", np.random.default_rng(7), n_frames=40,
                     track_patterns=np.random.default_rng(8).normal(3.0, 1.0, (4, DEFAULT_LAYOUT.width - 4)))
    training = [*normal, odd]
    model = AnoGraph(**SMALL).fit(training)
    calibration = calibrate_frame_scores(model, training, scorers=["feature_knn"])
    over = calibration.video_frames_over["feature_knn"]
    pooled = np.asarray(calibration.frame_scores["feature_knn"])
    # Against the other videos' 0.99 quantile, a normal video has few frames over; the odd one most of its frames.
    assert all(over[video.metadata.video] <= 0.1 * calibration.video_frames[video.metadata.video] for video in normal)
    assert over["odd"] >= 0.5 * calibration.video_frames["odd"]
    assert sum(calibration.video_frames.values()) == len(pooled)
    assert max(over, key=lambda video: over[video] / calibration.video_frames[video]) == "odd"

    threshold = asdict(alert_threshold(model, calibration, "feature_knn"))
    assert threshold["training_videos"]["odd"] == [over["odd"], calibration.video_frames["odd"]]
    lines = training_videos_markdown(threshold)
    marked = [line for line in lines if line.startswith("|") and "unlike the others" in line]
    assert marked and marked[0].startswith("| `odd`")
    # At another quantile the counts (made at the default one) do not apply, and are not shown.
    assert alert_threshold(model, calibration, "feature_knn", 0.9).training_videos is None
    # A calibration saved before the counts were kept loads without them.
    older = {key: value for key, value in calibration.to_dict().items() if not key.startswith("video_")}
    assert alert_threshold(model, FrameCalibration.from_dict(older), "feature_knn").training_videos is None


def test_one_training_video_calibrates_on_its_halves(training_videos) -> None:
    model = AnoGraph(**SMALL).fit(training_videos[:1])
    calibration = calibrate_frame_scores(model, training_videos[:1], scorers=["feature_knn"])
    assert len(calibration.frame_scores["feature_knn"]) == int(np.sum(np.diff(training_videos[0].frame_offsets()) > 0))


def stream_video(scorer: StreamScorer, video, prefix: int | None = None) -> tuple[dict[int, float], list]:
    offsets = video.frame_offsets()
    scores, alerts = {}, []
    last = len(offsets) - 1 if prefix is None else prefix
    for frame in range(last):
        rows = slice(offsets[frame], offsets[frame + 1])
        scored, closed = scorer.push(video.boxes[rows], video.class_ids[rows], video.features[rows])
        scores.update({item.frame: item.score for item in scored})
        alerts += closed
        assert scorer.frames_held <= 2 * scorer.steps + scorer.window.effective_radius + 2
    scored, closed = scorer.finish()
    scores.update({item.frame: item.score for item in scored})
    return scores, alerts + closed


@pytest.mark.parametrize("scorer_name", ["group_knn", "knn"])
def test_non_causal_stream_equals_offline_scoring(fitted: AnoGraph, scorer_name: str) -> None:
    rng = np.random.default_rng(7)
    video = make_video("test", rng, n_frames=60, empty_frames=(20, 21))
    video.features[video.frames >= 40] += np.float16(3.0)  # an anomalous stretch, so alerts exist
    radius = 10
    offline = fitted.score_video(video, radius, [scorer_name])[scorer_name]
    offline_frames = frame_scores(offline, video.frame_offsets())
    threshold = float(np.nanquantile(offline_frames, 0.6))
    scorer = StreamScorer(fitted, scorer_name, radius, threshold, min_frames=2, max_gap=1)
    assert scorer.steps == 3 and scorer.latency_frames == 1 + 3
    streamed, alerts = stream_video(scorer, video)
    assert sorted(streamed) == list(range(60))
    np.testing.assert_allclose([streamed[f] for f in range(60)], offline_frames, rtol=1e-5, atol=1e-6)
    expected = alert_intervals(offline_frames, threshold, 2, 1)
    assert expected and [alert.interval for alert in alerts] == expected
    for alert, interval in zip(alerts, expected, strict=True):
        rows = top_objects(video.frames, offline, interval)
        assert [round(score, 5) for *_, score in alert.top_objects] == [round(offline[row], 5) for row in rows]


def test_causal_stream_scores_use_only_past_frames(fitted: AnoGraph) -> None:
    video = make_video("test", np.random.default_rng(3), n_frames=50)
    full, _ = stream_video(StreamScorer(fitted, "knn", 10, 1e9, causal=True), video)
    prefix, _ = stream_video(StreamScorer(fitted, "knn", 10, 1e9, causal=True), video, prefix=30)
    assert StreamScorer(fitted, "knn", 10, 1e9, causal=True).latency_frames == 0
    np.testing.assert_allclose([prefix[f] for f in range(30)], [full[f] for f in range(30)])
    offline = frame_scores(fitted.score_video(video, 10, ["knn"])["knn"], video.frame_offsets())
    # Without the next frame's edges the scores are not the offline ones.
    assert not np.allclose([full[f] for f in range(50)], offline)
