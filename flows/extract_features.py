"""Flow: fan feature extraction out over videos, one mapped task per video."""

from __future__ import annotations

import os
from typing import Any

from prefect import flow, unmapped
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

from anograph.errors import AnographError
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
) -> list[str]:
    """Extract a shard for each ``{"name", "path"}`` video; return the shard keys in order.

    Every video runs as its own task. A video that fails does not stop the others: their
    shards are written, and the flow then fails naming every failed video and its reason.
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
    )
    wait(futures)
    failures = []
    for video, future in zip(videos, futures, strict=True):
        if not future.state.is_completed():
            try:
                future.result()
            except Exception as error:  # noqa: BLE001 - collected and re-raised below with every video named
                failures.append(f"{video['name']} ({video['path']}): {error}")
    if failures:
        raise ExtractionFailed(f"{len(failures)} of {len(videos)} {split} videos failed:\n" + "\n".join(failures))
    return [future.result()["shard"] for future in futures]
