"""Faster R-CNN ResNet-50-FPN v2 from torchvision, with its box-head vectors as node features.

A two-stage COCO detector like the paper's, built from torchvision alone (no extra
package). Each kept object's node feature is the 1024-d output of the model's own box
head (RoIAlign over the FPN levels, four conv layers, one fully connected layer), run on
the object's *final* box, so the vector describes exactly the box that is stored.

Weights: the torchvision COCO checkpoint ``fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth``
from the torch hub cache (``$TORCH_HOME/hub/checkpoints``, by default
``~/.cache/torch/hub/checkpoints``), or any state dict file of the same architecture
given as ``weights``. It is read with ``torch.load(weights_only=True)`` and never
downloaded here: the model is built with ``weights=None, weights_backbone=None``.

Per batch of frames (all of one video, so all the same size):

1. BGR -> RGB in ``[0, 1]``; torchvision's transform normalises and resizes so the short
   side is ``min_size`` (at most ``max_size`` on the long side);
2. backbone + FPN, region proposals, box head and predictor on the proposals;
3. softmax class probabilities; each (proposal, class) pair with probability
   ``>= confidence_threshold`` is a candidate with that class's regressed box; per-class
   NMS at ``nms_threshold``; the ``max_detections`` best per frame are kept (torchvision's
   own post-processing, done here so each object keeps its proposal's full class
   distribution);
4. box head on the kept boxes, all frames of the batch in one call -> node features.

Classes: COCO's 80, in the same order and with the same names as YOLOX
(:data:`anograph.extraction.detectors.yolox.COCO_CLASS_NAMES`); torchvision's 91-slot layout with
its background and "N/A" slots is mapped onto them. An object's ``class_scores`` are its
proposal's softmax probabilities of those 80 classes (the background share is left out).

GPU: on CUDA the network runs under ``torch.autocast(float16)`` when ``half_precision``
is on, the mixed precision torchvision's own reference scripts use for these models;
autocast keeps softmax, RoIAlign and NMS in float32 and box decoding mixes into float32.
Box coordinates therefore stay float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
from torchvision.models.detection import faster_rcnn
from torchvision.ops import boxes as box_ops

from anograph.devices import resolve_device
from anograph.errors import InputError, ModelArtifactError
from anograph.extraction.detectors.base import Detections, check_confidence_threshold, check_nms_threshold
from anograph.extraction.detectors.rcnn import (
    describe_rcnn,
    inference_context,
    scale_to_resized,
    to_frame_detections,
)
from anograph.extraction.detectors.yolox import COCO_CLASS_NAMES
from anograph.io.content_hash import file_sha256

COCO_WEIGHTS = faster_rcnn.FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1
TORCHVISION_COCO_CATEGORIES: tuple[str, ...] = tuple(COCO_WEIGHTS.meta["categories"])
# Slots of torchvision's 91-way output that are real COCO classes, in COCO_CLASS_NAMES order.
COCO_CLASS_SLOTS = tuple(
    slot for slot, name in enumerate(TORCHVISION_COCO_CATEGORIES) if name not in ("__background__", "N/A")
)
BOX_HEAD_WIDTH = 1024


def default_weights_path() -> Path:
    """Where torchvision keeps its downloaded COCO checkpoint (the torch hub cache)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(COCO_WEIGHTS.url).path).name


