"""Dense optical flow between consecutive frames, computed once per frame and shared.

Every motion-based part of the node features (the ``motion`` columns, the ``flow_stats``
columns and the motion-blob objects of :mod:`.motion_boxes`) reads the same
:class:`FrameFlow`, so the flow costs one computation per frame however many parts use it.

Two methods:

* ``"dis"`` (default): OpenCV's Dense Inverse Search flow
  (``cv2.DISOpticalFlow_create``) at one of its presets ``"ultrafast"``, ``"fast"`` or
  ``"medium"`` (default), on the full-resolution frames (the presets refine down to half the
  frame's resolution; a finer last level was measured and left out, see docs/model-selection.md);
  frames less tall than ``min_height`` (240 pixels) are enlarged to it first, see below;
* ``"farneback"``: OpenCV's Farneback polynomial-expansion flow, by default at half the
  frame size (its cost grows quickly with resolution), rescaled to full-frame pixels.

Convention: the flow of frame ``t`` is given *at frame t's own pixels*, in full-frame pixels
per frame, forward in time: ``flow[y, x]`` is how far the content now at ``(x, y)`` moved
since the previous frame. It is computed as the negated backward flow ``-flow(t -> t-1)``,
so a box of frame ``t`` reads the flow of what is inside it in frame ``t``. The first frame
of a video has no previous frame; it takes the forward flow ``flow(0 -> 1)`` instead, which
is at frame 0's pixels too (see :class:`anograph.extraction.features.extractor.NodeFeatureExtractor.push`).

What counts as moving: a pixel whose flow exceeds twice the frame's median magnitude (the
background's noise level in that frame) and a floor, the larger of two: the flow's own noise,
half a pixel a frame (DIS's sub-pixel error on compressed footage: below it, noise regions
appear), and the slowest speed of interest, 1/48 frame heights a second, turned into pixels a
frame for each video's height and frame rate. On UCSD's 240-pixel, 10 fps footage the two agree;
on larger or lower-frame-rate footage the speed floor is the higher, so that what counts as
moving does not grow with the pixels a frame that the same motion covers there.

Small frames: DIS refines only down to half its input's resolution, where an object a few pixels
across on low-resolution footage (UCSD Ped1's 158-pixel frames, a small camera stream) has lost
most of its motion. So a frame less tall than ``min_height`` is enlarged to that height before
the flow is computed (the flow is then brought back to the frame's own pixels), and the noise
floor, set in the pixels DIS works at, shrinks with it: half a pixel a frame at 240 pixels,
where that floor was measured, is a quarter of a pixel of a 120-pixel frame. Frames at least
that tall are computed as they are.

Camera motion: by default the frame's median flow vector is subtracted from every pixel
before anything reads the flow. Most of a surveillance frame is background, so the median is
the camera's own shake or drift; without it, a shaking camera makes every object look fast.
On a fixed camera the median is about zero and nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from anograph.errors import InputError

FLOW_METHODS = ("dis", "farneback")
DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
# Farneback settings at the flow resolution: 3-level pyramid, 9 px window, OpenCV's standard polynomial.
FARNEBACK_PARAMETERS = {
    "pyr_scale": 0.5,
    "levels": 3,
    "winsize": 9,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.2,
    "flags": 0,
}
#: Frame rate assumed for footage that does not state one (UCSD's).
DEFAULT_FRAME_RATE = 10.0
#: Height in pixels of UCSD's footage, where the flow's preset and noise floor were set.
REFERENCE_HEIGHT = 240
#: Smallest flow that counts as moving, in pixels a frame: the flow's noise.
DEFAULT_MIN_MOVING_MAGNITUDE = 0.5
#: Slowest motion that counts as moving, in frame heights per second: half a pixel a frame on
#: UCSD's footage at its 10 frames a second, where the pixel floor was set.
DEFAULT_MIN_MOVING_SPEED = DEFAULT_MIN_MOVING_MAGNITUDE / REFERENCE_HEIGHT * DEFAULT_FRAME_RATE
#: Frames less tall than this (pixels) are enlarged to it for the flow.
DEFAULT_MIN_FLOW_HEIGHT = REFERENCE_HEIGHT
MOVING_MEDIAN_FACTOR = 2.0


class OpticalFlow:
    """Dense optical flow settings and computation (see the module docstring).

    Parameters
    ----------
    method:
        ``"dis"`` (default) or ``"farneback"``.
    preset:
        DIS preset: ``"ultrafast"``, ``"fast"`` or ``"medium"`` (default). Ignored by Farneback.
    scale:
        Frame size factor at which the flow is computed; ``None`` (default) means 1.0 for
        DIS and 0.5 for Farneback. The result is always resized to the full frame.
    min_moving_magnitude:
        Smallest flow of a moving pixel, in pixels per frame: the flow's noise. Default 0.5.
    min_moving_speed:
        Slowest motion of a moving pixel, in frame heights per second. Default
        :data:`DEFAULT_MIN_MOVING_SPEED`, half a pixel a frame at 240 pixels and 10 fps.
        :meth:`moving_floor` gives the larger of the two in pixels per frame
        (:attr:`FrameFlow.moving_threshold`).
    compensate_camera_motion:
        Subtract the frame's median flow vector (see the module docstring). Default True.
    min_height:
        Frames less tall than this many pixels are enlarged to it before the flow is computed,
        and the noise floor (``min_moving_magnitude``, in the pixels the flow works at) scaled
        to the frame's own pixels (see the module docstring). Default 240; 0 never enlarges.
    """

    def __init__(
        self,
        method: str = "dis",
        preset: str = "medium",
        scale: float | None = None,
        min_moving_magnitude: float = DEFAULT_MIN_MOVING_MAGNITUDE,
        min_moving_speed: float = DEFAULT_MIN_MOVING_SPEED,
        compensate_camera_motion: bool = True,
        min_height: int = DEFAULT_MIN_FLOW_HEIGHT,
    ) -> None:
        if method not in FLOW_METHODS:
            raise InputError(None, f"unknown flow method {method!r}; choose from {', '.join(FLOW_METHODS)}")
        if preset not in DIS_PRESETS:
            raise InputError(None, f"unknown DIS preset {preset!r}; choose from {', '.join(DIS_PRESETS)}")
        if scale is None:
            scale = 1.0 if method == "dis" else 0.5
        if not 0.0 < scale <= 1.0:
            raise InputError(None, f"flow scale must be in (0, 1], got {scale}")
        self.method = method
        self.preset = preset
        if min_moving_magnitude < 0 or min_moving_speed < 0:
            raise InputError(None, f"min_moving_magnitude and min_moving_speed must not be negative, got "
                                   f"{min_moving_magnitude} and {min_moving_speed}")
        if min_height < 0:
            raise InputError(None, f"the flow's min_height must not be negative, got {min_height}")
        self.scale = float(scale)
        self.min_height = int(min_height)
        self.min_moving_magnitude = float(min_moving_magnitude)
        self.min_moving_speed = float(min_moving_speed)
        self.frame_rate = DEFAULT_FRAME_RATE
        self.compensate_camera_motion = bool(compensate_camera_motion)
        self._dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset]) if method == "dis" else None

    def start_video(self, frame_rate: float | None) -> None:
        """Use the frame rate of the video about to be read (``None`` or 0: :data:`DEFAULT_FRAME_RATE`)."""
        if frame_rate is not None and not frame_rate >= 0:
            raise InputError(None, f"frame rate must be positive, got {frame_rate}")
        self.frame_rate = float(frame_rate) if frame_rate else DEFAULT_FRAME_RATE

    def enlargement(self, frame_height: int) -> float:
        """How much a frame ``frame_height`` pixels high is enlarged for the flow (1.0: not at all)."""
        return max(1.0, self.min_height / float(frame_height)) if frame_height else 1.0

    def moving_floor(self, frame_height: int) -> float:
        """The moving floor in pixels per frame, for frames ``frame_height`` pixels high at :attr:`frame_rate`:
        the larger of :attr:`min_moving_magnitude` (in the enlarged frame's pixels, :meth:`enlargement`)
        and :attr:`min_moving_speed` in pixels a frame."""
        noise = self.min_moving_magnitude / self.enlargement(frame_height)
        return moving_floor(frame_height, self.frame_rate, noise, self.min_moving_speed)

    def grey(self, frame: np.ndarray) -> np.ndarray:
        """The frame as the flow method reads it: grey, resized to ``scale`` (times :meth:`enlargement`)."""
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        height, width = grey.shape
        factor = self.scale * self.enlargement(height)
        if factor == 1.0:
            return np.ascontiguousarray(grey)
        size = (max(8, round(width * factor)), max(8, round(height * factor)))
        return cv2.resize(grey, size, interpolation=cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LINEAR)

    def forward(self, source: np.ndarray, target: np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
        """Flow ``(H, W, 2)`` float32 from grey ``source`` to ``target``, at ``source``'s pixels.

        ``frame_shape`` is the full frame's ``(H, W)``: the flow is resized to it and its
        vectors expressed in full-frame pixels.
        """
        if self._dis is not None:
            flow = self._dis.calc(source, target, None)
        else:
            flow = cv2.calcOpticalFlowFarneback(source, target, None, **FARNEBACK_PARAMETERS)
        height, width = frame_shape
        if flow.shape[:2] != (height, width):
            factors = np.array([width / flow.shape[1], height / flow.shape[0]], np.float32)
            flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) * factors
        return np.ascontiguousarray(flow, dtype=np.float32)

    def at_current(self, previous: np.ndarray, current: np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
        """Forward-in-time flow at the ``current`` frame's pixels: ``-flow(current -> previous)``."""
        return -self.forward(current, previous, frame_shape)

    def frame_flow(self, flow: np.ndarray) -> FrameFlow:
        """The :class:`FrameFlow` of a flow field, camera motion removed, with this flow's moving threshold."""
        if self.compensate_camera_motion:
            flow = flow - camera_motion(flow)
        return FrameFlow.of(flow, self.moving_floor(flow.shape[0]))

    def describe(self) -> dict[str, Any]:
        """Settings, for shard metadata."""
        settings: dict[str, Any] = {
            "method": f"opencv-{self.method}",
            "scale": self.scale,
            "min_moving_magnitude": self.min_moving_magnitude,
            "min_moving_speed": self.min_moving_speed,
            "min_height": self.min_height,
            "camera_motion": "frame median flow subtracted" if self.compensate_camera_motion else "kept",
        }
        if self.method == "dis":
            settings["preset"] = self.preset
        else:
            settings["farneback"] = dict(FARNEBACK_PARAMETERS)
        settings["convention"] = "at the frame's own pixels, -flow(t -> t-1); frame 0: flow(0 -> 1)"
        return settings

    def __repr__(self) -> str:
        return f"OpticalFlow(method={self.method!r}, preset={self.preset!r}, scale={self.scale})"


def moving_floor(frame_height: int, frame_rate: float = DEFAULT_FRAME_RATE,
                 min_moving_magnitude: float = DEFAULT_MIN_MOVING_MAGNITUDE,
                 min_moving_speed: float = DEFAULT_MIN_MOVING_SPEED) -> float:
    """Pixels a frame a moving pixel's flow must exceed: the larger of the noise floor
    ``min_moving_magnitude`` (pixels a frame) and ``min_moving_speed`` (frame heights a second)
    for frames ``frame_height`` pixels high at ``frame_rate``."""
    return max(float(min_moving_magnitude), float(min_moving_speed) * float(frame_height) / float(frame_rate))


def camera_motion(flow: np.ndarray) -> np.ndarray:
    """The ``(2,)`` float32 median flow vector of a frame (every 4th pixel each way: the median of a large background)."""
    return np.median(flow[::4, ::4].reshape(-1, 2), axis=0).astype(np.float32)


@dataclass
class FrameFlow:
    """One frame's flow field and what every consumer derives from it.

    Attributes
    ----------
    flow:
        ``(H, W, 2)`` float32, full-frame pixels per frame (x right, y down).
    magnitude, angle:
        ``(H, W)`` float32 flow length and direction in radians, ``[0, 2 pi)``, 0 = rightward,
        pi / 2 = downward.
    moving_threshold:
        Magnitude above which a pixel counts as moving: ``max(floor, 2 x the frame's median
        magnitude)``. Most of a fixed-camera frame is static background, so the median is the
        background's flow noise level; the floor (:meth:`OpticalFlow.moving_floor`) keeps
        sub-pixel noise of a perfectly still frame from counting.
    moving:
        ``(H, W)`` bool, ``magnitude > moving_threshold``.
    """

    flow: np.ndarray
    magnitude: np.ndarray
    angle: np.ndarray
    moving_threshold: float
    moving: np.ndarray

    @classmethod
    def of(cls, flow: np.ndarray, floor: float | None = None) -> FrameFlow:
        """``floor`` in pixels per frame; ``None``: the default floors at :data:`DEFAULT_FRAME_RATE` and this height."""
        if floor is None:
            floor = moving_floor(flow.shape[0])
        magnitude, angle = cv2.cartToPolar(flow[..., 0], flow[..., 1])
        threshold = max(float(floor), MOVING_MEDIAN_FACTOR * float(np.median(magnitude)))
        return cls(flow, magnitude, angle, threshold, magnitude > threshold)

    @property
    def shape(self) -> tuple[int, int]:
        return self.magnitude.shape[:2]


def box_pixel_bounds(box: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Integer ``(top, bottom, left, right)`` pixel range of an xyxy box, at least one pixel, inside ``shape``."""
    height, width = shape
    x1, y1, x2, y2 = (float(value) for value in box)
    left = int(np.clip(np.floor(x1), 0, width - 1))
    top = int(np.clip(np.floor(y1), 0, height - 1))
    right = int(np.clip(np.ceil(x2), left + 1, width))
    bottom = int(np.clip(np.ceil(y2), top + 1, height))
    return top, bottom, left, right
