"""The synthetic scene's parts: the empty walkway, the sprites, how they move, and the renderer.

Why a module of its own: :mod:`anograph.datasets.synthetic` decides *what* happens in each
video (normal traffic, which anomaly, the file layout); this module draws it. Everything takes
a ``numpy.random.Generator``, so a seeded generator always gives the same scene.

* the background: a fixed camera over a textured walkway (paving, grass verge, kerb,
  static benches);
* pedestrians: textured upright figures of about 14x30 px with size and colour jitter and a
  two-phase gait, walking horizontally at :data:`NORMAL_SPEED_RANGE` with a slight vertical
  drift and sway;
* the per-object anomalies (:data:`ANOMALY_KINDS`): a vertical walker, a fast walker, a vehicle;
* the renderer, which adds sensor noise and slow illumination drift, writes the video and
  labels a frame anomalous while an anomalous object (in its anomalous phase) has at least
  :data:`MIN_VISIBLE_FRACTION` of its area inside the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from anograph.errors import AnographError

ANOMALY_KINDS = ("wrong_direction", "too_fast", "unusual_object")
VIDEO_CODEC = "mp4v"

NORMAL_SPEED_RANGE = (1.6, 2.4)  # px per frame
FAST_SPEED_FACTOR = 4.0
VEHICLE_SPEED = 2.8
PEDESTRIANS_IN_VIEW = 4.0  # mean number of pedestrians visible in a 320x240 frame
MIN_VISIBLE_FRACTION = 0.25  # of an object's area, for its frame to count as showing it

_NOISE_FRAMES = 8
_NOISE_SIGMA = 2.5


@dataclass(eq=False)  # identity: objects hold arrays
class SceneObject:
    """One moving object: its look, its path (top-left corner per frame), and when it is anomalous."""

    images: list[np.ndarray]  # BGR sprite per gait phase
    masks: list[np.ndarray]  # bool silhouette per gait phase
    start_frame: int
    positions: np.ndarray  # (n, 2) float top-left x, y for frames start_frame ...
    anomalous: np.ndarray  # (n,) bool
    kind: str | None = None

    @property
    def height(self) -> int:
        return self.images[0].shape[0]

    @property
    def width(self) -> int:
        return self.images[0].shape[1]


def _textured(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    return rng.normal(0.0, sigma, size=(*shape, 1))


def make_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A static walkway scene: grass verge on top, paved walkway, kerb, a few benches."""
    # Low-frequency shading: random coarse grid, smoothly upsampled.
    coarse = rng.normal(0.0, 10.0, size=(max(height // 40, 2), max(width // 40, 2))).astype(np.float32)
    shading = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)[..., None]
    vertical = np.linspace(-12.0, 12.0, height, dtype=np.float32)[:, None, None]
    image = np.empty((height, width, 3), dtype=np.float32)
    image[:] = (128.0, 136.0, 140.0)  # grey-beige paving (BGR)
    grass_end = int(0.12 * height)
    kerb_start = int(0.93 * height)
    image[:grass_end] = (60.0, 120.0, 80.0)
    image[kerb_start:] = (105.0, 105.0, 110.0)
    image += shading + vertical + _textured(rng, (height, width), 6.0)
    # Paving joints every 24 px on the walkway.
    for y in range(grass_end + 12, kerb_start, 24):
        image[y, :, :] -= 18.0
    for x in range(int(rng.integers(0, 24)), width, 24):
        image[grass_end:kerb_start, x, :] -= 14.0
    image[grass_end - 2 : grass_end + 1] -= 35.0
    image[kerb_start : kerb_start + 2] += 30.0
    # Static benches / bins along the verge: things a detector must learn to ignore.
    for _ in range(max(1, width // 120)):
        x0 = int(rng.integers(0, max(width - 40, 1)))
        bench_w = int(rng.integers(24, 40))
        y0 = max(grass_end - 10, 0)
        image[y0 : y0 + 8, x0 : x0 + bench_w] = (50.0, 70.0, 95.0)
    return np.clip(image, 0, 255).astype(np.uint8)


def pedestrian_sprite(rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A textured upright figure, with two gait phases (legs together / apart)."""
    height = int(rng.integers(27, 34))
    width = int(rng.integers(12, 17))
    shirt = np.array(
        rng.choice([(90, 60, 40), (50, 50, 140), (40, 90, 60), (150, 150, 150), (60, 60, 60)]), float
    )
    shirt = np.clip(shirt + rng.normal(0.0, 15.0, 3), 0, 255)
    trousers = np.clip(np.array((45.0, 40.0, 35.0)) + rng.normal(0.0, 10.0, 3), 0, 255)
    skin = np.clip(np.array((110.0, 140.0, 185.0)) + rng.normal(0.0, 15.0, 3), 0, 255)
    head_radius = max(width // 4, 2)
    torso_top = 2 * head_radius
    legs_top = int(0.58 * height)
    texture = _textured(rng, (height, width), 12.0)

    images: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for legs_apart in (False, True):
        mask = np.zeros((height, width), dtype=np.uint8)
        cv2.circle(mask, (width // 2, head_radius), head_radius, 1, -1)
        cv2.ellipse(
            mask,
            (width // 2, (torso_top + legs_top) // 2 + 1),
            (width // 2 - 1, (legs_top - torso_top) // 2 + 2),
            0,
            0,
            360,
            1,
            -1,
        )
        spread = width // 2 - 2 if legs_apart else 1
        for side in (-1, 1):
            cv2.line(
                mask,
                (width // 2 + side * 2, legs_top),
                (width // 2 + side * spread, height - 1),
                1,
                max(width // 5, 2),
            )
        image = np.empty((height, width, 3), dtype=np.float32)
        image[:] = trousers
        image[: legs_top - 1] = shirt
        image[:torso_top] = skin
        image += texture
        images.append(np.clip(image, 0, 255).astype(np.uint8))
        masks.append(mask.astype(bool))
    return images, masks


def vehicle_sprite(rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A wide, saturated cart / car with windows and wheels: unlike any pedestrian."""
    height = int(rng.integers(24, 29))
    width = int(rng.integers(52, 61))
    body = np.array(rng.choice([(0, 200, 240), (30, 30, 210), (200, 120, 20)]), float)  # yellow / red / blue
    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.rectangle(mask, (0, height // 3), (width - 1, height - 5), 1, -1)
    cv2.rectangle(mask, (width // 5, 0), (4 * width // 5, height // 3), 1, -1)
    wheel_radius = 4
    for wheel_x in (wheel_radius + 3, width - wheel_radius - 4):
        cv2.circle(mask, (wheel_x, height - wheel_radius - 1), wheel_radius, 1, -1)
    image = np.empty((height, width, 3), dtype=np.float32)
    image[:] = body
    image[2 : height // 3, width // 5 + 3 : 4 * width // 5 - 3] = (110.0, 70.0, 40.0)  # windows
    image[height // 2 : height // 2 + 2, :] = body * 0.6  # trim line
    image[height - 2 * wheel_radius - 1 :, :][mask[height - 2 * wheel_radius - 1 :].astype(bool)] = (
        20.0,
        20.0,
        20.0,
    )
    image += _textured(rng, (height, width), 8.0)
    sprite = np.clip(image, 0, 255).astype(np.uint8)
    return [sprite], [mask.astype(bool)]


def walkway_band(frame_height: int, object_height: int) -> tuple[float, float]:
    """Range of a walker's top edge that keeps it on the walkway (below the verge, above the kerb)."""
    low = 0.14 * frame_height
    return low, max(0.9 * frame_height - object_height, low + 1.0)


def _walkway_y(rng: np.random.Generator, frame_height: int, object_height: int) -> float:
    return float(rng.uniform(*walkway_band(frame_height, object_height)))


def walking_sway(rng: np.random.Generator, steps: np.ndarray) -> np.ndarray:
    """The small vertical bob of a walker, in px, for each step of its path."""
    return 0.6 * np.sin(2 * np.pi * steps / rng.uniform(12, 20) + rng.uniform(0, 2 * np.pi))


def horizontal_path(
    rng: np.random.Generator,
    width: int,
    height: int,
    sprite_w: int,
    sprite_h: int,
    speed: float,
    x_start: float | None = None,
) -> tuple[np.ndarray, float]:
    """Positions of a walker crossing the frame horizontally from ``x_start`` (or an edge)."""
    direction = 1.0 if rng.random() < 0.5 else -1.0
    if x_start is None:
        x_start = -float(sprite_w) if direction > 0 else float(width)
    x_end = float(width) if direction > 0 else -float(sprite_w)
    n_steps = max(int(np.ceil(abs(x_end - x_start) / speed)) + 1, 1)
    steps = np.arange(n_steps, dtype=np.float64)
    y0 = _walkway_y(rng, height, sprite_h)
    drift = rng.uniform(-0.12, 0.12)
    sway = walking_sway(rng, steps)
    xs = x_start + direction * speed * steps
    ys = np.clip(y0 + drift * steps + sway, 0.1 * height, 0.93 * height - sprite_h)
    return np.stack([xs, ys], axis=1), direction


def normal_pedestrian(rng: np.random.Generator, width: int, height: int, start: int, inside: bool) -> SceneObject:
    """A pedestrian of the normal flow from ``start``: already ``inside`` the frame, or entering at a side."""
    images, masks = pedestrian_sprite(rng)
    sprite_h, sprite_w = images[0].shape[:2]
    speed = float(rng.uniform(*NORMAL_SPEED_RANGE))
    x_start = float(rng.uniform(0, width - sprite_w)) if inside else None
    positions, _ = horizontal_path(rng, width, height, sprite_w, sprite_h, speed, x_start)
    return SceneObject(images, masks, start, positions, np.zeros(len(positions), dtype=bool))


def anomalous_object(rng: np.random.Generator, kind: str, width: int, height: int, start: int) -> SceneObject:
    """The anomalous object of one :data:`ANOMALY_KINDS` kind, entering at frame ``start``."""
    if kind == "too_fast":
        images, masks = pedestrian_sprite(rng)
        speed = FAST_SPEED_FACTOR * float(np.mean(NORMAL_SPEED_RANGE))
        positions, _ = horizontal_path(rng, width, height, images[0].shape[1], images[0].shape[0], speed)
        return SceneObject(images, masks, start, positions, np.ones(len(positions), dtype=bool), kind)
    if kind == "unusual_object":
        images, masks = vehicle_sprite(rng)
        positions, _ = horizontal_path(
            rng, width, height, images[0].shape[1], images[0].shape[0], VEHICLE_SPEED
        )
        return SceneObject(images, masks, start, positions, np.ones(len(positions), dtype=bool), kind)
    if kind == "wrong_direction":
        images, masks = pedestrian_sprite(rng)
        sprite_h, sprite_w = images[0].shape[:2]
        speed = float(np.mean(NORMAL_SPEED_RANGE))
        x0 = float(rng.uniform(0.2 * width, 0.8 * width - sprite_w))
        from_bottom = rng.random() < 0.5
        # Walk in from the top or bottom edge across about half the frame, then join the normal flow.
        distance = sprite_h + 0.45 * height
        n_vertical = int(np.ceil(distance / speed))
        steps = np.arange(n_vertical, dtype=np.float64)
        y_start = float(height) if from_bottom else -float(sprite_h)
        ys = y_start + (-1.0 if from_bottom else 1.0) * speed * steps
        xs = x0 + 0.8 * np.sin(2 * np.pi * steps / 15.0)
        vertical = np.stack([xs, ys], axis=1)
        turn, _ = horizontal_path(rng, width, height, sprite_w, sprite_h, speed, x_start=float(xs[-1]))
        turn[:, 1] = ys[-1]
        positions = np.concatenate([vertical, turn[1:]])
        anomalous = np.zeros(len(positions), dtype=bool)
        anomalous[:n_vertical] = True
        return SceneObject(images, masks, start, positions, anomalous, kind)
    raise ValueError(f"unknown anomaly kind {kind!r}")


def plan_objects(
    rng: np.random.Generator, n_frames: int, width: int, height: int, anomaly: str | None
) -> list[SceneObject]:
    """Normal pedestrians (Poisson arrivals at a steady density), plus the anomaly if any."""
    density = PEDESTRIANS_IN_VIEW * width / 320.0
    crossing_frames = (width + 14) / float(np.mean(NORMAL_SPEED_RANGE))
    arrival_rate = density / crossing_frames  # Little's law: density = rate x time in view
    actors = [
        normal_pedestrian(rng, width, height, 0, inside=True) for _ in range(int(rng.poisson(density)))
    ]
    for frame in range(n_frames):
        for _ in range(int(rng.poisson(arrival_rate))):
            actors.append(normal_pedestrian(rng, width, height, frame, inside=False))
    if anomaly is not None:
        start = int(0.2 * n_frames + rng.integers(0, max(int(0.1 * n_frames), 1)))
        actors.append(anomalous_object(rng, anomaly, width, height, start))
    return actors


def visible_fraction(x: int, y: int, sprite_w: int, sprite_h: int, width: int, height: int) -> float:
    """Fraction of a sprite with top-left corner ``(x, y)`` that lies inside the frame."""
    visible_w = max(0, min(x + sprite_w, width) - max(x, 0))
    visible_h = max(0, min(y + sprite_h, height) - max(y, 0))
    return visible_w * visible_h / float(sprite_w * sprite_h)


def _paste(frame: np.ndarray, image: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    """Draw a sprite with its silhouette mask, clipped to the frame."""
    height, width = frame.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + image.shape[1], width), min(y + image.shape[0], height)
    if x1 <= x0 or y1 <= y0:
        return
    sprite_region = (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x))
    region = frame[y0:y1, x0:x1]
    np.copyto(region, image[sprite_region], where=mask[sprite_region][..., None])


def render_video(
    path: Path,
    background: np.ndarray,
    actors: list[SceneObject],
    n_frames: int,
    fps: float,
    rng: np.random.Generator,
    anomaly_boxes: list[list[float]] | None = None,
) -> np.ndarray:
    """Write the frames to ``path``; return per-frame anomaly labels.

    ``anomaly_boxes``, when given, receives ``[frame, x1, y1, x2, y2]`` (clipped to the
    frame) for every frame in which an anomalous object counts as shown.
    """
    height, width = background.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*VIDEO_CODEC), fps, (width, height))
    if not writer.isOpened():
        raise AnographError(f"{path}: OpenCV cannot write {VIDEO_CODEC} video here")
    noise = rng.normal(0.0, _NOISE_SIGMA, size=(_NOISE_FRAMES, height, width, 3)).astype(np.int16)
    illumination_phase = rng.uniform(0, 2 * np.pi)
    labels = np.zeros(n_frames, dtype=bool)
    try:
        for frame_index in range(n_frames):
            frame = background.copy()
            for actor in actors:
                step = frame_index - actor.start_frame
                if step < 0 or step >= len(actor.positions):
                    continue
                x, y = (int(round(value)) for value in actor.positions[step])
                phase = (step // 3) % len(actor.images)
                _paste(frame, actor.images[phase], actor.masks[phase], x, y)
                if (
                    actor.anomalous[step]
                    and visible_fraction(x, y, actor.width, actor.height, width, height)
                    >= MIN_VISIBLE_FRACTION
                ):
                    labels[frame_index] = True
                    if anomaly_boxes is not None:
                        anomaly_boxes.append([frame_index, max(x, 0), max(y, 0), min(x + actor.width, width),
                                              min(y + actor.height, height)])
            brightness = int(round(3.0 * np.sin(2 * np.pi * frame_index / 90.0 + illumination_phase)))
            shaded = frame.astype(np.int16) + noise[int(rng.integers(_NOISE_FRAMES))] + brightness
            writer.write(np.clip(shaded, 0, 255).astype(np.uint8))
    finally:
        writer.release()
    return labels
