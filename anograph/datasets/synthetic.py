"""A small synthetic surveillance scene with known anomalies, written as real video files.

Why: the pipeline must be demonstrable and testable end to end on any machine, without
downloading a dataset. The scene imitates UCSD Ped2 closely enough for the real
pipeline (a background-subtraction or learned detector, motion / geometry / appearance
features, the graph model) to have something to find (drawn by
:mod:`anograph.datasets.synthetic_scene`):

* a fixed camera over a textured walkway (paving, grass verge, kerb, static benches), with
  slight sensor noise and slow illumination drift;
* "pedestrians": textured upright figures of about 14x30 px with size and colour jitter and
  a two-phase gait, walking mostly horizontally at 1.6-2.4 px/frame, entering and
  leaving at the sides;
* in test videos ``test_000``, ``test_001``, ... one anomaly each (kinds cycle with the
  video index):

  - ``wrong_direction``: a pedestrian enters at the top or bottom edge and walks
    vertically across the walkway before turning into the normal flow;
  - ``too_fast``: a pedestrian crossing at four times the normal speed;
  - ``unusual_object``: a wide, brightly coloured vehicle-like object with windows and
    wheels (about 56x26 px) crossing the walkway.

  A test frame is labelled anomalous while an anomalous object (in its anomalous phase)
  has at least a quarter of its area inside the frame. Normal pedestrians walk through
  test videos too.

With ``interactions=True`` the scene also has anomalies that no single object reveals
(:mod:`anograph.datasets.synthetic_interactions`):

* all normal footage (training and test videos) obeys a distance rule: two pedestrians in
  view at the same time stay at least 24 px apart (box to box), so people pass in
  separate lanes and never tail one another. Pedestrians are planned with the same random
  draws as without the rule, and one that would break it is redrawn from a separate
  stream, so each ``test_NNN`` keeps its anomaly and its labels; only some of its
  background walkers change;
* two more test videos of ``n_interaction_frames`` frames each, with normal traffic and one
  pair of ordinary pedestrians (normal look, speed, direction, lane) who interact:

  - ``test_converge``: two walk towards each other and brush past 10 px apart;
  - ``test_follow``: one tails the other 10 px behind at the same speed.

  A frame is anomalous while both walkers of the pair are at least a quarter inside the
  frame and their boxes are less than 16 px apart.

Videos are MPEG-4 Part 2 (``mp4v``) in ``.mp4``, which OpenCV's bundled FFmpeg both writes
and reads; the written layout is the ``folder`` layout (``train/``, ``test/``,
``labels.csv``) plus ``synthetic.json`` describing the parameters and every anomaly.
Everything is drawn from ``numpy.random.default_rng`` seeded by ``seed``, so a seed
always gives the same frames and labels.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from anograph.datasets.base import Dataset
from anograph.datasets.folder import LABELS_FILE, LABELS_HEADER, load_folder_dataset
from anograph.datasets.synthetic_interactions import (
    INTERACTION_KINDS,
    MIN_INTERACTION_FRAMES,
    MIN_INTERACTION_HEIGHT,
    interacting_pair,
    keep_personal_space,
)
from anograph.datasets.synthetic_scene import (
    ANOMALY_KINDS,
    VIDEO_CODEC,
    SceneObject,
    make_background,
    normal_pedestrian,
    plan_objects,
    render_video,
)
from anograph.errors import AnographError, InputError

__all__ = [
    "ANOMALY_KINDS",
    "INTERACTION_KINDS",
    "SYNTHETIC_MANIFEST",
    "VIDEO_CODEC",
    "VIDEO_SUFFIX",
    "generate_synthetic_dataset",
    "plan_video_objects",
]

SYNTHETIC_MANIFEST = "synthetic.json"
VIDEO_SUFFIX = ".mp4"
INTERACTION_VIDEO_PREFIX = "test_"


def _label_rows(name: str, labels: np.ndarray) -> list[tuple[str, int, int]]:
    """Runs of anomalous frames as 1-based inclusive (video, start, end) rows."""
    padded = np.concatenate([[False], labels, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(name, int(start) + 1, int(end)) for start, end in zip(edges[::2], edges[1::2], strict=True)]


def _prepare_root(root: Path) -> None:
    """Create ``root``; replace an earlier generated dataset, never anything else."""
    if root.exists() and not root.is_dir():
        raise InputError(root, "exists and is not a folder")
    if root.is_dir() and any(root.iterdir()):
        if not (root / SYNTHETIC_MANIFEST).is_file():
            raise InputError(
                root,
                "folder is not empty and holds no earlier synthetic dataset; choose a new or empty folder",
            )
        for entry in ("train", "test"):
            shutil.rmtree(root / entry, ignore_errors=True)
        for entry in (LABELS_FILE, SYNTHETIC_MANIFEST):
            (root / entry).unlink(missing_ok=True)
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "test").mkdir(parents=True, exist_ok=True)


def _parse_video_name(name: str, interactions: bool) -> tuple[list[int], str | None]:
    """``(random stream key, anomaly or interaction kind)`` of a generated video's name."""
    split, _, suffix = name.partition("_")
    if split == "train" and suffix.isdigit():
        return [1, int(suffix)], None
    if split == "test" and suffix.isdigit():
        return [2, int(suffix)], ANOMALY_KINDS[int(suffix) % len(ANOMALY_KINDS)]
    if split == "test" and interactions and suffix in INTERACTION_KINDS:
        return [3, INTERACTION_KINDS.index(suffix)], suffix
    raise InputError(None, f"{name!r} is not a video of this synthetic dataset")


