"""Dataset loaders: real UCSD Ped2, small hand-made layouts, and the synthetic generator."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from anograph.datasets import DATASETS, generate_synthetic_dataset, load_dataset
from anograph.datasets.synthetic import ANOMALY_KINDS
from anograph.datasets.ucsd import UCSD_FPS, parse_ucsd_ground_truth
from anograph.errors import InputError
from anograph.io.video import count_frames, open_video

# --------------------------------------------------------------------------- helpers


def write_frames(
    folder: Path, n_frames: int, extension: str = ".png", size: tuple[int, int] = (32, 24)
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(n_frames):
        image = np.full((size[1], size[0], 3), (index * 7) % 255, dtype=np.uint8)
        assert cv2.imwrite(str(folder / f"{index + 1:03d}{extension}"), image)
    return folder


def write_video(path: Path, n_frames: int, fps: float = 12.0, size: tuple[int, int] = (64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for index in range(n_frames):
        frame = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        cv2.rectangle(frame, (index % size[0], 10), (index % size[0] + 8, 30), (255, 255, 255), -1)
        writer.write(frame)
    writer.release()
    return path


# --------------------------------------------------------------------------- registry


def test_registry_names_and_errors(tmp_path: Path) -> None:
    assert DATASETS == (
        "ucsd-ped1", "ucsd-ped2", "folder", "synthetic", "avenue", "shanghaitech", "street-scene", "adoc"
    )
    with pytest.raises(InputError, match="unknown dataset 'ped3'") as unknown:
        load_dataset("ped3", tmp_path)
    assert unknown.value.path is None
    missing = tmp_path / "nowhere"
    with pytest.raises(InputError, match="no such folder") as absent:
        load_dataset("folder", missing)
    assert absent.value.path == str(missing)


# --------------------------------------------------------------------------- UCSD, real data


@pytest.mark.shared_data
def test_real_ped2_counts(ped2_root: Path) -> None:
    dataset = load_dataset("ucsd-ped2", ped2_root)
    # Counts from ../shared/data/README.md.
    assert dataset.name == "ucsd-ped2"
    assert dataset.fps == UCSD_FPS == 10.0
    assert len(dataset.train) == 16
    assert len(dataset.test) == 12
    assert [video.name for video in dataset.test][:2] == ["Test001", "Test002"]
    assert sum(count_frames(video.path) for video in dataset.train) == 2550
    assert sum(label.size for label in dataset.labels.values()) == 2010
    assert sum(int(label.sum()) for label in dataset.labels.values()) == 1648
    # The subset folder itself is accepted as root too.
    again = load_dataset("ucsd-ped2", ped2_root / "UCSDped2")
    assert [video.name for video in again.test] == [video.name for video in dataset.test]


# --------------------------------------------------------------------------- UCSD, hand-made layout

PED1_M = """clear TestVideoFile;
TestVideoFile = {};
% Test001: two anomalous stretches
TestVideoFile{end+1}.gt_frame = [2:3, 6:7];
TestVideoFile{end+1}.gt_frame = [1:6];  % anomalous throughout
"""


@pytest.fixture()
def fake_ped1(tmp_path: Path) -> Path:
    base = tmp_path / "UCSD" / "UCSDped1"
    write_frames(base / "Train" / "Train001", 3, ".tif")
    write_frames(base / "Train" / "Train002", 4, ".tif")
    write_frames(base / "Test" / "Test001", 8, ".tif")
    write_frames(base / "Test" / "Test001_gt", 8, ".bmp")  # pixel masks: not a video
    write_frames(base / "Test" / "Test002", 6, ".jpg")
    (base / "Test" / "notes.txt").write_text("not a video")
    (base / "Test" / "UCSDped1.m").write_text(PED1_M)
    return tmp_path / "UCSD"


def test_fake_ucsd_layout(fake_ped1: Path) -> None:
    for root in (fake_ped1, fake_ped1 / "UCSDped1"):
        dataset = load_dataset("ucsd-ped1", root)
        assert dataset.name == "ucsd-ped1"
        assert [video.name for video in dataset.train] == ["Train001", "Train002"]
        assert [video.name for video in dataset.test] == ["Test001", "Test002"]
        np.testing.assert_array_equal(dataset.labels["Test001"], [0, 1, 1, 0, 0, 1, 1, 0])
        np.testing.assert_array_equal(dataset.labels["Test002"], np.ones(6, dtype=bool))
    assert load_dataset("ucsd-ped1", fake_ped1, fps=5.0).fps == 5.0


def test_ground_truth_parser_forms(tmp_path: Path) -> None:
    m_file = tmp_path / "gt.m"
    m_file.write_text(
        "TestVideoFile = {};\n"
        "TestVideoFile{2}.gt_frame = [4 6:2:10];\n"
        "TestVideoFile{1}.gt_frame = [ 1 : 3 ];\n"
        "TestVideoFile{end+1}.gt_frame = [];\n"
    )
    frames = parse_ucsd_ground_truth(m_file)
    assert [list(entry) for entry in frames] == [[1, 2, 3], [4, 6, 8, 10], []]


def test_ground_truth_parser_errors(tmp_path: Path) -> None:
    m_file = tmp_path / "gt.m"
    m_file.write_text("TestVideoFile{end+1}.gt_frame = [1:x];\n")
    with pytest.raises(InputError, match=r"gt\.m: line 1: '1:x'"):
        parse_ucsd_ground_truth(m_file)
    m_file.write_text("TestVideoFile{2}.gt_frame = [1:3];\n")
    with pytest.raises(InputError, match=r"no ground truth for test video\(s\) \[1\]"):
        parse_ucsd_ground_truth(m_file)
    m_file.write_text("gt_frame = 5\n")
    with pytest.raises(InputError, match="line 1: expected"):
        parse_ucsd_ground_truth(m_file)


def test_ucsd_range_past_video_end_names_file_and_video(fake_ped1: Path) -> None:
    m_file = fake_ped1 / "UCSDped1" / "Test" / "UCSDped1.m"
    m_file.write_text("TestVideoFile{end+1}.gt_frame = [2:3];\nTestVideoFile{end+1}.gt_frame = [1:7];\n")
    with pytest.raises(
        InputError, match="video Test002: anomalous frame 7 is past its last frame 6"
    ) as error:
        load_dataset("ucsd-ped1", fake_ped1)
    assert error.value.path == str(m_file)


def test_ucsd_entry_count_must_match_test_videos(fake_ped1: Path) -> None:
    (fake_ped1 / "UCSDped1" / "Test" / "UCSDped1.m").write_text("TestVideoFile{end+1}.gt_frame = [2:3];\n")
    with pytest.raises(InputError, match="ground truth for 1 test videos, but .* holds 2"):
        load_dataset("ucsd-ped1", fake_ped1)


def test_ucsd_missing_ground_truth_hints_at_other_subset(fake_ped1: Path) -> None:
    # Ped1 data loaded as Ped2: the subset folder lookup falls back to Train/ + Test/ ...
    with pytest.raises(InputError, match="ground-truth file not found.*UCSDped1.m") as error:
        load_dataset("ucsd-ped2", fake_ped1 / "UCSDped1")
    assert error.value.path.endswith("UCSDped2.m")
    # ... and a root holding neither layout says so.
    with pytest.raises(InputError, match="holds neither UCSDped2/ nor Train/ and Test/"):
        load_dataset("ucsd-ped2", fake_ped1)


# --------------------------------------------------------------------------- folder layout


@pytest.fixture()
def user_folder(tmp_path: Path) -> Path:
    root = tmp_path / "mine"
    write_video(root / "train" / "walk.mp4", 15)
    write_frames(root / "train" / "walk_frames", 5)
    write_video(root / "test" / "cam.mp4", 20)
    write_frames(root / "test" / "door", 10)
    (root / "train" / ".DS_Store").write_text("")
    return root


def write_labels(root: Path, text: str) -> Path:
    path = root / "labels.csv"
    path.write_text(text)
    return path


def test_folder_layout(user_folder: Path) -> None:
    write_labels(user_folder, "video,start_frame,end_frame\ncam,3,5\ncam,10,12\n\n")
    dataset = load_dataset("folder", user_folder)
    assert dataset.name == "folder"
    assert [video.name for video in dataset.train] == ["walk", "walk_frames"]
    assert [video.name for video in dataset.test] == ["cam", "door"]
    assert dataset.fps == pytest.approx(12.0)
    expected = np.zeros(20, dtype=bool)
    expected[2:5] = expected[9:12] = True
    np.testing.assert_array_equal(dataset.labels["cam"], expected)
    np.testing.assert_array_equal(dataset.labels["door"], np.zeros(10, dtype=bool))


def test_folder_without_labels_is_unlabelled(user_folder: Path) -> None:
    assert load_dataset("folder", user_folder).labels == {}


def test_folder_fps_from_argument_for_frame_folders(tmp_path: Path) -> None:
    write_frames(tmp_path / "train" / "a", 3)
    write_frames(tmp_path / "test" / "b", 3)
    assert load_dataset("folder", tmp_path).fps is None
    assert load_dataset("folder", tmp_path, fps=25.0).fps == 25.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("video,start_frame,end_frame\nlobby,1,2\n", "line 2: unknown test video 'lobby'"),
        (
            "video,start_frame,end_frame\ncam,5,21\n",
            r"line 2: end_frame 21 is past the last frame \(20\) of video 'cam'",
        ),
        ("video,start_frame,end_frame\ncam,1,2\ncam,8,4\n", "line 3: start_frame 8 is after end_frame 4"),
        ("video,start,end\ncam,1,2\n", "line 1: header must be"),
        ("", "line 1: header must be"),
        ("video,start_frame,end_frame\ncam,one,2\n", "line 2: start_frame and end_frame must be integers"),
        ("video,start_frame,end_frame\ncam,0,2\n", "line 2: start_frame 0 must be 1 or more"),
        ("video,start_frame,end_frame\ncam,1\n", "line 2: expected 3 fields"),
    ],
)
def test_labels_csv_errors_name_the_file(user_folder: Path, text: str, message: str) -> None:
    labels_path = write_labels(user_folder, text)
    with pytest.raises(InputError, match=message) as error:
        load_dataset("folder", user_folder)
    assert error.value.path == str(labels_path)


def test_folder_duplicate_names_are_errors(user_folder: Path) -> None:
    write_frames(user_folder / "test" / "cam", 4)
    with pytest.raises(InputError, match="video name 'cam' is also used by"):
        load_dataset("folder", user_folder)


def test_folder_duplicate_names_across_splits_are_errors(user_folder: Path) -> None:
    write_frames(user_folder / "test" / "walk", 4)
    with pytest.raises(InputError, match="video name 'walk' is also used by"):
        load_dataset("folder", user_folder)


def test_folder_non_video_entry_is_named(user_folder: Path) -> None:
    stray = user_folder / "test" / "notes.txt"
    stray.write_text("hello")
    with pytest.raises(InputError, match="not a video file") as error:
        load_dataset("folder", user_folder)
    assert error.value.path == str(stray)


def test_folder_needs_train_and_test(tmp_path: Path) -> None:
    write_frames(tmp_path / "train" / "a", 3)
    with pytest.raises(InputError, match="folder not found") as error:
        load_dataset("folder", tmp_path)
    assert error.value.path == str(tmp_path / "test")
    (tmp_path / "test").mkdir()
    with pytest.raises(InputError, match="holds no videos"):
        load_dataset("folder", tmp_path)


def test_synthetic_name_needs_a_generated_folder(user_folder: Path) -> None:
    with pytest.raises(InputError, match="not a generated synthetic dataset"):
        load_dataset("synthetic", user_folder)


# --------------------------------------------------------------------------- synthetic generator


@pytest.fixture(scope="module")
def synthetic_default(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "data"
    generate_synthetic_dataset(root)
    return root


def test_synthetic_default_dataset(synthetic_default: Path) -> None:
    dataset = load_dataset("synthetic", synthetic_default)
    assert dataset.name == "synthetic"
    assert dataset.fps == pytest.approx(10.0)
    assert len(dataset.train) == 4 and len(dataset.test) == 3
    for video in dataset.train + dataset.test:
        assert video.path.suffix == ".mp4"
        assert count_frames(video.path) == 150
        reader = open_video(video.path)
        assert (reader.width, reader.height) == (320, 240)
    total = sum(label.size for label in dataset.labels.values())
    anomalous = sum(int(label.sum()) for label in dataset.labels.values())
    assert 0.1 * total < anomalous < 0.9 * total
    for label in dataset.labels.values():
        assert label.any() and not label.all()
    manifest = json.loads((synthetic_default / "synthetic.json").read_text())
    assert sorted({anomaly["kind"] for anomaly in manifest["anomalies"]}) == sorted(ANOMALY_KINDS)


def _foreground_boxes(frame: np.ndarray, background: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes (x, y, w, h) of moving blobs found by background subtraction."""
    moving = (np.abs(frame.astype(np.float32) - background).max(axis=2) > 30).astype(np.uint8)
    moving = cv2.morphologyEx(moving, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats(moving)
    return [tuple(int(v) for v in row[:4]) for row in stats[1:] if row[4] >= 40]


def _decode(path: Path) -> np.ndarray:
    return np.stack(list(open_video(path)))


def test_synthetic_objects_are_found_by_background_subtraction(synthetic_default: Path) -> None:
    dataset = load_dataset("synthetic", synthetic_default)
    manifest = json.loads((synthetic_default / "synthetic.json").read_text())
    vehicle = next(anomaly for anomaly in manifest["anomalies"] if anomaly["kind"] == "unusual_object")
    # The camera is fixed: the per-pixel median over a training video is the empty scene.
    train_frames = _decode(dataset.train[0].path)
    background = np.median(train_frames[::3], axis=0)
    frames = _decode(synthetic_default / "test" / f"{vehicle['video']}.mp4")
    middle = (vehicle["start_frame"] + vehicle["end_frame"]) // 2 - 1
    boxes = _foreground_boxes(frames[middle], background)
    assert any(width >= 40 and height <= 35 for _, _, width, height in boxes), boxes
    # Training videos hold pedestrians: upright blobs, found in most frames.
    found = [_foreground_boxes(train_frames[index], background) for index in range(0, 150, 15)]
    assert sum(bool(boxes) for boxes in found) >= 8
    upright = [height > width for boxes in found for _, _, width, height in boxes]
    assert np.mean(upright) > 0.7


def test_synthetic_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    settings = {"n_train_videos": 1, "n_test_videos": 1, "n_frames": 30, "width": 160, "height": 120}
    first = generate_synthetic_dataset(tmp_path / "a", seed=7, **settings)
    second = generate_synthetic_dataset(tmp_path / "b", seed=7, **settings)
    other = generate_synthetic_dataset(tmp_path / "c", seed=8, **settings)
    assert (tmp_path / "a" / "labels.csv").read_text() == (tmp_path / "b" / "labels.csv").read_text()
    np.testing.assert_array_equal(first.labels["test_000"], second.labels["test_000"])
    frames_a = _decode(first.test[0].path)
    np.testing.assert_array_equal(frames_a, _decode(second.test[0].path))
    assert not np.array_equal(frames_a, _decode(other.test[0].path))
    assert frames_a.shape == (30, 120, 160, 3)


def test_synthetic_replaces_only_its_own_output(tmp_path: Path) -> None:
    settings = {"n_train_videos": 1, "n_test_videos": 1, "n_frames": 20, "width": 128, "height": 96}
    root = tmp_path / "demo"
    generate_synthetic_dataset(root, **settings)
    dataset = generate_synthetic_dataset(root, seed=3, **settings)
    assert len(dataset.test) == 1
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(InputError, match="not empty"):
        generate_synthetic_dataset(foreign, **settings)
    assert (foreign / "thesis.tex").read_text() == "keep me"


def test_synthetic_rejects_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="even"):
        generate_synthetic_dataset(tmp_path / "x", width=161)
    with pytest.raises(InputError, match="at least one"):
        generate_synthetic_dataset(tmp_path / "x", n_test_videos=0)
