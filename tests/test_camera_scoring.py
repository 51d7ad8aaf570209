"""One attribute model per camera where the footage says so (anograph.models.camera_scoring), on synthetic
footage of two cameras."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from synthetic_attributes import as_video_features, make_videos

from anograph.attributes.objects import MOVING_DX, MOVING_FRACTION, ObjectAttributes
from anograph.errors import InputError
from anograph.evaluation.ablations import attribute_subsets
from anograph.evaluation.report.selection_markdown import selection_markdown
from anograph.models.attribute_scoring import AttributeScoring
from anograph.models.camera_scoring import (
    CameraScorings,
    fit_attribute_scoring,
    fit_camera_scorings,
    load_attribute_scoring,
)

#: A walking pace in frame heights a frame: near the camera (fast in the image) and far from it. The near
#: pace is the far one doubled, so that the `speed` pseudo-anomaly (a track replayed twice as fast) of the
#: far camera is the near camera's everyday pace: a model of both cameras cannot see it.
NEAR_PACE, FAR_PACE = 0.02, 0.01


def paced(pace: float):
    return lambda centres, heights: np.full(len(centres), pace)


def renamed(videos: list[ObjectAttributes], prefix: str) -> list[ObjectAttributes]:
    return [video.with_changes(video=f"{prefix}_{index}") for index, video in enumerate(videos)]


@pytest.fixture(scope="module")
def cameras() -> dict[str, list[ObjectAttributes]]:
    options = {"n_frames": 60}
    return {"near": renamed(make_videos(3, seed=1, speed=paced(NEAR_PACE), **options), "near"),
            "far": renamed(make_videos(3, seed=2, speed=paced(FAR_PACE), **options), "far")}


@pytest.fixture(scope="module")
def per_camera(cameras) -> CameraScorings:
    scoring = fit_camera_scorings(cameras, {"near": {0}, "far": {0}}, seed=0)
    assert isinstance(scoring, CameraScorings)
    return scoring


def sped_up(video: ObjectAttributes, factor: float) -> ObjectAttributes:
    """Every object moving ``factor`` times as fast (its flow speeds and vector scaled alike)."""
    flow = video.flow.copy()
    speeds = [column for column in range(flow.shape[1]) if column != MOVING_FRACTION]
    flow[:, speeds] *= factor
    return video.with_changes(flow=flow)


def test_a_near_cameras_walking_pace_is_an_anomaly_far_away_only_when_each_camera_has_its_model(cameras, per_camera):
    """A walker far from the camera moving at the pace the near camera sees every day (a runner, there):
    the far camera's own model finds it; one model of both cameras has seen that pace as normal."""
    pooled = AttributeScoring.fit_objects([video for videos in cameras.values() for video in videos], {0}, seed=0)
    clean = make_videos(1, seed=9, n_frames=60, speed=paced(FAR_PACE))[0]
    runner = sped_up(clean, NEAR_PACE / FAR_PACE)
    labels = np.r_[np.zeros(len(clean)), np.ones(len(runner))]

    def auc(scoring: AttributeScoring) -> float:
        return roc_auc_score(labels, np.r_[scoring.ensemble.score(clean), scoring.ensemble.score(runner)])

    own, one_for_all = auc(per_camera.for_camera("far")), auc(pooled)
    assert own > 0.95
    assert own > one_for_all + 0.1


def test_the_far_camera_keeps_its_own_model_because_the_shared_one_misses_its_speed_kind(per_camera):
    far = next(entry for entry in per_camera.comparison if entry["camera"] == "far")
    assert far["uses"] == "own"
    assert far["own"]["aucs"]["speed"] > 0.95
    assert far["shared"]["aucs"]["speed"] < far["own"]["aucs"]["speed"] - 0.2
    assert far["own"]["mean_auc"] > far["shared"]["mean_auc"] + 0.01


def test_cameras_that_see_alike_share_one_model_with_the_comparison_on_record():
    alike = {camera: renamed(make_videos(3, seed=seed, n_frames=60, speed=paced(FAR_PACE)), camera)
             for camera, seed in (("a", 1), ("b", 2))}
    scoring = fit_camera_scorings(alike, {"a": {0}, "b": {0}}, seed=0)
    assert isinstance(scoring, AttributeScoring)  # one model: no --camera needed to score
    choice = scoring.selection["camera_choice"]
    assert [entry["camera"] for entry in choice] == ["a", "b"]
    assert all(entry["uses"] == "shared" for entry in choice)
    assert all(entry["own"]["mean_auc"] <= entry["shared"]["mean_auc"] + 0.01 for entry in choice)
    assert scoring.selection["n_folds"] == 6  # the shared model's folds: both cameras' videos
    text = "\n".join(selection_markdown(scoring.selection))
    assert "| a | 3 |" in text and "| shared |" in text and text.count("Chosen: **") == 1


