"""Detections made elsewhere: boxes, scores, classes and optional feature vectors read from files.

A user with their own detector (or features from another system) writes one file per
video into a folder, and the rest of the pipeline (node features, graphs, model,
report) runs on them unchanged. The layout, also in ``docs/detectors.md`` ("Precomputed
detections"):

``<folder>/<video>.parquet``, ``<video>.csv`` or ``<video>.npz``, where ``<video>`` is the
video's name (file stem or frame-folder name), one row per object:

=============================  ====================================================
Parquet / CSV column           meaning
=============================  ====================================================
``frame``                      0-based frame index, ``0 <= frame < n_frames``
``x1``, ``y1``, ``x2``, ``y2``     box corners in pixels of the original frame
``score``                      detector confidence in ``[0, 1]``
``class_id``                   0-based index into the class names
``feature_0`` ... ``feature_{d-1}``  optional feature vector (or, in Parquet only, one
                               list column ``feature`` of length ``d``)
=============================  ====================================================

An ``.npz`` file holds the same as arrays: ``frame (n,)``, ``box (n, 4)``, ``score (n,)``,
``class_id (n,)`` and optionally ``feature (n, d)``; it is read with ``allow_pickle=False``.

Every file of the folder must have the same feature width ``d`` (0 when no file has
features); the features become the node feature group ``detector_features``. Class
names come from ``<folder>/classes.txt`` (one per line) if present, else they are COCO's
80 in YOLOX's order. An object's class-score vector is its score at its class and 0
elsewhere (only the chosen class's score is known).

A frame that has no rows has no objects. Any violation (a missing column, a frame out of
range, a box with ``x2 < x1``, a ragged feature vector, ...) is an :class:`InputError`
naming the file.

The detector's ``weights_sha256`` is a hash of the folder's content (every file's name
and sha256), so changing any file re-extracts; it is computed once per process and folder
state.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pa_compute
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from anograph.errors import InputError
from anograph.extraction.detectors.base import Detections
from anograph.extraction.detectors.yolox import COCO_CLASS_NAMES
from anograph.io.content_hash import file_sha256

FORMATS = (".parquet", ".csv", ".npz")
BOX_COLUMNS = ("x1", "y1", "x2", "y2")
REQUIRED_COLUMNS = ("frame", *BOX_COLUMNS, "score", "class_id")
NPZ_ARRAYS = ("frame", "box", "score", "class_id")
CLASS_NAMES_FILE = "classes.txt"

_folder_hashes: dict[tuple, str] = {}
_folder_hashes_lock = threading.Lock()


def folder_sha256(root: Path, files: Sequence[Path]) -> str:
    """sha256 over the names and contents of ``files``; cached while their sizes and times stay."""
    state = (str(root), tuple((file.name, file.stat().st_size, file.stat().st_mtime_ns) for file in files))
    with _folder_hashes_lock:
        if state in _folder_hashes:
            return _folder_hashes[state]
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}\0{file_sha256(file)}\n".encode())
    with _folder_hashes_lock:
        _folder_hashes[state] = digest.hexdigest()
    return digest.hexdigest()


def _feature_columns(names: Sequence[str], path: Path) -> list[str]:
    """The ``feature_<i>`` column names in index order, checked to be ``feature_0 .. feature_{d-1}``."""
    indices = []
    for name in names:
        if name.startswith("feature_"):
            suffix = name[len("feature_") :]
            if not suffix.isdigit():
                raise InputError(path, f"column {name!r}: feature columns are named feature_0, feature_1, ...")
            indices.append(int(suffix))
    if sorted(indices) != list(range(len(indices))):
        raise InputError(path, f"feature columns must be feature_0 .. feature_{len(indices) - 1} without gaps")
    return [f"feature_{index}" for index in range(len(indices))]


def _read_table(path: Path) -> pa.Table:
    try:
        if path.suffix == ".parquet":
            return pq.read_table(path)
        return pa_csv.read_csv(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise InputError(path, f"not a readable {path.suffix[1:]} file ({error})") from error


def _numeric(table: pa.Table, name: str, path: Path) -> np.ndarray:
    column = table.column(name)
    if len(column) == 0:  # a header-only CSV has no types to check
        return np.zeros(0)
    if column.null_count:
        raise InputError(path, f"column {name!r} has {column.null_count} empty values")
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        raise InputError(path, f"column {name!r} must be numeric, not {column.type}")
    return column.to_numpy()


def _table_arrays(table: pa.Table, path: Path) -> dict[str, np.ndarray]:
    missing = [name for name in REQUIRED_COLUMNS if name not in table.column_names]
    if missing:
        raise InputError(path, f"missing columns {missing}; expected {list(REQUIRED_COLUMNS)} (+ optional features)")
    arrays = {
        "frame": _numeric(table, "frame", path),
        "box": np.stack([_numeric(table, name, path) for name in BOX_COLUMNS], axis=1).reshape(-1, 4),
        "score": _numeric(table, "score", path),
        "class_id": _numeric(table, "class_id", path),
    }
    flat = _feature_columns(table.column_names, path)
    if "feature" in table.column_names:
        if flat:
            raise InputError(path, "give features either as one 'feature' list column or as feature_<i> columns")
        column = table.column("feature").combine_chunks()
        if not (pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type)):
            raise InputError(path, f"column 'feature' must be a list of numbers, not {column.type}")
        if column.null_count:
            raise InputError(path, f"column 'feature' has {column.null_count} empty rows")
        lengths = pa_compute.list_value_length(column).to_numpy(zero_copy_only=False)
        if len(lengths) and lengths.min() != lengths.max():
            row = int(np.flatnonzero(lengths != lengths[0])[0])
            raise InputError(
                path, f"ragged feature vectors: row 0 has {lengths[0]} values, row {row} has {lengths[row]}"
            )
        values = column.flatten()
        if values.null_count:
            raise InputError(path, "feature vectors contain empty values")
        arrays["feature"] = values.to_numpy(zero_copy_only=False).reshape(len(column), -1) if len(column) else np.zeros((0, 0))
    elif flat:
        for name in flat:
            if table.column(name).null_count:
                raise InputError(path, f"ragged feature vectors: column {name!r} has empty values")
        arrays["feature"] = np.stack([_numeric(table, name, path) for name in flat], axis=1)
    return arrays


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in NPZ_ARRAYS if name not in data.files]
            if missing:
                raise InputError(path, f"missing arrays {missing}; expected {list(NPZ_ARRAYS)} (+ optional 'feature')")
            arrays = {name: data[name] for name in (*NPZ_ARRAYS, "feature") if name in data.files}
    except ValueError as error:  # object arrays (a ragged list of vectors) refuse to load without pickle
        raise InputError(path, f"unreadable arrays; ragged or object arrays are not allowed ({error})") from error
    except OSError as error:
        raise InputError(path, f"not a readable npz file ({error})") from error
    for name, array in arrays.items():
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise InputError(path, f"array {name!r} must be numeric, not {array.dtype}")
    if arrays["box"].ndim != 2 or arrays["box"].shape[1] != 4:
        raise InputError(path, f"array 'box' must have shape (n, 4), not {arrays['box'].shape}")
    if "feature" in arrays and arrays["feature"].ndim != 2:
        raise InputError(path, f"array 'feature' must have shape (n, d), not {arrays['feature'].shape}")
    return arrays


def read_detection_file(path: Path) -> dict[str, np.ndarray]:
    """The arrays ``frame, box, score, class_id`` (and ``feature`` if present) of one file, shape-checked."""
    arrays = _npz_arrays(path) if path.suffix == ".npz" else _table_arrays(_read_table(path), path)
    n = len(arrays["frame"])
    for name, array in arrays.items():
        if array.ndim < 1 or len(array) != n:
            raise InputError(path, f"{name!r} has {len(array) if array.ndim else 0} rows, 'frame' has {n}")
    for name in ("frame", "class_id"):
        values = arrays[name]
        if not np.issubdtype(values.dtype, np.integer) and not np.all(np.equal(np.mod(values, 1), 0)):
            raise InputError(path, f"{name!r} must hold whole numbers")
    for name in ("box", "score", "feature"):
        if name in arrays and not np.all(np.isfinite(arrays[name])):
            raise InputError(path, f"{name!r} holds NaN or infinite values")
    return arrays


def feature_width_of(path: Path) -> int:
    """Feature width ``d`` of one detection file (0 without features), reading as little as possible."""
    if path.suffix == ".npz":
        arrays = _npz_arrays(path)
        return int(arrays["feature"].shape[1]) if "feature" in arrays else 0
    if path.suffix == ".parquet":
        try:
            names = pq.read_schema(path).names
        except (pa.ArrowInvalid, OSError) as error:
            raise InputError(path, f"not a readable parquet file ({error})") from error
    else:
        with open(path, encoding="utf-8", errors="replace") as stream:
            names = [name.strip().strip('"') for name in stream.readline().split(",")]
    if "feature" in names:
        feature = read_detection_file(path).get("feature")
        return int(feature.shape[1]) if feature is not None else 0
    return len(_feature_columns(names, path))


class PrecomputedDetector:
    """Reads each video's detections (and optional features) from files; see the module docstring.

    Parameters
    ----------
    root:
        Folder holding one ``<video>.parquet|.csv|.npz`` per video (and optionally
        ``classes.txt``).
    class_names:
        Names of the classes ``class_id`` indexes; ``None`` (default) reads
        ``<root>/classes.txt``, or uses COCO's 80 (YOLOX's order) when it is absent.
    """

    name = "precomputed"

    def __init__(self, root: str | Path, class_names: Sequence[str] | None = None) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise InputError(self.root, "precomputed detections folder not found")
        self.files = sorted(path for path in self.root.iterdir() if path.suffix in FORMATS and path.is_file())
        if not self.files:
            raise InputError(self.root, f"folder holds no detection files ({', '.join(FORMATS)})")
        stems = [path.stem for path in self.files]
        duplicates = sorted({stem for stem in stems if stems.count(stem) > 1})
        if duplicates:
            raise InputError(self.root, f"videos {duplicates} have files in more than one format; keep one each")
        if class_names is None:
            names_file = self.root / CLASS_NAMES_FILE
            class_names = (
                [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
                if names_file.is_file()
                else COCO_CLASS_NAMES
            )
        if not class_names:
            raise InputError(self.root / CLASS_NAMES_FILE, "no class names")
        self.class_names = tuple(str(name) for name in class_names)
        self.feature_width = feature_width_of(self.files[0])
        self.weights_sha256 = folder_sha256(self.root, self.files)
        self.reset()

    def reset(self) -> None:
        """Forget the current video."""
        self._video: tuple[Path, dict[str, np.ndarray], np.ndarray] | None = None
        self._next_frame = 0

    def file_for(self, video_name: str) -> Path:
        """The detection file of ``video_name``, or an :class:`InputError` naming where it was expected."""
        for path in self.files:
            if path.stem == video_name:
                return path
        raise InputError(
            self.root / f"{video_name}.parquet",
            f"no precomputed detections for video {video_name!r} (expected {video_name}.parquet, .csv or .npz)",
        )

    def start_video(self, name: str, n_frames: int) -> None:
        """Load and check the detections of video ``name`` with ``n_frames`` frames."""
        path = self.file_for(name)
        arrays = read_detection_file(path)
        frames = arrays["frame"].astype(np.int64)
        if len(frames) and (frames.min() < 0 or frames.max() >= n_frames):
            bad = int(frames[(frames < 0) | (frames >= n_frames)][0])
            raise InputError(path, f"frame {bad} is out of range: video {name!r} has {n_frames} frames (0-{n_frames - 1})")
        class_ids = arrays["class_id"].astype(np.int64)
        if len(class_ids) and (class_ids.min() < 0 or class_ids.max() >= len(self.class_names)):
            bad = int(class_ids[(class_ids < 0) | (class_ids >= len(self.class_names))][0])
            raise InputError(path, f"class_id {bad} is out of range: there are {len(self.class_names)} class names")
        boxes = arrays["box"]
        if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
            row = int(np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))[0])
            raise InputError(path, f"row {row}: box has x2 < x1 or y2 < y1 (columns are x1, y1, x2, y2)")
        scores = arrays["score"]
        if np.any((scores < 0) | (scores > 1)):
            raise InputError(path, "scores must be in [0, 1]")
        width = int(arrays["feature"].shape[1]) if "feature" in arrays else 0
        if len(frames) == 0:  # no objects at all: nothing to check the width against
            arrays["feature"], width = np.zeros((0, self.feature_width), np.float32), self.feature_width
        if width != self.feature_width:
            raise InputError(
                path, f"feature width {width} differs from {self.feature_width} in {self.files[0].name}; all files must match"
            )
        order = np.argsort(frames, kind="stable")
        arrays = {key: value[order] for key, value in arrays.items()}
        offsets = np.searchsorted(frames[order], np.arange(n_frames + 1))
        self._video = (path, arrays, offsets)
        self._next_frame = 0

    def detect(self, frame: np.ndarray) -> Detections:
        """The stored detections of the next frame of the current video (``frame`` itself is not used)."""
        if self._video is None:
            raise InputError(self.root, "start_video() must name the video before its frames are read")
        path, arrays, offsets = self._video
        index = self._next_frame
        if index + 1 >= len(offsets):
            raise InputError(path, f"the video has more frames than the {len(offsets) - 1} it was started with")
        self._next_frame += 1
        rows = slice(offsets[index], offsets[index + 1])
        scores = arrays["score"][rows].astype(np.float32)
        class_ids = arrays["class_id"][rows].astype(np.int32)
        class_scores = np.zeros((len(scores), len(self.class_names)), np.float32)
        class_scores[np.arange(len(scores)), class_ids] = scores
        return Detections(
            boxes=arrays["box"][rows].astype(np.float32),
            scores=scores,
            class_ids=class_ids,
            class_scores=class_scores,
            features=arrays["feature"][rows].astype(np.float32) if self.feature_width else None,
        )

    def describe(self) -> dict[str, Any]:
        """Name, folder and content hash (the folder's path is left out of the shard fingerprint)."""
        return {
            "name": self.name,
            "path": str(self.root),
            "weights_sha256": self.weights_sha256,
            "feature_width": self.feature_width,
            "class_names_sha256": hashlib.sha256("\n".join(self.class_names).encode()).hexdigest(),
        }

    def __repr__(self) -> str:
        return f"PrecomputedDetector(root={str(self.root)!r}, feature_width={self.feature_width})"
