"""Object detectors and the registry that builds one from a name.

``yolox`` is the COCO object detector (80 classes, ONNX weights downloaded once and
cached); ``motion`` is a weight-free background-subtraction detector for fixed cameras.
Both follow the :class:`Detector` protocol, so the rest of the pipeline never needs to
know which one ran.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from anograph.detectors.base import Detections, Detector, DetectorSpec
from anograph.errors import InputError


def _build_yolox(**options: Any) -> Detector:
    from anograph.detectors.yolox import YoloxDetector

    return YoloxDetector(**options)


def _build_motion(**options: Any) -> Detector:
    from anograph.detectors.motion import MotionDetector

    return MotionDetector(**options)


def _build_torchvision(**options: Any) -> Detector:
    from anograph.detectors.faster_rcnn import TorchvisionDetector

    return TorchvisionDetector(**options)


def _build_detectron2(**options: Any) -> Detector:
    from anograph.detectors.detectron2_rcnn import Detectron2Detector

    return Detectron2Detector(**options)


def _build_precomputed(**options: Any) -> Detector:
    from anograph.detectors.precomputed import PrecomputedDetector

    return PrecomputedDetector(**options)


# Builders import lazily so that choosing one detector never imports the other's dependencies.
DETECTOR_BUILDERS: dict[str, Callable[..., Detector]] = {
    "yolox": _build_yolox,
    "motion": _build_motion,
    "torchvision": _build_torchvision,
    "detectron2": _build_detectron2,
    "precomputed": _build_precomputed,
}


def create_detector(name: str, **options: Any) -> Detector:
    """Build the detector registered as ``name`` with keyword ``options``.

    Parameters
    ----------
    name:
        ``"yolox"`` (:class:`anograph.detectors.yolox.YoloxDetector`) or ``"motion"``
        (:class:`anograph.detectors.motion.MotionDetector`).
    **options:
        Passed to the detector's constructor; an unknown option raises :class:`InputError`.
    """
    builder = DETECTOR_BUILDERS.get(name)
    if builder is None:
        raise InputError(
            None, f"unknown detector {name!r}; choose from {', '.join(sorted(DETECTOR_BUILDERS))}"
        )
    try:
        return builder(**options)
    except TypeError as error:
        # A misspelt option surfaces as a TypeError from the constructor; say which detector and why.
        if "unexpected keyword argument" not in str(error):
            raise
        raise InputError(None, f"detector {name!r}: {error}") from error


__all__ = ["DETECTOR_BUILDERS", "Detections", "Detector", "DetectorSpec", "create_detector"]
