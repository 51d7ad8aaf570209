"""Interaction anomalies of the synthetic scene: labelled pairs that no single object gives away.

The checks: the interaction videos exist with the manifest's frame counts and labels that
match the documented rule (box gap below INTERACTION_GAP while both walkers are shown);
normal footage keeps its distance, so the interactions never occur in training; the
``motion`` detector sees both walkers while they interact; and every object of an
interaction video, taken alone, stays within what the training videos show.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from anograph.datasets import generate_synthetic_dataset, load_dataset
from anograph.datasets.synthetic import INTERACTION_KINDS, plan_video_objects
from anograph.datasets.synthetic_interactions import INTERACTION_GAP, PERSONAL_SPACE
from anograph.datasets.synthetic_scene import MIN_VISIBLE_FRACTION, SceneObject
from anograph.errors import InputError
from anograph.extraction.detectors.motion import MotionDetector
from anograph.io.video import count_frames, open_video

INTERACTION_VIDEOS = tuple(f"test_{kind}" for kind in INTERACTION_KINDS)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic_interactions") / "data"
    generate_synthetic_dataset(root, interactions=True)
    return root


def _manifest(root: Path) -> dict:
    return json.loads((root / "synthetic.json").read_text())


def _objects(root: Path, name: str) -> list[SceneObject]:
    parameters = _manifest(root)["parameters"]
    keys = ("seed", "n_frames", "width", "height", "interactions", "n_interaction_frames")
    return plan_video_objects(name, **{key: parameters[key] for key in keys})


def _boxes(scene_object: SceneObject, n_frames: int) -> dict[int, np.ndarray]:
    """Frame -> drawn box (x1, y1, x2, y2) of one object, for the frames of the video."""
    boxes = {}
    for step, (x, y) in enumerate(np.round(scene_object.positions)):
        frame = scene_object.start_frame + step
        if 0 <= frame < n_frames:
            boxes[frame] = np.array([x, y, x + scene_object.width, y + scene_object.height])
    return boxes


def _gap(first: np.ndarray, second: np.ndarray) -> float:
    gap_x = max(0.0, first[0] - second[2], second[0] - first[2])
    gap_y = max(0.0, first[1] - second[3], second[1] - first[3])
    return float(np.hypot(gap_x, gap_y))


def _shown(box: np.ndarray, width: int, height: int, fraction: float) -> bool:
    inside = max(0.0, min(box[2], width) - max(box[0], 0)) * max(0.0, min(box[3], height) - max(box[1], 0))
    return inside > 0 and inside >= fraction * (box[2] - box[0]) * (box[3] - box[1])


def test_interaction_videos_have_the_manifests_frames_and_gap_labels(scene: Path) -> None:
    dataset = load_dataset("synthetic", scene)
    manifest = _manifest(scene)
    assert [video.name for video in dataset.test][-2:] == list(INTERACTION_VIDEOS)
    for name in INTERACTION_VIDEOS:
        n_frames = manifest["frame_counts"][name]
        assert n_frames == manifest["parameters"]["n_interaction_frames"]
        assert count_frames(scene / "test" / f"{name}.mp4") == n_frames == dataset.labels[name].size
        pair = [scene_object for scene_object in _objects(scene, name) if scene_object.kind is not None]
        assert len(pair) == 2 and {member.kind for member in pair} == {name.removeprefix("test_")}
        first, second = (_boxes(member, n_frames) for member in pair)
        expected = np.zeros(n_frames, dtype=bool)
        for frame in set(first) & set(second):
            expected[frame] = (
                _gap(first[frame], second[frame]) < INTERACTION_GAP
                and _shown(first[frame], 320, 240, MIN_VISIBLE_FRACTION)
                and _shown(second[frame], 320, 240, MIN_VISIBLE_FRACTION)
            )
        labels = dataset.labels[name]
        assert expected.any() and not expected.all()
        np.testing.assert_array_equal(labels, expected)
        rows = [anomaly for anomaly in manifest["anomalies"] if anomaly["video"] == name]
        assert rows and {row["kind"] for row in rows} == {name.removeprefix("test_")}
        assert len(manifest["anomaly_boxes"][name]) == 2 * int(labels.sum())  # both walkers, every frame


def test_existing_test_videos_keep_their_labels(scene: Path, tmp_path: Path) -> None:
    plain = generate_synthetic_dataset(tmp_path / "plain")
    with_interactions = load_dataset("synthetic", scene)
    assert [video.name for video in plain.test] == [video.name for video in with_interactions.test][:3]
    for video in plain.test:
        np.testing.assert_array_equal(plain.labels[video.name], with_interactions.labels[video.name])


def test_normal_footage_keeps_its_distance_and_the_pairs_do_not(scene: Path) -> None:
    manifest = _manifest(scene)
    width, height = manifest["parameters"]["width"], manifest["parameters"]["height"]

    def closest(first: SceneObject, second: SceneObject, n_frames: int) -> float:
        first_boxes, second_boxes = _boxes(first, n_frames), _boxes(second, n_frames)
        gaps = [
            _gap(first_boxes[frame], second_boxes[frame])
            for frame in set(first_boxes) & set(second_boxes)
            if _shown(first_boxes[frame], width, height, 0.0) and _shown(second_boxes[frame], width, height, 0.0)
        ]
        return min(gaps, default=float("inf"))

    pairs_in_view = 0
    for name, n_frames in manifest["frame_counts"].items():
        objects = _objects(scene, name)
        # Normal pedestrians keep their distance from each other and from an anomaly.
        fixed = [scene_object for scene_object in objects if scene_object.kind in INTERACTION_KINDS]
        others = [scene_object for scene_object in objects if scene_object not in fixed]
        for index, first in enumerate(others):
            for second in others[index + 1 :] + fixed:
                gap = closest(first, second, n_frames)
                assert gap >= PERSONAL_SPACE, name
                pairs_in_view += gap < float("inf")
        if fixed:
            assert closest(*fixed, n_frames) < INTERACTION_GAP, name
    assert pairs_in_view >= 20


def _iou(first: np.ndarray, second: np.ndarray) -> float:
    overlap = max(0.0, min(first[2], second[2]) - max(first[0], second[0])) * max(
        0.0, min(first[3], second[3]) - max(first[1], second[1])
    )
    areas = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1])
    return float(overlap / (areas - overlap))


def test_motion_detector_sees_both_walkers_while_they_interact(scene: Path) -> None:
    manifest = _manifest(scene)
    for name in INTERACTION_VIDEOS:
        truth: dict[int, list[np.ndarray]] = {}
        for frame, *box in manifest["anomaly_boxes"][name]:
            truth.setdefault(frame, []).append(np.array(box, dtype=float))
        detector = MotionDetector()
        both_found = 0
        for frame, image in enumerate(open_video(scene / "test" / f"{name}.mp4")):
            detections = detector.detect(image)
            if frame in truth:
                both_found += all(
                    max((_iou(box, found) for found in detections.boxes), default=0.0) > 0.5 for box in truth[frame]
                )
        assert len(truth) >= 10, name
        assert both_found >= 0.9 * len(truth), (name, both_found, len(truth))


def _single_object_ranges(objects: list[SceneObject], n_frames: int) -> list[dict[str, tuple[float, float]]]:
    """Per object on screen: its range of speed, |vertical speed|, top and bottom edge, and size."""
    ranges = []
    for scene_object in objects:
        frames = scene_object.start_frame + np.arange(len(scene_object.positions))
        on_screen = (frames < n_frames) & (scene_object.positions[:, 0] > -scene_object.width) & (
            scene_object.positions[:, 0] < 320
        )
        positions = scene_object.positions[on_screen]
        if len(positions) < 2:
            continue
        steps = np.diff(positions, axis=0)
        speeds = np.hypot(steps[:, 0], steps[:, 1])
        ranges.append({
            "speed": (speeds.min(), speeds.max()),
            "vertical_speed": (0.0, np.abs(steps[:, 1]).max()),
            "top": (positions[:, 1].min(), positions[:, 1].max()),
            "bottom": (positions[:, 1].min() + scene_object.height, positions[:, 1].max() + scene_object.height),
            "width": (scene_object.width, scene_object.width),
            "height": (scene_object.height, scene_object.height),
        })
    return ranges


def test_every_object_of_an_interaction_video_is_normal_alone(scene: Path) -> None:
    manifest = _manifest(scene)
    training = [
        attribute
        for name, n_frames in manifest["frame_counts"].items()
        if name.startswith("train_")
        for attribute in _single_object_ranges(_objects(scene, name), n_frames)
    ]
    normal = {key: (min(r[key][0] for r in training), max(r[key][1] for r in training)) for key in training[0]}
    for name in INTERACTION_VIDEOS:
        for attributes in _single_object_ranges(_objects(scene, name), manifest["frame_counts"][name]):
            for key, (low, high) in attributes.items():
                assert normal[key][0] <= low and high <= normal[key][1], (name, key, (low, high), normal[key])


def test_interaction_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="height of at least"):
        generate_synthetic_dataset(tmp_path / "x", height=96, interactions=True)
    with pytest.raises(InputError, match="n_interaction_frames"):
        generate_synthetic_dataset(tmp_path / "x", interactions=True, n_interaction_frames=20)
    with pytest.raises(InputError, match="not a video"):
        plan_video_objects("test_converge")  # interactions off: the video does not exist
