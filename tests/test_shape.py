"""How the shape and velocity densities treat boxes the frame's edge cuts, on hand-made and synthetic boxes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from synthetic_attributes import FRAME_ASPECT, hand_made, make_videos, perspective_speed

from anograph.attributes.densities import VelocityDensity
from anograph.attributes.frame_edge import whole_boxes
from anograph.attributes.objects import ObjectAttributes
from anograph.attributes.shape import BuildMixture, ShapeDensity
from anograph.selection.choice import select_attributes


def boxes(centres: list[tuple[float, float]], sizes: list[tuple[float, float]],
          frame_width: float | None = FRAME_ASPECT) -> ObjectAttributes:
    objects = hand_made(list(range(len(centres))), centres, [(0.0, 0.0)] * len(centres))
    return objects.with_changes(sizes=np.asarray(sizes, np.float32), frame_width=frame_width)


def test_cut_by_frame_edge_names_the_axis_each_edge_cuts():
    objects = boxes(
        centres=[(0.6, 0.5), (0.02, 0.5), (FRAME_ASPECT - 0.02, 0.5), (0.6, 0.03), (0.6, 0.96), (0.02, 0.96)],
        sizes=[(0.04, 0.1)] * 6,
    )
    np.testing.assert_array_equal(objects.cut_by_frame_edge(), [[False, False], [True, False], [True, False],
                                                                 [False, True], [False, True], [True, True]])
    # Without the frame's width, the right edge is unknown; the others still are.
    unknown_width = objects.with_changes(frame_width=None).cut_by_frame_edge()
    np.testing.assert_array_equal(unknown_width[:, 0], [False, True, False, False, False, True])


def test_marginal_score_is_the_mixture_of_the_components_marginals():
    videos = make_videos(3, seed=5)
    mixture = BuildMixture(n_components=2).fit(videos)
    objects = videos[0].rows(np.arange(40))
    everything = np.ones((len(objects), 3), bool)
    full = -mixture.mixture_.score_samples(mixture._standardized(mixture.values(objects)))
    np.testing.assert_allclose(mixture.marginal_score(objects, everything), full, rtol=1e-8)

    # Log width alone: each component's 1-D marginal, by scipy, mixed with the mixture's weights.
    only_width = np.zeros((len(objects), 3), bool)
    only_width[:, 0] = True
    values = mixture._standardized(mixture.values(objects))[:, :1]
    per_component = [np.log(weight) + multivariate_normal(mean[:1], covariance[:1, :1]).logpdf(values)
                     for weight, mean, covariance in zip(mixture.mixture_.weights_, mixture.mixture_.means_,
                                                         mixture.mixture_.covariances_, strict=True)]
    expected = -logsumexp(np.stack(per_component), axis=0)
    np.testing.assert_allclose(mixture.marginal_score(objects, only_width), expected, rtol=1e-8)
    assert np.isnan(mixture.marginal_score(objects, np.zeros((len(objects), 3), bool))).all()


def test_a_walker_cut_by_the_bottom_edge_is_ordinary_and_the_same_box_inside_the_frame_is_not():
    training = [video.with_changes(frame_width=FRAME_ASPECT) for video in make_videos(4, seed=3)]
    density = ShapeDensity().fit(training)
    normal = np.concatenate([density.score(video) for video in training])
    # A walker of the usual width, its box cut to a short strip by the bottom edge of the frame.
    width, cut_height = 0.4 * 0.125, 0.06
    at_the_edge = boxes([(0.6, 1.0 - cut_height / 2)], [(width, cut_height)])
    inside = boxes([(0.6, 0.6)], [(width, cut_height)])
    assert density.score(at_the_edge)[0] < np.quantile(normal, 0.9)
    assert density.score(inside)[0] > np.quantile(normal, 0.999)
    # A box twice the usual width is rare whether or not the edge cuts its height.
    wide_at_the_edge = boxes([(0.6, 1.0 - cut_height / 2)], [(3 * width, cut_height)])
    assert density.score(wide_at_the_edge)[0] > np.quantile(normal, 0.999)


def test_cut_boxes_do_not_shape_the_fit():
    training = [video.with_changes(frame_width=FRAME_ASPECT) for video in make_videos(4, seed=3)]
    whole = [whole_boxes(video) for video in training]
    # Many short boxes at the bottom edge join the training set: the fitted build stays the same.
    clipped = boxes([(0.6, 0.97)] * 300, [(0.07, 0.06)] * 300)
    with_clipped = ShapeDensity().fit([*training, clipped])
    without = ShapeDensity().fit(whole)
    np.testing.assert_allclose(with_clipped.mixtures_[0].mixture_.means_, without.mixtures_[0].mixture_.means_)
    restored = ShapeDensity().load_state(with_clipped.state())
    probe = training[0]
    np.testing.assert_allclose(restored.score(probe), with_clipped.score(probe))


def test_a_model_saved_before_cut_boxes_were_told_apart_scores_every_box_as_whole():
    training = [video.with_changes(frame_width=FRAME_ASPECT) for video in make_videos(3, seed=4)]
    density = ShapeDensity().fit(training)
    old_state = {key: value for key, value in density.state().items() if "quantiles" not in key}
    old = ShapeDensity().load_state(old_state)
    cut = boxes([(0.6, 0.97)], [(0.05, 0.06)])
    mixture = old.mixtures_[0]
    expected = -mixture.mixture_.score_samples(mixture._standardized(mixture.values(cut)))
    np.testing.assert_allclose(old.score(cut), expected)
    assert not np.isclose(density.score(cut), expected).any()


def test_footage_whose_boxes_are_all_cut_still_fits_and_scores_finite():
    # A close-up camera: every box touches the bottom edge. There is no whole box to fit on, so all are used.
    rng = np.random.default_rng(0)
    n = 200
    heights = rng.uniform(0.3, 0.5, n)
    objects = boxes([(x, 1.0 - h / 2) for x, h in zip(rng.uniform(0.3, 1.0, n), heights, strict=True)],
                    [(0.4 * h, h) for h in heights])
    assert objects.cut_by_frame_edge()[:, 1].all()
    density = ShapeDensity().fit([objects])
    scores = density.score(objects)
    assert np.isfinite(scores).all() and np.isfinite(density.floor_)


# --- velocity, where the frame's edge cuts the box ----------------------------------------------


def cut_at_the_bottom(objects: ObjectAttributes, visible_height: float = 0.06) -> ObjectAttributes:
    """The same objects (same flow), each box cut by the frame's bottom edge to ``visible_height``."""
    sizes = objects.sizes.copy()
    sizes[:, 1] = visible_height
    centres = objects.centres.copy()
    centres[:, 1] = 1.0 - visible_height / 2
    return objects.with_changes(sizes=sizes, centres=centres)


