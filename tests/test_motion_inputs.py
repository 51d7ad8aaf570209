"""Motion inputs: DIS flow statistics of a box, first-frame flow, tracks, and motion-blob objects."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from anograph.errors import InputError
from anograph.extraction.detectors.base import Detections
from anograph.extraction.extract import extract_video
from anograph.extraction.features.extractor import SOURCE_DETECTOR, SOURCE_MOTION_BLOB, NodeFeatureExtractor
from anograph.extraction.features.flow_stats import FlowStatistics
from anograph.extraction.features.motion import MotionFeatures
from anograph.extraction.features.motion_boxes import UNKNOWN_CLASS_ID, MotionBoxes
from anograph.extraction.features.optical_flow import FrameFlow, OpticalFlow
from anograph.extraction.features.tracks import BoxTracker
from anograph.io.shards import OBJECT_SOURCES, read_shard, write_shard
from anograph.io.storage import Storage
from anograph.io.video import open_video

HEIGHT, WIDTH, SIDE = 120, 200, 24
DX, DY = 3, 2


def texture(height: int, width: int, block: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // block, width // block, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST), (3, 3), 0)


BACKGROUND = texture(HEIGHT, WIDTH, 4, seed=6)
PATCHES = (texture(SIDE, SIDE, 4, seed=7), texture(SIDE, SIDE, 4, seed=8))


def square_scene(n_frames: int, squares: list[tuple[int, int, int, int]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames with textured squares ``(x, y, dx, dy)`` moving over a static textured background, and their boxes."""
    frames, boxes = [], []
    for index in range(n_frames):
        frame, frame_boxes = BACKGROUND.copy(), []
        for number, (x, y, dx, dy) in enumerate(squares):
            left, top = x + dx * index, y + dy * index
            frame[top : top + SIDE, left : left + SIDE] = PATCHES[number]
            frame_boxes.append([left, top, left + SIDE, top + SIDE])
        frames.append(frame)
        boxes.append(np.array(frame_boxes, np.float32))
    return frames, boxes


def detections_of(boxes: np.ndarray) -> Detections:
    n = len(boxes)
    return Detections(boxes, np.full(n, 0.9, np.float32), np.zeros(n, np.int32), np.full((n, 1), 0.9, np.float32))


def pushed(extractor: NodeFeatureExtractor, frames: list[np.ndarray], boxes: list[np.ndarray]) -> list:
    extractor.reset()
    objects = []
    for frame, frame_boxes in zip(frames, boxes, strict=True):
        objects += extractor.push(frame, detections_of(frame_boxes))
    return objects + extractor.finish()


def flow_stats_of(extractor: NodeFeatureExtractor, row: np.ndarray) -> dict[str, float]:
    values = row[extractor.layout(("object",)).slice("flow_stats")]
    assert extractor.flow_stats is not None
    return dict(zip(extractor.flow_stats.column_names, values.tolist(), strict=True))


def test_moving_pixel_statistics_of_a_moving_square_ignore_the_background_in_its_box() -> None:
    frames, boxes = square_scene(5, [(30, 30, DX, DY)])
    results = {}
    for margin in (0, 14):
        extractor = NodeFeatureExtractor(appearance=None, motion=MotionFeatures(flow_preset="medium"))
        loose = [b + np.array([-margin, -margin, margin, margin], np.float32) for b in boxes]
        results[margin] = [flow_stats_of(extractor, frame.features[0]) for frame in pushed(extractor, frames, loose)]
    for tight, loose in zip(results[0][1:], results[14][1:], strict=True):
        # Frame-height units back to pixels per frame.
        dx, dy = tight["moving_flow_dx"] * HEIGHT, tight["moving_flow_dy"] * HEIGHT
        assert dx == pytest.approx(DX, rel=0.3) and dy == pytest.approx(DY, rel=0.3)
        assert tight["moving_flow_magnitude"] * HEIGHT == pytest.approx(np.hypot(DX, DY), rel=0.3)
        # The histogram sums to the moving magnitude; down-right flow (about 34 degrees) lands in bin 1 (45).
        histogram = np.array([tight[f"moving_orientation_{k}"] for k in range(8)])
        assert histogram.sum() == pytest.approx(tight["moving_flow_magnitude"], rel=1e-4)
        assert histogram.argmax() in (0, 1)
        assert tight["box_flow_p50"] <= tight["box_flow_p90"]
        # A box 14 px wider on every side is mostly background: its mean and median fall, its moving pixels' do not.
        assert loose["box_flow_p50"] < 0.5 * tight["box_flow_p50"]
        assert loose["box_flow_mean"] < 0.6 * tight["box_flow_mean"]
        assert loose["moving_fraction"] < 0.6 * tight["moving_fraction"]
        for column in ("moving_flow_dx", "moving_flow_dy", "moving_flow_magnitude"):
            assert loose[column] == pytest.approx(tight[column], rel=0.15)