def frames_to_tensors(frames: list[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    """``(H, W, 3)`` uint8 BGR frames -> ``(3, H, W)`` float RGB tensors in ``[0, 1]`` on ``device``."""
    return [
        torch.from_numpy(np.ascontiguousarray(frame[:, :, ::-1])).to(device).permute(2, 0, 1).float() / 255.0
        for frame in frames
    ]


class TorchvisionDetector:
    """COCO Faster R-CNN ResNet-50-FPN v2 (torchvision) with 1024-d box-head node features.

    Parameters
    ----------
    weights:
        State dict file of ``fasterrcnn_resnet50_fpn_v2`` (91 COCO slots). Default ``None``:
        torchvision's COCO checkpoint in the torch hub cache (:func:`default_weights_path`);
        it is never downloaded by anograph.
    confidence_threshold:
        Minimum class probability to keep an object. Default 0.3, as for YOLOX (on UCSD
        Ped2 0.3 kept bicycles and carts that 0.5 lost with YOLOX; not tuned for this model).
    nms_threshold:
        IoU above which the lower-scoring of two same-class boxes is dropped. Default 0.5
        (torchvision's).
    max_detections:
        Most objects kept per frame. Default 100 (torchvision's).
    max_proposals:
        Region proposals per frame scored by the box head. Default 1000 (torchvision's).
        The box head costs about 0.26 GFLOP per proposal (four 3x3 convolutions on 7x7x256), so lower
        values are much faster on a CPU, at some risk of missing objects.
    min_size, max_size:
        The frame is resized so its short side is ``min_size`` pixels, unless the long
        side would exceed ``max_size``. Defaults 800 and 1333, the model's training scale;
        smaller is faster but loses small objects.
    batch_size:
        Frames per forward pass. Default 1 (a CPU gains nothing from batching); use more
        on a GPU.
    device:
        ``"cpu"`` (default), ``"cuda"``, or ``"auto"`` (CUDA when torch sees one).
    half_precision:
        On CUDA, run under float16 autocast (see the module docstring). Default True.
        Ignored on the CPU, which always runs float32.
    num_threads:
        torch intra-op threads while detecting (restored afterwards). Default 1: the
        pipeline parallelises over videos. ``None`` leaves torch's setting.
    """

    name = "torchvision"
    class_names: tuple[str, ...] = COCO_CLASS_NAMES
    feature_width = BOX_HEAD_WIDTH

    def __init__(
        self,
        weights: str | Path | None = None,
        confidence_threshold: float = 0.3,
        nms_threshold: float = 0.5,
        max_detections: int = 100,
        max_proposals: int = 1000,
        min_size: int = 800,
        max_size: int = 1333,
        batch_size: int = 1,
        device: str = "cpu",
        half_precision: bool = True,
        num_threads: int | None = 1,
    ) -> None:
        check_confidence_threshold(confidence_threshold)
        check_nms_threshold(nms_threshold)
        if min(max_detections, max_proposals, batch_size) < 1:
            raise InputError(
                None,
                "max_detections, max_proposals and batch_size must be at least 1, "
                f"got {max_detections}, {max_proposals}, {batch_size}",
            )
        if not 0 < min_size <= max_size:
            raise InputError(None, f"need 0 < min_size <= max_size, got {min_size}, {max_size}")
        if tuple(TORCHVISION_COCO_CATEGORIES[slot] for slot in COCO_CLASS_SLOTS) != COCO_CLASS_NAMES:
            raise ModelArtifactError(None, "torchvision's COCO category names no longer match YOLOX's 80 classes")
        self.weights_path = Path(weights).expanduser() if weights is not None else default_weights_path()
        if not self.weights_path.is_file():
            hint = "pass the state dict file as weights (--weights)"
            if weights is None:
                hint = f"download {COCO_WEIGHTS.url} into {self.weights_path.parent}, or {hint}"
            raise ModelArtifactError(self.weights_path, f"Faster R-CNN weights not found; {hint}")
        self.confidence_threshold = float(confidence_threshold)
        self.nms_threshold = float(nms_threshold)
        self.max_detections = int(max_detections)
        self.max_proposals = int(max_proposals)
        self.min_size = int(min_size)
        self.max_size = int(max_size)
        self.batch_size = int(batch_size)
        self.device = resolve_device(device)
        self.half_precision = bool(half_precision) and self.device.type == "cuda"
        self.num_threads = num_threads
        self.weights_sha256 = file_sha256(self.weights_path)
        self.model = self._load_model()
        self._class_slots = torch.tensor(COCO_CLASS_SLOTS, device=self.device)

    def _load_model(self) -> faster_rcnn.FasterRCNN:
        model = faster_rcnn.fasterrcnn_resnet50_fpn_v2(
            weights=None,
            weights_backbone=None,
            min_size=self.min_size,
            max_size=self.max_size,
            rpn_pre_nms_top_n_test=max(1000, self.max_proposals),
            rpn_post_nms_top_n_test=self.max_proposals,
        )
        try:
            state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as error:  # torch raises assorted errors for foreign or corrupt files
            raise ModelArtifactError(
                self.weights_path, f"not a fasterrcnn_resnet50_fpn_v2 state dict ({error})"
            ) from error
        return model.eval().to(self.device)

    def reset(self) -> None:
        """Faster R-CNN has no per-video state."""

    def _pooled_features(
        self, feature_maps: dict[str, torch.Tensor], boxes: list[torch.Tensor], image_sizes: list[tuple[int, int]]
    ) -> torch.Tensor:
        """Box-head vectors of ``boxes`` (per image, in resized-image pixels), all images in one call."""
        heads = self.model.roi_heads
        return heads.box_head(heads.box_roi_pool(feature_maps, boxes, image_sizes)).float()

    def _candidates(
        self, class_logits: torch.Tensor, box_regression: torch.Tensor, proposals: torch.Tensor, image_size: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """torchvision's post-processing for one image, also returning each object's proposal index."""
        heads = self.model.roi_heads
        probabilities = torch.softmax(class_logits.float(), dim=-1)
        boxes = heads.box_coder.decode(box_regression.float(), [proposals.float()]).reshape(len(proposals), -1, 4)
        boxes = box_ops.clip_boxes_to_image(boxes, image_size)
        # Every (proposal, real class) pair is a candidate with that class's box.
        slots = self._class_slots
        candidate_boxes = boxes[:, slots].reshape(-1, 4)
        candidate_scores = probabilities[:, slots].reshape(-1)
        proposal_index = torch.arange(len(proposals), device=boxes.device).repeat_interleave(len(slots))
        class_index = torch.arange(len(slots), device=boxes.device).repeat(len(proposals))
        keep = torch.where(candidate_scores >= self.confidence_threshold)[0]
        keep = keep[box_ops.remove_small_boxes(candidate_boxes[keep], min_size=1e-2)]
        keep = keep[box_ops.batched_nms(candidate_boxes[keep], candidate_scores[keep], class_index[keep], self.nms_threshold)]
        keep = keep[: self.max_detections]
        return candidate_boxes[keep], candidate_scores[keep], class_index[keep], probabilities[proposal_index[keep]][:, slots]

    def detect_batch(self, frames: list[np.ndarray]) -> list[Detections]:
        """Detect objects in ``(H, W, 3)`` uint8 BGR frames of one size, as one batch."""
        if not frames:
            return []
        with inference_context(self.num_threads, self.half_precision):
            images, _ = self.model.transform(frames_to_tensors(list(frames), self.device))
            feature_maps = self.model.backbone(images.tensors)
            proposals, _ = self.model.rpn(images, feature_maps)
            heads = self.model.roi_heads
            proposal_features = heads.box_head(heads.box_roi_pool(feature_maps, proposals, images.image_sizes))
            class_logits, box_regression = heads.box_predictor(proposal_features)
            per_image = [len(p) for p in proposals]
            kept = [
                self._candidates(logits, regression, image_proposals, size)
                for logits, regression, image_proposals, size in zip(
                    class_logits.split(per_image), box_regression.split(per_image), proposals, images.image_sizes,
                    strict=True,
                )
            ]
            node_features = self._pooled_features(feature_maps, [boxes for boxes, *_ in kept], images.image_sizes)
        per_image = node_features.split([len(boxes) for boxes, *_ in kept])
        return [
            to_frame_detections(frame.shape, size, *found, features)
            for frame, size, found, features in zip(frames, images.image_sizes, kept, per_image, strict=True)
        ]

    def detect(self, frame: np.ndarray) -> Detections:
        """Detect objects in one ``(H, W, 3)`` uint8 BGR frame."""
        return self.detect_batch([frame])[0]

    def box_features(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Box-head vectors ``(n, 1024)`` of any ``(n, 4)`` xyxy pixel ``boxes`` in ``frame``."""
        with inference_context(self.num_threads, self.half_precision):
            images, _ = self.model.transform(frames_to_tensors([frame], self.device))
            feature_maps = self.model.backbone(images.tensors)
            scaled = scale_to_resized(boxes, frame.shape, images.image_sizes[0], self.device)
            return self._pooled_features(feature_maps, [scaled], images.image_sizes).cpu().numpy()

    def describe(self) -> dict[str, Any]:
        """Name, settings and weights hash (for shard metadata and the shard fingerprint)."""
        return describe_rcnn(self, "fasterrcnn_resnet50_fpn_v2 (torchvision)",
                             "box_head on the final boxes (MultiScaleRoIAlign 7x7 over FPN levels)")

    def __repr__(self) -> str:
        return f"TorchvisionDetector(weights={str(self.weights_path)!r}, confidence_threshold={self.confidence_threshold})"
