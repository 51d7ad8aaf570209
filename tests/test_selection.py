"""Pseudo-anomalies, their held-out validation, and label-free selection on scenes whose best setting is known."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from synthetic_attributes import (
    FRAME_ASPECT,
    any_heading,
    make_tracked_video,
    make_video,
    make_videos,
    perspective_speed,
    rightward_heading,
    uniform_speed,
)

from anograph.attributes.densities import make_density
from anograph.attributes.ensemble import HeldOutFits, held_out_parts
from anograph.attributes.objects import MOVING_DX, MOVING_DY, MOVING_FRACTION, ORIENTATION_START
from anograph.selection.choice import (
    AUC_TIE_TOLERANCE,
    SPEED_VARIANTS,
    VELOCITY_VARIANTS,
    averaging_radii,
    select_attributes,
)
from anograph.selection.pseudo_anomalies import (
    FOLLOW_GAP,
    GENERATORS,
    PseudoAnomalyContext,
    applicable_kinds,
    cross,
    eligible_rows,
    follow,
    move_place,
    reverse,
    speed_up,
    swap_class,
    swap_shape,
)
from anograph.selection.validation import ValidationScores

FIELDS = [field.name for field in dataclasses.fields(make_video("v", np.random.default_rng(0), n_frames=2))]


@pytest.fixture(scope="module")
def video():
    return make_video("v", np.random.default_rng(5), class_shares=(0.9, 0.05, 0.03, 0.02))


def context_of(*videos) -> PseudoAnomalyContext:
    return PseudoAnomalyContext(class_mass=np.concatenate([v.class_scores for v in videos]).sum(axis=0))


# --- generators ------------------------------------------------------------------------------


def test_speed_up_doubles_every_speed_column_but_the_moving_fraction(video):
    altered = speed_up(video, np.random.default_rng(0), context_of(video))
    speeds = [column for column in range(video.flow.shape[1]) if column != MOVING_FRACTION]
    np.testing.assert_array_equal(altered.flow[:, speeds], 2 * video.flow[:, speeds])
    np.testing.assert_array_equal(altered.flow[:, MOVING_FRACTION], video.flow[:, MOVING_FRACTION])
    assert video.flow[:, speeds].any()


def test_reverse_negates_the_flow_vector_and_turns_the_histogram_half_round(video):
    altered = reverse(video, np.random.default_rng(0), context_of(video))
    np.testing.assert_array_equal(altered.velocity, -video.velocity)
    bins, turned = video.flow[:, ORIENTATION_START:], altered.flow[:, ORIENTATION_START:]
    half = bins.shape[1] // 2
    np.testing.assert_array_equal(turned, np.roll(bins, half, axis=1))
    np.testing.assert_allclose(turned.sum(axis=1), bins.sum(axis=1), rtol=1e-6)
    # Bin k (direction k*45 degrees) moves to the opposite direction, matching the negated vector.
    main = bins.argmax(axis=1)
    angle = np.arctan2(altered.flow[:, MOVING_DY], altered.flow[:, MOVING_DX])
    expected = np.rint(angle / (2 * np.pi / bins.shape[1])).astype(int) % bins.shape[1]
    np.testing.assert_array_equal(turned.argmax(axis=1), expected)
    assert (turned.argmax(axis=1) == (main + half) % bins.shape[1]).all()
    untouched = [c for c in range(ORIENTATION_START) if c not in (MOVING_DX, MOVING_DY)]
    np.testing.assert_array_equal(altered.flow[:, untouched], video.flow[:, untouched])


def test_swap_class_moves_the_confidence_to_a_rare_class_only(video):
    context = context_of(video)
    altered = swap_class(video, np.random.default_rng(0), context)
    rarer_half = set(np.argsort(context.class_mass)[:2].tolist())
    assert rarer_half == {2, 3}  # class shares 0.9, 0.05, 0.03, 0.02
    assert set(context.rare_classes.tolist()) == rarer_half
    scores = altered.class_scores
    assert ((scores > 0).sum(axis=1) == 1).all()
    assert set(scores.argmax(axis=1).tolist()) == rarer_half  # both rare classes drawn, nothing else
    np.testing.assert_array_equal(scores.max(axis=1), video.class_scores.max(axis=1))


def test_swap_class_gives_unclassed_objects_full_confidence(video):
    blobs = video.with_changes(class_scores=np.zeros_like(video.class_scores))
    altered = swap_class(blobs, np.random.default_rng(0), context_of(video))
    np.testing.assert_array_equal(altered.class_scores.max(axis=1), 1.0)


def test_follow_puts_each_object_behind_a_neighbour_with_its_flow(video):
    altered = follow(video, np.random.default_rng(0), context_of(video))
    shared = eligible_rows(video, "follow")
    assert shared.any() and not shared.all()
    for row in np.nonzero(shared)[0]:
        others = np.nonzero((video.frames == video.frames[row]) & (np.arange(len(video)) != row))[0]
        leaders = [
            other for other in others
            if np.array_equal(altered.flow[row], video.flow[other])
            and np.allclose(altered.centres[row], video.centres[other]
                            - FOLLOW_GAP * video.sizes[other, 1] * video.velocity[other] / np.linalg.norm(video.velocity[other]),
                            atol=1e-6)
        ]
        assert leaders, f"object {row} is not {FOLLOW_GAP} heights behind a neighbour"
    np.testing.assert_array_equal(altered.centres[~shared], video.centres[~shared])
    np.testing.assert_array_equal(altered.flow[~shared], video.flow[~shared])


@pytest.mark.parametrize("kind", list(GENERATORS))
def test_generators_change_only_the_fields_they_declare(video, kind):
    generate, changes = GENERATORS[kind]
    altered = generate(video, np.random.default_rng(0), context_of(video))
    for name in FIELDS:
        if name in changes:
            assert not np.array_equal(getattr(altered, name), getattr(video, name)), name
        else:
            assert getattr(altered, name) is getattr(video, name), name


def test_applicable_kinds_follow_the_detector_and_the_crowding():
    rng = np.random.default_rng(0)
    crowded = make_video("a", rng, objects_per_frame=(1, 3))
    assert applicable_kinds([crowded]) == ["speed", "reverse", "cross", "shape", "place", "class", "follow"]
    one_class = crowded.with_changes(class_scores=crowded.class_scores[:, :1])
    assert "class" not in applicable_kinds([one_class, crowded])
    alone = make_video("b", rng, objects_per_frame=(1, 1))
    assert "follow" not in applicable_kinds([alone])
    assert applicable_kinds([alone.with_changes(class_scores=alone.class_scores[:, :1])]) == ["speed", "reverse", "cross", "shape", "place"]


def test_move_place_moves_each_track_whole_to_a_place_inside_the_frame():
    video = make_tracked_video("t", np.random.default_rng(3)).with_changes(frame_width=FRAME_ASPECT)
    moved = move_place(video, np.random.default_rng(0), context_of(video))
    frame = np.array([FRAME_ASPECT, 1.0])
    shifts = moved.centres - video.centres
    for track in np.unique(video.tracks):
        rows = np.flatnonzero(video.tracks == track)
        inside = np.all((moved.centres[rows] > 0) & (moved.centres[rows] < frame), axis=1)
        # One offset per track (a point clipped at the frame's edge aside), its first box inside the frame.
        assert np.allclose(shifts[rows][inside], shifts[rows[0]], atol=1e-6)
        half = video.sizes[rows[0]] / 2
        assert np.all(moved.centres[rows[0]] >= half - 1e-6) and np.all(moved.centres[rows[0]] <= frame - half + 1e-6)
    assert np.abs(shifts).max(axis=0).min() > 0.1  # across and up or down
    assert moved.sizes is video.sizes and moved.flow is video.flow
    assert np.all((moved.centres >= 0) & (moved.centres <= frame))


# --- validation ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def validation():
    videos = make_videos(4, seed=1)
    folds = held_out_parts(videos)
    scores = ValidationScores(folds, ["speed", "class", "follow"], seed=0)
    for key, name in enumerate(["velocity", "class", "interaction"]):
        scores.add(key, HeldOutFits(lambda name=name: make_density(name, {}), folds))
    return scores


def test_validation_auc_is_chance_for_a_kind_the_attribute_cannot_see(validation):
    assert validation.auc([0], "class") == pytest.approx(0.5)
    assert validation.auc([1], "speed") == pytest.approx(0.5)


def test_validation_auc_is_high_for_an_obvious_kind(validation):
    assert validation.auc([0], "speed") > 0.95
    assert validation.auc([1], "class") > 0.9
    assert validation.auc([0, 1], "class") > validation.auc([0], "class") + 0.3


def test_validation_combines_attributes_by_the_rule_it_is_given(validation):
    # By hand: each object takes its largest calibrated score, the altered objects their largest
    # altered one, and each frame its worst object.
    clean_frames, altered_frames = [], []
    for fold_index, fold in enumerate(validation.folds):
        for video_index, video in enumerate(fold):
            chosen = validation.chosen["class"][fold_index][video_index]
            if not len(chosen):
                continue
            clean = np.maximum(validation._clean[1][fold_index][video_index], validation._clean[2][fold_index][video_index])
            altered = clean.copy()
            altered[chosen] = np.maximum(validation._bad[(1, "class")][fold_index][video_index][chosen],
                                         validation._bad[(2, "class")][fold_index][video_index][chosen])
            for frame in np.unique(video.frames[chosen]):  # each frame its worst object, written out
                clean_frames.append([clean[video.frames == frame].max()])
                altered_frames.append([altered[video.frames == frame].max()])
    clean_values, altered_values = np.concatenate(clean_frames), np.concatenate(altered_frames)
    expected = roc_auc_score(np.r_[np.zeros(len(clean_values)), np.ones(len(altered_values))],
                             np.r_[clean_values, altered_values])
    # class + interaction on `class`: the interaction density's noise separates the two rules.
    assert validation.auc([1, 2], "class", combination="max") == pytest.approx(expected, abs=1e-12)
    assert abs(validation.auc([1, 2], "class", combination="sum") - expected) > 1e-3


def test_scores_made_elsewhere_validate_like_a_density():
    """``add_scores`` (how bench/gcn_validation.py registers the GCN): a scorer that raises exactly the
    altered objects is perfect on every kind, one that ignores them is at chance."""
    videos = make_videos(4, seed=1)
    scores = ValidationScores(held_out_parts(videos), ["speed", "class"], seed=0)
    clean = [[np.zeros(len(video)) for video in fold] for fold in scores.folds]
    marked = {kind: [[np.isin(np.arange(len(video)), chosen).astype(float) for video, chosen in zip(fold, picks, strict=True)]
                     for fold, picks in zip(scores.folds, scores.chosen[kind], strict=True)] for kind in scores.kinds}
    scores.add_scores(0, clean, marked)
    scores.add_scores(1, clean, dict.fromkeys(scores.kinds, clean))
    for kind in scores.kinds:
        assert scores.auc([0], kind) == pytest.approx(1.0)
        assert scores.auc([1], kind) == pytest.approx(0.5)


def test_validation_alters_whole_tracks_and_leaves_the_other_objects(validation):
    for kind in validation.kinds:
        _, changes = GENERATORS[kind]
        for fold, altered_fold, chosen_fold in zip(validation.folds, validation.altered[kind], validation.chosen[kind],
                                                   strict=True):
            for clean, altered, chosen in zip(fold, altered_fold, chosen_fold, strict=True):
                tracked = clean.tracks[chosen][clean.tracks[chosen] >= 0]
                eligible = eligible_rows(clean, kind)
                # every eligible row of a chosen track is chosen: whole tracks are altered
                assert set(np.nonzero(np.isin(clean.tracks, tracked) & eligible)[0]) <= set(chosen)
                others = np.setdiff1d(np.arange(len(clean)), chosen)
                for name in changes:
                    np.testing.assert_array_equal(getattr(altered, name)[others], getattr(clean, name)[others])


def test_a_follower_is_visible_to_the_interaction_density(validation):
    # Normal objects stand apart; a follower 0.8 heights behind its neighbour is rare in relation.
    assert validation.auc([2], "follow") > 0.85


# --- selection -------------------------------------------------------------------------------


def chosen_velocity(selection) -> dict:
    step1 = [candidate for candidate in selection.candidates if candidate.step == "velocity variant"]
    assert len(step1) == len(VELOCITY_VARIANTS)
    velocity = [config for name, config in selection.chosen.attributes if name == "velocity"]
    best = max(step1, key=lambda candidate: candidate.mean_auc)
    return {"step1_best": best.attributes[0][1], "chosen": velocity[0] if velocity else None}


def chosen_motion(selection) -> dict | None:
    """The config of the chosen attribute that reads speeds (the velocity mixture or one-sided speed), if any."""
    motion = [config for name, config in selection.chosen.attributes if name in ("velocity", "speed")]
    assert len(motion) <= 1 or selection.chosen.combination in ("sum", "max")
    return motion[0] if motion else None


@pytest.mark.parametrize("seed", [0, 1])
def test_perspective_scene_chooses_a_velocity_that_corrects_for_perspective(seed):
    # Image speed is proportional to box height here: speed per height is exactly the walking pace.
    selection = select_attributes(make_videos(4, seed=seed, speed=perspective_speed, heading=any_heading), seed=seed)
    step1 = {candidate.labels[0]: candidate.aucs["speed"] for candidate in selection.candidates[:len(VELOCITY_VARIANTS)]}
    assert step1["velocity(speed+position)"] > step1["velocity(speed)"] + 0.05
    assert step1["velocity(speed per height)"] > step1["velocity(speed)"] + 0.05
    speed_step = {candidate.labels[0]: candidate.aucs["speed"] for candidate in selection.candidates
                  if candidate.step == "speed variant"}
    assert len(speed_step) == len(SPEED_VARIANTS)
    assert speed_step["speed per height"] > speed_step["speed"] + 0.05
    motion = chosen_motion(selection)
    assert motion is not None and (motion.get("per_height") or motion.get("position_aware"))


@pytest.mark.parametrize("seed", [0, 2])
def test_uniform_scene_takes_no_perspective_correction(seed):
    # Speed means the same everywhere: position adds nothing (the flow vector may, since it holds the speed too).
    selection = select_attributes(make_videos(4, seed=seed, speed=uniform_speed, heading=any_heading), seed=seed)
    motion = chosen_motion(selection)
    assert motion is not None
    assert not motion.get("position_aware") and not motion.get("per_height")


def test_one_way_lane_chooses_the_direction_variant():
    selection = select_attributes(make_videos(4, seed=0, heading=rightward_heading))
    reverse_auc = {candidate.labels[0]: candidate.aucs["reverse"] for candidate in selection.candidates[:len(VELOCITY_VARIANTS)]}
    assert reverse_auc["velocity(speed+direction)"] > 0.95 and reverse_auc["velocity(speed)"] == pytest.approx(0.5)
    velocity = chosen_velocity(selection)["chosen"]
    assert velocity is not None and velocity.get("direction") and not velocity.get("position_aware")


def swaying(video):
    """Every box's moving pixels swing left and right in equal parts: the mean flow vector is about zero."""
    flow = video.flow.copy()
    magnitude = flow[:, 5]
    flow[:, 3:5] = 0.02 * magnitude[:, None] * np.random.default_rng(len(video)).normal(size=(len(video), 2))
    flow[:, 7:] = 0.0
    flow[:, 7], flow[:, 7 + 4] = 0.5 * magnitude, 0.5 * magnitude
    return video.with_changes(flow=flow)


