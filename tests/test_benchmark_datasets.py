"""Loaders of the paper's benchmarks, each on a tiny copy the test writes in the dataset's own format.

Avenue: real ``.avi`` files and MATLAB v5 ``.mat`` files whose ``volLabel`` is a cell array;
ShanghaiTech: ``.avi`` training videos, ``.jpg`` test frames and ``.npy`` masks; Street Scene:
``.jpg`` frames and ``TestNNN_gt.txt`` region files; ADOC: videos and frame folders by period
plus ``events.csv``. Every loader also gets a frame-count / label mismatch that must raise.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from anograph.datasets import REGION_COLUMNS, dataset_variant, load_dataset
from anograph.datasets.avenue import AVENUE_FPS
from anograph.datasets.street_scene import STREET_SCENE_FPS
from anograph.errors import InputError
from flows.cli import main as cli_main

SIZE = (32, 24)  # width, height: tiny frames keep the tests fast


def write_avi(path: Path, n_frames: int, fps: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, SIZE)
    assert writer.isOpened()
    for index in range(n_frames):
        writer.write(np.full((SIZE[1], SIZE[0], 3), (index * 23) % 255, dtype=np.uint8))
    writer.release()
    return path


def write_jpgs(folder: Path, n_frames: int, first: int = 1, digits: int = 5) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(n_frames):
        image = np.full((SIZE[1], SIZE[0], 3), (index * 31) % 255, dtype=np.uint8)
        assert cv2.imwrite(str(folder / f"{first + index:0{digits}d}.jpg"), image)
    return folder


# --------------------------------------------------------------------------- CUHK Avenue


def write_avenue_mat(path: Path, anomalous: list[bool]) -> Path:
    """``volLabel`` as MATLAB stores it: a 1xT cell array of HxW masks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cells = np.empty((1, len(anomalous)), dtype=object)
    for index, flag in enumerate(anomalous):
        mask = np.zeros((SIZE[1], SIZE[0]), dtype=np.uint8)
        if flag:
            mask[5:9, 10 + index : 14 + index] = 1
        cells[0, index] = mask
    scipy.io.savemat(str(path), {"volLabel": cells})
    return path


AVENUE_TEST_1 = [False, True, True, False, False, True]
AVENUE_TEST_2 = [False, False, False, False]


@pytest.fixture()
def avenue_root(tmp_path: Path) -> Path:
    root = tmp_path / "avenue"
    write_avi(root / "training_videos" / "01.avi", 5, AVENUE_FPS)
    write_avi(root / "training_videos" / "02.avi", 4, AVENUE_FPS)
    write_avi(root / "testing_videos" / "01.avi", len(AVENUE_TEST_1), AVENUE_FPS)
    write_avi(root / "testing_videos" / "02.avi", len(AVENUE_TEST_2), AVENUE_FPS)
    masks = root / "ground_truth_demo" / "testing_label_mask"
    write_avenue_mat(masks / "1_label.mat", AVENUE_TEST_1)
    write_avenue_mat(masks / "2_label.mat", AVENUE_TEST_2)
    return root


def test_avenue_official_layout(avenue_root: Path) -> None:
    dataset = load_dataset("avenue", avenue_root)
    assert dataset.name == "avenue"
    assert dataset.fps == AVENUE_FPS == 25.0
    assert [video.name for video in dataset.train] == ["train_01", "train_02"]
    assert [video.name for video in dataset.test] == ["test_01", "test_02"]
    assert dataset.test[0].path == avenue_root / "testing_videos" / "01.avi"
    np.testing.assert_array_equal(dataset.labels["test_01"], AVENUE_TEST_1)
    np.testing.assert_array_equal(dataset.labels["test_02"], AVENUE_TEST_2)
    assert all(video.ground_truth_regions is None for video in dataset.train + dataset.test)
    assert load_dataset("avenue", avenue_root, fps=12.5).fps == 12.5


