"""Pixel masks -> anomalous regions and tracks: hand-made masks, a tiny UCSD layout, real Ped2."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import ndimage

from anograph.datasets import load_dataset
from anograph.datasets.pixel_masks import mask_files, read_mask_regions, regions_from_masks
from anograph.datasets.ucsd import parse_ucsd_ground_truth
from anograph.errors import InputError
from anograph.evaluation.report import build_report, object_regions

WIDTH, HEIGHT, N_FRAMES = 40, 30, 6
# Blob A: a 4x4 square moving 3 px right per frame (1 column shared with the previous frame), frames 0-4.
MOVING = [(frame, 2 + 3 * frame, 5, 4, 4) for frame in range(5)]
# Blob B: a 5x3 box appearing at frame 2 and staying to the end, far from A.
APPEARING = [(frame, 25, 20, 5, 3) for frame in range(2, N_FRAMES)]


def draw_masks(blobs: list[tuple[int, int, int, int, int]], n_frames: int = N_FRAMES) -> list[np.ndarray]:
    """Boolean masks with the boxes ``(frame, left, top, width, height)`` filled."""
    masks = [np.zeros((HEIGHT, WIDTH), bool) for _ in range(n_frames)]
    for frame, left, top, width, height in blobs:
        masks[frame][top : top + height, left : left + width] = True
    return masks


def write_masks(folder: Path, masks: list[np.ndarray], extension: str = ".png", prefix: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, mask in enumerate(masks):
        assert cv2.imwrite(str(folder / f"{prefix}{index + 1:03d}{extension}"), mask.astype(np.uint8) * 255)
    return folder


def expected_rows(blobs: list[tuple[int, int, int, int, int]], track: int) -> list[tuple[int, ...]]:
    return [(frame, track, left, top, left + width, top + height) for frame, left, top, width, height in blobs]


def sorted_rows(rows: list[tuple[int, ...]]) -> np.ndarray:
    return np.asarray(sorted(rows), np.float64)


# --------------------------------------------------------------------------- regions and tracks


def test_moving_and_appearing_blobs_give_exact_regions_and_tracks(tmp_path: Path) -> None:
    folder = write_masks(tmp_path / "Test001_gt", draw_masks(MOVING + APPEARING))
    regions = read_mask_regions(folder, n_frames=N_FRAMES, frame_size=(WIDTH, HEIGHT))
    expected = sorted_rows(expected_rows(MOVING, 0) + expected_rows(APPEARING, 1))
    np.testing.assert_array_equal(regions, expected)
    assert regions.dtype == np.float64


@pytest.mark.parametrize("extension", [".bmp", ".tif", ".png"])
def test_lossless_extensions_and_frame_prefix_read_the_same(tmp_path: Path, extension: str) -> None:
    masks = draw_masks(MOVING + APPEARING)
    reference = regions_from_masks(masks)
    folder = write_masks(tmp_path / "Test006_gt", masks, extension, prefix="frame")
    assert [path.name for path in mask_files(folder)][:2] == [f"frame001{extension}", f"frame002{extension}"]
    np.testing.assert_array_equal(read_mask_regions(folder), reference)


def test_jpeg_masks_keep_frames_and_tracks(tmp_path: Path) -> None:
    masks = draw_masks(MOVING + APPEARING)
    reference = regions_from_masks(masks)
    regions = read_mask_regions(write_masks(tmp_path / "masks", masks, ".jpg"))
    np.testing.assert_array_equal(regions[:, :2], reference[:, :2])
    assert np.abs(regions[:, 2:] - reference[:, 2:]).max() <= 1  # compression may move an edge by a pixel


def test_diagonal_pixels_are_one_region() -> None:
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[3, 3] = mask[4, 4] = mask[5, 5] = True  # touching by corners only: 8-connected
    np.testing.assert_array_equal(regions_from_masks([mask]), [[0, 0, 3, 3, 6, 6]])


def test_region_overlapping_two_tracks_joins_the_one_sharing_most_pixels() -> None:
    left, right = (0, 2, 10, 6, 6), (0, 20, 10, 6, 6)
    # Frame 1: one wide box covering 4 columns of the left blob and 2 of the right one.
    masks = draw_masks([left, right, (1, 4, 10, 18, 6)], n_frames=2)
    regions = regions_from_masks(masks)
    np.testing.assert_array_equal(regions[:, :2], [[0, 0], [0, 1], [1, 0]])


def test_region_overlapping_two_tracks_equally_joins_the_lower_track() -> None:
    masks = draw_masks([(0, 2, 10, 6, 6), (0, 20, 10, 6, 6), (1, 5, 10, 18, 6)], n_frames=2)
    regions = regions_from_masks(masks)  # 3 columns shared with each blob
    np.testing.assert_array_equal(regions[:, :2], [[0, 0], [0, 1], [1, 0]])


def test_split_keeps_the_track_and_a_gap_starts_a_new_one() -> None:
    blobs = [
        (0, 5, 5, 20, 4),  # one region ...
        (1, 5, 5, 8, 4), (1, 17, 5, 8, 4),  # ... splits in two: both continue track 0
        (3, 5, 5, 8, 4),  # frame 2 empty: a new track
    ]
    regions = regions_from_masks(draw_masks(blobs, n_frames=4))
    np.testing.assert_array_equal(regions[:, :2], [[0, 0], [1, 0], [1, 0], [3, 1]])


def test_mask_count_or_size_differing_from_the_video_names_the_folder(tmp_path: Path) -> None:
    folder = write_masks(tmp_path / "Test001_gt", draw_masks(MOVING))
    with pytest.raises(InputError, match="holds 6 masks but its video has 7 frames") as error:
        read_mask_regions(folder, n_frames=7)
    assert error.value.path == str(folder)
    with pytest.raises(InputError, match="masks are 40x30 but the video's frames are 41x30") as error:
        read_mask_regions(folder, frame_size=(WIDTH + 1, HEIGHT))
    assert error.value.path == str(folder)


def test_unreadable_or_odd_sized_mask_names_the_file(tmp_path: Path) -> None:
    folder = write_masks(tmp_path / "masks", draw_masks(MOVING))
    (folder / "003.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="cannot read the mask image") as error:
        read_mask_regions(folder)
    assert error.value.path == str(folder / "003.png")
    assert cv2.imwrite(str(folder / "003.png"), np.zeros((HEIGHT + 1, WIDTH), np.uint8))
    with pytest.raises(InputError, match="mask is 40x31, the first mask 40x30") as error:
        read_mask_regions(folder)
    assert error.value.path == str(folder / "003.png")


# --------------------------------------------------------------------------- tiny UCSD layout


@pytest.fixture()
def fake_ped2(tmp_path: Path) -> Path:
    base = tmp_path / "UCSDped2"
    frame = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
    for video, n_frames in (("Train/Train001", 4), ("Test/Test001", N_FRAMES), ("Test/Test002", 3)):
        (base / video).mkdir(parents=True)
        for index in range(n_frames):
            assert cv2.imwrite(str(base / video / f"{index + 1:03d}.tif"), frame)
    write_masks(base / "Test" / "Test001_gt", draw_masks(MOVING + APPEARING), ".bmp")
    (base / "Test" / "UCSDped2.m").write_text(
        "TestVideoFile{end+1}.gt_frame = [1:6];\nTestVideoFile{end+1}.gt_frame = [2:3];\n"
    )
    return base


def test_load_ucsd_reads_mask_folders_and_leaves_others_none(fake_ped2: Path) -> None:
    dataset = load_dataset("ucsd-ped2", fake_ped2)
    with_masks, without_masks = dataset.test
    expected = sorted_rows(expected_rows(MOVING, 0) + expected_rows(APPEARING, 1))
    np.testing.assert_array_equal(with_masks.ground_truth_regions, expected)
    assert without_masks.ground_truth_regions is None
    np.testing.assert_array_equal(dataset.labels["Test002"], [False, True, True])  # from the .m file
    assert all(video.ground_truth_regions is None for video in dataset.train)


def test_load_ucsd_mask_count_mismatch_names_the_mask_folder(fake_ped2: Path) -> None:
    (fake_ped2 / "Test" / "Test001_gt" / "006.bmp").unlink()
    with pytest.raises(InputError, match="holds 5 masks but its video has 6 frames") as error:
        load_dataset("ucsd-ped2", fake_ped2)
    assert error.value.path == str(fake_ped2 / "Test" / "Test001_gt")


def perfect_and_misleading_reports(truth: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict:
    """A report whose ``perfect`` scorer boxes every true region first, ``misleading`` scores wrong boxes first."""
    perfect, misleading = {}, {}
    for name, regions in truth.items():
        frames, boxes = regions[:, 0], regions[:, 2:6]
        wrong = boxes + np.array([1000.0, 1000.0, 1000.0, 1000.0])  # off the image: never overlaps
        perfect[name] = object_regions(np.ones(len(regions)), frames, boxes)
        misleading[name] = np.concatenate([
            object_regions(np.full(len(regions), 2.0), frames, wrong),
            object_regions(np.ones(len(regions)), frames, boxes),
        ])
    frame_scores = {
        scorer: {name: label.astype(np.float64) for name, label in labels.items()} for scorer in ("perfect", "misleading")
    }
    return build_report(
        frame_scores, labels, dataset="ucsd-ped2", detector="ground-truth boxes",
        default_scorer="perfect", default_scorer_reason="test",
        object_regions={"perfect": perfect, "misleading": misleading}, ground_truth_regions=truth,
    )


def check_region_report(report: dict, truth: dict[str, np.ndarray]) -> None:
    metrics = report["region_metrics"]
    assert metrics["available"] is True
    assert metrics["n_regions"] == sum(len(regions) for regions in truth.values())
    assert metrics["n_tracks"] == sum(len(np.unique(regions[:, 1])) for regions in truth.values())
    perfect, misleading = metrics["scorers"]["perfect"], metrics["scorers"]["misleading"]
    assert perfect["rbdc"] == pytest.approx(1.0) and perfect["tbdc"] == pytest.approx(1.0)
    for key in ("rbdc", "tbdc"):
        assert math.isfinite(misleading[key]) and 0 <= misleading[key] < perfect[key]


def test_report_computes_rbdc_tbdc_from_mask_regions(fake_ped2: Path) -> None:
    dataset = load_dataset("ucsd-ped2", fake_ped2)
    video = dataset.test[0]
    truth = {video.name: video.ground_truth_regions}
    report = perfect_and_misleading_reports(truth, {video.name: dataset.labels[video.name]})
    check_region_report(report, truth)


# --------------------------------------------------------------------------- real Ped2


@pytest.mark.shared_data
def test_real_ped2_regions_agree_with_the_frame_ground_truth(ped2_root: Path) -> None:
    dataset = load_dataset("ucsd-ped2", ped2_root)
    test_dir = ped2_root / "UCSDped2" / "Test"
    official = parse_ucsd_ground_truth(test_dir / "UCSDped2.m")
    n_regions = n_components = n_anomalous = 0
    for video, frames in zip(dataset.test, official, strict=True):
        regions = video.ground_truth_regions
        assert regions is not None, video.name
        # Frames holding a region are exactly the .m file's anomalous frames.
        np.testing.assert_array_equal(np.unique(regions[:, 0]).astype(int) + 1, frames, err_msg=video.name)
        n_anomalous += len(frames)
        n_regions += len(regions)
        assert np.all(regions[:, 4] > regions[:, 2]) and np.all(regions[:, 5] > regions[:, 3])
        assert regions[:, 4].max() <= 360 and regions[:, 5].max() <= 240
        # Track ids number the tracks 0, 1, ... with no gap.
        tracks = np.unique(regions[:, 1])
        np.testing.assert_array_equal(tracks, np.arange(len(tracks)))
        # Region count checked against an independent labelling (SciPy, 8-connectivity).
        for path in mask_files(test_dir / f"{video.name}_gt"):
            mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 127
            n_components += ndimage.label(mask, structure=np.ones((3, 3)))[1]
    assert n_anomalous == sum(int(label.sum()) for label in dataset.labels.values())
    assert n_regions == n_components


@pytest.mark.shared_data
def test_real_ped2_report_gives_rbdc_tbdc(ped2_root: Path) -> None:
    dataset = load_dataset("ucsd-ped2", ped2_root)
    truth = {video.name: video.ground_truth_regions for video in dataset.test}
    check_region_report(perfect_and_misleading_reports(truth, dataset.labels), truth)
