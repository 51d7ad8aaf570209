"""UCSD Pedestrian (Ped1 / Ped2) in its official folder layout.

Layout (Mahadevan et al., "Anomaly Detection in Crowded Scenes", CVPR 2010)::

    UCSDped2/
        Train/Train001/001.tif ...      normal videos, one folder of frames each
        Test/Test001/001.tif ...        test videos
        Test/Test001_gt/001.bmp ...     pixel masks (optional; some videos only, in Ped1)
        Test/UCSDped2.m                 frame-level ground truth

``UCSDped2.m`` is a MATLAB script with one entry per test video, in order::

    TestVideoFile{end+1}.gt_frame = [61:180];
    TestVideoFile{end+1}.gt_frame = [5:90, 140:200];    % Ped1 has several ranges

Frames are 1-based and inclusive. The parser also accepts explicit indices
(``TestVideoFile{3}``), comma- or space-separated lists, single frames, ``a:step:b``
and ``%`` comments, and checks every frame against the number of frames in the
video's folder.

Pixel masks: where a test video has a ``<video>_gt/`` folder beside it, holding one mask
image per frame (the official release names them ``001.bmp`` onwards, but ``frame001.bmp``
onwards in Ped2's ``Test006_gt``, ``Test009_gt`` and ``Test012_gt``; they sort the same), its
``ground_truth_regions`` are the masks' connected components, linked into tracks by overlap
(:mod:`anograph.datasets.pixel_masks`), so RBDC / TBDC can be measured. Videos without such a
folder keep ``ground_truth_regions = None``. Frame labels always come from the ``.m`` file,
the official frame-level ground truth.

Frame rate: the UCSD pedestrian footage was downsampled to 10 fps (Chan, Liang and
Vasconcelos, "Privacy preserving crowd monitoring", CVPR 2008, which introduced the
recordings the anomaly dataset is cut from). The folders store no rate, so
:data:`UCSD_FPS` is used.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from anograph.datasets.base import Dataset, VideoRef, check_region_frames, frame_folders
from anograph.datasets.pixel_masks import read_mask_regions
from anograph.errors import InputError
from anograph.io.video import count_frames, open_video

UCSD_FPS = 10.0

#: Dataset name (as on the command line) -> subset folder name.
UCSD_SUBSETS = {"ucsd-ped1": "UCSDped1", "ucsd-ped2": "UCSDped2"}

_ENTRY = re.compile(
    r"TestVideoFile\s*\{\s*(?P<index>end\s*\+\s*1|\d+)\s*\}\s*\.\s*gt_frame\s*=\s*\[(?P<body>[^\]]*)\]"
)


def parse_ucsd_ground_truth(m_file: str | Path) -> list[np.ndarray]:
    """Read a UCSD ``.m`` ground-truth file.

    Parameters
    ----------
    m_file:
        Path to ``UCSDped1.m`` or ``UCSDped2.m``.

    Returns
    -------
    list of numpy.ndarray
        Entry ``k`` holds the sorted, unique 1-based anomalous frame numbers of the
        k-th test video (possibly empty).

    Raises
    ------
    InputError
        When the file is missing or a line cannot be understood.
    """
    m_file = Path(m_file)
    if not m_file.is_file():
        raise InputError(m_file, "ground-truth file not found")
    entries: dict[int, np.ndarray] = {}
    next_index = 1
    for line_number, raw_line in enumerate(
        m_file.read_text(encoding="utf-8", errors="replace").splitlines(), 1
    ):
        line = raw_line.split("%", 1)[0].strip()
        # Other MATLAB statements (cell initialisation, names, masks) carry no frame labels.
        if "gt_frame" not in line:
            continue
        matches = list(_ENTRY.finditer(line))
        if not matches:
            raise InputError(
                m_file,
                f"line {line_number}: expected 'TestVideoFile{{k}}.gt_frame = [a:b];', got {raw_line.strip()!r}",
            )
        for match in matches:
            index_text = match.group("index")
            index = next_index if index_text.startswith("end") else int(index_text)
            if index < 1:
                raise InputError(m_file, f"line {line_number}: video index {index} must be 1 or more")
            entries[index] = _parse_frame_list(match.group("body"), m_file, line_number)
            next_index = max(entries) + 1
    if not entries:
        raise InputError(m_file, "holds no 'TestVideoFile{...}.gt_frame' entries")
    missing = sorted(set(range(1, max(entries) + 1)) - set(entries))
    if missing:
        raise InputError(m_file, f"no ground truth for test video(s) {missing}")
    return [entries[k] for k in range(1, max(entries) + 1)]


def _parse_frame_list(body: str, m_file: Path, line_number: int) -> np.ndarray:
    """Expand a MATLAB vector such as ``61:180``, ``5:90, 140:200`` or ``1 3 5:2:9``."""
    body = re.sub(r"\s*:\s*", ":", body.strip())
    frames: list[np.ndarray] = []
    for token in filter(None, re.split(r"[\s,;]+", body)):
        parts = token.split(":")
        try:
            numbers = [int(part) for part in parts]
        except ValueError:
            raise InputError(
                m_file, f"line {line_number}: {token!r} is not a frame number or a:b range"
            ) from None
        if len(numbers) == 1:
            start, step, stop = numbers[0], 1, numbers[0]
        elif len(numbers) == 2:
            start, step, stop = numbers[0], 1, numbers[1]
        elif len(numbers) == 3:
            start, step, stop = numbers
        else:
            raise InputError(m_file, f"line {line_number}: {token!r} is not a frame number or a:b range")
        if step <= 0 or start < 1 or stop < start:
            raise InputError(
                m_file,
                f"line {line_number}: range {token!r} must be increasing and start at frame 1 or later",
            )
        frames.append(np.arange(start, stop + 1, step, dtype=np.int64))
    if not frames:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(frames))


def _video_folders(split_dir: Path) -> list[Path]:
    """Frame folders of one split, sorted by name; pixel-mask folders and stray files skipped."""
    if not split_dir.is_dir():
        raise InputError(
            split_dir, "folder not found (expected the official UCSD layout with Train/ and Test/)"
        )
    return frame_folders(split_dir)


def _subset_dir(root: Path, subset: str) -> Path:
    """Accept the folder holding ``UCSDpedN/`` or ``UCSDpedN/`` itself."""
    if not root.is_dir():
        raise InputError(root, "no such folder")
    if (root / subset).is_dir():
        return root / subset
    if (root / "Train").is_dir() and (root / "Test").is_dir():
        return root
    raise InputError(
        root, f"holds neither {subset}/ nor Train/ and Test/ (expected the official UCSD layout)"
    )


def mask_regions(video: VideoRef, n_frames: int) -> np.ndarray | None:
    """Regions and tracks from a test video's ``<video>_gt/`` mask folder; ``None`` when it has none.

    Raises
    ------
    InputError
        Naming the mask folder when its mask count or size differs from the video's, or a
        mask file that cannot be read.
    """
    folder = video.path.parent / f"{video.name}_gt"
    if not folder.is_dir():
        return None
    reader = open_video(video.path)
    regions = read_mask_regions(folder, n_frames=n_frames, frame_size=(reader.width, reader.height))
    check_region_frames(video.path, n_frames, regions, folder)
    return regions


def load_ucsd(root: str | Path, subset: str = "UCSDped2", fps: float | None = None) -> Dataset:
    """Load UCSD Ped1 or Ped2 from its official layout.

    Parameters
    ----------
    root:
        The folder holding ``UCSDped2/`` (e.g. ``UCSD_Anomaly_Dataset.v1p2``) or the
        ``UCSDped2`` folder itself.
    subset:
        ``"UCSDped1"`` or ``"UCSDped2"``; also names the ground-truth file ``Test/<subset>.m``.
    fps:
        Frame rate to use instead of UCSD's 10 fps; ``None`` (default) keeps 10.

    Returns
    -------
    Dataset
        Named ``ucsd-ped1`` or ``ucsd-ped2``; labels have one entry per frame of each
        test folder; test videos with a ``<video>_gt/`` mask folder carry
        ``ground_truth_regions`` (see the module docstring).

    Raises
    ------
    InputError
        Missing folders or ground truth, a ground-truth entry count that differs from
        the number of test videos, an anomalous frame past a video's end, or a mask folder
        whose mask count or size differs from its video's.
    """
    if subset not in UCSD_SUBSETS.values():
        raise InputError(
            None, f"unknown UCSD subset {subset!r}; expected one of {sorted(UCSD_SUBSETS.values())}"
        )
    base = _subset_dir(Path(root), subset)
    train = [VideoRef(folder.name, folder) for folder in _video_folders(base / "Train")]
    test = [VideoRef(folder.name, folder) for folder in _video_folders(base / "Test")]

    m_file = base / "Test" / f"{subset}.m"
    if not m_file.is_file():
        others = sorted(path.name for path in (base / "Test").glob("*.m"))
        hint = f" (found {', '.join(others)}: wrong subset?)" if others else ""
        raise InputError(m_file, f"ground-truth file not found{hint}")
    ground_truth = parse_ucsd_ground_truth(m_file)
    if len(ground_truth) != len(test):
        raise InputError(
            m_file,
            f"has ground truth for {len(ground_truth)} test videos, but {base / 'Test'} holds {len(test)}",
        )

    labels: dict[str, np.ndarray] = {}
    with_regions: list[VideoRef] = []
    for video, frames in zip(test, ground_truth, strict=True):
        n_frames = count_frames(video.path)
        with_regions.append(VideoRef(video.name, video.path, ground_truth_regions=mask_regions(video, n_frames)))
        if frames.size and frames[-1] > n_frames:
            raise InputError(
                m_file,
                f"video {video.name}: anomalous frame {int(frames[-1])} is past its last frame {n_frames}",
            )
        label = np.zeros(n_frames, dtype=bool)
        label[frames - 1] = True
        labels[video.name] = label

    name = next(key for key, value in UCSD_SUBSETS.items() if value == subset)
    return Dataset(
        name=name, fps=UCSD_FPS if fps is None else float(fps), train=train, test=with_regions, labels=labels
    )
