"""Reading videos and frame folders, and the errors that name the bad file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from anograph.errors import VideoReadError
from anograph.io.video import count_frames, is_video_source, open_video

WIDTH, HEIGHT = 64, 48


def write_video(
    path: Path, n_frames: int, fourcc: str, fps: float = 10.0, noise: bool = False
) -> list[np.ndarray]:
    """Write ``n_frames`` frames whose brightness rises frame by frame; return them."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (WIDTH, HEIGHT))
    assert writer.isOpened(), f"this OpenCV cannot write {fourcc} to {path.suffix}"
    rng = np.random.default_rng(0)
    frames = []
    for index in range(n_frames):
        frame = (
            rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
            if noise
            else np.full((HEIGHT, WIDTH, 3), 10 + 20 * index, np.uint8)
        )
        writer.write(frame)
        frames.append(frame)
    writer.release()
    return frames


@pytest.mark.parametrize(("suffix", "fourcc"), [(".mp4", "mp4v"), (".avi", "MJPG")])
def test_video_file_frames_in_order(tmp_path: Path, suffix: str, fourcc: str) -> None:
    path = tmp_path / f"clip{suffix}"
    written = write_video(path, 12, fourcc, fps=10.0)
    reader = open_video(path)
    assert (reader.name, reader.width, reader.height, reader.n_frames) == ("clip", WIDTH, HEIGHT, 12)
    assert reader.fps == pytest.approx(10.0)
    frames = list(reader)
    assert len(frames) == 12
    assert all(frame.shape == (HEIGHT, WIDTH, 3) and frame.dtype == np.uint8 for frame in frames)
    # Lossy codecs shift values a little, but the brightness ramp must survive in order.
    means = [float(frame.mean()) for frame in frames]
    assert np.all(np.diff(means) > 5)
    assert means[0] == pytest.approx(float(written[0].mean()), abs=6)
    assert count_frames(path) == 12
    assert is_video_source(path)


def test_frame_folder_grey_and_tif(tmp_path: Path) -> None:
    folder = tmp_path / "Test007"
    folder.mkdir()
    for index in range(3):
        grey = np.full((HEIGHT, WIDTH), 50 * (index + 1), np.uint8)
        cv2.imwrite(str(folder / f"{index + 1:03d}.tif"), grey)
    (folder / "notes.txt").write_text("not a frame")
    reader = open_video(folder, fps=10)
    assert (reader.name, reader.n_frames, reader.fps, reader.width, reader.height) == (
        "Test007",
        3,
        10,
        WIDTH,
        HEIGHT,
    )
    frames = list(reader)
    assert [frame.shape for frame in frames] == [(HEIGHT, WIDTH, 3)] * 3
    assert [int(frame[0, 0, 1]) for frame in frames] == [50, 100, 150]
    assert is_video_source(folder)


def test_frame_folder_sorted_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "clip"
    folder.mkdir()
    for name, value in [("002.png", 20), ("001.png", 10), ("010.png", 30)]:
        cv2.imwrite(str(folder / name), np.full((HEIGHT, WIDTH, 3), value, np.uint8))
    assert [int(frame[0, 0, 0]) for frame in open_video(folder)] == [10, 20, 30]


def test_missing_path_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.mp4"
    with pytest.raises(VideoReadError, match="no such file") as caught:
        open_video(missing)
    assert caught.value.path == str(missing)


def test_corrupt_video_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(VideoReadError) as caught:
        open_video(path)
    assert caught.value.path == str(path)
    assert "broken.mp4" in str(caught.value)


def test_video_that_stops_decoding_is_named(tmp_path: Path) -> None:
    path = tmp_path / "damaged.avi"
    write_video(path, 20, "MJPG", noise=True)
    data = bytearray(path.read_bytes())
    start, stop = int(len(data) * 0.3), int(len(data) * 0.9)
    data[start:stop] = bytes(stop - start)  # wipe most frames but keep the container header and index
    path.write_bytes(bytes(data))
    reader = open_video(path)
    with pytest.raises(VideoReadError, match="decoding stopped") as caught:
        list(reader)
    assert caught.value.path == str(path)


def test_undecodable_image_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "clip"
    folder.mkdir()
    cv2.imwrite(str(folder / "001.jpg"), np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    (folder / "002.jpg").write_bytes(b"this is not a jpeg")
    reader = open_video(folder)
    with pytest.raises(VideoReadError, match="cannot decode") as caught:
        list(reader)
    assert caught.value.path == str(folder / "002.jpg")


def test_frame_of_other_size_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "clip"
    folder.mkdir()
    cv2.imwrite(str(folder / "001.png"), np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    cv2.imwrite(str(folder / "002.png"), np.zeros((HEIGHT + 2, WIDTH, 3), np.uint8))
    with pytest.raises(VideoReadError, match="differs") as caught:
        list(open_video(folder))
    assert caught.value.path == str(folder / "002.png")


def test_folder_without_images_and_non_video_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoReadError, match="no frame images"):
        open_video(empty)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(VideoReadError, match="not a video file"):
        open_video(text)
    assert not is_video_source(empty)


@pytest.mark.shared_data
def test_real_ped2_folder(ped2_root: Path) -> None:
    reader = open_video(ped2_root / "UCSDped2" / "Test" / "Test001")
    assert (reader.width, reader.height, reader.n_frames) == (360, 240, 180)
    first = next(iter(reader))
    assert first.shape == (240, 360, 3)