def test_motion_in_two_directions_at_once_chooses_the_histogram_velocity():
    selection = select_attributes([swaying(video) for video in make_videos(4, seed=0, heading=any_heading)])
    cross_auc = {candidate.labels[0]: candidate.aucs["cross"] for candidate in selection.candidates[:len(VELOCITY_VARIANTS)]}
    # Turned a quarter turn, the swing is up and down: the histogram sees it, the mean vector does not.
    assert cross_auc["velocity(speed+histogram)"] > 0.95 > 0.6 > cross_auc["velocity(speed+direction)"]
    velocity = chosen_velocity(selection)["chosen"]
    assert velocity is not None and velocity.get("histogram")


def test_dominant_class_detector_keeps_class_rarity():
    selection = select_attributes(make_videos(4, seed=0, class_shares=(0.99, 0.005, 0.005)))
    assert "class" in selection.kinds
    assert "class" in [name for name, _ in selection.chosen.attributes]
    assert selection.chosen.aucs["class"] > 0.9


def test_objects_on_one_side_of_the_frame_choose_the_place_attribute():
    # Objects only ever stand in the left half (a walkway beside a lawn), all of one size: only its place shows a
    # walker moved onto the lawn.
    walkway = select_attributes(make_videos(4, seed=0, x_range=(0.1, 0.6), perspective=False), seed=0)
    single = {candidate.labels[0]: candidate.aucs["place"] for candidate in walkway.candidates
              if candidate.step == "attributes" and len(candidate.labels) == 1}
    assert single["place"] > 0.75 and single["shape"] < 0.65
    assert "place" in walkway.chosen.labels
    # Objects stand everywhere, edge to edge: a place says nothing, and the product does not pay for it.
    everywhere = select_attributes(make_videos(4, seed=0, x_range=(0.03, FRAME_ASPECT - 0.03)), seed=0)
    assert "place" not in everywhere.chosen.labels


