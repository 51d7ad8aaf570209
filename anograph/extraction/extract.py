"""Turn one video into a feature shard: detect objects frame by frame, compute node features.

This is the per-video unit of work of the pipeline (one Prefect task per video): it
reads frames in order, runs the detector, computes each object's feature vector, and
returns a :class:`VideoFeatures` with the metadata that identifies how it was made
(detector settings and weights hash, feature layout) and how fast it ran.
:func:`extract_video_to_shard` writes it to its shard; :func:`find_reusable_shard` says
whether a finished shard can be reused instead (the rule of resumable extraction).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from anograph.extraction.detectors.base import Detector, batch_size, detect_frames, feature_width
from anograph.extraction.features.extractor import FrameObjects, NodeFeatureExtractor
from anograph.io.extraction_settings import ExtractionSettings
from anograph.io.shards import ShardMetadata, VideoFeatures, check_shard, read_metadata, write_shard
from anograph.io.storage import Storage
from anograph.io.video import VideoReader, open_video


def frame_batches(frames: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    """Consecutive frames in lists of ``size`` (the last one shorter), read lazily."""
    iterator = iter(frames)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def extract_video(
    reader: VideoReader,
    detector: Detector,
    extractor: NodeFeatureExtractor,
    *,
    progress: Callable[[int, int], None] | None = None,
    name: str | None = None,
    source: str | None = None,
) -> VideoFeatures:
    """Detect objects in every frame of ``reader`` and compute their node features.

    Parameters
    ----------
    reader:
        The video, from :func:`anograph.io.video.open_video`. Decoding errors propagate as
        :class:`anograph.errors.VideoReadError` naming the file.
    detector:
        Any :class:`anograph.extraction.detectors.base.Detector`; reset before the first frame (and
        told the video's name and frame count, if it asks). It gets the frames in batches
        of its ``batch_size``.
    extractor:
        The node feature extractor; reset before the first frame.
    progress:
        Called as ``progress(frames_done, frames_expected)`` after each frame.
    name:
        The video's name in its dataset (a loader's ``VideoRef.name``, e.g. ``test_08``),
        recorded as ``metadata.video`` so that shards, scores and labels share one name;
        default the reader's name (file stem or folder name).
    source:
        The path recorded as ``metadata.source``, e.g. relative to the dataset root so that a
        shard does not carry the local absolute path; default the reader's path.

    Returns
    -------
    VideoFeatures
        All objects of the video (the detector's, and the motion-blob objects the
        extractor adds, each with its ``source`` and ``track_id``), sorted by frame, with
        ``extraction`` metadata holding
        the extractor's settings, wall-clock ``seconds``, ``frames_per_second`` and
        ``objects_per_second`` for the whole extraction, ``detector_seconds`` spent in the
        detector alone, the detector's ``batch_size`` and the ``device`` it ran on.
    """
    detector.reset()
    start_video = getattr(detector, "start_video", None)
    if start_video is not None:
        start_video(reader.name, len(reader))
    extractor.reset(reader.fps)
    layout = extractor.layout(detector.class_names, feature_width(detector))
    objects: list[FrameObjects] = []
    n_frames = 0
    expected = len(reader)
    detector_seconds = 0.0
    started = time.perf_counter()
    for batch in frame_batches(reader, batch_size(detector)):
        detect_started = time.perf_counter()
        batch_detections = detect_frames(detector, batch)
        detector_seconds += time.perf_counter() - detect_started
        for frame, detections in zip(batch, batch_detections, strict=True):
            objects += extractor.push(frame, detections)
            n_frames += 1
        if progress is not None:
            progress(n_frames, max(expected, n_frames))
    objects += extractor.finish()
    seconds = time.perf_counter() - started
    n_objects = int(sum(len(frame.detections) for frame in objects))
    metadata = ShardMetadata(
        video=name or reader.name,
        n_frames=n_frames,
        fps=reader.fps,
        width=int(reader.width),
        height=int(reader.height),
        source=str(reader.path) if source is None else source,
        detector=detector.describe(),
        class_names=list(detector.class_names),
        feature_layout=layout,
        extraction={
            "features": extractor.describe(),
            "seconds": round(seconds, 3),
            "frames_per_second": round(n_frames / seconds, 2) if seconds > 0 else None,
            "objects_per_second": round(n_objects / seconds, 2) if seconds > 0 else None,
            "detector_seconds": round(detector_seconds, 3),
            "batch_size": batch_size(detector),
            "device": str(getattr(detector, "device", "cpu")),
        },
    )
    return video_features(metadata, objects)


def video_features(metadata: ShardMetadata, objects: list[FrameObjects]) -> VideoFeatures:
    """Concatenate the frames' objects, in frame order, into a :class:`VideoFeatures`."""
    width = metadata.feature_layout.width
    detections = [frame.detections for frame in objects]

    def joined(parts: list[np.ndarray], dtype: type, shape: tuple[int, ...]) -> np.ndarray:
        return np.concatenate(parts).astype(dtype).reshape(shape) if parts else np.zeros(shape, dtype)

    n = int(sum(len(d) for d in detections))
    with_cells = bool(objects) and all(frame.cell_speeds is not None for frame in objects)
    return VideoFeatures(
        metadata=metadata,
        frames=joined([np.full(len(f.detections), f.index, np.int32) for f in objects], np.int32, (n,)),
        boxes=joined([d.boxes for d in detections], np.float32, (n, 4)),
        scores=joined([d.scores for d in detections], np.float32, (n,)),
        class_ids=joined([d.class_ids for d in detections], np.int32, (n,)),
        features=joined([f.features for f in objects], np.float32, (n, width)),
        sources=joined([f.sources for f in objects], np.int8, (n,)),
        track_ids=joined([f.track_ids for f in objects], np.int32, (n,)),
        cell_speeds=np.stack([frame.cell_speeds for frame in objects]) if with_cells else None,
    )


