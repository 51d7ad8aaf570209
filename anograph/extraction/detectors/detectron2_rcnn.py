"""The paper's detector: detectron2 Faster R-CNN R101-C4, with 2048-d res5 box-head node features.

Ano-Graph detects objects with a detectron2 Faster R-CNN on a ResNet-101-C4 backbone at a
confidence threshold of 0.65, projects each detected box onto the last ResNet feature map,
RoI-pools it to 14x14x1024, runs detectron2's res5 box head on it and averages the result
into one 2048-d vector per object. This module does exactly that, on the final (regressed)
boxes, for every frame of a batch in one call.

detectron2 is not on PyPI, so it is an optional dependency imported only when this
detector is built; ``docs/detectors.md`` ("Optional: detectron2") says how to install it.

The model comes from the user: a detectron2 config file (such as detectron2's
``COCO-Detection/faster_rcnn_R_101_C4_3x.yaml``; any config whose ROI heads are
``Res5ROIHeads`` works, e.g. a Visual Genome R101-C4 one) and a weights file. Weights are
read with ``torch.load(weights_only=True)`` (a state dict, or a dict holding it under
``"model"``, as detectron2's own ``model_final.pth`` does). Model-zoo ``.pkl`` files are
pickles and are refused; ``docs/detectors.md`` shows the one-line conversion a user can run on a file
they trust.

Per batch of frames:

1. resize so the short side is ``INPUT.MIN_SIZE_TEST`` (long side at most
   ``INPUT.MAX_SIZE_TEST``) with detectron2's own ``ResizeShortestEdge``, as its
   ``DefaultPredictor`` does, in the config's channel order (BGR for the model zoo);
2. backbone (res2-res4), RPN proposals, res5 head on the proposals, class probabilities
   and per-class boxes; detectron2's own ``fast_rcnn_inference`` keeps classes scoring
   above ``confidence_threshold``, runs per-class NMS and keeps the best
   ``max_detections``;
3. the kept boxes go through the pooler and res5 again and are averaged -> node features.

``class_scores`` are the object's proposal's softmax probabilities of the real classes
(background left out). With an 80-class COCO config the class names are COCO's, in the
same order as YOLOX's.

GPU: with ``half_precision`` on CUDA the network runs under ``torch.autocast(float16)``
(detectron2 trains these models with the same autocast, ``SOLVER.AMP``); softmax, RoI
pooling and NMS stay float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from anograph.devices import resolve_device
from anograph.errors import InputError, ModelArtifactError
from anograph.extraction.detectors.base import Detections, check_confidence_threshold
from anograph.extraction.detectors.rcnn import (
    describe_rcnn,
    inference_context,
    scale_to_resized,
    to_frame_detections,
)
from anograph.extraction.detectors.yolox import COCO_CLASS_NAMES
from anograph.io.content_hash import file_sha256

PAPER_CONFIDENCE_THRESHOLD = 0.65
PKL_CONVERSION_HINT = (
    "convert a model-zoo .pkl you trust to a state dict first: python -c \"import pickle, torch; "
    "m = pickle.load(open('model_final.pkl', 'rb'))['model']; "
    "torch.save({k: torch.as_tensor(v) for k, v in m.items()}, 'model_final.pth')\""
)


def import_detectron2() -> Any:
    """The ``detectron2`` package, or an :class:`InputError` saying how to install it."""
    try:
        import detectron2  # noqa: F401 - imported for its side effect of failing early
        from detectron2 import config
    except ImportError as error:
        raise InputError(
            None,
            f"the 'detectron2' detector needs the detectron2 package ({error}); it is not on PyPI: "
            "see docs/detectors.md, 'Optional: detectron2', to build it from source",
        ) from error
    return config


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file, read with ``torch.load(weights_only=True)``; never unpickles code."""
    if path.suffix == ".pkl":
        raise ModelArtifactError(path, f"pickle weights are not loaded; {PKL_CONVERSION_HINT}")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises assorted errors for foreign or corrupt files
        raise ModelArtifactError(path, f"not a torch weights file loadable with weights_only=True ({error})") from error
    state = content.get("model", content) if isinstance(content, dict) else None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ModelArtifactError(path, "expected a state dict of tensors (or one under the key 'model')")
    return state


