"""Run the extraction flow in a process of its own, for the kill-and-resume and outage tests.

Usage: ``python tests/extraction_worker.py ARGUMENTS.json``, where the JSON holds the
keyword arguments of :func:`flows.extract_features.extract_features`. The tests start it
with :func:`start_extraction` and wait for its first shard with :func:`wait_for_first_shard`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]


def start_extraction(folder: Path, storage_root: str, n_videos: int, seed: int,
                     log: IO[bytes]) -> tuple[list[dict[str, str]], dict[str, Any], subprocess.Popen]:
    """Write a synthetic dataset under ``folder`` and extract its training videos in a new process.

    Returns the videos, the extraction settings and the process (its output goes to ``log``).
    The process has its own Prefect home and logs at INFO, so a test can read what it did.
    """
    from anograph.datasets.synthetic import generate_synthetic_dataset
    from anograph.io.extraction_settings import ExtractionSettings

    dataset = generate_synthetic_dataset(folder / "data", n_train_videos=n_videos, n_test_videos=1,
                                         n_frames=60, seed=seed)
    videos = [{"name": video.name, "path": str(video.path)} for video in dataset.train]
    settings = ExtractionSettings(detector="motion", appearance=False).to_dict()
    arguments = folder / "arguments.json"
    arguments.write_text(json.dumps({"videos": videos, "storage_root": storage_root, "settings": settings}))
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "PREFECT_HOME": str(folder / "prefect-home"), "PREFECT_LOGGING_LEVEL": "INFO"}
    process = subprocess.Popen([sys.executable, str(REPO / "tests" / "extraction_worker.py"), str(arguments)],
                               cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    return videos, settings, process


def wait_for_first_shard(complete_shards, process: subprocess.Popen, log_path: Path,
                         timeout: float = 240) -> None:
    """Poll until ``complete_shards()`` is not empty; fail with the log if the process ends first."""
    deadline = time.monotonic() + timeout
    while not complete_shards():
        assert process.poll() is None, log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, f"no shard within {timeout:.0f} s"
        time.sleep(0.02)


if __name__ == "__main__":
    from flows.extract_features import extract_features

    with open(sys.argv[1], encoding="utf-8") as handle:
        arguments = json.load(handle)
    print(json.dumps(extract_features(**arguments)))