def test_avenue_videos_in_avenue_dataset_folder(avenue_root: Path) -> None:
    inner = avenue_root / "Avenue Dataset"
    inner.mkdir()
    for folder in ("training_videos", "testing_videos"):
        (avenue_root / folder).rename(inner / folder)
    dataset = load_dataset("avenue", avenue_root)  # ground_truth_demo/ beside "Avenue Dataset/"
    np.testing.assert_array_equal(dataset.labels["test_01"], AVENUE_TEST_1)


def test_avenue_mask_count_mismatch_names_video_and_counts(avenue_root: Path) -> None:
    mat = write_avenue_mat(avenue_root / "ground_truth_demo" / "testing_label_mask" / "1_label.mat", [True] * 5)
    with pytest.raises(InputError, match=r"video has 6 frames but its ground truth .*1_label\.mat labels 5") as error:
        load_dataset("avenue", avenue_root)
    assert error.value.path == str(avenue_root / "testing_videos" / "01.avi")
    assert str(mat) in str(error.value)


def test_avenue_missing_and_bad_ground_truth(avenue_root: Path) -> None:
    masks = avenue_root / "ground_truth_demo" / "testing_label_mask"
    (masks / "2_label.mat").unlink()
    with pytest.raises(InputError, match="ground-truth file not found") as error:
        load_dataset("avenue", avenue_root)
    assert error.value.path == str(masks / "2_label.mat")
    scipy.io.savemat(str(masks / "2_label.mat"), {"gt": np.zeros((2, 2))})
    with pytest.raises(InputError, match="holds no variable 'volLabel' \\(variables: gt\\)"):
        load_dataset("avenue", avenue_root)
    scipy.io.savemat(str(masks / "2_label.mat"), {"volLabel": np.zeros((1, 4))})
    with pytest.raises(InputError, match="not a cell array"):
        load_dataset("avenue", avenue_root)
    write_avenue_mat(masks / "2_label.mat", AVENUE_TEST_2)
    write_avenue_mat(masks / "3_label.mat", [False])
    with pytest.raises(InputError, match="ground truth for videos missing from .*: 3_label.mat"):
        load_dataset("avenue", avenue_root)


def test_avenue_missing_folders_name_the_expected_path(avenue_root: Path) -> None:
    (avenue_root / "ground_truth_demo" / "testing_label_mask" / "1_label.mat").unlink()
    (avenue_root / "ground_truth_demo" / "testing_label_mask" / "2_label.mat").unlink()
    (avenue_root / "ground_truth_demo" / "testing_label_mask").rmdir()
    with pytest.raises(InputError, match="folder not found") as error:
        load_dataset("avenue", avenue_root)
    assert error.value.path == str(avenue_root / "ground_truth_demo" / "testing_label_mask")
    empty = avenue_root.parent / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="official Avenue layout") as error:
        load_dataset("avenue", empty)
    assert error.value.path == str(empty / "training_videos")


# --------------------------------------------------------------------------- ShanghaiTech Campus

SHANGHAITECH_FPS = 24.0


@pytest.fixture()
def shanghaitech_root(tmp_path: Path) -> Path:
    root = tmp_path / "shanghaitech"
    write_avi(root / "training" / "videos" / "01_001.avi", 4, SHANGHAITECH_FPS)
    write_avi(root / "training" / "videos" / "02_001.avi", 3, SHANGHAITECH_FPS)
    testing = root / "testing"
    for name, flags in (("01_0014", [0, 0, 1, 1, 0]), ("02_0161", [1, 0, 0])):
        write_jpgs(testing / "frames" / name, len(flags), first=0, digits=3)
        (testing / "test_frame_mask").mkdir(parents=True, exist_ok=True)
        np.save(testing / "test_frame_mask" / f"{name}.npy", np.asarray(flags, dtype=np.int64))
        pixels = np.zeros((len(flags), SIZE[1], SIZE[0]), dtype=np.uint8)
        pixels[np.asarray(flags, dtype=bool), 3:6, 3:6] = 1
        (testing / "test_pixel_mask").mkdir(parents=True, exist_ok=True)
        np.save(testing / "test_pixel_mask" / f"{name}.npy", pixels)
    return root


