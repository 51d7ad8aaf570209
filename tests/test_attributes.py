"""Attribute densities and their calibrated ensemble, on small synthetic object tables."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic_attributes import hand_made, make_tracked_video, make_video, make_videos

from anograph.attributes.densities import (
    ALONE_DISTANCE,
    AppearanceKnn,
    ClassRarity,
    InteractionDensity,
    ShapeDensity,
    VelocityDensity,
    make_density,
    neighbour_relations,
)
from anograph.attributes.ensemble import (
    CALIBRATION_QUANTILE,
    AttributeEnsemble,
    HeldOutFits,
    held_out_parts,
)
from anograph.attributes.objects import FLOW_MEAN, FLOW_P90, MOVING_DX, MOVING_DY, ObjectAttributes
from anograph.attributes.track_smoothing import smooth_along_tracks, smooth_track_scores
from anograph.errors import InputError

ALL_ATTRIBUTES = [
    ("velocity", {"direction": True, "position_aware": True}),
    ("class", {}),
    ("appearance", {"k": 3}),
    ("interaction", {}),
]


@pytest.fixture(scope="module")
def videos():
    return make_videos(5, seed=3)


# --- neighbour relations ---------------------------------------------------------------------


def test_pair_moving_alike_has_cosine_one_and_no_contrast():
    # Two boxes of height 0.1, 0.25 apart (2.5 heights), both moving right at the same speed.
    objects = hand_made([0, 0], [(0.2, 0.5), (0.45, 0.5)], [(0.01, 0.0), (0.01, 0.0)])
    relations = neighbour_relations(objects)
    np.testing.assert_allclose(relations[:, 0], 2.5, rtol=1e-5)
    np.testing.assert_allclose(relations[:, 1], 1.0, rtol=1e-6)
    np.testing.assert_allclose(relations[:, 2], 0.0, atol=1e-6)


def test_pair_moving_apart_has_cosine_minus_one_and_full_contrast():
    objects = hand_made([0, 0], [(0.2, 0.5), (0.2, 0.6)], [(0.0, 0.02), (0.0, -0.01)])
    relations = neighbour_relations(objects)
    np.testing.assert_allclose(relations[:, 0], 1.0, rtol=1e-5)
    np.testing.assert_allclose(relations[:, 1], -1.0, rtol=1e-6)
    np.testing.assert_allclose(relations[:, 2], 1.0, rtol=1e-6)


def test_lone_and_distant_objects_are_alone_and_neighbours_are_per_frame():
    # Frame 0: one object alone; frame 1: a pair far apart (capped); frame 2: three, the nearest counts.
    objects = hand_made(
        [0, 1, 1, 2, 2, 2],
        [(0.5, 0.5), (0.1, 0.1), (1.2, 0.9), (0.5, 0.5), (0.6, 0.5), (1.2, 0.5)],
        [(0.01, 0.0), (0.01, 0.0), (0.01, 0.0), (0.01, 0.0), (-0.01, 0.0), (0.01, 0.0)],
    )
    relations = neighbour_relations(objects)
    assert relations[0, 0] == ALONE_DISTANCE and relations[0, 1] == 0 and relations[0, 2] == 0
    assert relations[1, 0] == ALONE_DISTANCE and relations[2, 0] == ALONE_DISTANCE
    # The object at x=0.5 in frame 2 pairs with x=0.6 (opposite motion), not with the one in frame 1.
    np.testing.assert_allclose(relations[3], [1.0, -1.0, 1.0], rtol=1e-5)
    assert ALONE_DISTANCE < 6.0 and relations[5, 0] == ALONE_DISTANCE  # 6 heights from its nearest


def test_a_still_neighbour_gives_cosine_zero_and_full_contrast():
    objects = hand_made([0, 0], [(0.2, 0.5), (0.3, 0.5)], [(0.01, 0.0), (0.0, 0.0)])
    relations = neighbour_relations(objects)
    np.testing.assert_allclose(relations[:, 1], 0.0, atol=1e-9)
    np.testing.assert_allclose(relations[:, 2], 1.0, rtol=1e-6)


# --- held-out folds --------------------------------------------------------------------------


def test_folds_hold_whole_videos_round_robin(videos):
    folds = held_out_parts(videos, max_folds=3)
    assert [[video.video for video in fold] for fold in folds] == [
        ["video_0", "video_3"], ["video_1", "video_4"], ["video_2"],
    ]


def test_a_single_training_video_is_split_in_halves_by_frame(videos):
    video = videos[0]
    folds = held_out_parts([video])
    assert len(folds) == 2 and all(len(fold) == 1 for fold in folds)
    first, second = folds[0][0], folds[1][0]
    middle = video.n_frames // 2
    assert first.frames.max() < middle <= second.frames.min()
    assert len(first) + len(second) == len(video)
    assert HeldOutFits(lambda: ClassRarity(), folds).held_out


def test_a_video_with_objects_in_one_half_only_cannot_be_held_out(videos):
    video = videos[0]
    early = video.rows(video.frames < 10)
    folds = held_out_parts([early])
    assert len(folds) == 1
    assert not HeldOutFits(lambda: ClassRarity(), folds).held_out


def test_no_objects_is_an_input_error(videos):
    with pytest.raises(InputError):
        held_out_parts([videos[0].rows(np.zeros(len(videos[0]), bool))])


def test_held_out_knn_scores_are_not_in_sample(videos):
    folds = held_out_parts(videos)
    fits = HeldOutFits(lambda: AppearanceKnn(k=1), folds)
    held_out = np.concatenate([scores for fold in fits.scores for scores in fold])
    in_sample = AppearanceKnn(k=1).fit(videos).score(videos[0])
    # Every held-out object is some distance from the other videos' objects; in sample it finds itself.
    assert held_out.min() > 0.05
    assert in_sample.max() < 0.01 < held_out.min()


def test_held_out_fit_sees_a_duplicate_video_in_another_fold(videos):
    twin = videos[0].with_changes()  # same arrays under the same name, in its own fold
    folds = held_out_parts([videos[0], videos[1], twin], max_folds=3)
    fits = HeldOutFits(lambda: AppearanceKnn(k=1), folds)
    assert fits.scores[0][0].max() < 0.01  # its twin was in the fit
    assert fits.scores[1][0].min() > 0.05  # video_1 had no twin


# --- calibration -----------------------------------------------------------------------------


def held_out_by_hand(name: str, config: dict, videos) -> np.ndarray:
    """Each fold scored by a density fitted on the other folds, concatenated."""
    folds = held_out_parts(videos)
    scores = []
    for index, fold in enumerate(folds):
        rest = [video for other, part in enumerate(folds) if other != index for video in part]
        density = make_density(name, config).fit(rest)
        scores += [density.score(video) for video in fold]
    return np.concatenate(scores)


@pytest.mark.parametrize("name,config", ALL_ATTRIBUTES, ids=[name for name, _ in ALL_ATTRIBUTES])
def test_calibrated_held_out_training_scores_span_zero_to_one(videos, name, config):
    ensemble = AttributeEnsemble([(name, config)]).fit(videos)
    part = ensemble.parts_[0]
    raw = held_out_by_hand(name, config, videos)
    assert part.low == pytest.approx(raw.min(), rel=1e-6, abs=1e-9)
    assert part.high == pytest.approx(np.quantile(raw, CALIBRATION_QUANTILE), rel=1e-6, abs=1e-9)
    calibrated = (raw - part.low) / (part.high - part.low)
    assert calibrated.min() == pytest.approx(0.0, abs=1e-6)
    assert np.quantile(calibrated, CALIBRATION_QUANTILE) == pytest.approx(1.0, rel=1e-6)
    # The final density is fitted on every video: in-sample scores are no worse than held-out ones.
    in_sample = np.concatenate([part.score(video) for video in videos])
    assert np.median(in_sample) <= np.median(calibrated) + 1e-9


def single_parts(ensemble: AttributeEnsemble, objects) -> dict[str, np.ndarray]:
    return ensemble.score_subsets(objects, {label: [label] for label in ensemble.labels})


def test_ensemble_score_is_the_sum_of_its_parts(videos):
    ensemble = AttributeEnsemble(ALL_ATTRIBUTES).fit(videos[:4])
    parts = single_parts(ensemble, videos[4])
    assert list(parts) == ensemble.labels
    assert ensemble.labels == ["velocity(speed+direction+position)", "class", "appearance", "interaction"]
    np.testing.assert_allclose(ensemble.score(videos[4]), sum(parts.values()), rtol=1e-12)


def test_the_max_rule_takes_each_objects_oddest_attribute_and_smooths_after_combining(videos):
    fitted = AttributeEnsemble(ALL_ATTRIBUTES, combination="max").fit(videos[:4])
    parts = single_parts(fitted, videos[4])
    combined = np.max(list(parts.values()), axis=0)
    np.testing.assert_allclose(fitted.score(videos[4]), combined, rtol=1e-12)
    assert not np.allclose(combined, sum(parts.values()))
    # Track smoothing averages the combined score: max(mean) is not mean(max), so the order matters.
    frames = videos[4].frames
    first_of_frame = np.searchsorted(frames, frames, side="left")
    tracked = videos[4].with_changes(tracks=np.arange(len(frames)) - first_of_frame)  # k-th object: track k
    fitted.track_radius = 3
    smoothed = smooth_along_tracks(tracked, combined, 3)
    assert not np.allclose(smoothed, combined)
    smoothed_first = np.max([smooth_along_tracks(tracked, part, 3) for part in parts.values()], axis=0)
    assert not np.allclose(smoothed, smoothed_first)
    np.testing.assert_allclose(fitted.score(tracked), smoothed, rtol=1e-12)
    everything = fitted.score_subsets(tracked, {"all": fitted.labels, "without class": [
        label for label in fitted.labels if label != "class"]})
    np.testing.assert_allclose(everything["all"], smoothed, rtol=1e-12)
    assert not np.allclose(everything["without class"], smoothed)


def test_an_unknown_combination_rule_is_an_input_error():
    with pytest.raises(InputError, match="combination"):
        AttributeEnsemble(ALL_ATTRIBUTES, combination="product")


def test_reused_held_out_fits_give_the_same_calibration(videos):
    folds = held_out_parts(videos)
    fits = HeldOutFits(lambda: make_density("interaction", {}), folds)
    reused = AttributeEnsemble([("interaction", {})]).fit(videos, held_out={0: fits})
    fresh = AttributeEnsemble([("interaction", {})]).fit(videos)
    assert (reused.parts_[0].low, reused.parts_[0].high) == (fresh.parts_[0].low, fresh.parts_[0].high)


def test_an_empty_ensemble_is_an_input_error():
    with pytest.raises(InputError):
        AttributeEnsemble([])


# --- densities -------------------------------------------------------------------------------


def test_velocity_density_reads_the_documented_columns(videos):
    plain, full = VelocityDensity(), VelocityDensity(direction=True, position_aware=True)
    video = videos[0]
    np.testing.assert_array_equal(plain.values(video), video.flow[:, [FLOW_MEAN, FLOW_P90]])
    values = full.values(video)
    assert values.shape == (len(video), 7)
    np.testing.assert_array_equal(values[:, 2:4], video.flow[:, [MOVING_DX, MOVING_DY]])
    np.testing.assert_array_equal(values[:, 4:6], video.centres)
    np.testing.assert_array_equal(values[:, 6], video.sizes[:, 1])
    assert full.label == "velocity(speed+direction+position)" and plain.label == "velocity(speed)"


def test_mixture_scores_do_not_depend_on_the_unit_of_the_speeds(videos):
    # Speeds in pixels instead of frame heights (x 240): the same scores, so a variant's units cannot favour it.
    in_pixels = [video.with_changes(flow=video.flow * 240.0) for video in videos]
    density, rescaled = VelocityDensity(direction=True).fit(videos[:4]), VelocityDensity(direction=True).fit(in_pixels[:4])
    np.testing.assert_allclose(rescaled.score(in_pixels[4]), density.score(videos[4]), rtol=1e-6, atol=1e-6)
    restored = VelocityDensity(direction=True).load_state(density.state())
    np.testing.assert_allclose(restored.score(videos[4]), density.score(videos[4]))


def test_velocity_histogram_is_per_box_pixel_and_excludes_the_flow_vector(videos):
    video = videos[0]
    histogram = VelocityDensity(histogram=True)
    values = histogram.values(video)
    np.testing.assert_allclose(values[:, 2:], video.flow[:, 7:] * video.flow[:, 6:7], rtol=1e-6)
    np.testing.assert_array_equal(values[:, :2], video.flow[:, [FLOW_MEAN, FLOW_P90]])
    assert histogram.label == "velocity(speed+histogram)"
    with pytest.raises(InputError, match="not both"):
        VelocityDensity(direction=True, histogram=True)


def test_velocity_per_height_divides_speeds_by_the_box_height(videos):
    video = videos[0]
    per_height = VelocityDensity(direction=True, per_height=True)
    expected = video.flow[:, [FLOW_MEAN, FLOW_P90, MOVING_DX, MOVING_DY]] / np.maximum(video.sizes[:, 1:], 0.01)
    np.testing.assert_allclose(per_height.values(video), expected, rtol=1e-6)
    assert per_height.label == "velocity(speed per height+direction)"
    # Twice as far (half the height) at half the image speed: the same pace.
    far = video.with_changes(sizes=video.sizes / 2, flow=video.flow / 2)
    np.testing.assert_allclose(per_height.values(far), per_height.values(video), rtol=1e-5)
    assert per_height.config()["per_height"] is True


def test_velocity_density_finds_doubled_speed_rare(videos):
    density = VelocityDensity().fit(videos[:4])
    video = videos[4]
    fast = video.with_changes(flow=video.flow * 2)
    assert np.mean(density.score(fast) > np.quantile(density.score(video), 0.99)) > 0.9


def test_class_rarity_costs_nothing_for_the_commonest_class():
    video = make_video("v", np.random.default_rng(0), class_shares=(0.8, 0.15, 0.05))
    rarity = ClassRarity().fit([video]).rarity_
    share = video.class_scores.sum(axis=0) / video.class_scores.sum()
    np.testing.assert_allclose(rarity, np.log(share.max()) - np.log(share), rtol=1e-6)
    assert rarity[0] == 0 and rarity[2] > rarity[1] > 0
    assert ClassRarity().fit([video]).informative
    one_class = video.with_changes(class_scores=video.class_scores[:, :1])
    assert not ClassRarity().fit([one_class]).informative


def test_appearance_density_needs_appearance(videos):
    density = AppearanceKnn().fit(videos)
    with pytest.raises(InputError):
        density.score(videos[0].with_changes(appearance=None))


def test_knn_bank_is_capped(videos):
    density = InteractionDensity(bank_size=50).fit(videos)
    assert density.bank_.shape == (50, 3)


@pytest.mark.parametrize("name,config", ALL_ATTRIBUTES, ids=[name for name, _ in ALL_ATTRIBUTES])
def test_density_state_round_trip_gives_identical_scores(videos, name, config):
    density = make_density(name, config).fit(videos[:4])
    description = json.loads(json.dumps({"name": name, "config": density.config()}))
    arrays = {key: np.array(value) for key, value in density.state().items()}
    restored = make_density(description["name"], description["config"]).load_state(arrays)
    np.testing.assert_array_equal(restored.score(videos[4]), density.score(videos[4]))
    assert restored.label == density.label


def test_ensemble_state_round_trip_gives_identical_scores(videos):
    ensemble = AttributeEnsemble(ALL_ATTRIBUTES, track_radius=2, combination="max").fit(videos[:4])
    description, arrays = ensemble.state()
    description = json.loads(json.dumps(description))
    assert all(isinstance(value, np.ndarray) for value in arrays.values())
    restored = AttributeEnsemble.from_state(description, {key: value.copy() for key, value in arrays.items()})
    assert (restored.labels, restored.combination, restored.track_radius) == (ensemble.labels, "max", 2)
    for label, scores in single_parts(ensemble, videos[4]).items():
        np.testing.assert_array_equal(single_parts(restored, videos[4])[label], scores)
    np.testing.assert_array_equal(restored.score(videos[4]), ensemble.score(videos[4]))


def test_unknown_attribute_is_an_input_error():
    with pytest.raises(InputError):
        make_density("colour")


def test_track_smoothing_averages_each_track_over_the_radius_and_leaves_untracked_objects():
    frames = np.array([0, 0, 1, 1, 2, 2, 3])
    tracks = np.array([0, 1, 0, 1, 0, 1, -1])
    objects = ObjectAttributes(
        video="v", frames=frames, n_frames=4, centres=np.zeros((7, 2)), sizes=np.ones((7, 2)),
        flow=np.zeros((7, 15)), class_scores=np.zeros((7, 1)), appearance=None, tracks=tracks,
    )
    scores = np.array([0.0, 10.0, 3.0, 10.0, 6.0, 40.0, 7.0])
    smoothed = smooth_along_tracks(objects, scores, radius=1)
    np.testing.assert_allclose(smoothed, [1.5, 10.0, 3.0, 20.0, 4.5, 25.0, 7.0])
    np.testing.assert_array_equal(smooth_along_tracks(objects, scores, radius=0), scores)


def test_track_smoothing_of_rows_averages_each_column_as_its_own_score():
    rng = np.random.default_rng(0)
    tracks, frames = np.array([0, 1, 0, 1, 0, -1, 1]), np.array([0, 0, 1, 1, 2, 2, 3])
    rows = rng.normal(size=(7, 3))
    smoothed = smooth_track_scores(tracks, frames, rows, 1)
    for column in range(3):
        np.testing.assert_allclose(smoothed[:, column], smooth_track_scores(tracks, frames, rows[:, column], 1))
    assert not np.allclose(smoothed, rows)


def test_velocity_averaged_along_tracks_reads_the_averaged_flow():
    video = make_tracked_video("walk", np.random.default_rng(1))
    averaged = VelocityDensity(direction=True, track_radius=3).fit([video])
    assert averaged.label == "velocity(speed+direction+track 3)"
    plain = VelocityDensity(direction=True)
    plain.height_per_width_, plain.mixture_, plain.center_, plain.scale_ = (
        averaged.height_per_width_, averaged.mixture_, averaged.center_, averaged.scale_)
    steady = video.with_changes(flow=smooth_along_tracks(video, video.flow, 3))
    np.testing.assert_allclose(averaged.score(video), plain.score(steady))
    assert not np.allclose(averaged.score(video), plain.score(video))
    restored = make_density("velocity", averaged.config()).load_state(averaged.state())
    np.testing.assert_array_equal(restored.score(video), averaged.score(video))
    saved_before = {key: value for key, value in averaged.config().items() if key != "track_radius"}
    assert make_density("velocity", saved_before).track_radius == 0  # a model saved before the option reads as before
    with pytest.raises(InputError, match="track_radius"):
        VelocityDensity(track_radius=-1)


def test_shape_density_finds_a_wide_box_rare_and_scores_an_unseen_source_as_ordinary(videos):
    density = ShapeDensity().fit(videos[:4])
    video = videos[4]
    wide = video.with_changes(sizes=video.sizes[:, ::-1].copy())
    assert np.median(density.score(wide)) > np.quantile(density.score(video), 0.95)
    regions = video.with_changes(sources=np.ones(len(video), np.int8), sizes=video.sizes[:, ::-1].copy())
    np.testing.assert_allclose(density.score(regions), density.floor_)


def test_shape_density_compares_each_source_with_its_own_normal_objects(videos):
    # Moving regions of normal footage are wide here; detector boxes are upright.
    def with_wide_regions(video):
        sources = (np.arange(len(video)) % 3 == 0).astype(np.int8)
        sizes = np.where(sources[:, None] == 1, video.sizes[:, ::-1], video.sizes)
        return video.with_changes(sources=sources, sizes=sizes.copy())

    training = [with_wide_regions(video) for video in videos[:4]]
    density = ShapeDensity().fit(training)
    assert sorted(density.mixtures_) == [0, 1]
    test = with_wide_regions(videos[4])
    regions = test.sources == 1
    normal_scores = density.score(test)
    # A wide region is ordinary among regions; the same box from the detector is rare.
    as_detections = density.score(test.with_changes(sources=np.zeros(len(test), np.int8)))
    assert np.median(as_detections[regions]) > np.quantile(normal_scores[~regions], 0.95)
    restored = ShapeDensity().load_state(density.state())
    np.testing.assert_allclose(restored.score(test), normal_scores)


