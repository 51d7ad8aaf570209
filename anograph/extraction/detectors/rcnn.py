"""Pieces shared by the two Faster R-CNN detectors (``torchvision`` and ``detectron2``).

Both resize a frame before the network and must map the kept boxes back to the original
frame; both run under the same thread, gradient and precision settings.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from anograph.extraction.detectors.base import Detections
from anograph.extraction.features.appearance import torch_threads


def inference_context(num_threads: int | None, half_precision: bool) -> contextlib.ExitStack:
    """``num_threads`` torch threads, no autograd, and float16 CUDA autocast when ``half_precision``."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch_threads(num_threads))
    stack.enter_context(torch.inference_mode())
    if half_precision:
        stack.enter_context(torch.autocast(device_type="cuda", dtype=torch.float16))
    return stack


def to_frame_detections(
    frame_shape: tuple[int, ...],
    resized_size: tuple[int, int],
    boxes: torch.Tensor,
    scores: torch.Tensor,
    class_ids: torch.Tensor,
    class_scores: torch.Tensor,
    features: torch.Tensor,
) -> Detections:
    """Numpy :class:`Detections` with ``boxes`` (pixels of the ``(height, width)`` resized
    image) scaled back to the original frame and clipped to it."""
    height, width = frame_shape[:2]
    resized_height, resized_width = resized_size
    scale = torch.tensor([width / resized_width, height / resized_height] * 2, device=boxes.device)
    boxes = boxes.float() * scale
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)

    def as_numpy(values: torch.Tensor, dtype: type) -> np.ndarray:
        return values.float().cpu().numpy().astype(dtype) if dtype is np.float32 else values.cpu().numpy().astype(dtype)

    return Detections(
        boxes=as_numpy(boxes, np.float32),
        scores=as_numpy(scores, np.float32),
        class_ids=as_numpy(class_ids, np.int32),
        class_scores=as_numpy(class_scores, np.float32),
        features=as_numpy(features, np.float32),
    )


def scale_to_resized(boxes: np.ndarray, frame_shape: tuple[int, ...], resized_size: tuple[int, int],
                     device: torch.device) -> torch.Tensor:
    """``(n, 4)`` xyxy boxes in original-frame pixels -> pixels of the resized image, on ``device``."""
    height, width = frame_shape[:2]
    resized_height, resized_width = resized_size
    scale = torch.tensor([resized_width / width, resized_height / height] * 2, device=device)
    return torch.from_numpy(np.asarray(boxes, np.float32).reshape(-1, 4)).to(device) * scale


def describe_rcnn(detector: Any, architecture: str, features: str) -> dict[str, Any]:
    """What both Faster R-CNN detectors record (shard metadata and fingerprint): name, settings, weights hash."""
    return {
        "name": detector.name,
        "architecture": architecture,
        "weights_sha256": detector.weights_sha256,
        "confidence_threshold": detector.confidence_threshold,
        "nms_threshold": detector.nms_threshold,
        "max_detections": detector.max_detections,
        "max_proposals": detector.max_proposals,
        "min_size": detector.min_size,
        "max_size": detector.max_size,
        "feature_width": detector.feature_width,
        "features": features,
        "precision": "float16-autocast" if detector.half_precision else "float32",
    }
