"""Flow: extract a whole dataset by fanning batches of videos out as flow runs on a work pool.

Why this engine: each batch of videos becomes its own flow run of the ``extract-shards``
deployment (the ``extract-features`` flow), started with ``run_deployment`` and bounded to
``max_concurrent_runs`` at a time. The work pool decides where a run executes: on the GPU
cluster a Kubernetes pod with one ``nvidia.com/gpu`` (see ``infra/``), on one machine a
local process of a ``process`` worker. The code path is the same; only the pool differs.
A failed batch does not stop the others; finished shards are kept and a rerun reuses them
(shard keys are deterministic, and ``extract-features`` skips finished shards).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from anograph.datasets.base import video_references
from anograph.errors import AnographError, InputError
from anograph.io.content_hash import video_content_hash
from anograph.io.extraction_settings import extraction_settings, shard_key
from anograph.io.storage import Storage
from tasks.evaluate import load_dataset_task
from tasks.extract import plan_extraction
from tasks.fanout import run_deployment_batches

SHARD_DEPLOYMENT = "extract-features/extract-shards"


class DatasetExtractionFailed(AnographError):
    """Some batches failed or some shards are missing; the message names them. Finished shards are kept."""


@flow(name="extract-dataset")
def extract_dataset(
    dataset: str,
    root: str,
    storage_root: str,
    detector: str = "yolox",
    detector_options: dict[str, Any] | None = None,
    appearance: bool = True,
    fps: float | None = None,
    splits: list[str] | None = None,
    videos_per_run: int = 8,
    max_concurrent_runs: int = 4,
    shard_deployment: str = SHARD_DEPLOYMENT,
) -> dict[str, list[str]]:
    """Extract every video of ``splits`` (default train and test) into shards; return the keys per split."""
    if videos_per_run < 1:
        raise ValueError(f"videos_per_run must be at least 1, got {videos_per_run}")
    data = load_dataset_task(dataset, root, fps)
    settings = extraction_settings(detector, detector_options, appearance)
    fingerprint = plan_extraction(settings)
    videos_by_split = {"train": data.train, "test": data.test}
    splits = splits or ["train", "test"]
    if unknown := set(splits) - set(videos_by_split):
        raise InputError(None, f"unknown splits {sorted(unknown)}; choose from train, test")
    parameter_sets = []
    for split in splits:
        videos = video_references(videos_by_split[split])
        for start in range(0, len(videos), videos_per_run):
            parameter_sets.append({"videos": videos[start:start + videos_per_run], "storage_root": storage_root,
                                   "settings": settings, "split": split, "fps": data.fps})
    outcomes = run_deployment_batches(shard_deployment, parameter_sets, max_concurrent_runs)

    storage = Storage(storage_root)
    # The children's return values stay in their own flow runs; the keys follow from the content.
    keys = {split: [shard_key(fingerprint, split, video.name, video_content_hash(video.path))
                    for video in videos_by_split[split]]
            for split in splits}
    problems = [f"{outcome['flow_run']} ({', '.join(video['name'] for video in parameters['videos'])}): "
                f"{outcome['state']} {outcome['message'] or ''}".strip()
                for parameters, outcome in zip(parameter_sets, outcomes, strict=True)
                if outcome["state"] != "COMPLETED"]
    missing = [key for split_keys in keys.values() for key in split_keys if not storage.exists(key)]
    if problems or missing:
        raise DatasetExtractionFailed(
            f"{len(problems)} of {len(parameter_sets)} extraction runs did not complete, {len(missing)} shards missing:\n"
            + "\n".join(problems + [f"missing {key}" for key in missing]))
    get_run_logger().info("%s: %d shards in %d runs", dataset, sum(map(len, keys.values())), len(parameter_sets))
    return keys
