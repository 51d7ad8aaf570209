"""Every dataset loader through the whole pipeline: `anograph run --dataset NAME --detector motion` to report.json.

One small synthetic scene (moving pedestrians the MOG2 motion detector finds; 2 training and
2 test videos of 40 frames at 160x120, one test video with an injected anomaly) is written in
each benchmark's own layout: CUHK Avenue (``.avi`` + ``volLabel`` ``.mat`` cells), ShanghaiTech
(``.avi`` training videos, ``.jpg`` test frame folders, ``.npy`` frame masks), Street Scene
(``.jpg`` frame folders + ``TestNNN_gt.txt``), ADOC (videos by period + ``events.csv``), UCSD
(``.tif`` frame folders + ``UCSDpedN.m``) and the plain folder layout (``labels.csv``).

Each run must finish, and one video name must hold everywhere: the loader's ``VideoRef``
names are the names in the feature shards, the report's ``per_video`` and the labels.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from anograph.datasets import Dataset, generate_synthetic_dataset, load_dataset
from anograph.io.shards import read_shard
from anograph.io.storage import Storage
from flows.cli import main

N_FRAMES = 40
WIDTH, HEIGHT = 160, 120
FPS = 10.0


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Dataset:
    """The synthetic scene every layout is written from (its own layout is the ``folder`` one)."""
    return generate_synthetic_dataset(tmp_path_factory.mktemp("scene") / "data", n_train_videos=2, n_test_videos=2,
                                      n_frames=N_FRAMES, width=WIDTH, height=HEIGHT, seed=1)


def _frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == N_FRAMES
    return frames


def _avi(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (WIDTH, HEIGHT))
    for frame in _frames(source):
        writer.write(frame)
    writer.release()


def _frame_folder(source: Path, folder: Path, suffix: str = ".jpg", first: int = 1, digits: int = 5) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(_frames(source)):
        assert cv2.imwrite(str(folder / f"{first + index:0{digits}d}{suffix}"), frame)


def _avenue(scene: Dataset, root: Path) -> None:
    for number, video in enumerate(scene.train, start=1):
        _avi(video.path, root / "training_videos" / f"{number:02d}.avi")
    for number, video in enumerate(scene.test, start=1):
        _avi(video.path, root / "testing_videos" / f"{number:02d}.avi")
        cells = np.empty((1, N_FRAMES), dtype=object)
        for index, anomalous in enumerate(scene.labels[video.name]):
            mask = np.zeros((HEIGHT, WIDTH), np.uint8)
            mask[10:20, 10:20] = int(anomalous)
            cells[0, index] = mask
        masks = root / "ground_truth_demo" / "testing_label_mask"
        masks.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(str(masks / f"{number}_label.mat"), {"volLabel": cells})


def _shanghaitech(scene: Dataset, root: Path) -> None:
    for number, video in enumerate(scene.train, start=1):
        _avi(video.path, root / "training" / "videos" / f"01_{number:03d}.avi")
    for number, video in enumerate(scene.test, start=1):
        name = f"01_{number:04d}"
        _frame_folder(video.path, root / "testing" / "frames" / name, first=0, digits=3)
        (root / "testing" / "test_frame_mask").mkdir(parents=True, exist_ok=True)
        np.save(root / "testing" / "test_frame_mask" / f"{name}.npy", scene.labels[video.name].astype(np.int64))


def _street_scene(scene: Dataset, root: Path) -> None:
    for number, video in enumerate(scene.train, start=1):
        _frame_folder(video.path, root / "Train" / f"Train{number:03d}")
    for number, video in enumerate(scene.test, start=1):
        name = f"Test{number:03d}"
        _frame_folder(video.path, root / "Test" / name)
        lines = [f"{name}/{index + 1:05d}.jpg 0 40 40 20 20\n" for index in np.flatnonzero(scene.labels[video.name])]
        (root / "Test" / name / f"{name}_gt.txt").write_text("".join(lines))


def _adoc(scene: Dataset, root: Path) -> None:
    rows = ["video,event_id,frame,x1,y1,x2,y2\n"]
    for split, videos in (("train", scene.train), ("test", scene.test)):
        for period, video in zip(("day", "night"), videos, strict=True):  # one video per period
            (root / split / period).mkdir(parents=True, exist_ok=True)
            shutil.copy(video.path, root / split / period / video.path.name)
    for video in scene.test:
        rows += [f"{video.name},0,{index + 1},30,30,60,60\n" for index in np.flatnonzero(scene.labels[video.name])]
    (root / "events.csv").write_text("".join(rows))


def _ucsd(scene: Dataset, root: Path) -> None:
    base = root / "UCSDped2"
    for number, video in enumerate(scene.train, start=1):
        _frame_folder(video.path, base / "Train" / f"Train{number:03d}", suffix=".tif", digits=3)
    entries = []
    for number, video in enumerate(scene.test, start=1):
        _frame_folder(video.path, base / "Test" / f"Test{number:03d}", suffix=".tif", digits=3)
        frames = " ".join(str(index + 1) for index in np.flatnonzero(scene.labels[video.name]))
        entries.append(f"TestVideoFile{{end+1}}.gt_frame = [{frames}];\n")
    (base / "Test" / "UCSDped2.m").write_text("".join(entries))


def _folder(scene: Dataset, root: Path) -> None:
    shutil.copytree(scene.train[0].path.parents[1], root, dirs_exist_ok=True)


LAYOUTS: dict[str, Callable[[Dataset, Path], None]] = {
    "avenue": _avenue, "shanghaitech": _shanghaitech, "street-scene": _street_scene, "adoc": _adoc,
    "ucsd-ped2": _ucsd, "folder": _folder,
}


@pytest.mark.parametrize("dataset", list(LAYOUTS))  # each run takes under 20 s: not marked slow
def test_every_loader_runs_the_whole_pipeline_with_one_video_name_everywhere(scene, tmp_path, dataset, capsys):
    root = tmp_path / "data"
    root.mkdir()
    LAYOUTS[dataset](scene, root)
    loaded = load_dataset(dataset, root)
    assert len(loaded.train) == 2 and len(loaded.test) == 2
    expected_anomalous = int(sum(labels.sum() for labels in scene.labels.values()))
    assert sum(int(labels.sum()) for labels in loaded.labels.values()) == expected_anomalous > 0

    out = tmp_path / "out"
    code = main(["run", "--dataset", dataset, "--root", str(root), "--detector", "motion", "--epochs", "2",
                 "--no-appearance", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["n_test_frames"] == 2 * N_FRAMES
    assert report["n_anomalous_frames"] == expected_anomalous
    test_names = sorted(video.name for video in loaded.test)
    assert sorted(report["per_video"]) == test_names == sorted(loaded.labels)

    storage = Storage(out / "store")
    shard_names = {split: sorted(read_shard(storage, key).metadata.video
                                 for key in storage.list("shards") if f"/{split}/" in key)
                   for split in ("train", "test")}
    assert shard_names == {"train": sorted(video.name for video in loaded.train), "test": test_names}
    # Shards record where the video lies below the dataset root, never the local absolute path.
    sources = [read_shard(storage, key).metadata.source for key in storage.list("shards") if key.endswith(".parquet")]
    assert sources and all(not Path(source).is_absolute() and (root / source).exists() for source in sources)