def test_each_camera_chooses_and_calibrates_on_its_own_videos(cameras, per_camera):
    assert per_camera.cameras == ["far", "near"]
    assert per_camera.video_cameras == {f"{camera}_{index}": camera for camera in cameras for index in range(3)}
    for camera, scoring in per_camera.by_camera.items():
        uses = next(entry["uses"] for entry in per_camera.comparison if entry["camera"] == camera)
        assert scoring.selection["n_folds"] == (3 if uses == "own" else 6)  # its own videos, or both cameras'
        held_out = scoring.held_out_for(f"{camera}_0")
        assert held_out is not scoring  # a fold fitted without that video
        assert per_camera.held_out_for(f"{camera}_0").ensemble is held_out.ensemble
    labels = per_camera.labels
    assert len(labels) == len(set(labels))
    assert set(labels) == {label for scoring in per_camera.by_camera.values() for label in scoring.labels}


def test_videos_are_scored_by_their_cameras_model_and_the_artifact_state_round_trips(cameras, per_camera):
    video = as_video_features(cameras["far"][0], camera="far")
    expected = per_camera.for_camera("far").ensemble.score(cameras["far"][0])
    np.testing.assert_allclose(per_camera.score(video), expected, rtol=1e-3, atol=1e-3)  # float16 shard rows
    description, arrays = per_camera.state()
    assert all(key.startswith("attributes.model") for key in arrays)
    loaded = load_attribute_scoring(description, arrays)
    assert isinstance(loaded, CameraScorings) and loaded.cameras == per_camera.cameras
    np.testing.assert_array_equal(loaded.score(video), per_camera.score(video))
    assert loaded.selection == per_camera.selection


def test_cameras_on_the_shared_model_store_and_load_it_once(cameras, per_camera):
    shared = per_camera.for_camera("near")
    three = CameraScorings({"far": per_camera.for_camera("far"), "near": shared, "side": shared},
                           per_camera.video_cameras)
    description, arrays = three.state()
    assert len(description["models"]) == 2 and description["cameras"] == {"far": 0, "near": 1, "side": 1}
    assert not any(key.startswith("attributes.model2.") for key in arrays)
    loaded = CameraScorings.from_state(description, arrays)
    assert loaded.for_camera("near") is loaded.for_camera("side")
    video = as_video_features(cameras["near"][0], camera="side")
    np.testing.assert_array_equal(loaded.score(video), three.score(video))


def test_footage_of_a_camera_the_model_never_saw_is_an_input_error_naming_the_cameras(cameras, per_camera):
    with pytest.raises(InputError, match="far, near.*'side'"):
        per_camera.score(as_video_features(cameras["far"][0], camera="side"))
    with pytest.raises(InputError, match="--camera"):
        per_camera.for_camera("")


def test_the_ablation_leaves_out_what_a_camera_did_not_choose(cameras, per_camera):
    video = as_video_features(cameras["near"][0], camera="near")
    own = per_camera.for_camera("near").labels
    subsets = attribute_subsets(per_camera.labels) | {"only elsewhere": ["not chosen anywhere"]}
    scores = per_camera.score_subsets(video, subsets)
    np.testing.assert_array_equal(scores["all chosen"], per_camera.score(video))
    np.testing.assert_array_equal(scores["only elsewhere"], np.zeros(video.n_objects))
    for label in own:
        if len(own) > 1:
            expected = per_camera.for_camera("near").score_subsets(video, {"x": [label]})["x"]
            np.testing.assert_array_equal(scores[f"only {label}"], expected)


def test_one_camera_gets_one_plain_model_as_before(cameras):
    shards = [as_video_features(video) for video in cameras["near"]]
    scoring = fit_attribute_scoring(shards, seed=0)
    assert isinstance(scoring, AttributeScoring)
    assert scoring.for_camera("anything") is scoring
    description, arrays = scoring.state()
    assert isinstance(load_attribute_scoring(description, arrays), AttributeScoring)


def test_shards_of_two_cameras_get_a_model_each(cameras):
    shards = [as_video_features(video, camera=camera) for camera, videos in cameras.items() for video in videos]
    scoring = fit_attribute_scoring(shards, seed=0)
    assert isinstance(scoring, CameraScorings) and scoring.cameras == ["far", "near"]


def test_the_report_shows_each_cameras_choice_and_candidates(per_camera):
    lines = selection_markdown(per_camera.selection)
    text = "\n".join(lines)
    assert "2 cameras" in text
    summary = [line for line in lines if line.startswith("| far |") or line.startswith("| near |")]
    assert len(summary) == 2 and all(line.endswith(("| own |", "| shared |")) for line in summary)
    own = [entry["camera"] for entry in per_camera.comparison if entry["uses"] == "own"]
    assert all(f"### Camera {camera}" in text for camera in own)
    assert text.count("Chosen: **") == len(own) + (len(own) < 2)


def test_sped_up_copies_move_faster_in_the_same_direction(cameras):
    video = cameras["far"][0]
    fast = sped_up(video, 5.0)
    np.testing.assert_allclose(fast.flow[:, MOVING_DX], 5.0 * video.flow[:, MOVING_DX], rtol=1e-6)
    np.testing.assert_array_equal(fast.flow[:, MOVING_FRACTION], video.flow[:, MOVING_FRACTION])


def test_a_shard_written_before_cameras_reads_as_one_camera():
    metadata = as_video_features(make_videos(1, seed=3, n_frames=5)[0], camera="far").metadata
    text = metadata.to_json().replace(', "camera": "far"', "").replace('"camera": "far", ', "")
    assert "camera" not in text
    assert type(metadata).from_json(text).camera == ""