def _plan_video(
    name: str, seed: int, n_frames: int, width: int, height: int, interactions: bool
) -> tuple[list[SceneObject], np.random.Generator]:
    """The objects of one video, and the generator (mid-stream) that renders it."""
    key, kind = _parse_video_name(name, interactions)
    rng = np.random.default_rng([seed, *key])
    if kind in INTERACTION_KINDS:
        fixed = interacting_pair(rng, kind, n_frames, width, height)
        planned = plan_objects(rng, n_frames, width, height, None)
    else:
        planned = plan_objects(rng, n_frames, width, height, kind)
        if not interactions:
            return planned, rng
        fixed = planned[-1:] if kind is not None else []
        planned = planned[: len(planned) - len(fixed)]
    # Redraws come from their own stream, so the main stream (the anomaly, the noise) is unchanged.
    redraw_rng = np.random.default_rng([seed, *key, 1])

    def redraw(pedestrian: SceneObject) -> SceneObject:
        inside = 0.0 <= pedestrian.positions[0, 0] <= width - pedestrian.width
        return normal_pedestrian(redraw_rng, width, height, pedestrian.start_frame, inside=bool(inside))

    return keep_personal_space(planned, fixed, redraw, n_frames, width, height), rng


def plan_video_objects(
    name: str,
    *,
    seed: int = 0,
    n_frames: int = 150,
    width: int = 320,
    height: int = 240,
    interactions: bool = False,
    n_interaction_frames: int = 100,
) -> list[SceneObject]:
    """The objects of one generated video with their ground-truth paths (no frames drawn).

    The keyword arguments are those given to :func:`generate_synthetic_dataset` (they
    are recorded under ``parameters`` in ``synthetic.json``). Each object's
    ``positions[i]`` is its top-left corner in frame ``start_frame + i``.
    """
    frames = n_interaction_frames if _parse_video_name(name, interactions)[1] in INTERACTION_KINDS else n_frames
    return _plan_video(name, seed, frames, width, height, interactions)[0]