@pytest.fixture(scope="module")
def perspective_scene():
    return [video.with_changes(frame_width=FRAME_ASPECT)
            for video in make_videos(4, seed=3, speed=perspective_speed, speed_spread=0.05)]


def test_a_cut_walker_keeps_its_pace_per_height(perspective_scene):
    density = VelocityDensity(per_height=True).fit(perspective_scene)
    assert density.height_per_width_ == pytest.approx(2.5, rel=1e-3)  # the scene's walkers are 0.4 as wide as tall
    near = perspective_scene[0].rows(perspective_scene[0].centres[:, 1] > 0.8)
    normal = np.concatenate([density.score(video) for video in perspective_scene])
    cut = cut_at_the_bottom(near)
    assert np.median(density.score(cut)) < np.quantile(normal, 0.9)
    # Measured in the cut box's own height, the same walkers would look three times as fast.
    unraised = VelocityDensity(per_height=True).load_state(
        {key: value for key, value in density.state().items() if key != "height_per_width"})
    assert unraised.height_per_width_ is None
    assert np.median(unraised.score(cut)) > np.quantile(normal, 0.999)
    restored = VelocityDensity(per_height=True).load_state(density.state())
    np.testing.assert_allclose(restored.score(cut), density.score(cut))


def test_position_aware_velocity_leaves_out_the_place_of_a_cut_box(perspective_scene):
    density = VelocityDensity(position_aware=True).fit(perspective_scene)
    normal = np.concatenate([density.score(video) for video in perspective_scene])
    near = perspective_scene[0].rows(perspective_scene[0].centres[:, 1] > 0.8)
    cut = cut_at_the_bottom(near)
    assert np.median(density.score(cut)) < np.quantile(normal, 0.9)
    # Doubled speed stays rare at the edge: the speeds are still read.
    fast = cut.with_changes(flow=cut.flow * 2.0)
    assert np.median(density.score(fast)) > np.quantile(normal, 0.99)
    # Without position, velocity reads no value a cut hides: every box is scored as it is.
    plain = VelocityDensity().fit(perspective_scene)
    mixture_scores = -plain.mixture_.score_samples(plain._standardized(plain.values(cut)))
    np.testing.assert_allclose(plain.score(cut), mixture_scores)


def with_wide_second_class(video: ObjectAttributes) -> ObjectAttributes:
    """Class 1's boxes made wide and short (a detector outlining walkers' feet as "skis"); class 0 stays upright."""
    sizes = video.sizes.copy()
    second = video.class_scores.argmax(axis=1) == 1
    sizes[second] = sizes[second][:, ::-1]
    return video.with_changes(sizes=sizes)


@pytest.fixture(scope="module")
def feet_boxes_scene():
    return [with_wide_second_class(video) for video in make_videos(4, seed=3, class_shares=(0.8, 0.2))]


def test_shape_per_class_judges_a_box_against_its_detected_class(feet_boxes_scene):
    pooled = ShapeDensity().fit(feet_boxes_scene)
    per_class = ShapeDensity(per_class=True).fit(feet_boxes_scene)
    assert per_class.label == "shape per class" and list(per_class.classes_) == [0, 1]
    wide = boxes([(0.6, 0.5)] * 2, [(0.125, 0.05)] * 2)  # a class-1 box of that place, exactly
    wide = wide.with_changes(class_scores=np.float32([[0.9, 0.0], [0.0, 0.9]]))
    # Among all boxes a wide one is ordinary (class 1 has many); among class 0's it is rare.
    high = np.percentile(per_class.score(feet_boxes_scene[0]), 99.9)
    assert per_class.score(wide)[0] > high and per_class.score(wide)[1] < high
    assert pooled.score(wide)[0] < np.percentile(pooled.score(feet_boxes_scene[0]), 99.9)
    # Its fitted state round-trips, and a state saved before per-class shapes reads as per source.
    restored = ShapeDensity(per_class=True).load_state(per_class.state())
    np.testing.assert_allclose(restored.score(wide), per_class.score(wide))
    old_state = {key: value for key, value in pooled.state().items() if key != "classes"}
    np.testing.assert_allclose(ShapeDensity().load_state(old_state).score(wide), pooled.score(wide))


def test_selection_judges_shapes_per_class_where_classes_differ_in_build(feet_boxes_scene):
    selection = select_attributes(feet_boxes_scene)
    step = {candidate.labels[0]: candidate.aucs["shape"] for candidate in selection.candidates
            if candidate.step == "shape variant"}
    # A person's box swapped to wide and short looks like a class-1 box: only per class is it rare.
    assert step["shape per class"] > step["shape"] + 0.1
    assert "shape per class" in selection.chosen.labels