def test_shanghaitech_all_scenes_pooled(shanghaitech_root: Path) -> None:
    dataset = load_dataset("shanghaitech", shanghaitech_root)
    assert dataset.name == "shanghaitech"
    assert dataset.fps == pytest.approx(SHANGHAITECH_FPS)  # from the training containers
    assert [video.name for video in dataset.train] == ["01_001", "02_001"]
    assert [video.name for video in dataset.test] == ["01_0014", "02_0161"]
    np.testing.assert_array_equal(dataset.labels["01_0014"], [0, 0, 1, 1, 0])
    np.testing.assert_array_equal(dataset.labels["02_0161"], [1, 0, 0])
    assert dataset.labels["01_0014"].dtype == bool
    assert all(video.ground_truth_regions is None for video in dataset.test)
    # Each scene is its own fixed camera: the attribute scorer models each on its own footage.
    assert [video.camera for video in dataset.train + dataset.test] == ["01", "02", "01", "02"]


def test_shanghaitech_one_scene(shanghaitech_root: Path) -> None:
    for dataset in (
        load_dataset("shanghaitech", shanghaitech_root, scene="02"),
        load_dataset("shanghaitech-02", shanghaitech_root),
    ):
        assert dataset.name == "shanghaitech-02"
        assert [video.name for video in dataset.train] == ["02_001"]
        assert [video.name for video in dataset.test] == ["02_0161"]
        assert list(dataset.labels) == ["02_0161"]
    with pytest.raises(InputError, match="found 0 training videos and 0 test videos of scene 07"):
        load_dataset("shanghaitech", shanghaitech_root, scene="07")
    with pytest.raises(InputError, match="two digits"):
        load_dataset("shanghaitech", shanghaitech_root, scene="1")


def test_shanghaitech_mask_length_mismatch_names_video_and_counts(shanghaitech_root: Path) -> None:
    mask = shanghaitech_root / "testing" / "test_frame_mask" / "01_0014.npy"
    np.save(mask, np.zeros(6, dtype=np.int64))
    with pytest.raises(InputError, match=r"video has 5 frames but its ground truth .*01_0014\.npy labels 6") as error:
        load_dataset("shanghaitech", shanghaitech_root)
    assert error.value.path == str(shanghaitech_root / "testing" / "frames" / "01_0014")


