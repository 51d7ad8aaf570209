"""ShanghaiTech Campus (Luo, Liu and Gao, "A Revisit of Sparse Coding Based Anomaly Detection
in Stacked RNN Framework", ICCV 2017), in its official layout.

Layout, as the official archive unpacks::

    ROOT/                                       (or ROOT/shanghaitech/)
        training/videos/01_001.avi ...          normal videos of 13 scenes (330 videos)
        testing/frames/01_0014/000.jpg ...      test videos as frame folders (107 videos)
        testing/test_frame_mask/01_0014.npy     one 0/1 per frame of that video
        testing/test_pixel_mask/01_0014.npy     one HxW 0/1 mask per frame

A video's scene is the prefix of its name before ``_`` (``01`` ... ``13``), recorded as its
camera (:attr:`VideoRef.camera`): the scenes are pooled into one dataset as the paper does (the
default here), and the attribute scorer gives a camera a model of its own where its footage says so.
``scene="01"`` keeps one scene's training and test videos only.

Checks: every test video has a frame mask whose length equals its number of frames and
whose values are 0 or 1; a pixel mask, where present, has as many masks as frames (read
from the ``.npy`` header only, so the large pixel masks are never loaded); a frame mask
without frames is an error, not silently skipped. The pixel masks localise anomalies but
the release defines no boxes or tracks, so ``ground_truth_regions`` stays ``None``.

Frame rate: the test frames carry none, so the training videos' container rate is used
(all must agree), unless ``fps`` is given.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from anograph.datasets.base import Dataset, VideoRef, check_label_count, require_folder
from anograph.datasets.folder import dataset_fps
from anograph.errors import InputError
from anograph.io.video import count_frames

SHANGHAITECH_SCENES = tuple(f"{index:02d}" for index in range(1, 14))
_SCENE_PATTERN = re.compile(r"^\d{2}$")


def scene_of(video_name: str) -> str:
    """Scene of a ShanghaiTech video: the part of its name before ``_`` (``01_0014`` -> ``01``)."""
    return video_name.split("_", 1)[0]


def _base_dir(root: Path) -> Path:
    for candidate in (root, root / "shanghaitech"):
        if (candidate / "training").is_dir() and (candidate / "testing").is_dir():
            return candidate
    raise InputError(
        root / "training",
        "folder not found (expected the official ShanghaiTech layout: training/videos/, testing/frames/, "
        "testing/test_frame_mask/ in ROOT or in ROOT/shanghaitech/)",
    )


def read_frame_mask(mask_file: Path) -> np.ndarray:
    """A ``test_frame_mask/<video>.npy`` as booleans; it must be 1-D and hold only 0 and 1."""
    if not mask_file.is_file():
        raise InputError(mask_file, "frame-level ground truth not found")
    try:
        mask = np.load(mask_file, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise InputError(mask_file, f"cannot read .npy file ({error})") from None
    if mask.ndim != 1:
        raise InputError(mask_file, f"expected one 0/1 value per frame, got an array of shape {mask.shape}")
    if not np.isin(mask, (0, 1)).all():
        raise InputError(mask_file, "frame mask holds values other than 0 and 1")
    return mask.astype(bool)


def _pixel_mask_frames(mask_file: Path) -> int:
    """Number of per-frame masks in a pixel-mask ``.npy``, from its header (nothing else is read)."""
    try:
        mask = np.load(mask_file, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as error:
        raise InputError(mask_file, f"cannot read .npy file ({error})") from None
    if mask.ndim != 3:
        raise InputError(mask_file, f"expected one HxW mask per frame, got an array of shape {mask.shape}")
    return int(mask.shape[0])


def load_shanghaitech(root: str | Path, scene: str | None = None, fps: float | None = None) -> Dataset:
    """Load ShanghaiTech Campus from its official layout.

    Parameters
    ----------
    root:
        Folder holding ``training/`` and ``testing/`` (or ``shanghaitech/`` holding them).
    scene:
        ``None`` (default): all 13 scenes pooled, as the paper reports. ``"01"`` ... ``"13"``:
        that scene's videos only; the dataset is then named ``shanghaitech-01`` etc.
    fps:
        Frame rate to use; ``None`` (default) takes the training videos' container rate.

    Raises
    ------
    InputError
        Missing folders or masks, a mask whose length differs from its video's frame count
        (naming the video and both counts), or a scene with no videos.
    """
    if scene is not None and not _SCENE_PATTERN.match(scene):
        raise InputError(None, f"ShanghaiTech scene must be two digits such as 01, got {scene!r}")
    base = _base_dir(Path(root))
    videos_dir = require_folder(base / "training" / "videos", "training/videos/ with the training .avi files")
    frames_dir = require_folder(base / "testing" / "frames", "testing/frames/ with one frame folder per test video")
    frame_mask_dir = require_folder(
        base / "testing" / "test_frame_mask", "testing/test_frame_mask/ with one .npy per test video"
    )
    pixel_mask_dir = base / "testing" / "test_pixel_mask"

    train_files = sorted(path for path in videos_dir.iterdir() if path.suffix.lower() == ".avi")
    test_folders = sorted(path for path in frames_dir.iterdir() if path.is_dir() and not path.name.startswith("."))
    frame_test_names = {folder.name for folder in test_folders}
    orphans = sorted(path.name for path in frame_mask_dir.glob("*.npy") if path.stem not in frame_test_names)
    if orphans:
        raise InputError(frame_mask_dir, f"frame masks without frames in {frames_dir}: {', '.join(orphans)}")
    if scene is not None:
        train_files = [path for path in train_files if scene_of(path.stem) == scene]
        test_folders = [folder for folder in test_folders if scene_of(folder.name) == scene]
    if not train_files or not test_folders:
        where = f" of scene {scene}" if scene is not None else ""
        raise InputError(
            base, f"found {len(train_files)} training videos and {len(test_folders)} test videos{where}; need both"
        )

    labels: dict[str, np.ndarray] = {}
    for folder in test_folders:
        mask_file = frame_mask_dir / f"{folder.name}.npy"
        frame_labels = read_frame_mask(mask_file)
        n_frames = count_frames(folder)
        check_label_count(folder, n_frames, frame_labels.size, mask_file)
        pixel_mask = pixel_mask_dir / f"{folder.name}.npy"
        if pixel_mask.is_file():
            check_label_count(folder, n_frames, _pixel_mask_frames(pixel_mask), pixel_mask)
        labels[folder.name] = frame_labels

    train = [VideoRef(path.stem, path, camera=scene_of(path.stem)) for path in train_files]
    test = [VideoRef(folder.name, folder, camera=scene_of(folder.name)) for folder in test_folders]
    return Dataset(
        name="shanghaitech" if scene is None else f"shanghaitech-{scene}",
        fps=float(fps) if fps is not None else dataset_fps(train, None),
        train=train,
        test=test,
        labels=labels,
    )
