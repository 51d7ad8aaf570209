"""The motion field: cell speeds from the flow, their density, the selection's step 4, and scoring with it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from synthetic_attributes import as_video_features, make_tracked_video

from anograph.attributes.motion_field import CalibratedMotionField, MotionFieldDensity, covered_cells, imprint
from anograph.attributes.objects import MOVING_MAGNITUDE, ObjectAttributes, object_attributes
from anograph.extraction.features.cell_motion import CellMotion, grid_boxes, grid_shape
from anograph.extraction.features.flow_stats import FlowStatistics
from anograph.extraction.features.optical_flow import FrameFlow
from anograph.io.extraction_settings import extraction_differences
from anograph.models.attribute_scoring import AttributeScoring
from anograph.selection.choice import select_attributes
from anograph.selection.pseudo_anomalies import MISSED

GRID = (6, 8)  # rows, columns of a 4:3 frame with cells of 1/6 of its height


def test_the_grid_tiles_the_frame_in_cells_of_the_asked_height():
    assert grid_shape(240, 360, 1 / 8) == (8, 12)
    boxes = grid_boxes(240, 360, 1 / 8)
    assert boxes.shape == (96, 4)
    np.testing.assert_allclose(boxes[0], [0, 0, 30, 30])
    np.testing.assert_allclose(boxes[-1], [330, 210, 360, 240])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert areas.sum() == pytest.approx(240 * 360)


def test_a_moving_square_sets_the_speed_of_the_cells_it_covers_only():
    flow = np.zeros((240, 360, 2), np.float32)
    flow[30:90, 60:120] = (3.0, 4.0)  # 5 pixels a frame, exactly two by two cells
    flow += np.random.default_rng(0).normal(0, 0.02, flow.shape).astype(np.float32)  # sub-floor noise
    speeds = CellMotion(cell_fraction=1 / 8).speeds(FrameFlow.of(flow), 240, 360).reshape(8, 12)
    np.testing.assert_allclose(speeds[1:3, 2:4], 5.0 / 240, rtol=0.02)
    speeds[1:3, 2:4] = 0.0
    assert np.all(speeds == 0.0)
    assert np.all(CellMotion().speeds(None, 240, 360) == 0.0)  # a frame without flow


@pytest.mark.parametrize(("height", "width"), [(240, 360), (158, 238), (480, 720), (100, 333)])
def test_cell_speeds_are_the_flow_statistics_of_each_cells_box(height, width):
    """All cells at once give what the per-box statistics give each cell's box, cells of unequal size too."""
    rng = np.random.default_rng(height)
    flow = rng.normal(0, 0.05, (height, width, 2)).astype(np.float32)  # still background: under the floor
    flow[height // 5 : height // 2, width // 4 : width // 3] += (2.0, 1.0)
    frame_flow = FrameFlow.of(flow)
    statistics = FlowStatistics().columns(frame_flow, grid_boxes(height, width, 1 / 8))
    expected = np.where(statistics[:, 6] >= 0.01, statistics[:, 5], 0.0)  # moving share, moving speed
    np.testing.assert_allclose(CellMotion().speeds(frame_flow, height, width), expected, rtol=1e-5, atol=1e-9)
    assert (expected > 0).any() and (expected == 0).any()


def test_a_cell_with_too_few_moving_pixels_reads_still():
    flow = np.zeros((240, 360, 2), np.float32)
    flow[0:2, 0:2] = (5.0, 0.0)  # 4 of a cell's 900 pixels
    assert np.all(CellMotion(min_moving_share=0.01).speeds(FrameFlow.of(flow), 240, 360) == 0.0)
    assert CellMotion(min_moving_share=0.0).speeds(FrameFlow.of(flow), 240, 360)[0] > 0


def cells_of(video: ObjectAttributes, rng: np.random.Generator, noise: float = 0.002) -> ObjectAttributes:
    """The video with the cell speeds its objects would leave: each object's speed in the cells it covers."""
    still = rng.uniform(0, noise, (video.n_frames, GRID[0] * GRID[1])).astype(np.float32)
    with_grid = dataclasses.replace(video, cell_speeds=still, cell_grid=GRID)
    return dataclasses.replace(with_grid, cell_speeds=imprint(still, with_grid))


def test_imprint_writes_an_object_speed_into_the_cells_it_covers_where_faster():
    video = cells_of(make_tracked_video("v", np.random.default_rng(0), n_tracks=1, n_frames=3),
                     np.random.default_rng(1), noise=0.0)
    rows, cells = covered_cells(video)
    assert set(rows) == {0, 1, 2} and len(cells) >= 3  # every object covers at least the cell of its centre
    for row, cell in zip(rows, cells, strict=True):
        assert video.cell_speeds[video.frames[row], cell] == pytest.approx(video.flow[row, MOVING_MAGNITUDE])
    untouched = np.ones_like(video.cell_speeds, bool)
    untouched[video.frames[rows], cells] = False
    assert np.all(video.cell_speeds[untouched] == 0.0)
    slower = dataclasses.replace(video, flow=video.flow * 0.5)
    np.testing.assert_array_equal(imprint(video.cell_speeds, slower), video.cell_speeds)


def test_the_field_scores_a_frame_by_its_fastest_cell_and_saves_as_arrays():
    rng = np.random.default_rng(0)
    videos = [cells_of(make_tracked_video(f"v{index}", rng), rng) for index in range(3)]
    density = MotionFieldDensity().fit(videos)
    frames = np.zeros((3, GRID[0] * GRID[1]))
    frames[1, 5] = 0.01
    frames[2, 7] = 0.05  # five times a walker's pace
    scores = density.frame_scores(frames)
    assert scores[0] == 0.0 and scores[0] < scores[1] < scores[2]
    field = CalibratedMotionField(density, 0.5, 4.0)
    description, arrays = field.state("f.")
    back = CalibratedMotionField.from_state(description, arrays, "f.")
    np.testing.assert_array_equal(back.frame_scores(frames), field.frame_scores(frames))
    np.testing.assert_allclose(field.frame_scores(frames), (scores - 0.5) / 3.5)


def test_a_field_per_place_calls_motion_rare_where_its_place_is_still():
    rng = np.random.default_rng(0)
    still = np.zeros((200, 4))
    still[:, :2] = rng.uniform(0.005, 0.015, (200, 2))  # walkers pass cells 0 and 1; cells 2 and 3 never move
    video = dataclasses.replace(make_tracked_video("v", rng, n_frames=200), cell_speeds=still, cell_grid=(2, 2))
    pooled, per_place = MotionFieldDensity().fit([video]), MotionFieldDensity(per_place=True).fit([video])
    walker_on_the_lawn = np.array([[0.0, 0.0, 0.01, 0.0]])
    walker_on_the_path = np.array([[0.01, 0.0, 0.0, 0.0]])
    assert per_place.frame_scores(walker_on_the_lawn)[0] > per_place.frame_scores(walker_on_the_path)[0] + 5
    assert pooled.frame_scores(walker_on_the_lawn)[0] == pooled.frame_scores(walker_on_the_path)[0]
    both = np.array([[0.012, 0.0, 0.01, 0.0]])  # fastest on the path, unusual on the lawn
    assert pooled.worst_cells(both)[0] == 0 and per_place.worst_cells(both)[0] == 2
    assert per_place.label == "motion field per place" and pooled.label == "motion field"
    back = MotionFieldDensity(**per_place.config()).load_state(per_place.state())
    np.testing.assert_array_equal(back.frame_scores(walker_on_the_lawn), per_place.frame_scores(walker_on_the_lawn))


def test_the_selection_puts_the_field_beside_objects_that_miss_fast_tracks():
    """A scene whose cells record what its objects do: only the field sees a fast track taken out of the list."""
    rng = np.random.default_rng(0)
    videos = [cells_of(make_tracked_video(f"v{index}", rng, flow_noise=0.2), rng) for index in range(6)]
    selection = select_attributes(videos, seed=0)
    field_step = {candidate.motion_field: candidate for candidate in selection.candidates
                  if candidate.step == "motion field"}
    assert set(field_step) == {None, "motion field", "motion field per place"}
    assert field_step[None].aucs[MISSED] == pytest.approx(0.5)  # no object is left to see it
    assert field_step["motion field"].aucs[MISSED] > 0.9
    assert field_step["motion field"].aucs["speed"] > 0.9  # a doubled walker lights its cells up too
    # Six one-minute videos are thin for one density per cell: its held-out tails saturate.
    assert field_step["motion field per place"].mean_auc < field_step["motion field"].mean_auc
    assert selection.chosen.motion_field == "motion field" and selection.motion_field is not None
    assert selection.motion_field.density.label == selection.chosen.motion_field
    assert MISSED in selection.kinds


def test_without_cell_speeds_there_is_no_field_step():
    rng = np.random.default_rng(0)
    selection = select_attributes([make_tracked_video(f"v{index}", rng) for index in range(4)], seed=0)
    assert not any(candidate.step == "motion field" for candidate in selection.candidates)
    assert selection.motion_field is None and MISSED not in selection.kinds


def test_a_scoring_with_the_field_takes_the_worse_of_objects_and_field_and_saves_it():
    rng = np.random.default_rng(0)
    shards = []
    for index in range(6):
        objects = cells_of(make_tracked_video(f"v{index}", rng, flow_noise=0.2), rng)
        shard = as_video_features(objects)
        shard.metadata.extraction = {"features": {"cell_motion": {"cell_fraction": 1 / 6}}}
        shard.cell_speeds = objects.cell_speeds
        shards.append(shard)
    scoring = AttributeScoring.fit(shards, seed=0)
    assert scoring.motion_field is not None and scoring.ablation_labels[-1] == "motion field"
    video = shards[0]
    video.cell_speeds = video.cell_speeds.copy()
    video.cell_speeds[10, 3] = 0.2  # something very fast where no object is
    per_frame = scoring.frame_scores(video, scoring.score(video))
    assert np.argmax(per_frame) == 10
    objects_only = np.array([scoring.score(video)[video.frames == frame].max()
                             for frame in range(video.metadata.n_frames)])
    np.testing.assert_allclose(np.fmax(objects_only, scoring.field_scores(video)), per_frame)
    parts = scoring.subset_frame_scores(video, {"only field": ["motion field"], "objects": scoring.labels})
    np.testing.assert_allclose(parts["only field"], scoring.field_scores(video))
    np.testing.assert_allclose(parts["objects"], objects_only)
    description, arrays = scoring.state()
    back = AttributeScoring.from_state(description, arrays)
    np.testing.assert_allclose(back.frame_scores(video, back.score(video)), per_frame)
    video.cell_speeds = None
    with pytest.raises(Exception, match="no cell speeds"):
        scoring.frame_scores(video, scoring.score(video))


def test_object_attributes_read_the_grid_from_the_extraction_settings():
    rng = np.random.default_rng(0)
    video = as_video_features(make_tracked_video("v", rng, n_frames=4))
    video.metadata.extraction = {"features": {"cell_motion": {"cell_fraction": 1 / 6}}}
    video.cell_speeds = np.zeros((4, 48), np.float32)
    objects = object_attributes(video)
    assert objects.cell_grid == GRID and objects.cell_speeds.shape == (4, 48)
    video.cell_speeds = np.zeros((4, 40), np.float32)
    with pytest.raises(Exception, match="cell speeds a frame"):
        object_attributes(video)


def test_cell_speeds_added_or_left_out_change_nothing_a_model_reads_from_its_objects():
    before = {"flow_stats": {"object_fraction": 0.5}}
    after = {**before, "cell_motion": {"cell_fraction": 0.125, "min_moving_share": 0.01}}
    assert extraction_differences(before, after) == []
    assert extraction_differences(after, before) == []
    other = {**before, "cell_motion": {"cell_fraction": 0.25, "min_moving_share": 0.01}}
    assert extraction_differences(after, other) == ["cell_motion.cell_fraction: 0.125 -> 0.25"]