def find_reusable_shard(storage: Storage, key: str, content_sha256: str,
                        camera: str = "") -> tuple[ShardMetadata | None, str | None]:
    """The metadata of a complete shard of this video content at ``key`` to reuse, else ``None`` and why not.

    The reason is ``None`` when nothing is at the key yet; otherwise it is what
    :func:`anograph.io.shards.check_shard` found incomplete, or a ``camera`` other than the
    one the shard records (a shard written before its dataset told cameras apart), and the
    video is extracted again.
    """
    if not storage.exists(key):
        return None, None
    problem = check_shard(storage, key, content_sha256)
    if problem is not None:
        return None, problem
    metadata = read_metadata(storage, key)
    if metadata.camera != camera:
        return None, f"it records camera {metadata.camera!r}, the dataset says {camera!r}"
    return metadata, None


def extract_video_to_shard(
    video_path: str,
    storage: Storage,
    key: str,
    content_sha256: str,
    settings: dict[str, object],
    fps: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    video_name: str | None = None,
    source: str | None = None,
    camera: str = "",
) -> VideoFeatures:
    """Extract the video at ``video_path`` with ``settings`` (:class:`ExtractionSettings` as a dict) into ``key``.

    ``content_sha256`` (:func:`anograph.io.content_hash.video_content_hash`) is recorded in the
    shard, so a later run can tell it belongs to this content. ``fps`` is used when the video
    does not say. ``video_name`` and ``source`` are recorded as the shard's ``video`` and
    ``source`` (see :func:`extract_video`; default the file's stem and path), ``camera`` as its
    camera (:attr:`anograph.datasets.base.VideoRef.camera`).
    """
    detector, extractor = ExtractionSettings.from_dict(settings).build()
    video = extract_video(open_video(video_path, fps=fps), detector, extractor, progress=progress,
                          name=video_name, source=source)
    video.metadata.content_sha256 = content_sha256
    video.metadata.camera = camera
    write_shard(storage, key, video)
    return video