def test_a_static_box_has_no_moving_pixels() -> None:
    frames, boxes = square_scene(3, [(30, 30, DX, 0)])
    static = [np.concatenate([b, np.array([[140, 70, 180, 110]], np.float32)]) for b in boxes]
    extractor = NodeFeatureExtractor(appearance=None)
    for frame in pushed(extractor, frames, static)[1:]:
        moving, still = flow_stats_of(extractor, frame.features[0]), flow_stats_of(extractor, frame.features[1])
        assert moving["moving_fraction"] > 0.3 and still["moving_fraction"] == 0.0
        assert still["moving_flow_magnitude"] == 0.0 and still["box_flow_p90"] * HEIGHT < 0.5


def test_camera_shake_is_removed_from_the_flow_that_boxes_read() -> None:
    # The camera jumps 3 px left and right between frames; the square moves DX, DY over the scene.
    margin, shakes = 10, [0, 3, -3, 3, -3]
    scene = texture(HEIGHT + 2 * margin, WIDTH + 2 * margin, 4, seed=6)
    frames, boxes = [], []
    for index, shake in enumerate(shakes):
        canvas = scene.copy()
        left, top = 40 + DX * index, 40 + DY * index
        canvas[top : top + SIDE, left : left + SIDE] = PATCHES[0]
        frames.append(np.ascontiguousarray(canvas[margin : margin + HEIGHT, margin + shake : margin + shake + WIDTH]))
        square = [left - margin - shake, top - margin, left - margin - shake + SIDE, top - margin + SIDE]
        boxes.append(np.array([square, [140, 70, 180, 110]], np.float32))
    results = {}
    for compensate in (True, False):
        motion = MotionFeatures(flow_preset="medium", compensate_camera_motion=compensate)
        extractor = NodeFeatureExtractor(appearance=None, motion=motion, motion_boxes=False)
        results[compensate] = [(flow_stats_of(extractor, frame.features[0]), flow_stats_of(extractor, frame.features[1]))
                               for frame in pushed(extractor, frames, boxes)[1:]]
    for square, still in results[True]:
        assert square["moving_flow_dx"] * HEIGHT == pytest.approx(DX, abs=1.0)
        assert square["moving_flow_dy"] * HEIGHT == pytest.approx(DY, abs=1.0)
        assert still["box_flow_p50"] * HEIGHT < 0.5
    # Without the compensation the shake is what the static box reads.
    assert all(still["box_flow_p50"] * HEIGHT > 2.0 for _, still in results[False])


def test_first_frame_takes_its_flow_from_the_next_frame() -> None:
    frames, boxes = square_scene(3, [(30, 30, DX, DY)])
    extractor = NodeFeatureExtractor(appearance=None)
    extractor.reset()
    assert extractor.push(frames[0], detections_of(boxes[0])) == [], "the first frame waits for the second"
    first, second = extractor.push(frames[1], detections_of(boxes[1]))
    assert (first.index, second.index) == (0, 1)
    layout = extractor.layout(("object",))
    first_stats, second_stats = flow_stats_of(extractor, first.features[0]), flow_stats_of(extractor, second.features[0])
    assert first_stats["moving_flow_dx"] * HEIGHT == pytest.approx(DX, rel=0.3)
    assert first_stats["moving_flow_dx"] == pytest.approx(second_stats["moving_flow_dx"], rel=0.3)
    assert first.features[0, layout.slice("frame_flow")][0] * HEIGHT == pytest.approx(DX, rel=0.4)
    assert [frame.index for frame in extractor.push(frames[2], detections_of(boxes[2]))] == [2]
    assert extractor.finish() == []
    # A one-frame video has no next frame: its only frame comes back at finish, without flow.
    extractor.reset()
    assert extractor.push(frames[0], detections_of(boxes[0])) == []
    (only,) = extractor.finish()
    assert np.all(only.features[0, layout.slice("flow_stats")] == 0)