R101_C4_CONFIG = "COCO-Detection/faster_rcnn_R_101_C4_3x.yaml"


def model_zoo_config(name: str = R101_C4_CONFIG) -> Path:
    """Path of a config file shipped inside detectron2, e.g. the paper's R101-C4 (the default).

    Found beside the package rather than through ``detectron2.model_zoo``, which imports
    ``pkg_resources`` (gone from setuptools >= 81).
    """
    import_detectron2()
    import detectron2

    path = Path(detectron2.__file__).parent / "model_zoo" / "configs" / name
    if not path.is_file():
        raise InputError(path, "no such config in detectron2's model zoo")
    return path


def write_random_weights(config: str | Path, path: str | Path, seed: int = 0) -> Path:
    """Write randomly initialised weights for ``config`` to ``path`` (``{"model": state_dict}``).

    For tests and benchmarks where real weights can't be had. Each bottleneck's last scale is
    zeroed ("zero-init residual"): with detectron2's frozen batch norm as identity, 33 random
    residual blocks otherwise blow activations up to ~1e6 and the RPN proposes nothing; this
    keeps random weights random but well scaled.
    """
    detectron2_config = import_detectron2()
    from detectron2.modeling import build_model

    cfg = detectron2_config.get_cfg()
    cfg.merge_from_file(str(config))
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(seed)
    model = build_model(cfg)
    with torch.no_grad():
        for name, module in model.named_modules():
            if name.endswith("conv3"):
                module.norm.weight.zero_()
    path = Path(path)
    torch.save({"model": model.state_dict()}, path)
    return path


