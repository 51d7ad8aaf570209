"""Tasks that turn videos into feature shards (thin wrappers over ``anograph.extraction.extract``)."""

from __future__ import annotations

from typing import Any

import torch
from prefect import get_run_logger, task

from anograph.extraction.extract import extract_video_to_shard, find_reusable_shard
from anograph.io.content_hash import video_content_hash
from anograph.io.extraction_settings import ExtractionSettings, extraction_fingerprint, shard_key
from anograph.io.progress import progress_reporter
from anograph.io.storage import Storage
from tasks.retry import retry_unless_bad_input


@task(name="plan-extraction", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_unless_bad_input)
def plan_extraction(settings: dict[str, Any]) -> str:
    """Build the detector once (downloading weights if needed) and return the shard fingerprint."""
    detector, extractor = ExtractionSettings.from_dict(settings).build()
    fingerprint = extraction_fingerprint(detector, extractor)
    get_run_logger().info("extraction fingerprint %s (detector %s)", fingerprint, detector.name)
    return fingerprint


@task(
    name="extract-video",
    task_run_name="extract-{split}-{video_name}",
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=retry_unless_bad_input,
)
def extract_video_shard(
    video_name: str,
    video_path: str,
    split: str,
    fps: float | None,
    storage_root: str,
    fingerprint: str,
    settings: dict[str, Any],
    threads_per_task: int = 1,
    source: str | None = None,
    camera: str = "",
) -> dict[str, Any]:
    """Extract one video into its content-addressed shard (see ``shard_key``); reuse a complete one.

    The shard records ``video_name`` as its video, ``source`` (default ``video_path``;
    the flows pass the path relative to the dataset root, or the footage's storage key) and
    ``camera`` (the dataset's camera of the video; ``""`` for one camera).
    """
    logger = get_run_logger()
    storage = Storage(storage_root)
    content_sha256 = video_content_hash(video_path)
    key = shard_key(fingerprint, split, video_name, content_sha256)
    metadata, problem = find_reusable_shard(storage, key, content_sha256, camera)
    if metadata is not None:
        logger.info("%s: reusing complete shard %s", video_name, key)
        return {"video": video_name, "shard": key, "n_frames": metadata.n_frames, "reused": True}
    if problem is not None:
        logger.warning("%s: extracting again, the shard at %s is not complete: %s", video_name, key, problem)

    torch.set_num_threads(threads_per_task)
    progress = progress_reporter(f"extract {split} {video_name}", logger.info)
    video = extract_video_to_shard(video_path, storage, key, content_sha256, settings, fps, progress,
                                   video_name=video_name, source=source, camera=camera)
    extraction = video.metadata.extraction
    logger.info(
        "%s: %d frames, %d objects, %.1f frames/s, %.1f objects/s -> %s",
        video_name, video.metadata.n_frames, video.n_objects,
        extraction.get("frames_per_second", 0.0), extraction.get("objects_per_second", 0.0), key,
    )
    return {"video": video_name, "shard": key, "n_frames": video.metadata.n_frames, "reused": False}
