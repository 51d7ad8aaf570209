"""CUHK Avenue (Lu, Shi and Jia, "Abnormal Event Detection at 150 FPS in MATLAB", ICCV 2013).

Layout, as the official ``Avenue_Dataset.zip`` and ``ground_truth_demo.zip`` unpack::

    ROOT/                                   (or ROOT/"Avenue Dataset"/ for the videos)
        training_videos/01.avi ... 16.avi   normal videos, 640x360, 25 fps
        testing_videos/01.avi ... 21.avi    test videos
        ground_truth_demo/testing_label_mask/1_label.mat ... 21_label.mat

``N_label.mat`` belongs to ``testing_videos/NN.avi`` (``N`` without zero padding). It is
a MATLAB v5 file whose variable ``volLabel`` is a 1xT cell array holding one HxW pixel
mask per frame; a frame is anomalous when its mask has any pixel set. The number of
masks must equal the number of frames the video decodes to.

Video names are ``train_01`` / ``test_01``: the release numbers both splits from 01, and
names must be unique across splits (shards and scores are keyed by name).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from anograph.datasets.base import Dataset, VideoRef, check_label_count, require_folder
from anograph.errors import InputError
from anograph.io.video import count_frames

AVENUE_FPS = 25.0
AVENUE_VIDEO_FOLDER = "Avenue Dataset"
LABEL_MASK_FOLDER = Path("ground_truth_demo") / "testing_label_mask"


def _base_dir(root: Path) -> Path:
    """The folder holding ``training_videos/``: ROOT itself or ROOT/"Avenue Dataset"."""
    for candidate in (root, root / AVENUE_VIDEO_FOLDER):
        if (candidate / "training_videos").is_dir():
            return candidate
    raise InputError(
        root / "training_videos",
        f"folder not found (expected the official Avenue layout: training_videos/, testing_videos/ "
        f"and ground_truth_demo/ in ROOT or in ROOT/{AVENUE_VIDEO_FOLDER}/)",
    )


def _avi_files(folder: Path) -> list[Path]:
    require_folder(folder, "the official Avenue layout with training_videos/ and testing_videos/")
    videos = sorted(path for path in folder.iterdir() if path.suffix.lower() == ".avi")
    if not videos:
        raise InputError(folder, "holds no .avi videos")
    return videos


def _video_number(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError:
        raise InputError(path, "Avenue video names must be numbers such as 01.avi") from None


def read_avenue_label_mat(mat_file: str | Path) -> np.ndarray:
    """Per-frame labels of one ``N_label.mat``: ``True`` where the frame's mask has a pixel set.

    Raises
    ------
    InputError
        Missing or unreadable file, or no ``volLabel`` cell array of 2-D masks.
    """
    mat_file = Path(mat_file)
    if not mat_file.is_file():
        raise InputError(mat_file, "ground-truth file not found")
    try:
        content = scipy.io.loadmat(str(mat_file))
    except (ValueError, TypeError, OSError, NotImplementedError) as error:
        raise InputError(mat_file, f"cannot read MATLAB file ({error})") from None
    if "volLabel" not in content:
        variables = ", ".join(sorted(key for key in content if not key.startswith("__")))
        raise InputError(mat_file, f"holds no variable 'volLabel' (variables: {variables or 'none'})")
    cells = np.asarray(content["volLabel"])
    if cells.dtype != object:
        raise InputError(mat_file, "'volLabel' is not a cell array of per-frame masks")
    labels = np.zeros(cells.size, dtype=bool)
    for index, mask in enumerate(cells.ravel()):
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise InputError(mat_file, f"'volLabel' cell {index + 1} is not a 2-D mask (shape {mask.shape})")
        labels[index] = bool(np.any(mask))
    return labels


def load_avenue(root: str | Path, fps: float | None = None) -> Dataset:
    """Load CUHK Avenue from its official layout.

    Parameters
    ----------
    root:
        Folder holding ``training_videos/``, ``testing_videos/`` and ``ground_truth_demo/``
        (or ``Avenue Dataset/`` beside ``ground_truth_demo/``).
    fps:
        Frame rate instead of Avenue's 25 fps; ``None`` (default) keeps 25.

    Raises
    ------
    InputError
        Missing folders or ground-truth files, or a ``.mat`` whose mask count differs from
        its video's frame count (naming the video and both counts).
    """
    root = Path(root)
    base = _base_dir(root)
    train = [VideoRef(f"train_{path.stem}", path) for path in _avi_files(base / "training_videos")]
    test_files = _avi_files(base / "testing_videos")
    mask_dir = next(
        (folder / LABEL_MASK_FOLDER for folder in (base, root) if (folder / LABEL_MASK_FOLDER).is_dir()),
        base / LABEL_MASK_FOLDER,
    )
    require_folder(mask_dir, "ground_truth_demo/testing_label_mask/ with one N_label.mat per test video")

    # A label file without its video means a video went missing: say so rather than skip it.
    video_numbers = {_video_number(path) for path in test_files}
    label_numbers = {
        int(prefix) for prefix in (path.name.split("_")[0] for path in mask_dir.glob("*_label.mat"))
        if prefix.isdigit()
    }
    if label_numbers - video_numbers:
        missing = ", ".join(f"{number}_label.mat" for number in sorted(label_numbers - video_numbers))
        raise InputError(mask_dir, f"ground truth for videos missing from {base / 'testing_videos'}: {missing}")

    test: list[VideoRef] = []
    labels: dict[str, np.ndarray] = {}
    for path in test_files:
        mat_file = mask_dir / f"{_video_number(path)}_label.mat"
        video_labels = read_avenue_label_mat(mat_file)
        check_label_count(path, count_frames(path), video_labels.size, mat_file)
        video = VideoRef(f"test_{path.stem}", path)
        test.append(video)
        labels[video.name] = video_labels
    return Dataset(
        name="avenue", fps=AVENUE_FPS if fps is None else float(fps), train=train, test=test, labels=labels
    )