def generate_synthetic_dataset(
    root: str | Path,
    *,
    n_train_videos: int = 4,
    n_test_videos: int = 3,
    n_frames: int = 150,
    width: int = 320,
    height: int = 240,
    fps: float = 10.0,
    seed: int = 0,
    interactions: bool = False,
    n_interaction_frames: int = 100,
) -> Dataset:
    """Write a synthetic dataset in the ``folder`` layout and load it.

    Parameters
    ----------
    root:
        Folder to write; created if missing. It must be empty or hold an earlier
        synthetic dataset (which is replaced).
    n_train_videos:
        Normal videos in ``train/`` (default 4).
    n_test_videos:
        Test videos, each with one anomaly; kinds cycle through :data:`ANOMALY_KINDS`
        (default 3: one of each).
    n_frames:
        Frames per video (default 150, 15 s at 10 fps).
    width, height:
        Frame size in pixels, both even (default 320x240).
    fps:
        Frame rate stored in the containers (default 10, like UCSD).
    seed:
        Seed for everything random (default 0).
    interactions:
        Add the interaction test videos ``test_converge`` and ``test_follow`` and make all
        normal footage keep its distance (see the module docstring). Default ``False``:
        the scene without interactions, frame for frame as before they existed.
    n_interaction_frames:
        Frames per interaction video (default 100; at least 40). Needs ``height`` >= 120.

    Returns
    -------
    Dataset
        ``load_dataset("synthetic", root)``: named ``synthetic``, with the labels written.
    """
    if n_train_videos < 1 or n_test_videos < 1:
        raise InputError(None, "synthetic data needs at least one training and one test video")
    if n_frames < 10:
        raise InputError(None, f"n_frames must be at least 10, got {n_frames}")
    if width < 96 or height < 96 or width % 2 or height % 2:
        raise InputError(None, f"frame size must be even and at least 96x96, got {width}x{height}")
    if fps <= 0:
        raise InputError(None, f"fps must be positive, got {fps}")
    if interactions and n_interaction_frames < MIN_INTERACTION_FRAMES:
        raise InputError(
            None, f"n_interaction_frames must be at least {MIN_INTERACTION_FRAMES}, got {n_interaction_frames}"
        )
    if interactions and height < MIN_INTERACTION_HEIGHT:
        raise InputError(None, f"interaction videos need a height of at least {MIN_INTERACTION_HEIGHT}, got {height}")
    root = Path(root)
    _prepare_root(root)

    videos = [("train", f"train_{index:03d}", n_frames) for index in range(n_train_videos)]
    videos += [("test", f"test_{index:03d}", n_frames) for index in range(n_test_videos)]
    if interactions:
        videos += [("test", f"{INTERACTION_VIDEO_PREFIX}{kind}", n_interaction_frames) for kind in INTERACTION_KINDS]
    background = make_background(np.random.default_rng([seed, 0]), width, height)
    label_rows: list[tuple[str, int, int]] = []
    anomalies: list[dict[str, object]] = []
    anomaly_boxes: dict[str, list[list[float]]] = {}
    for split, name, video_frames in videos:
        objects, rng = _plan_video(name, seed, video_frames, width, height, interactions)
        boxes: list[list[float]] = []
        labels = render_video(root / split / f"{name}{VIDEO_SUFFIX}", background, objects, video_frames, fps, rng, boxes)
        if boxes:
            anomaly_boxes[name] = boxes
        if split == "test":
            kind = _parse_video_name(name, interactions)[1]
            rows = _label_rows(name, labels)
            label_rows.extend(rows)
            anomalies.extend(
                {"video": name, "kind": kind, "start_frame": start, "end_frame": end} for _, start, end in rows
            )

    with (root / LABELS_FILE).open("w", encoding="utf-8") as handle:
        handle.write(",".join(LABELS_HEADER) + "\n")
        handle.writelines(f"{name},{start},{end}\n" for name, start, end in label_rows)
    manifest = {
        "generator": "anograph.datasets.synthetic",
        "parameters": {
            "n_train_videos": n_train_videos,
            "n_test_videos": n_test_videos,
            "n_frames": n_frames,
            "width": width,
            "height": height,
            "fps": fps,
            "seed": seed,
            "interactions": interactions,
            "n_interaction_frames": n_interaction_frames,
        },
        "codec": VIDEO_CODEC,
        "frame_counts": {name: video_frames for _, name, video_frames in videos},
        "anomalies": anomalies,
        # Per test video: [frame (0-based), x1, y1, x2, y2] of each anomalous object while it counts as shown.
        "anomaly_boxes": anomaly_boxes,
    }
    (root / SYNTHETIC_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    dataset = load_folder_dataset(root, name="synthetic")
    # Read-back check: the codec must have kept every frame, or the labels would not fit.
    expected_frames = {name: video_frames for _, name, video_frames in videos}
    for video in dataset.test:
        if dataset.labels[video.name].size != expected_frames[video.name]:
            raise AnographError(
                f"{video.path}: wrote {expected_frames[video.name]} frames but "
                f"{dataset.labels[video.name].size} decode back"
            )
    return dataset
