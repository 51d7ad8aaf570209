"""YOLOX object detector (COCO, 80 classes) run as an ONNX model on onnxruntime.

The paper's detector is a COCO-trained two-stage model; YOLOX-Nano is a small,
permissively licensed COCO detector that runs on one CPU core at video rate, which is
what a batch pipeline over thousands of frames needs. Any YOLOX ONNX export with the
standard head output works (``1 x N x (5 + classes)``, objectness and class scores
already passed through a sigmoid, boxes not yet decoded).

Weights come either from a path the user gives or, once, from ``weights_url`` (by
default Megvii's official GitHub release asset). The download goes to a cache folder
(``$ANOGRAPH_CACHE``, else ``~/.cache/anograph``), atomically (temporary file, then
rename), with its sha256 recorded beside it; later runs reuse the cached file.

Per frame:

1. letterbox: resize keeping the aspect ratio to fit ``input_size``, pad bottom and
   right with grey 114; feed BGR values 0-255 without normalisation;
2. decode the anchor-free grid (strides 8, 16, 32): centre ``(cell + offset) * stride``,
   size ``exp(w, h) * stride``;
3. class scores ``objectness * class probability``; an object's score is its highest
   class score, and its class is that class;
4. keep scores ``>= confidence_threshold``, run per-class NMS at ``nms_threshold``
   (``torchvision.ops.batched_nms``), undo the letterbox and clip boxes to the frame.

With ``tiles=2`` (off by default: it runs the network five times a frame) the frame is
also cut into a 2 x 2 grid of overlapping tiles, each letterboxed to ``input_size`` and
detected in the same way, and the views are merged across tiles (:mod:`.tiling`):
partial boxes cut by a tile border that another view's box covers are dropped, then
class-aware NMS removes duplicates.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torchvision

from anograph.errors import InputError, ModelArtifactError
from anograph.extraction.detectors.base import Detections, check_confidence_threshold, check_nms_threshold
from anograph.extraction.detectors.tiling import cut_by_border, merge_views, tile_windows
from anograph.io.content_hash import file_sha256

DEFAULT_YOLOX_NANO_URL = (
    "https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/yolox_nano.onnx"
)
YOLOX_STRIDES = (8, 16, 32)
LETTERBOX_PAD_VALUE = 114
DOWNLOAD_TIMEOUT_SECONDS = 60.0

COCO_CLASS_NAMES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip


def default_cache_dir() -> Path:
    """``$ANOGRAPH_CACHE`` if set, else ``~/.cache/anograph``."""
    return Path(os.environ.get("ANOGRAPH_CACHE") or Path.home() / ".cache" / "anograph").expanduser()


def cached_weights_path(url: str, cache_dir: Path) -> Path:
    """Where the file downloaded from ``url`` is cached: one file per URL."""
    url_key = hashlib.sha256(url.encode()).hexdigest()[:16]
    name = Path(urllib.request.url2pathname(url.rsplit("/", 1)[-1].split("?")[0])).name or "weights.onnx"
    return cache_dir / "weights" / f"{url_key}-{name}"


def download_weights(
    url: str, cache_dir: str | Path | None = None, expected_sha256: str | None = None
) -> Path:
    """Return the cached copy of ``url``, downloading it once if needed.

    The file is written to a temporary name in the cache folder and renamed when
    complete, so an interrupted download never leaves a file that looks finished. Its
    sha256 is written beside it (``<file>.sha256``); a cached file whose hash no longer
    matches that record is downloaded again.

    Parameters
    ----------
    url:
        Where to fetch the weights (``http(s)://`` or ``file://``).
    cache_dir:
        Cache root; default :func:`default_cache_dir`.
    expected_sha256:
        If given, the download must have this sha256, else :class:`ModelArtifactError`.
    """
    cache_root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = cached_weights_path(url, cache_root)
    record = target.with_name(target.name + ".sha256")
    if target.is_file() and record.is_file():
        recorded = record.read_text().strip()
        if (expected_sha256 is None or recorded == expected_sha256) and file_sha256(target) == recorded:
            return target
    digest = hashlib.sha256()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary_name = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".part")
    except OSError as error:
        raise InputError(
            target.parent, f"cannot write to the weights cache ({error}); set $ANOGRAPH_CACHE"
        ) from error
    temporary = Path(temporary_name)
    try:
        with os.fdopen(handle, "wb") as sink:
            try:
                with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        sink.write(chunk)
                        digest.update(chunk)
            except (urllib.error.URLError, OSError, ValueError) as error:
                raise InputError(
                    url,
                    f"cannot download detector weights ({error}); download the file yourself "
                    "and pass its path as the detector's weights, or set another weights URL",
                ) from error
        sha256 = digest.hexdigest()
        if expected_sha256 is not None and sha256 != expected_sha256:
            raise ModelArtifactError(
                url, f"downloaded weights have sha256 {sha256}, expected {expected_sha256}"
            )
        os.replace(temporary, target)
        record.write_text(sha256 + "\n")
        return target
    finally:
        temporary.unlink(missing_ok=True)


def letterbox(frame: np.ndarray, input_size: int) -> tuple[np.ndarray, float]:
    """Resize ``frame`` to fit a square of ``input_size`` and pad bottom/right with 114.

    Returns the ``(1, 3, input_size, input_size)`` float32 BGR tensor and the resize ratio.
    """
    height, width = frame.shape[:2]
    ratio = min(input_size / height, input_size / width)
    resized_width, resized_height = max(1, round(width * ratio)), max(1, round(height * ratio))
    padded = np.full((input_size, input_size, 3), LETTERBOX_PAD_VALUE, np.uint8)
    padded[:resized_height, :resized_width] = cv2.resize(
        frame, (resized_width, resized_height), interpolation=cv2.INTER_LINEAR
    )
    return np.ascontiguousarray(padded.transpose(2, 0, 1)[None], dtype=np.float32), ratio


def yolox_grid(input_size: int, strides: tuple[int, ...] = YOLOX_STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """Cell coordinates ``(N, 2)`` (x, y) and strides ``(N, 1)`` of YOLOX's output rows."""
    cells, cell_strides = [], []
    for stride in strides:
        size = input_size // stride
        ys, xs = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
        cells.append(np.stack([xs, ys], axis=-1).reshape(-1, 2))
        cell_strides.append(np.full((size * size, 1), stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(cell_strides).astype(np.float32)


def _onnx_providers(device: str) -> list[str]:
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise InputError(
                None, "device 'cuda' asked for, but this onnxruntime has no CUDAExecutionProvider"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "auto":
        cuda = ["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []
        return [*cuda, "CPUExecutionProvider"]
    raise InputError(None, f"unknown device {device!r}; choose from 'cpu', 'cuda', 'auto'")


class YoloxDetector:
    """COCO object detector: YOLOX on onnxruntime.

    Parameters
    ----------
    weights:
        Path of a YOLOX ONNX file. ``None`` (default) downloads ``weights_url`` once
        into the cache.
    weights_url:
        Where to download the weights from when ``weights`` is not given. Default:
        Megvii's official YOLOX-Nano ONNX release asset.
    cache_dir:
        Download cache; default ``$ANOGRAPH_CACHE`` or ``~/.cache/anograph``.
    confidence_threshold:
        Minimum score (objectness x class probability) to keep an object. Default 0.3:
        on UCSD Ped2, bicycles and carts are often low-confidence, and 0.3 kept them
        where 0.5 lost them.
    nms_threshold:
        IoU above which the lower-scoring of two same-class boxes is dropped. Default 0.45.
    input_size:
        Square network input side in pixels; must match the ONNX file when its input
        shape is fixed. Default 416 (YOLOX-Nano).
    num_threads:
        onnxruntime intra-op threads. Default 1: the pipeline parallelises over videos.
    device:
        ``"cpu"`` (default), ``"cuda"`` (needs onnxruntime-gpu) or ``"auto"``.
    tiles:
        1 (default): the full frame only. ``n > 1``: also an ``n x n`` grid of overlapping
        tiles, merged with the full frame's boxes (see the module docstring).
    tile_fraction:
        Width and height of each tile as a fraction of the frame's. Default 0.6.
    """

    name = "yolox"

    def __init__(
        self,
        weights: str | Path | None = None,
        weights_url: str = DEFAULT_YOLOX_NANO_URL,
        cache_dir: str | Path | None = None,
        confidence_threshold: float = 0.3,
        nms_threshold: float = 0.45,
        input_size: int = 416,
        num_threads: int = 1,
        device: str = "cpu",
        tiles: int = 1,
        tile_fraction: float = 0.6,
    ) -> None:
        import onnxruntime

        check_confidence_threshold(confidence_threshold)
        check_nms_threshold(nms_threshold)
        if input_size <= 0 or input_size % max(YOLOX_STRIDES):
            raise InputError(
                None, f"input_size must be a positive multiple of {max(YOLOX_STRIDES)}, got {input_size}"
            )
        tile_windows(1, 1, tiles, tile_fraction)  # validates both
        self.tiles = int(tiles)
        self.tile_fraction = float(tile_fraction)
        if weights is not None:
            self.weights_path = Path(weights).expanduser()
            if not self.weights_path.is_file():
                raise ModelArtifactError(self.weights_path, "YOLOX weights file not found")
        else:
            self.weights_path = download_weights(weights_url, cache_dir)
        self.weights_url = None if weights is not None else weights_url
        self.weights_sha256 = file_sha256(self.weights_path)
        self.confidence_threshold = float(confidence_threshold)
        self.nms_threshold = float(nms_threshold)
        self.input_size = int(input_size)
        self.num_threads = int(num_threads)
        self.device = device

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.num_threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        providers = _onnx_providers(device)
        try:
            self._session = onnxruntime.InferenceSession(str(self.weights_path), options, providers=providers)
        except Exception as error:  # onnxruntime raises its own untyped exceptions for bad files
            raise InputError(
                self.weights_path, f"not an ONNX model onnxruntime can load ({error})"
            ) from error
        self._input_name = self._check_model_shapes()
        self._cells, self._strides = yolox_grid(self.input_size)

    def _check_model_shapes(self) -> str:
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or len(outputs) < 1 or len(outputs[0].shape) != 3:
            raise InputError(
                self.weights_path,
                "not a YOLOX ONNX model (expected one NCHW input and a N x rows x (5 + classes) output)",
            )
        height, width = inputs[0].shape[2:]
        for side in (height, width):
            if isinstance(side, int) and side != self.input_size:
                raise InputError(
                    self.weights_path, f"model input is {width}x{height}, but input_size is {self.input_size}"
                )
        n_values = outputs[0].shape[2]
        if isinstance(n_values, int):
            n_classes = n_values - 5
            if n_classes < 1:
                raise InputError(
                    self.weights_path, f"not a YOLOX ONNX model (output rows have {n_values} values)"
                )
            self.class_names = (
                COCO_CLASS_NAMES
                if n_classes == len(COCO_CLASS_NAMES)
                else tuple(f"class_{i}" for i in range(n_classes))
            )
        else:
            self.class_names = COCO_CLASS_NAMES
        return inputs[0].name

    def reset(self) -> None:
        """YOLOX has no per-video state."""

    def detect_view(self, frame: np.ndarray) -> Detections:
        """Detect objects in one ``(H, W, 3)`` uint8 BGR image, the network seeing all of it (steps 1-4)."""
        height, width = frame.shape[:2]
        tensor, ratio = letterbox(frame, self.input_size)
        rows = self._session.run(None, {self._input_name: tensor})[0][0]
        if rows.shape != (len(self._cells), 5 + len(self.class_names)):
            raise InputError(
                self.weights_path,
                f"model output has shape {rows.shape}, expected ({len(self._cells)}, {5 + len(self.class_names)}) for a YOLOX head",
            )
        class_scores = rows[:, 4:5] * rows[:, 5:]
        scores = class_scores.max(axis=1)
        keep = np.flatnonzero(scores >= self.confidence_threshold)
        if keep.size == 0:
            return Detections.empty(len(self.class_names))
        rows, class_scores, scores = rows[keep], class_scores[keep], scores[keep]
        strides = self._strides[keep]
        centres = (rows[:, :2] + self._cells[keep]) * strides
        sizes = np.exp(rows[:, 2:4]) * strides
        boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1) / ratio
        class_ids = class_scores.argmax(axis=1)
        kept = torchvision.ops.batched_nms(
            torch.from_numpy(boxes.astype(np.float32)),
            torch.from_numpy(scores.astype(np.float32)),
            torch.from_numpy(class_ids),
            self.nms_threshold,
        ).numpy()
        boxes = boxes[kept]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        nonempty = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        kept = kept[nonempty]
        return Detections(
            boxes=boxes[nonempty].astype(np.float32),
            scores=scores[kept].astype(np.float32),
            class_ids=class_ids[kept].astype(np.int32),
            class_scores=class_scores[kept].astype(np.float32),
        )

    def detect(self, frame: np.ndarray) -> Detections:
        """Detect objects in one ``(H, W, 3)`` uint8 BGR frame (over tiles too, when ``tiles > 1``)."""
        full = self.detect_view(frame)
        height, width = frame.shape[:2]
        windows = tile_windows(height, width, self.tiles, self.tile_fraction)
        if not windows:
            return full
        parts, views, cut = [full], [np.zeros(len(full), np.int64)], [np.zeros(len(full), bool)]
        for view, window in enumerate(windows, start=1):
            x1, y1, x2, y2 = window
            found = self.detect_view(np.ascontiguousarray(frame[y1:y2, x1:x2]))
            found.boxes = found.boxes + np.array([x1, y1, x1, y1], np.float32)
            parts.append(found)
            views.append(np.full(len(found), view, np.int64))
            cut.append(cut_by_border(found.boxes, window, (height, width)))
        merged = Detections(
            boxes=np.concatenate([part.boxes for part in parts]),
            scores=np.concatenate([part.scores for part in parts]),
            class_ids=np.concatenate([part.class_ids for part in parts]),
            class_scores=np.concatenate([part.class_scores for part in parts]),
        )
        kept = merge_views(
            merged.boxes, merged.scores, merged.class_ids, np.concatenate(views), np.concatenate(cut),
            self.nms_threshold,
        )  # fmt: skip
        return merged.select(kept)

    def describe(self) -> dict[str, Any]:
        """Name, settings and weights hash (for shard metadata)."""
        return {
            "name": self.name,
            "weights_sha256": self.weights_sha256,
            "confidence_threshold": self.confidence_threshold,
            "nms_threshold": self.nms_threshold,
            "input_size": self.input_size,
            **({"tiles": self.tiles, "tile_fraction": self.tile_fraction} if self.tiles > 1 else {}),
        }

    def __repr__(self) -> str:
        return f"YoloxDetector(weights={str(self.weights_path)!r}, confidence_threshold={self.confidence_threshold})"