class Detectron2Detector:
    """detectron2 Faster R-CNN with the res5 box head's averaged 2048-d vectors as node features.

    Parameters
    ----------
    config:
        detectron2 config file (YAML) with ``Res5ROIHeads`` ROI heads, e.g. the model zoo's
        ``COCO-Detection/faster_rcnn_R_101_C4_3x.yaml``.
    weights:
        Weights file for that config (see the module docstring for the formats).
    confidence_threshold:
        Minimum class probability to keep an object. Default 0.65, the paper's.
    nms_threshold:
        Per-class NMS IoU; ``None`` (default) keeps the config's ``MODEL.ROI_HEADS.NMS_THRESH_TEST``.
    max_detections:
        Most objects per frame; ``None`` (default) keeps the config's ``TEST.DETECTIONS_PER_IMAGE``.
    max_proposals:
        RPN proposals per frame; ``None`` (default) keeps the config's
        ``MODEL.RPN.POST_NMS_TOPK_TEST``. The res5 head runs on every proposal, so this
        sets most of the cost on a CPU.
    min_size, max_size:
        Resize target; ``None`` (default) keeps the config's ``INPUT.MIN_SIZE_TEST`` and
        ``INPUT.MAX_SIZE_TEST``.
    class_names:
        Names of the model's classes; ``None`` (default): COCO's 80 for an 80-class
        model, else ``class_0, class_1, ...``.
    batch_size:
        Frames per forward pass. Default 1; use more on a GPU.
    device:
        ``"cpu"`` (default), ``"cuda"`` or ``"auto"``.
    half_precision:
        On CUDA, run under float16 autocast. Default True; ignored on the CPU.
    num_threads:
        torch intra-op threads while detecting (restored afterwards). Default 1.
    """

    name = "detectron2"

    def __init__(
        self,
        config: str | Path,
        weights: str | Path,
        confidence_threshold: float = PAPER_CONFIDENCE_THRESHOLD,
        nms_threshold: float | None = None,
        max_detections: int | None = None,
        max_proposals: int | None = None,
        min_size: int | None = None,
        max_size: int | None = None,
        class_names: Sequence[str] | None = None,
        batch_size: int = 1,
        device: str = "cpu",
        half_precision: bool = True,
        num_threads: int | None = 1,
    ) -> None:
        detectron2_config = import_detectron2()
        check_confidence_threshold(confidence_threshold)
        if batch_size < 1:
            raise InputError(None, f"batch_size must be at least 1, got {batch_size}")
        self.config_path = Path(config).expanduser()
        self.weights_path = Path(weights).expanduser()
        for path, what in ((self.config_path, "config file"), (self.weights_path, "weights file")):
            if not path.is_file():
                raise ModelArtifactError(path, f"detectron2 {what} not found")
        self.device = resolve_device(device)
        self.half_precision = bool(half_precision) and self.device.type == "cuda"
        self.batch_size = int(batch_size)
        self.num_threads = num_threads
        self.confidence_threshold = float(confidence_threshold)

        cfg = detectron2_config.get_cfg()
        try:
            cfg.merge_from_file(str(self.config_path))
        except Exception as error:  # yacs/yaml raise assorted errors for foreign files
            raise InputError(self.config_path, f"not a detectron2 config ({error})") from error
        heads = cfg.MODEL.ROI_HEADS
        heads.SCORE_THRESH_TEST = self.confidence_threshold
        if nms_threshold is not None:
            heads.NMS_THRESH_TEST = float(nms_threshold)
        if max_detections is not None:
            cfg.TEST.DETECTIONS_PER_IMAGE = int(max_detections)
        if max_proposals is not None:
            cfg.MODEL.RPN.POST_NMS_TOPK_TEST = int(max_proposals)
        if min_size is not None:
            cfg.INPUT.MIN_SIZE_TEST = int(min_size)
        if max_size is not None:
            cfg.INPUT.MAX_SIZE_TEST = int(max_size)
        cfg.MODEL.DEVICE = self.device.type
        cfg.MODEL.WEIGHTS = ""
        if heads.NAME != "Res5ROIHeads":
            raise InputError(
                self.config_path, f"ROI heads are {heads.NAME}; the paper's features need Res5ROIHeads (an R*-C4 config)"
            )
        if cfg.INPUT.FORMAT not in ("BGR", "RGB"):
            raise InputError(self.config_path, f"input format {cfg.INPUT.FORMAT} is not BGR or RGB")
        self.cfg = cfg
        self.nms_threshold = float(heads.NMS_THRESH_TEST)
        self.max_detections = int(cfg.TEST.DETECTIONS_PER_IMAGE)
        self.max_proposals = int(cfg.MODEL.RPN.POST_NMS_TOPK_TEST)
        self.min_size = int(cfg.INPUT.MIN_SIZE_TEST)
        self.max_size = int(cfg.INPUT.MAX_SIZE_TEST)
        n_classes = int(heads.NUM_CLASSES)
        if class_names is None:
            class_names = COCO_CLASS_NAMES if n_classes == len(COCO_CLASS_NAMES) else [f"class_{i}" for i in range(n_classes)]
        if len(class_names) != n_classes:
            raise InputError(None, f"{len(class_names)} class names given, but the config has {n_classes} classes")
        self.class_names = tuple(str(name) for name in class_names)
        self.model = self._build_model()
        self.feature_width = int(self.model.roi_heads.res5[-1].out_channels)
        self.config_sha256 = file_sha256(self.config_path)
        self.weights_sha256 = file_sha256(self.weights_path)

    def _build_model(self) -> torch.nn.Module:
        from detectron2.modeling import build_model

        model = build_model(self.cfg).eval()
        state = load_state_dict(self.weights_path)
        try:
            result = model.load_state_dict(state, strict=False)
        except RuntimeError as error:  # shape mismatches: weights of another architecture or class count
            raise ModelArtifactError(self.weights_path, f"weights do not fit the config {self.config_path} ({error})") from error
        # Buffers such as pixel_mean may be absent from a checkpoint; learnt parameters may not.
        missing = [key for key in result.missing_keys if key in dict(model.named_parameters())]
        if missing:
            raise ModelArtifactError(
                self.weights_path, f"weights lack {len(missing)} parameters of the config's model, e.g. {missing[:3]}"
            )
        return model.to(self.device)

    def reset(self) -> None:
        """Faster R-CNN has no per-video state."""

    def _inputs(self, frames: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """detectron2 model inputs, resized exactly as its ``DefaultPredictor`` resizes."""
        from detectron2.data import transforms

        resize = transforms.ResizeShortestEdge([self.min_size, self.min_size], self.max_size)
        inputs = []
        for frame in frames:
            height, width = frame.shape[:2]
            image = frame[:, :, ::-1] if self.cfg.INPUT.FORMAT == "RGB" else frame
            image = resize.get_transform(image).apply_image(np.ascontiguousarray(image))
            tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()
            inputs.append({"image": tensor, "height": height, "width": width})
        return inputs

    def _res5_features(self, feature_maps: dict[str, torch.Tensor], boxes: list[Any]) -> torch.Tensor:
        """Averaged res5 output ``(n, 2048)`` of ``boxes`` (detectron2 ``Boxes`` per image)."""
        heads = self.model.roi_heads
        return heads._shared_roi_transform([feature_maps[name] for name in heads.in_features], boxes).mean(dim=(2, 3))

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detect objects in ``(H, W, 3)`` uint8 BGR frames, as one batch."""
        if len(frames) == 0:
            return []
        model, heads = self.model, self.model.roi_heads
        with inference_context(self.num_threads, self.half_precision):
            images = model.preprocess_image(self._inputs(frames))
            feature_maps = model.backbone(images.tensor)
            proposals, _ = model.proposal_generator(images, feature_maps, None)
            proposal_features = self._res5_features(feature_maps, [p.proposal_boxes for p in proposals])
            predictions = heads.box_predictor(proposal_features)
            predictions = tuple(value.float() for value in predictions)
            instances, kept = heads.box_predictor.inference(predictions, proposals)
            probabilities = heads.box_predictor.predict_probs(predictions, proposals)
            node_features = self._res5_features(feature_maps, [found.pred_boxes for found in instances]).float()
        per_image = node_features.split([len(found) for found in instances])
        return [
            to_frame_detections(
                frame.shape, size, found.pred_boxes.tensor, found.scores, found.pred_classes,
                image_probabilities[proposal_index, :-1], features,
            )
            for frame, found, proposal_index, image_probabilities, features, size in zip(
                frames, instances, kept, probabilities, per_image, images.image_sizes, strict=True
            )
        ]

    def detect(self, frame: np.ndarray) -> Detections:
        """Detect objects in one ``(H, W, 3)`` uint8 BGR frame."""
        return self.detect_batch([frame])[0]

    def box_features(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Averaged res5 vectors ``(n, 2048)`` of any ``(n, 4)`` xyxy pixel ``boxes`` in ``frame``."""
        from detectron2.structures import Boxes

        with inference_context(self.num_threads, self.half_precision):
            images = self.model.preprocess_image(self._inputs([frame]))
            feature_maps = self.model.backbone(images.tensor)
            scaled = Boxes(scale_to_resized(boxes, frame.shape, images.image_sizes[0], self.device))
            return self._res5_features(feature_maps, [scaled]).float().cpu().numpy()

    def describe(self) -> dict[str, Any]:
        """Name, settings, config and weights hashes (for shard metadata and the shard fingerprint)."""
        architecture = (f"{self.cfg.MODEL.META_ARCHITECTURE} {self.cfg.MODEL.BACKBONE.NAME} "
                        f"depth {self.cfg.MODEL.RESNETS.DEPTH} {self.cfg.MODEL.ROI_HEADS.NAME} (detectron2)")
        description = describe_rcnn(self, architecture, "res5 box head on the final boxes, averaged over its 7x7 output")
        return {**description, "config_sha256": self.config_sha256}

    def __repr__(self) -> str:
        return f"Detectron2Detector(config={str(self.config_path)!r}, weights={str(self.weights_path)!r})"