def test_frame_at_a_time_features_equal_pushed_ones_after_the_first_frame() -> None:
    """The live path (``features``) and the batch path (``push``) agree except on the first frame's flow."""
    frames, boxes = square_scene(4, [(30, 30, DX, DY), (150, 80, -DX, -1)])
    extractor = NodeFeatureExtractor(appearance=None)
    batch = pushed(extractor, frames, boxes)
    extractor.reset()
    live = [extractor.features(frame, detections_of(b)) for frame, b in zip(frames, boxes, strict=True)]
    flow_stats = extractor.layout(("object",)).slice("flow_stats")
    assert np.all(live[0][:, flow_stats] == 0) and np.all(np.any(batch[0].features[:, flow_stats] != 0, axis=1))
    for objects, features in zip(batch[1:], live[1:], strict=True):
        np.testing.assert_allclose(objects.features, features, rtol=1e-6, atol=1e-7)


def test_tracks_keep_their_ids_across_frames_and_end_at_gaps() -> None:
    frames, boxes = square_scene(5, [(30, 30, DX, DY), (150, 80, -DX, -1)])
    objects = pushed(NodeFeatureExtractor(appearance=None), frames, boxes)
    ids = np.array([frame.track_ids for frame in objects])
    assert ids.shape == (5, 2) and np.all(ids == ids[0]) and ids[0, 0] != ids[0, 1]
    tracker = BoxTracker(window=2)
    first = tracker.update(boxes[0])
    assert first.track_ids.tolist() == [0, 1] and not first.matched.any()
    # Boxes in the opposite order still find their own tracks.
    swapped = tracker.update(boxes[1][::-1])
    assert swapped.track_ids.tolist() == [1, 0] and swapped.matched.all()
    np.testing.assert_allclose(swapped.velocity, [[-DX, -1], [DX, DY]])
    tracker.update(boxes[2])
    tracker.update(np.zeros((0, 4), np.float32))  # a frame without boxes ends every track
    after_gap = tracker.update(boxes[4])
    assert after_gap.track_ids.tolist() == [2, 3] and np.all(after_gap.steps == 0)
    with pytest.raises(InputError, match="window"):
        BoxTracker(window=0)


def test_track_columns_average_the_last_frames() -> None:
    tracker = BoxTracker(window=2)
    for x in (0.0, 2.0, 6.0, 12.0):  # displacements 2, 4, 6
        step = tracker.update(np.array([[x, 0, x + 20, 20]], np.float32))
    assert step.steps.tolist() == [2]
    np.testing.assert_allclose(step.mean_velocity, [[5.0, 0.0]])
    np.testing.assert_allclose(step.mean_speed, [5.0])


def test_motion_blobs_add_the_square_the_detector_missed() -> None:
    frames, boxes = square_scene(4, [(30, 30, DX, DY), (150, 80, -DX, -1)])
    extractor = NodeFeatureExtractor(appearance=None, motion_boxes=True)
    only_first = [b[:1] for b in boxes]  # the "detector" reports square 0 only
    objects = pushed(extractor, frames, only_first)
    layout = extractor.layout(("object",))
    for frame, truth in zip(objects, boxes, strict=True):
        assert frame.sources.tolist() == [SOURCE_DETECTOR, SOURCE_MOTION_BLOB]
        blob = frame.detections.boxes[1]
        x1, y1, x2, y2 = truth[1]
        # The blob box covers the missed square (dense flow spreads a little beyond it).
        assert blob[0] <= x1 + 3 and blob[1] <= y1 + 3 and blob[2] >= x2 - 3 and blob[3] >= y2 - 3
        assert (blob[2] - blob[0]) < 2 * SIDE and (blob[3] - blob[1]) < 2 * SIDE
        assert frame.detections.class_ids[1] == UNKNOWN_CLASS_ID
        assert np.all(frame.features[1, layout.slice("class")] == 0), "a blob's class is unknown"
        assert 0 < frame.detections.scores[1] <= 1
    ids = np.array([frame.track_ids for frame in objects])
    assert np.all(ids == ids[0]), "blob objects are tracked like detected ones"
    # Without the option, or when the detector reports both squares, no blob is added.
    plain = pushed(NodeFeatureExtractor(appearance=None), frames, only_first)
    assert all(len(frame.detections) == 1 for frame in plain)
    both = pushed(extractor, frames, boxes)
    assert all(frame.sources.tolist() == [SOURCE_DETECTOR] * 2 for frame in both)


