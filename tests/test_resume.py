"""Content-addressed shard keys, the completeness rule, and reruns that reuse only complete shards."""

from __future__ import annotations

import hashlib
import os

import cv2
import numpy as np
import pytest
from test_shards import make_video

from anograph.datasets.synthetic import generate_synthetic_dataset
from anograph.errors import VideoReadError
from anograph.extraction.detectors.motion import MotionDetector
from anograph.extraction.features.extractor import NodeFeatureExtractor
from anograph.io.content_hash import video_content_hash
from anograph.io.extraction_settings import (
    ExtractionSettings,
    extraction_fingerprint,
    fingerprint_of,
    shard_key,
)
from anograph.io.shards import check_shard, read_shard, write_shard
from anograph.io.storage import Storage
from flows.extract_features import extract_features


def test_video_file_hash_is_the_sha256_of_its_bytes(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(os.urandom(3 * (1 << 20) + 17))  # more than one streamed block
    assert video_content_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    # The same bytes elsewhere are the same video; changed bytes are not (the cache notices).
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(path.read_bytes())
    assert video_content_hash(copy) == video_content_hash(path)
    with path.open("r+b") as handle:
        handle.seek(5)
        handle.write(b"X")
    os.utime(path, ns=(1, 1))
    assert video_content_hash(path) != video_content_hash(copy)


def test_frame_folder_hash_covers_every_frame_in_order(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f"{index:03d}.png"), np.full((8, 8, 3), 50 * index, np.uint8))
    (folder / "notes.txt").write_text("not a frame")
    first = video_content_hash(folder)
    (folder / "notes.txt").write_text("still not a frame, so the hash stays")
    assert video_content_hash(folder) == first
    # Swapping two frames' contents changes the video.
    a, b = (folder / "000.png").read_bytes(), (folder / "001.png").read_bytes()
    (folder / "000.png").write_bytes(b)
    (folder / "001.png").write_bytes(a)
    assert video_content_hash(folder) != first
    with pytest.raises(VideoReadError, match="nowhere"):
        video_content_hash(tmp_path / "nowhere.mp4")


class _Detector:
    """Stands in for a weighted detector: only its name and description enter the fingerprint."""

    def __init__(self, name: str, weights_sha256: str, weights: str) -> None:
        self.name, self.weights_sha256, self.weights = name, weights_sha256, weights

    def describe(self) -> dict:
        return {"name": self.name, "weights_sha256": self.weights_sha256, "weights": self.weights,
                "confidence_threshold": 0.3}


def test_shard_key_changes_with_content_detector_settings_and_weights():
    extractor = NodeFeatureExtractor(appearance=None)
    base = extraction_fingerprint(_Detector("yolox", "a" * 64, "/models/one.onnx"), extractor)
    # The same weights at another path are the same extraction; other weights or another detector are not.
    assert extraction_fingerprint(_Detector("yolox", "a" * 64, "/elsewhere/copy.onnx"), extractor) == base
    assert extraction_fingerprint(_Detector("yolox", "b" * 64, "/models/one.onnx"), extractor) != base
    assert extraction_fingerprint(_Detector("other", "a" * 64, "/models/one.onnx"), extractor) != base
    assert extraction_fingerprint(MotionDetector(min_area=50), extractor) != extraction_fingerprint(
        MotionDetector(min_area=80), extractor)

    key = shard_key(base, "train", "Train001", "c" * 64)
    assert key == f"shards/{base}/train/Train001.{'c' * 16}.parquet" and fingerprint_of(key) == base
    assert shard_key(base, "train", "Train001", "d" * 64) != key


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_partial_or_foreign_shards_are_not_complete(backend, tmp_path, request):
    storage = Storage(tmp_path / "store" if backend == "local" else request.getfixturevalue("s3_root"))
    video = make_video()
    video.metadata.content_sha256 = "e" * 64
    write_shard(storage, "shards/x/train/clip.parquet", video)
    assert check_shard(storage, "shards/x/train/clip.parquet", "e" * 64) is None
    assert "other video content" in check_shard(storage, "shards/x/train/clip.parquet", "f" * 64)
    assert check_shard(storage, "shards/x/train/missing.parquet") is not None

    whole = storage.read_bytes("shards/x/train/clip.parquet")
    for cut in (len(whole) - 1, len(whole) - 8, len(whole) // 2, 4, 0):
        storage.write_bytes("shards/x/train/cut.parquet", whole[:cut])
        assert check_shard(storage, "shards/x/train/cut.parquet", "e" * 64) is not None, cut


def test_rerun_reuses_complete_shards_and_redoes_a_truncated_one(tmp_path):
    dataset = generate_synthetic_dataset(tmp_path / "data", n_train_videos=3, n_test_videos=1, n_frames=20, seed=5)
    videos = [{"name": video.name, "path": str(video.path)} for video in dataset.train]
    settings = ExtractionSettings(detector="motion", appearance=False).to_dict()
    storage = Storage(tmp_path / "store")
    keys = extract_features(videos, storage.root, settings)["shards"]
    assert [key.rsplit("/", 1)[1].split(".")[0] for key in keys] == [video["name"] for video in videos]
    assert all(f".{video_content_hash(video['path'])[:16]}." in key for key, video in zip(keys, videos, strict=True))
    stamps = {key: storage.local_path(key).stat().st_mtime_ns for key in keys}

    # A shard cut short at its final key (as a non-atomic writer would leave it) is extracted again.
    whole = storage.read_bytes(keys[1])
    storage.local_path(keys[1]).write_bytes(whole[: len(whole) // 2])
    assert extract_features(videos, storage.root, settings) == {"shards": keys, "skipped": []}
    assert storage.local_path(keys[0]).stat().st_mtime_ns == stamps[keys[0]]
    assert storage.local_path(keys[2]).stat().st_mtime_ns == stamps[keys[2]]
    assert check_shard(storage, keys[1]) is None and read_shard(storage, keys[1]).metadata.content_sha256 == \
        video_content_hash(videos[1]["path"])

    # A dataset that now tells cameras apart (a scene of several) extracts again the shard that records none.
    stamps = {key: storage.local_path(key).stat().st_mtime_ns for key in keys}
    cameras = [{**video, "camera": "01"} if index == 0 else video for index, video in enumerate(videos)]
    assert extract_features(cameras, storage.root, settings)["shards"] == keys
    assert read_shard(storage, keys[0]).metadata.camera == "01"
    assert storage.local_path(keys[0]).stat().st_mtime_ns != stamps[keys[0]]
    assert storage.local_path(keys[2]).stat().st_mtime_ns == stamps[keys[2]]
    assert read_shard(storage, keys[2]).metadata.camera == ""

    # Another detector setting is another extraction: new keys, the old shards untouched.
    other = ExtractionSettings(detector="motion", detector_options={"min_area": 200}, appearance=False).to_dict()
    other_keys = extract_features(videos, storage.root, other)["shards"]
    assert {fingerprint_of(key) for key in other_keys} != {fingerprint_of(key) for key in keys}
    assert len(storage.list("shards")) == 6