def test_shanghaitech_pixel_mask_count_is_checked(shanghaitech_root: Path) -> None:
    np.save(shanghaitech_root / "testing" / "test_pixel_mask" / "02_0161.npy", np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(InputError, match=r"video has 3 frames but its ground truth .*test_pixel_mask.*labels 2"):
        load_dataset("shanghaitech", shanghaitech_root)


def test_shanghaitech_bad_masks_and_missing_parts(shanghaitech_root: Path) -> None:
    masks = shanghaitech_root / "testing" / "test_frame_mask"
    np.save(masks / "02_0161.npy", np.asarray([0, 2, 1]))
    with pytest.raises(InputError, match="values other than 0 and 1"):
        load_dataset("shanghaitech", shanghaitech_root)
    np.save(masks / "02_0161.npy", np.asarray([1, 0, 0]))
    np.save(masks / "03_0033.npy", np.asarray([1, 0]))
    with pytest.raises(InputError, match="frame masks without frames in .*: 03_0033.npy"):
        load_dataset("shanghaitech", shanghaitech_root)
    (masks / "03_0033.npy").unlink()
    (masks / "01_0014.npy").unlink()
    with pytest.raises(InputError, match="frame-level ground truth not found") as error:
        load_dataset("shanghaitech", shanghaitech_root)
    assert error.value.path == str(masks / "01_0014.npy")
    for path in masks.iterdir():
        path.unlink()
    masks.rmdir()
    with pytest.raises(InputError, match="folder not found") as error:
        load_dataset("shanghaitech", shanghaitech_root)
    assert error.value.path == str(masks)


# --------------------------------------------------------------------------- Street Scene

# centre column, centre row, width, height -> x1 = cx - w/2 ...
STREET_GT_1 = "Test001/00002.jpg 0 10 8 4 6\nTest001/00003.jpg 0 11 8 4 6\nTest001/00003.jpg 1 20.5 12 5 4\n"
STREET_GT_2 = "Test002/00004.jpg 0 5 5 2 2\n"


@pytest.fixture()
def street_root(tmp_path: Path) -> Path:
    root = tmp_path / "StreetScene"
    write_jpgs(root / "Train" / "Train001", 3)
    write_jpgs(root / "Train" / "Train002", 2)
    write_jpgs(root / "Test" / "Test001", 6)
    (root / "Test" / "Test001" / "Test001_gt.txt").write_text(STREET_GT_1)
    write_jpgs(root / "Test" / "Test002", 4)
    # Test002's ground truth in its mask folder, beside per-frame mask images (not a video).
    write_jpgs(root / "Test" / "Test002_gt", 4)
    (root / "Test" / "Test002_gt" / "Test002_gt.txt").write_text(STREET_GT_2)
    return root


def test_street_scene_frames_labels_and_regions(street_root: Path) -> None:
    dataset = load_dataset("street-scene", street_root)
    assert dataset.name == "street-scene"
    assert dataset.fps == STREET_SCENE_FPS == 15.0
    assert [video.name for video in dataset.train] == ["Train001", "Train002"]
    assert [video.name for video in dataset.test] == ["Test001", "Test002"]
    np.testing.assert_array_equal(dataset.labels["Test001"], [0, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(dataset.labels["Test002"], [0, 0, 0, 1])
    assert REGION_COLUMNS == ("frame", "track_id", "x1", "y1", "x2", "y2")
    regions = dataset.test[0].ground_truth_regions
    assert regions.dtype == np.float64
    np.testing.assert_allclose(regions, [
        [1, 0, 8, 5, 12, 11],
        [2, 0, 9, 5, 13, 11],
        [2, 1, 18, 10, 23, 14],
    ])
    np.testing.assert_allclose(dataset.test[1].ground_truth_regions, [[3, 0, 4, 4, 6, 6]])
    assert all(video.ground_truth_regions is None for video in dataset.train)
    # The parent of StreetScene/ is accepted as root too.
    assert [video.name for video in load_dataset("street-scene", street_root.parent).test] == ["Test001", "Test002"]


def test_street_scene_region_past_video_end_names_video_and_counts(street_root: Path) -> None:
    gt = street_root / "Test" / "Test001" / "Test001_gt.txt"
    gt.write_text(STREET_GT_1 + "Test001/00007.jpg 1 20 12 5 4\n")
    with pytest.raises(InputError, match=r"video has 6 frames but its ground truth .*Test001_gt\.txt annotates frame 7") as error:
        load_dataset("street-scene", street_root)
    assert error.value.path == str(street_root / "Test" / "Test001")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Test001/00002.jpg 0 10 8 4\n", "line 1: expected 6 fields"),
        ("Test001/frame.jpg 0 10 8 4 6\n", "line 1: 'Test001/frame.jpg' is not a frame image"),
        ("Test001/00002.jpg x 10 8 4 6\n", "line 1: track must be an integer"),
        ("Test001/00002.jpg -1 10 8 4 6\n", "line 1: track number -1"),
        ("Test001/00002.jpg 0 10 8 0 6\n", "line 1: box width and height must be positive"),
    ],
)
def test_street_scene_bad_lines_name_file_and_line(street_root: Path, line: str, message: str) -> None:
    gt = street_root / "Test" / "Test001" / "Test001_gt.txt"
    gt.write_text(line)
    with pytest.raises(InputError, match=message) as error:
        load_dataset("street-scene", street_root)
    assert error.value.path == str(gt)


def test_street_scene_ground_truth_must_be_found_once(street_root: Path) -> None:
    (street_root / "Test" / "Test002_gt.txt").write_text(STREET_GT_2)
    with pytest.raises(InputError, match="ground truth found twice"):
        load_dataset("street-scene", street_root)
    (street_root / "Test" / "Test002_gt.txt").unlink()
    (street_root / "Test" / "Test002_gt" / "Test002_gt.txt").unlink()
    with pytest.raises(InputError, match="no ground truth Test002_gt.txt") as error:
        load_dataset("street-scene", street_root)
    assert error.value.path == str(street_root / "Test" / "Test002")


# --------------------------------------------------------------------------- ADOC

ADOC_EVENTS = (
    "video,event_id,frame,x1,y1,x2,y2\n"
    "noon,0,2,1,2,11,12\n"
    "noon,0,3,2,2,12,12\n"
    "noon,1,3,20,5,30,15\n"
    "midnight,4,1,0,0,5,5\n"
)


@pytest.fixture()
def adoc_root(tmp_path: Path) -> Path:
    root = tmp_path / "adoc"
    write_avi(root / "train" / "day" / "morning.avi", 4, 3.0)
    write_jpgs(root / "train" / "night" / "late", 3)
    write_avi(root / "test" / "day" / "noon.avi", 5, 3.0)
    write_jpgs(root / "test" / "day" / "evening", 2)
    write_jpgs(root / "test" / "night" / "midnight", 4)
    (root / "events.csv").write_text(ADOC_EVENTS)
    return root


def test_adoc_day_night_and_all(adoc_root: Path) -> None:
    everything = load_dataset("adoc", adoc_root)
    assert everything.name == "adoc"
    assert everything.fps == 3.0
    assert [video.name for video in everything.train] == ["morning", "late"]
    assert [video.name for video in everything.test] == ["evening", "noon", "midnight"]
    np.testing.assert_array_equal(everything.labels["noon"], [0, 1, 1, 0, 0])
    np.testing.assert_array_equal(everything.labels["evening"], [0, 0])
    np.testing.assert_array_equal(everything.labels["midnight"], [1, 0, 0, 0])
    regions = {video.name: video.ground_truth_regions for video in everything.test}
    np.testing.assert_allclose(regions["noon"], [[1, 0, 1, 2, 11, 12], [2, 0, 2, 2, 12, 12], [2, 1, 20, 5, 30, 15]])
    assert regions["evening"].shape == (0, 6)
    np.testing.assert_allclose(regions["midnight"], [[0, 4, 0, 0, 5, 5]])

    day = load_dataset("adoc", adoc_root, adoc_split="day")
    assert day.name == "adoc-day"
    assert [video.name for video in day.train] == ["morning"]
    assert [video.name for video in day.test] == ["evening", "noon"]
    night = load_dataset("adoc-night", adoc_root)
    assert [video.name for video in night.train] == ["late"]
    assert list(night.labels) == ["midnight"]


def test_adoc_event_past_video_end_names_video_and_counts(adoc_root: Path) -> None:
    (adoc_root / "events.csv").write_text(ADOC_EVENTS + "noon,2,6,0,0,4,4\n")
    with pytest.raises(InputError, match=r"video has 5 frames but its ground truth .*events\.csv annotates frame 6") as error:
        load_dataset("adoc", adoc_root, adoc_split="day")
    assert error.value.path == str(adoc_root / "test" / "day" / "noon.avi")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("video,frame\n", "line 1: header must be"),
        ("video,event_id,frame,x1,y1,x2,y2\nlobby,0,1,0,0,1,1\n", "line 2: unknown test video 'lobby'"),
        ("video,event_id,frame,x1,y1,x2,y2\nnoon,0,0,0,0,1,1\n", "line 2: frame 0 must be 1 or more"),
        ("video,event_id,frame,x1,y1,x2,y2\nnoon,a,1,0,0,1,1\n", "line 2: event_id and frame must be integers"),
        ("video,event_id,frame,x1,y1,x2,y2\nnoon,0,1,5,0,1,1\n", "line 2: box must have x2 > x1"),
        ("video,event_id,frame,x1,y1,x2,y2\nnoon,0,1\n", "line 2: expected 7 fields"),
    ],
)
def test_adoc_bad_events_name_the_file(adoc_root: Path, text: str, message: str) -> None:
    (adoc_root / "events.csv").write_text(text)
    with pytest.raises(InputError, match=message) as error:
        load_dataset("adoc", adoc_root)
    assert error.value.path == str(adoc_root / "events.csv")


