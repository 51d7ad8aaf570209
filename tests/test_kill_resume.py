"""Kill an extraction flow partway (a real SIGKILL of a real process) and rerun it.

After the rerun: no video finished before the kill is extracted again, every video has
exactly one complete shard, temporaries left by the kill are never read, and the training
graph equals the one from a clean, uninterrupted run.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from extraction_worker import start_extraction, wait_for_first_shard

from anograph.io.content_hash import video_content_hash
from anograph.io.extraction_settings import fingerprint_of, shard_key
from anograph.io.shards import check_shard, read_shard
from anograph.io.storage import TEMPORARY_MARKER, Storage
from anograph.models.estimator import AnoGraph
from flows.extract_features import extract_features

N_VIDEOS = 6


def complete_shard_keys(storage: Storage) -> list[str]:
    return [key for key in storage.list("shards") if check_shard(storage, key) is None]


def shard_stamps(storage: Storage, keys: list[str], server) -> dict[str, tuple]:
    """What changes when an object is written again: inode and mtime locally, ETag and date on S3."""
    if server is None:
        return {key: (os.stat(storage.local_path(key)).st_ino, os.stat(storage.local_path(key)).st_mtime_ns)
                for key in keys}
    client, (bucket, prefix) = server.client(), storage.base.split("/", 1)
    return {key: (head["ETag"], head["LastModified"])
            for key in keys
            for head in [client.head_object(Bucket=bucket, Key=f"{prefix}/{key}")]}


def _training_graph(storage: Storage, keys: list[str]):
    return AnoGraph().prepare_training_graph([read_shard(storage, key) for key in keys])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", "s3"])
def test_killed_extraction_resumes_without_redoing_or_losing_work(backend, tmp_path, request):
    server = request.getfixturevalue("s3_server") if backend == "s3" else None
    root = request.getfixturevalue("s3_root") if backend == "s3" else str(tmp_path / "store")
    storage = Storage(root)

    # The flow in its own process (own Prefect home), killed with SIGKILL once a first shard is complete.
    log = (tmp_path / "worker.log").open("wb")
    videos, settings, worker = start_extraction(tmp_path, root, N_VIDEOS, seed=11, log=log)
    wait_for_first_shard(lambda: complete_shard_keys(storage), worker, tmp_path / "worker.log")
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    log.close()
    finished = complete_shard_keys(storage)
    assert 1 <= len(finished) < N_VIDEOS, f"the kill came too late to test resuming: {finished}"
    before = shard_stamps(storage, finished, server)
    if server is not None:  # the run's own logs (INFO) name the S3 root but never hold the secret
        worker_log = (tmp_path / "worker.log").read_text()
        assert "extraction fingerprint" in worker_log and server.secret_key not in worker_log

    # Whatever the kill left in flight, also leave half a shard as a temporary of an unfinished video.
    unfinished = next(video for video in videos if not any(f"/{video['name']}." in key for key in finished))
    unfinished_key = shard_key(fingerprint_of(finished[0]), "train", unfinished["name"],
                               video_content_hash(unfinished["path"]))
    with storage.filesystem.open_output_stream(f"{storage.path(unfinished_key)}{TEMPORARY_MARKER}dead") as stream:
        stream.write(storage.read_bytes(finished[0])[:500])

    keys = extract_features(videos, root, settings)["shards"]

    # Finished videos were not extracted again: the very same objects are still there.
    assert shard_stamps(storage, finished, server) == before
    assert set(finished) <= set(keys)
    # Exactly one complete shard per video, and listing never yields a temporary left by the kill.
    listed = storage.list("shards")
    assert sorted(listed) == sorted(keys) and len(keys) == N_VIDEOS
    assert all(TEMPORARY_MARKER not in key for key in listed)
    assert all(check_shard(storage, key) is None for key in keys)
    assert [read_shard(storage, key).metadata.video for key in keys] == [video["name"] for video in videos]
    assert unfinished_key in keys and storage.filesystem.get_file_info(
        f"{storage.path(unfinished_key)}{TEMPORARY_MARKER}dead").size == 500  # never read nor renamed

    # The training graph equals the one from a clean run into another root.
    clean_root = str(tmp_path / "clean-store")
    clean_keys = extract_features(videos, clean_root, settings)["shards"]
    assert [key.rsplit("/", 1)[1] for key in clean_keys] == [key.rsplit("/", 1)[1] for key in keys]
    resumed, clean = _training_graph(storage, keys), _training_graph(Storage(clean_root), clean_keys)
    assert resumed.adjacency.shape == clean.adjacency.shape and resumed.n_edges > 0
    assert (resumed.adjacency != clean.adjacency).nnz == 0
    assert np.array_equal(resumed.node_features, clean.node_features)
    assert np.array_equal(resumed.video_of_node, clean.video_of_node)