def test_one_class_detector_is_not_offered_class_rarity():
    selection = select_attributes(make_videos(4, seed=0, class_shares=(1.0,)))
    assert "class" not in selection.kinds
    assert all("class" not in candidate.labels for candidate in selection.candidates)
    assert any(note.startswith("class:") for note in selection.notes)
    assert selection.to_json()["notes"] == selection.notes


def test_the_chosen_ensemble_is_fitted_and_scores_normal_low_and_fast_high():
    videos = make_videos(5, seed=2, heading=rightward_heading)
    selection = select_attributes(videos[:4])
    ensemble = selection.ensemble
    assert ensemble.labels == selection.chosen.labels
    normal = videos[4]
    for label, scores in ensemble.score_subsets(normal, {label: [label] for label in ensemble.labels}).items():
        assert np.mean((scores >= -0.05) & (scores <= 1.2)) > 0.95, label
    fast = normal.with_changes(flow=normal.flow * 2)
    assert ensemble.score(fast).mean() > ensemble.score(normal).mean() + 0.5
    assert len(selection.to_json()["candidates"]) == len(selection.candidates)


def test_cross_turns_the_heading_a_quarter_and_shape_swaps_the_build(video):
    rng, context = np.random.default_rng(0), context_of(video)
    turned = cross(video, rng, context)
    np.testing.assert_allclose(turned.flow[:, MOVING_DX], -video.flow[:, MOVING_DY])
    np.testing.assert_allclose(turned.flow[:, MOVING_DY], video.flow[:, MOVING_DX])
    np.testing.assert_allclose(turned.flow[:, 7:].sum(axis=1), video.flow[:, 7:].sum(axis=1))
    assert turned.sizes is video.sizes and turned.class_scores is video.class_scores
    built = swap_shape(video, rng, context)
    np.testing.assert_array_equal(built.sizes, video.sizes[:, ::-1])
    assert built.flow is video.flow


