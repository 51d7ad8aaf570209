"""Videos that cannot be decoded: they fail their own task, never silently disappear, and can be skipped."""

from __future__ import annotations

import json

import pytest

from anograph.datasets.synthetic import generate_synthetic_dataset
from anograph.io.extraction_settings import ExtractionSettings
from anograph.io.storage import Storage
from flows.cli import main
from flows.extract_features import ExtractionFailed, extract_features


def _bad_videos(folder, good_video):
    """A zero-byte MP4 and an MP4 cut to 40% of its bytes, as an interrupted copy leaves it."""
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    truncated = folder / "truncated.mp4"
    data = good_video.read_bytes()
    truncated.write_bytes(data[: int(len(data) * 0.4)])
    return empty, truncated


def test_bad_videos_fail_the_flow_by_name_or_are_skipped_with_the_reason(tmp_path):
    dataset = generate_synthetic_dataset(tmp_path / "data", n_train_videos=2, n_test_videos=1, n_frames=20, seed=8)
    empty, truncated = _bad_videos(tmp_path, dataset.train[0].path)
    good = [{"name": video.name, "path": str(video.path)} for video in dataset.train]
    videos = [good[0], {"name": "empty", "path": str(empty)}, good[1], {"name": "truncated", "path": str(truncated)}]
    settings = ExtractionSettings(detector="motion", appearance=False).to_dict()
    root = str(tmp_path / "store")

    with pytest.raises(ExtractionFailed) as caught:
        extract_features(videos, root, settings)
    message = str(caught.value)
    assert message.startswith("2 of 4 train videos failed")
    assert str(empty) in message and str(truncated) in message
    # The good videos finished anyway.
    assert len(Storage(root).list("shards")) == 2

    result = extract_features(videos, root, settings, skip_bad_videos=True)
    assert [key.rsplit("/", 1)[1].split(".")[0] for key in result["shards"]] == [good[0]["name"], good[1]["name"]]
    assert [(video["video"], video["path"]) for video in result["skipped"]] == [
        ("empty", str(empty)), ("truncated", str(truncated))]
    assert all(video["reason"] and video["split"] == "train" for video in result["skipped"])


@pytest.mark.slow
def test_cli_skip_bad_videos_lists_them_in_the_report(tmp_path):
    root = tmp_path / "data"
    dataset = generate_synthetic_dataset(root, n_train_videos=2, n_test_videos=2, n_frames=30, seed=9)
    empty, truncated = _bad_videos(root / "train", dataset.train[0].path)
    out = tmp_path / "out"
    code = main(["run", "--dataset", "folder", "--root", str(root), "--detector", "motion", "--no-appearance",
                 "--epochs", "3", "--hidden", "16", "--out", str(out), "--skip-bad-videos"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    skipped = {video["video"]: video for video in report["skipped_videos"]}
    assert set(skipped) == {"empty", "truncated"}
    assert skipped["empty"]["path"] == str(empty.resolve()) and skipped["empty"]["reason"]
    assert report["n_test_videos"] == 2
    markdown = (out / "report.md").read_text()
    assert "## Skipped videos" in markdown and "empty.mp4" in markdown and "truncated.mp4" in markdown


class _FailedState:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def result(self):
        raise self.error


def test_bad_input_is_never_retried_but_transient_faults_are():
    from anograph.errors import VideoReadError
    from tasks.retry import retry_unless_bad_input

    assert retry_unless_bad_input(None, None, _FailedState(VideoReadError("a.mp4", "cannot open video"))) is False
    assert retry_unless_bad_input(None, None, _FailedState(ConnectionResetError("S3 hung up"))) is True