def test_adoc_missing_parts(adoc_root: Path) -> None:
    (adoc_root / "events.csv").unlink()
    with pytest.raises(InputError, match="event annotations not found"):
        load_dataset("adoc", adoc_root)
    (adoc_root / "events.csv").write_text(ADOC_EVENTS)
    write_jpgs(adoc_root / "test" / "night" / "noon", 2)
    with pytest.raises(InputError, match="video name 'noon' is also used by"):
        load_dataset("adoc", adoc_root)
    for path in (adoc_root / "test" / "night" / "noon").iterdir():
        path.unlink()
    (adoc_root / "test" / "night" / "noon").rmdir()
    night = adoc_root / "train" / "night"
    for path in (night / "late").iterdir():
        path.unlink()
    (night / "late").rmdir()
    night.rmdir()
    with pytest.raises(InputError, match="folder not found") as error:
        load_dataset("adoc", adoc_root, adoc_split="night")
    assert error.value.path == str(night)
    assert [video.name for video in load_dataset("adoc", adoc_root, adoc_split="day").train] == ["morning"]


# --------------------------------------------------------------------------- registry and CLI


def test_variant_names() -> None:
    assert dataset_variant("shanghaitech") == "shanghaitech"
    assert dataset_variant("shanghaitech", scene="05") == "shanghaitech-05"
    assert dataset_variant("adoc", adoc_split="night") == "adoc-night"
    assert dataset_variant("adoc", adoc_split="all") == "adoc"
    with pytest.raises(InputError, match="scene can only be chosen for shanghaitech"):
        dataset_variant("avenue", scene="01")
    with pytest.raises(InputError, match="split can only be chosen for adoc"):
        dataset_variant("street-scene", adoc_split="day")