def test_moving_pixels_along_the_frame_edge_seed_no_region() -> None:
    # A 240 x 360 flow field: a strip of flow noise along the bottom edge (3 px tall, as DIS
    # leaves at the edges when compression noise changes), an object inside the frame, and an
    # object entering at the left edge.
    flow = np.zeros((240, 360, 2), np.float32)
    flow[237:, 100:200, 0] = 2.0
    flow[100:130, 150:170, 0] = 2.0
    flow[60:90, 0:20, 1] = 2.0
    frame_flow = FrameFlow.of(flow)
    with_margin, _ = MotionBoxes().propose(frame_flow, np.zeros((0, 4)))
    without, _ = MotionBoxes(border_margin=0).propose(frame_flow, np.zeros((0, 4)))
    # The strip lies within the default margin and is gone; the entering object keeps the part
    # past the margin, and the inner object is untouched.
    assert sorted(map(tuple, without.astype(int).tolist())) == [(0, 60, 20, 90), (100, 237, 200, 240), (150, 100, 170, 130)]
    assert sorted(map(tuple, with_margin.astype(int).tolist())) == [(4, 60, 20, 90), (150, 100, 170, 130)]
    with pytest.raises(InputError, match="border_margin"):
        MotionBoxes(border_margin=-1)


def test_the_moving_floor_is_the_flow_noise_or_a_speed_whichever_is_higher() -> None:
    flow_field = OpticalFlow()
    # On UCSD's 240-pixel, 10 fps footage both floors are half a pixel a frame.
    assert flow_field.moving_floor(240) == 0.5
    # Twice the pixels, or half the frame rate: the same walker covers twice the pixels a frame.
    assert flow_field.moving_floor(480) == pytest.approx(1.0)
    flow_field.start_video(5.0)
    assert flow_field.moving_floor(240) == pytest.approx(1.0)
    # Smaller or faster footage: never below the flow's own noise (on a 120-pixel frame, enlarged to 240
    # for the flow, half a pixel there is a quarter here).
    assert flow_field.moving_floor(120) == 0.5
    assert OpticalFlow().moving_floor(120) == pytest.approx(0.25)
    flow_field.start_video(25.0)
    assert flow_field.moving_floor(480) == 0.5
    # A walker at 1/12 frame heights a second, and a drift at half the floor, at several sizes and rates.
    for height, rate in ((240, 10.0), (480, 10.0), (240, 5.0), (480, 25.0)):
        flow_field.start_video(rate)
        flow = np.zeros((height, height * 3 // 2, 2), np.float32)
        walker, drift = (slice(height // 4, height // 2), slice(10, 30)), (slice(height // 4, height // 2), slice(60, 80))
        flow[walker + (0,)] = height / 12 / rate
        flow[drift + (0,)] = 0.5 * flow_field.moving_floor(height)
        moving = flow_field.frame_flow(flow).moving
        assert moving[walker].all() and not moving[drift].any(), (height, rate)
    with pytest.raises(InputError, match="frame rate"):
        flow_field.start_video(-1.0)
    with pytest.raises(InputError, match="must not be negative"):
        OpticalFlow(min_moving_speed=-1.0)


def test_small_frames_are_enlarged_for_the_flow_and_a_small_object_keeps_its_motion() -> None:
    flow_field = OpticalFlow()
    assert [flow_field.enlargement(height) for height in (60, 120, 240, 480)] == [4.0, 2.0, 1.0, 1.0]
    assert flow_field.grey(np.zeros((60, 100, 3), np.uint8)).shape == (240, 400)
    assert flow_field.grey(np.zeros((240, 360, 3), np.uint8)).shape == (240, 360)
    # The noise floor is half a pixel of the enlarged frame: a quarter of a 120-pixel frame's pixel.
    assert flow_field.moving_floor(120) == pytest.approx(0.25)
    assert OpticalFlow(min_height=0).moving_floor(120) == 0.5
    # An 8-pixel square crossing a 60-pixel-high frame at 1 and 2 pixels a frame: DIS at the frame's own
    # size refines only down to 30 pixels and sees it still; enlarged, its motion is measured.
    height, width, side = 60, 100, 8
    background, patch = texture(height, width, 2, seed=6), texture(side, side, 2, seed=7)
    for step in (1, 2):
        frames, boxes = [], []
        for index in range(6):
            frame, left = background.copy(), 20 + step * index
            frame[25 : 25 + side, left : left + side] = patch
            frames.append(frame)
            boxes.append(np.array([[left, 25, left + side, 25 + side]], np.float32))
        stats = {}
        for min_height in (240, 0):
            extractor = NodeFeatureExtractor(appearance=None, motion=MotionFeatures(min_flow_height=min_height))
            stats[min_height] = [flow_stats_of(extractor, frame.features[0]) for frame in pushed(extractor, frames, boxes)]
        for enlarged, own_size in zip(stats[240][1:], stats[0][1:], strict=True):
            assert enlarged["moving_flow_dx"] * height == pytest.approx(step, rel=0.25)
            assert enlarged["moving_fraction"] > 0.8
            assert own_size["moving_fraction"] < 0.1
    with pytest.raises(InputError, match="min_height"):
        OpticalFlow(min_height=-1)


def test_the_videos_frame_rate_sets_what_counts_as_moving(tmp_path: Path) -> None:
    frames, _ = square_scene(4, [(30, 30, 1, 0)])  # one pixel a frame on a 120-pixel-high frame
    folder = tmp_path / "clip"
    folder.mkdir()
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{index:03d}.png"), frame)
    moving_fraction = {}
    for rate in (10.0, 2.0):
        extractor = NodeFeatureExtractor(appearance=None)
        video = extract_video(open_video(folder, fps=rate), FirstSquareDetector(), extractor)
        assert extractor.optical_flow is not None and extractor.optical_flow.frame_rate == rate
        moving_fraction[rate] = [flow_stats_of(extractor, row)["moving_fraction"] for row in video.features[1:]]
    # At 10 fps the square moves 1/12 frame heights a second, above the floor; read as 2 fps it
    # crawls at 1/60, under it (the floor is 1/48), and no pixel of it counts as moving.
    assert min(moving_fraction[10.0]) > 0.3
    assert max(moving_fraction[2.0]) == 0.0


def test_motion_boxes_settings_are_checked() -> None:
    with pytest.raises(InputError, match="min_area_fraction"):
        MotionBoxes(min_area_fraction=0.5, max_area_fraction=0.1)
    with pytest.raises(InputError, match="max_iou"):
        MotionBoxes(max_iou=2.0)
    with pytest.raises(InputError, match="DIS preset"):
        OpticalFlow(preset="slow")
    with pytest.raises(InputError, match="flow method"):
        OpticalFlow(method="lucas-kanade")
    with pytest.raises(InputError, match="object_fraction"):
        FlowStatistics(object_fraction=1.0)


class FirstSquareDetector:
    """A detector that finds only the upper square of :func:`write_two_squares` (it misses the lower one)."""

    name = "first-square"
    class_names = ("object",)

    def reset(self) -> None:
        self._frame = 0

    def detect(self, frame: np.ndarray) -> Detections:
        left, top = 30 + DX * self._frame, 30 + DY * self._frame
        self._frame += 1
        return detections_of(np.array([[left, top, left + SIDE, top + SIDE]], np.float32))

    def describe(self) -> dict:
        return {"name": self.name, "weights_sha256": None}


def test_blob_objects_are_recorded_in_the_shard_and_read_back(tmp_path: Path) -> None:
    frames, _ = square_scene(6, [(30, 30, DX, DY), (150, 80, -DX, -1)])
    folder = tmp_path / "clip"
    folder.mkdir()
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{index:03d}.png"), frame)  # lossless: the squares stay crisp
    video = extract_video(
        open_video(folder, fps=10), FirstSquareDetector(), NodeFeatureExtractor(appearance=None, motion_boxes=True)
    )
    assert video.metadata.extraction["features"]["motion_boxes"] is not None
    storage = Storage(tmp_path / "store")
    write_shard(storage, "shards/clip.parquet", video)
    back = read_shard(storage, "shards/clip.parquet")
    names = np.array(OBJECT_SOURCES)[back.sources]
    assert np.all(np.bincount(back.frames[names == "motion_blob"], minlength=6) == 1), "one blob per frame"
    assert np.all(np.bincount(back.frames[names == "detector"], minlength=6) == 1)
    np.testing.assert_array_equal(back.sources, video.sources)
    np.testing.assert_array_equal(back.track_ids, video.track_ids)
    assert np.all(back.class_ids[names == "motion_blob"] == UNKNOWN_CLASS_ID)
    assert len(set(back.track_ids.tolist())) == 2, "each square keeps one track over the video"
