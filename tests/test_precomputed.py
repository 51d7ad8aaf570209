"""Precomputed detections: Parquet, CSV and NumPy files round-trip into shards; bad files are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from anograph.datasets.synthetic import generate_synthetic_dataset
from anograph.errors import InputError
from anograph.extraction.detectors import create_detector
from anograph.extraction.detectors.precomputed import PrecomputedDetector
from anograph.extraction.extract import extract_video
from anograph.extraction.features.extractor import NodeFeatureExtractor
from anograph.io.content_hash import video_content_hash
from anograph.io.extraction_settings import ExtractionSettings, extraction_fingerprint, shard_key
from anograph.io.shards import read_shard, write_shard
from anograph.io.storage import Storage
from anograph.io.video import open_video

N_FRAMES, FEATURE_WIDTH, WIDTH, HEIGHT = 12, 5, 160, 120


def random_detections(seed: int, n_frames: int = N_FRAMES, n_classes: int = 80) -> dict[str, np.ndarray]:
    """Objects in random frames (some frames empty), in no particular order."""
    rng = np.random.default_rng(seed)
    n = 3 * n_frames
    corners = rng.uniform(0, [WIDTH - 20, HEIGHT - 20], (n, 2))
    sizes = rng.uniform(4, 20, (n, 2))
    frames = rng.integers(0, n_frames, n)
    frames[frames == 3] = 4  # frame 3 has no objects
    return {
        "frame": frames,
        "box": np.concatenate([corners, corners + sizes], axis=1).astype(np.float32),
        "score": rng.uniform(0.05, 1.0, n).astype(np.float32),
        "class_id": rng.integers(0, n_classes, n),
        "feature": rng.normal(0, 1, (n, FEATURE_WIDTH)).astype(np.float32),
    }


def as_table(arrays: dict[str, np.ndarray], list_feature: bool = False) -> pa.Table:
    columns = {
        "frame": arrays["frame"],
        **{name: arrays["box"][:, index] for index, name in enumerate(("x1", "y1", "x2", "y2"))},
        "score": arrays["score"],
        "class_id": arrays["class_id"],
    }
    if list_feature:
        columns["feature"] = pa.FixedSizeListArray.from_arrays(pa.array(arrays["feature"].ravel()), FEATURE_WIDTH)
    else:
        columns.update({f"feature_{i}": arrays["feature"][:, i] for i in range(arrays["feature"].shape[1])})
    return pa.table(columns)


def write_detections(path: Path, arrays: dict[str, np.ndarray], list_feature: bool = False) -> None:
    if path.suffix == ".npz":
        np.savez(path, **arrays)
    elif path.suffix == ".parquet":
        pq.write_table(as_table(arrays, list_feature), path)
    else:
        pa_csv.write_csv(as_table(arrays), path)


def test_all_three_formats_round_trip_into_shards(tmp_path: Path) -> None:
    dataset = generate_synthetic_dataset(
        tmp_path / "data", n_train_videos=3, n_test_videos=1, n_frames=N_FRAMES, width=WIDTH, height=HEIGHT, seed=2
    )
    folder = tmp_path / "detections"
    folder.mkdir()
    written = {}
    for seed, (video, suffix) in enumerate(zip(dataset.train, (".parquet", ".csv", ".npz"), strict=True)):
        written[video.name] = random_detections(seed)
        write_detections(folder / f"{video.name}{suffix}", written[video.name], list_feature=seed == 0)
    settings = ExtractionSettings.from_dict(
        ExtractionSettings(detector="precomputed", detector_options={"root": str(folder)},
                           appearance=False, motion=True, motion_boxes=False).to_dict()
    )
    storage = Storage(tmp_path / "store")

    # What the extraction task does for each video.
    detector, extractor = settings.build()
    fingerprint = extraction_fingerprint(detector, extractor)
    for video in dataset.train:
        write_shard(storage, shard_key(fingerprint, "train", video.name, video_content_hash(video.path)),
                    extract_video(open_video(video.path), detector, extractor))

    for video in dataset.train:
        shard = read_shard(storage, shard_key(fingerprint, "train", video.name, video_content_hash(video.path)))
        expected = written[video.name]
        order = np.argsort(expected["frame"], kind="stable")
        layout = shard.metadata.feature_layout
        assert layout.names == ("detector_features", "class", "confidence", "geometry", "motion", "frame_flow", "track",
                                "flow_stats")
        assert shard.metadata.n_frames == N_FRAMES and shard.metadata.detector["feature_width"] == FEATURE_WIDTH
        np.testing.assert_array_equal(shard.frames, expected["frame"][order])
        np.testing.assert_array_equal(shard.boxes, expected["box"][order])
        np.testing.assert_array_equal(shard.scores, expected["score"][order])
        np.testing.assert_array_equal(shard.class_ids, expected["class_id"][order])
        np.testing.assert_allclose(shard.features[:, layout.slice("detector_features")], expected["feature"][order],
                                   atol=2e-3)  # float16 on disk
        class_scores = shard.features[:, layout.slice("class")].astype(np.float32)
        np.testing.assert_allclose(class_scores.sum(axis=1), shard.scores, atol=1e-3)
        assert np.all(class_scores.argmax(axis=1) == shard.class_ids)
        assert np.diff(shard.frame_offsets())[3] == 0


def test_the_fingerprint_follows_the_files_content_not_the_folder_path(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        write_detections(folder / "clip.npz", random_detections(0))
    plain = NodeFeatureExtractor(appearance=None, motion=False)
    fingerprint = extraction_fingerprint(create_detector("precomputed", root=first), plain)
    assert extraction_fingerprint(create_detector("precomputed", root=second), plain) == fingerprint
    write_detections(second / "clip.npz", random_detections(1))
    assert extraction_fingerprint(create_detector("precomputed", root=second), plain) != fingerprint


def test_boxes_only_and_own_class_names(tmp_path: Path) -> None:
    arrays = random_detections(0, n_classes=2)
    del arrays["feature"]
    np.savez(tmp_path / "clip.npz", **arrays)
    (tmp_path / "classes.txt").write_text("walker\ncyclist\n")
    detector = PrecomputedDetector(tmp_path)
    assert detector.feature_width == 0 and detector.class_names == ("walker", "cyclist")
    detector.start_video("clip", N_FRAMES)
    detections = [detector.detect(np.zeros((HEIGHT, WIDTH, 3), np.uint8)) for _ in range(N_FRAMES)]
    assert all(found.features is None and found.class_scores.shape[1] == 2 for found in detections)
    assert sum(len(found) for found in detections) == len(arrays["frame"])
    layout = NodeFeatureExtractor(appearance=None, motion=False, flow_stats=False).layout(detector.class_names, detector.feature_width)
    assert layout.names == ("class", "confidence", "geometry")


def bad_input(tmp_path: Path, name: str, arrays: dict[str, np.ndarray] | None = None, list_feature: bool = False,
              n_frames: int = N_FRAMES) -> InputError:
    """Write ``arrays`` as ``name`` in a fresh folder, start that video, and return the error."""
    folder = tmp_path / name.replace(".", "_")
    folder.mkdir()
    path = folder / name
    if arrays is not None:
        write_detections(path, arrays, list_feature)
    with pytest.raises(InputError) as caught:
        PrecomputedDetector(folder).start_video(path.stem, n_frames)
    return caught.value


def test_bad_files_are_errors_naming_the_file_and_the_reason(tmp_path: Path) -> None:
    good = random_detections(0)

    missing_score = as_table(good).drop_columns(["score", "y2"])
    pq.write_table(missing_score, tmp_path / "no_score.parquet")
    with pytest.raises(InputError) as caught:
        PrecomputedDetector(tmp_path).start_video("no_score", N_FRAMES)
    assert caught.value.path == str(tmp_path / "no_score.parquet")
    assert "missing columns ['y2', 'score']" in caught.value.reason

    error = bad_input(tmp_path, "late.csv", good, n_frames=4)
    assert error.path.endswith("late.csv") and "out of range" in error.reason and "4 frames" in error.reason

    negative = {**good, "frame": np.where(good["frame"] == 0, -1, good["frame"])}
    assert "frame -1 is out of range" in bad_input(tmp_path, "negative.npz", negative).reason

    flipped = {**good, "box": good["box"][:, [2, 1, 0, 3]]}
    assert "x2 < x1" in bad_input(tmp_path, "flipped.parquet", flipped).reason

    unknown_class = {**good, "class_id": np.full_like(good["class_id"], 80)}
    assert "class_id 80 is out of range" in bad_input(tmp_path, "class.csv", unknown_class).reason

    # Ragged features, in each format.
    folder = tmp_path / "ragged_parquet"
    folder.mkdir()
    table = as_table(good).select(["frame", "x1", "y1", "x2", "y2", "score", "class_id"])
    vectors = [list(row) for row in good["feature"]]
    vectors[5] = vectors[5][:3]
    pq.write_table(table.append_column("feature", pa.array(vectors, pa.list_(pa.float32()))), folder / "clip.parquet")
    with pytest.raises(InputError, match="ragged feature vectors: row 0 has 5 values, row 5 has 3") as caught:
        PrecomputedDetector(folder).start_video("clip", N_FRAMES)
    assert caught.value.path == str(folder / "clip.parquet")

    folder = tmp_path / "ragged_csv"
    folder.mkdir()
    write_detections(folder / "clip.csv", good)
    lines = (folder / "clip.csv").read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ","  # an empty last feature value
    (folder / "clip.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="ragged feature vectors: column 'feature_4'") as caught:
        PrecomputedDetector(folder).start_video("clip", N_FRAMES)
    assert caught.value.path == str(folder / "clip.csv")

    folder = tmp_path / "ragged_npz"
    folder.mkdir()
    ragged = np.empty(len(good["frame"]), dtype=object)
    ragged[:] = [np.zeros(5 if index != 2 else 4) for index in range(len(ragged))]
    np.savez(folder / "clip.npz", **{**good, "feature": ragged})
    with pytest.raises(InputError, match="ragged or object arrays") as caught:
        PrecomputedDetector(folder)
    assert caught.value.path == str(folder / "clip.npz")

    # Files that disagree on the feature width, a missing video, two formats for one video.
    folder = tmp_path / "widths"
    folder.mkdir()
    write_detections(folder / "a.npz", good)
    write_detections(folder / "b.npz", {**good, "feature": good["feature"][:, :4]})
    with pytest.raises(InputError, match="feature width 4 differs from 5 in a.npz") as caught:
        PrecomputedDetector(folder).start_video("b", N_FRAMES)
    assert caught.value.path == str(folder / "b.npz")
    with pytest.raises(InputError, match="no precomputed detections for video 'c'"):
        PrecomputedDetector(folder).start_video("c", N_FRAMES)
    write_detections(folder / "a.csv", good)
    with pytest.raises(InputError, match=r"videos \['a'\] have files in more than one format"):
        PrecomputedDetector(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="folder holds no detection files"):
        PrecomputedDetector(tmp_path / "empty")