def test_unknown_variant_is_an_error(adoc_root: Path) -> None:
    with pytest.raises(InputError, match="ADOC variants are adoc-day and adoc-night"):
        load_dataset("adoc-dusk", adoc_root)
    with pytest.raises(InputError, match="unknown dataset 'avenue-2'"):
        load_dataset("avenue-2", adoc_root)


def test_cli_rejects_an_option_of_another_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["run", "--dataset", "avenue", "--scene", "01", "--root", str(tmp_path),
                     "--out", str(tmp_path / "out")])
    assert code == 2
    assert "a scene can only be chosen for shanghaitech" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # failed before any pipeline work


@pytest.mark.slow
def test_cli_runs_an_adoc_split_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The variant name travels through the flows: loader, model key, report and Prefect artifact."""
    import json

    from anograph.datasets import generate_synthetic_dataset

    synthetic = generate_synthetic_dataset(
        tmp_path / "synthetic", n_train_videos=2, n_test_videos=1, n_frames=40, width=160, height=120, seed=1
    )
    root = tmp_path / "adoc"
    for split, videos in (("train", synthetic.train), ("test", synthetic.test)):
        (root / split / "day").mkdir(parents=True)
        (root / split / "night").mkdir()
        for video in videos:
            video.path.rename(root / split / "day" / video.path.name)
    anomalous = np.flatnonzero(synthetic.labels["test_000"]) + 1
    (root / "events.csv").write_text(
        "video,event_id,frame,x1,y1,x2,y2\n" + "".join(f"test_000,0,{frame},0,0,160,120\n" for frame in anomalous)
    )

    out = tmp_path / "out"
    code = cli_main(["run", "--dataset", "adoc", "--adoc-split", "day", "--root", str(root), "--detector", "motion",
                     "--out", str(out), "--epochs", "2", "--no-appearance"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"] == "adoc-day"
    assert report["n_test_frames"] == 40
    assert report["n_anomalous_frames"] == anomalous.size > 0
    assert list((out / "store" / "models").glob("adoc-day-*"))
