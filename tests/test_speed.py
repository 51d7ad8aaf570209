"""The one-sided ``speed`` density: upper-tail rarity of the moving pixels' speed."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_attributes import make_tracked_video, make_videos, perspective_speed

from anograph.attributes.densities import VelocityDensity, make_density
from anograph.attributes.ensemble import AttributeEnsemble, HeldOutFits, held_out_parts
from anograph.attributes.objects import MOVING_MAGNITUDE
from anograph.attributes.speed import SpeedDensity
from anograph.errors import InputError


@pytest.fixture(scope="module")
def videos():
    return make_videos(4, seed=7)


def with_speeds(video, speeds):
    flow = video.flow.copy()
    flow[:, MOVING_MAGNITUDE] = speeds
    return video.with_changes(flow=flow)


def test_score_is_minus_log_of_the_share_of_training_objects_at_least_as_fast(videos):
    density = SpeedDensity().fit(videos)
    training = np.concatenate([video.flow[:, MOVING_MAGNITUDE] for video in videos]).astype(np.float64)
    speeds = np.quantile(training, [0.05, 0.3, 0.5, 0.8, 0.95])
    scores = density.score(with_speeds(videos[0].rows(np.arange(len(speeds))), speeds))
    expected = -np.log((training[None, :] >= speeds[:, None]).mean(axis=1))
    np.testing.assert_allclose(scores, expected, atol=0.02)


def test_still_objects_score_zero_and_slower_is_never_rarer(videos):
    density = SpeedDensity().fit(videos)
    probe = videos[0].rows(np.arange(50))
    still = density.score(with_speeds(probe, np.zeros(50)))
    np.testing.assert_array_equal(still, 0.0)
    ramp = np.linspace(0.0, 0.2, 50)
    scores = density.score(with_speeds(probe, ramp))
    assert (np.diff(scores) >= 0).all()
    assert scores[-1] > scores[0]


def test_past_the_tail_quantile_scores_keep_rising_continuously(videos):
    density = SpeedDensity().fit(videos)
    start = density.tail_.tail_start_
    probe = videos[0].rows(np.arange(4))
    scores = density.score(with_speeds(probe, np.array([start * (1 - 1e-9), start * (1 + 1e-9), 2 * start, 4 * start])))
    assert scores[1] == pytest.approx(scores[0], abs=1e-3)
    # -log(1 - 0.99) at the tail's start, then linear in the excess speed.
    assert scores[0] == pytest.approx(-np.log(1 - density.tail_quantile), abs=0.05)
    assert scores[3] - scores[2] == pytest.approx(2 * (scores[2] - scores[1]), rel=1e-6)


def test_a_twice_as_fast_object_is_rare_in_held_out_videos(videos):
    fits = HeldOutFits(SpeedDensity, held_out_parts(videos))
    normal = np.concatenate([scores for fold in fits.scores for scores in fold])
    doubled = np.concatenate([fits.score(index, with_speeds(video, 2 * video.flow[:, MOVING_MAGNITUDE]))
                              for index, fold in enumerate(fits.folds) for video in fold])
    assert np.median(doubled) > np.quantile(normal, 0.9)


def test_the_velocity_mixture_finds_still_objects_rare_and_speed_does_not():
    # Why speed is one-sided: among walkers, a standing object sits off the mixture's walking mode.
    videos = make_videos(4, seed=1, speed=perspective_speed)
    still = with_speeds(videos[0].rows(np.arange(20)), np.zeros(20))
    still = still.with_changes(flow=np.zeros_like(still.flow))
    walkers = videos[0].rows(np.arange(20, len(videos[0])))
    mixture = VelocityDensity().fit(videos[1:])
    assert np.median(mixture.score(still)) > np.quantile(mixture.score(walkers), 0.99)
    speed = SpeedDensity().fit(videos[1:])
    np.testing.assert_array_equal(speed.score(still), 0.0)


def test_per_height_measures_speed_in_box_heights_and_keeps_a_cut_walkers_pace():
    videos = make_videos(4, seed=2, speed=perspective_speed)
    density = SpeedDensity(per_height=True).fit(videos)
    # Image speed is 0.1 box heights per frame here, near or far: every walker is ordinary.
    walker = videos[0].rows(np.arange(1))
    near = walker.with_changes(centres=np.float32([[0.6, 0.8]]), sizes=np.float32([[0.08, 0.2]]))
    near = with_speeds(near, np.array([0.02]))
    far = walker.with_changes(centres=np.float32([[0.6, 0.2]]), sizes=np.float32([[0.032, 0.08]]))
    far = with_speeds(far, np.array([0.008]))
    assert density.score(near)[0] == pytest.approx(density.score(far)[0], abs=0.5)
    assert density.score(with_speeds(far, np.array([0.02])))[0] > density.score(far)[0] + 2
    # The same near walker cut to a third of its height by the bottom edge keeps its pace.
    cut = near.with_changes(centres=np.float32([[0.6, 1.0 - 0.07 / 2]]), sizes=np.float32([[0.08, 0.07]]))
    assert cut.cut_by_frame_edge()[0, 1]
    assert density.score(cut)[0] == pytest.approx(density.score(near)[0], abs=0.5)
    assert SpeedDensity(per_height=True).fit(videos).label == "speed per height"


def test_state_round_trip_through_the_registry(videos):
    for config in ({}, {"per_height": True}):
        density = make_density("speed", config).fit(videos)
        restored = make_density("speed", density.config()).load_state(density.state())
        np.testing.assert_array_equal(restored.score(videos[1]), density.score(videos[1]))


def test_a_tail_quantile_outside_its_range_is_an_input_error():
    with pytest.raises(InputError, match="tail_quantile"):
        SpeedDensity(tail_quantile=1.0)


def test_footage_without_motion_still_fits_and_any_motion_is_rare(videos):
    still = [video.with_changes(flow=np.zeros_like(video.flow)) for video in videos]
    density = SpeedDensity().fit(still)
    scores = density.score(with_speeds(videos[0].rows(np.arange(2)), np.array([0.0, 0.01])))
    assert scores[0] == 0.0 and np.isfinite(scores[1]) and scores[1] > 10


def test_track_radius_reads_the_speed_averaged_along_the_track():
    rng = np.random.default_rng(4)
    walkers = [make_tracked_video(f"v{index}", rng) for index in range(3)]
    plain, averaged = SpeedDensity().fit(walkers), SpeedDensity(track_radius=6).fit(walkers)
    assert averaged.label == "speed(track 6)" and averaged.config()["track_radius"] == 6
    # Averaging along tracks narrows the normal speeds: the flow's frame-to-frame noise cancels.
    spread = [np.std(np.log(density.values(walkers[0])[density.values(walkers[0]) > 0])) for density in (plain, averaged)]
    assert spread[1] < 0.6 * spread[0]
    # An untracked object keeps its own frame's speed.
    alone = walkers[0].with_changes(tracks=np.full(len(walkers[0]), -1))
    np.testing.assert_array_equal(averaged.values(alone), plain.values(alone))
    with pytest.raises(InputError):
        SpeedDensity(track_radius=-1)


def test_an_ensemble_with_a_track_averaged_speed_holds_that_many_frames_live():
    rng = np.random.default_rng(5)
    walkers = [make_tracked_video(f"v{index}", rng) for index in range(3)]
    ensemble = AttributeEnsemble([("speed", {"track_radius": 4}), ("place", {})]).fit(walkers)
    assert ensemble.feature_radius == 4
    restored = AttributeEnsemble.from_state(*ensemble.state())
    assert restored.feature_radius == 4 and restored.labels == ["speed(track 4)", "place"]
    np.testing.assert_array_equal(restored.score(walkers[0]), ensemble.score(walkers[0]))