def test_selection_validates_both_combination_rules_and_fits_the_chosen_one():
    selection = select_attributes(make_videos(4, seed=0, class_shares=(0.99, 0.005, 0.005)))
    combined = [candidate for candidate in selection.candidates if candidate.step == "attributes"]
    by_rule = {rule: [c for c in combined if c.combination == rule] for rule in ("sum", "max")}
    # One attribute alone is the same under either rule, so only the sum lists it. The pool: velocity,
    # speed, shape, class, appearance, interaction.
    assert {len(c.labels) for c in by_rule["max"]} == {2, 3, 4, 5, 6, 7}
    assert len(by_rule["max"]) == len([c for c in by_rule["sum"] if len(c.labels) > 1])
    assert selection.ensemble.combination == selection.chosen.combination
    best_sum = max(c.mean_auc for c in by_rule["sum"])
    best_max = max(c.mean_auc for c in by_rule["max"])
    # The max must beat the sum by more than the tolerance to be chosen; ties go to the sum.
    expected = "max" if best_max > best_sum + AUC_TIE_TOLERANCE else "sum"
    assert selection.chosen.combination == expected
    record = selection.to_json()
    assert record["chosen"]["combination"] == expected
    assert {candidate["combination"] for candidate in record["candidates"]} == {"sum", "max"}


