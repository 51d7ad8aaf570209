"""Object detectors and the registry that builds one from a name.

* ``yolox``: COCO object detector (80 classes) on ONNX Runtime; weights downloaded once
  and cached.
* ``motion``: weight-free background subtraction for fixed cameras.
* ``torchvision``: COCO Faster R-CNN ResNet-50-FPN v2; its 1024-d box-head vectors become
  node features.
* ``detectron2``: the paper's Faster R-CNN R101-C4 (optional package); its 2048-d
  averaged res5 vectors become node features.
* ``precomputed``: detections and vectors made elsewhere, read from files.

All follow the :class:`Detector` protocol, so the rest of the pipeline never needs to
know which one ran.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from anograph.errors import InputError
from anograph.extraction.detectors.base import Detections, Detector, DetectorSpec

# Classes are imported only when chosen, so one detector never needs another's dependencies.
DETECTOR_CLASSES: dict[str, str] = {
    "yolox": "anograph.extraction.detectors.yolox:YoloxDetector",
    "motion": "anograph.extraction.detectors.motion:MotionDetector",
    "torchvision": "anograph.extraction.detectors.faster_rcnn:TorchvisionDetector",
    "detectron2": "anograph.extraction.detectors.detectron2_rcnn:Detectron2Detector",
    "precomputed": "anograph.extraction.detectors.precomputed:PrecomputedDetector",
}


def detector_class(name: str) -> type:
    """The class registered as ``name``; an unknown name raises :class:`InputError`."""
    if name not in DETECTOR_CLASSES:
        raise InputError(
            None, f"unknown detector {name!r}; choose from {', '.join(sorted(DETECTOR_CLASSES))}"
        )
    module, class_name = DETECTOR_CLASSES[name].split(":")
    return getattr(importlib.import_module(module), class_name)


def accepts_option(name: str, option: str) -> bool:
    """Whether the detector registered as ``name`` takes the keyword ``option`` (``device``, say)."""
    return option in inspect.signature(detector_class(name).__init__).parameters


def _build(name: str, **options: Any) -> Detector:
    return detector_class(name)(**options)


DETECTOR_BUILDERS: dict[str, Callable[..., Detector]] = {
    name: functools.partial(_build, name) for name in DETECTOR_CLASSES
}


def create_detector(name: str, **options: Any) -> Detector:
    """Build the detector registered as ``name`` with keyword ``options``.

    Parameters
    ----------
    name:
        A key of :data:`DETECTOR_CLASSES`: ``"yolox"``, ``"motion"``, ``"torchvision"``,
        ``"detectron2"`` or ``"precomputed"``.
    **options:
        Passed to the detector's constructor; an unknown or missing option raises
        :class:`InputError`.
    """
    builder = DETECTOR_BUILDERS.get(name)
    if builder is None:
        raise InputError(
            None, f"unknown detector {name!r}; choose from {', '.join(sorted(DETECTOR_BUILDERS))}"
        )
    try:
        return builder(**options)
    except TypeError as error:
        # A misspelt or missing option surfaces as a TypeError from the constructor; say which detector and why.
        if "unexpected keyword argument" not in str(error) and "required" not in str(error):
            raise
        raise InputError(None, f"detector {name!r}: {error}") from error


__all__ = [
    "DETECTOR_BUILDERS",
    "DETECTOR_CLASSES",
    "Detections",
    "Detector",
    "DetectorSpec",
    "accepts_option",
    "create_detector",
    "detector_class",
]
