"""Flow: fan feature extraction out over videos, one mapped task per video."""

from __future__ import annotations

import os
from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

from anograph.datasets.base import recorded_source
from anograph.errors import AnographError, InputError
from anograph.io.progress import progress_reporter
from tasks.extract import extract_video_shard, plan_extraction


class ExtractionFailed(AnographError):
    """One or more videos failed; the message lists each video and why. Finished shards are kept."""


@flow(name="extract-features", task_runner=ThreadPoolTaskRunner(max_workers=os.cpu_count() or 1))
def extract_features(
    videos: list[dict[str, Any]],
    storage_root: str,
    settings: dict[str, Any],
    split: str = "train",
    fps: float | None = None,
    skip_bad_videos: bool = False,
    root: str | None = None,
) -> dict[str, Any]:
    """Extract a shard for each ``{"name", "path"}`` video (and its ``"camera"``, where the dataset has several).

    Every video runs as its own task. A video that fails does not stop the others: their
    shards are written, and the flow then fails naming every failed video and its reason.
    With ``skip_bad_videos``, videos that fail as bad input (cannot be opened or decoded,
    never retried) are skipped instead; any other failure still fails the flow.
    Each shard records the video's path relative to the dataset ``root`` when it lies below it.

    Returns ``{"shards": [keys of the extracted videos, in order], "skipped": [{"split",
    "video", "path", "reason"} of each skipped video]}``.
    """
    fingerprint = plan_extraction(settings)
    futures = extract_video_shard.map(
        video_name=[video["name"] for video in videos],
        video_path=[str(video["path"]) for video in videos],
        split=unmapped(split),
        fps=unmapped(fps),
        storage_root=unmapped(storage_root),
        fingerprint=unmapped(fingerprint),
        settings=unmapped(settings),
        source=[recorded_source(video["path"], root) for video in videos],
        camera=[video.get("camera", "") for video in videos],
    )
    overall = progress_reporter(f"{split} videos", get_run_logger().info, unit="videos")
    for done, future in enumerate(futures, start=1):  # in order: a line as each finishes, or later
        future.wait()
        overall(done, len(videos))
    wait(futures)
    failures, skipped, shards = [], [], []
    for video, future in zip(videos, futures, strict=True):
        if future.state.is_completed():
            shards.append(future.result()["shard"])
            continue
        try:
            future.result()
        except InputError as error:
            if skip_bad_videos:
                skipped.append({"split": split, "video": video["name"], "path": str(video["path"]),
                                "reason": error.reason})
            else:
                failures.append(f"{video['name']} ({video['path']}): {error}")
        except Exception as error:  # noqa: BLE001 - collected and re-raised below with every video named
            failures.append(f"{video['name']} ({video['path']}): {error}")
    if failures:
        raise ExtractionFailed(f"{len(failures)} of {len(videos)} {split} videos failed:\n" + "\n".join(failures))
    if skipped:
        get_run_logger().warning("skipped %d unreadable %s video(s): %s", len(skipped), split,
                                 "; ".join(f"{video['path']}: {video['reason']}" for video in skipped))
    return {"shards": shards, "skipped": skipped}