def test_the_report_names_the_rule_and_marks_the_chosen_candidate():
    from anograph.evaluation.report.selection_markdown import selection_markdown

    selection = select_attributes(make_videos(4, seed=0, class_shares=(0.99, 0.005, 0.005))).to_json()
    chosen = {**selection["chosen"], "combination": "max", "track_radius": 3}
    assert len(chosen["attributes"]) > 1  # so that a max candidate of the same attributes is listed
    record = {**selection, "chosen": chosen}
    text = "\n".join(selection_markdown(record))
    labels = ", ".join(chosen["attributes"])
    assert f"Chosen: **max({labels})**, averaged along tracks over 3 frames each side." in text
    marked = [line for line in text.splitlines() if line.startswith("| attributes | **")]
    assert marked == [line for line in text.splitlines() if f"| **max({labels})** |" in line]
    assert len(marked) == 1
    # The same attributes summed are listed, unmarked, as `a + b`.
    assert f"| attributes | {' + '.join(chosen['attributes'])} |" in text


def test_averaging_radii_are_half_of_each_offered_radius_and_the_radius():
    assert averaging_radii([0, 10]) == [5, 10]
    assert averaging_radii([0]) == []
    assert averaging_radii([1]) == [1]


def test_noisy_flow_along_steady_tracks_chooses_the_track_averaged_velocity():
    # Each walker keeps its pace; the flow of one frame is off by a factor of about 1.8 either way.
    rng = np.random.default_rng(3)
    selection = select_attributes([make_tracked_video(f"v{index}", rng) for index in range(4)], track_radii=[0, 6])
    averaged = {candidate.labels[0]: candidate for candidate in selection.candidates
                if candidate.step == "velocity averaged along tracks"}
    assert len(averaged) == len(averaging_radii([0, 6]))
    velocity = chosen_velocity(selection)
    assert velocity["chosen"] is not None and velocity["chosen"].get("track_radius") in (3, 6)
    raw = next(candidate for candidate in selection.candidates if candidate.step == "velocity variant"
               and candidate.attributes[0][1] == {key: value for key, value in velocity["chosen"].items()
                                                  if key != "track_radius"})
    best = max(averaged.values(), key=lambda candidate: candidate.mean_auc)
    assert best.aucs["speed"] > raw.aucs["speed"] + 0.05


def test_noisy_flow_along_steady_tracks_offers_the_speed_averaged_along_tracks_too():
    rng = np.random.default_rng(3)
    selection = select_attributes([make_tracked_video(f"v{index}", rng) for index in range(4)], track_radii=[0, 6])
    plain = [candidate for candidate in selection.candidates if candidate.step == "speed variant"]
    averaged = [candidate for candidate in selection.candidates if candidate.step == "speed averaged along tracks"]
    assert [candidate.attributes[0][1]["track_radius"] for candidate in averaged] == averaging_radii([0, 6])
    # A twice-as-fast walker's speed, averaged over its track, no longer overlaps the normal pace's noise.
    assert max(c.aucs["speed"] for c in averaged) > max(c.aucs["speed"] for c in plain) + 0.05
    speed = [config for name, config in selection.chosen.attributes if name == "speed"]
    assert all(config.get("track_radius") in (3, 6) for config in speed)


def test_untracked_objects_gain_nothing_from_averaging_and_keep_the_plain_velocity():
    selection = select_attributes(make_videos(4, seed=0, heading=rightward_heading), track_radii=[0, 6])
    velocity = chosen_velocity(selection)["chosen"]
    assert velocity is not None and not velocity.get("track_radius")
