"""The feature-shard contract: schema, metadata and a lossless float16 roundtrip."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anograph.errors import InputError
from anograph.extraction.features.layout import FeatureLayout
from anograph.io.shards import (
    FRAME_ROW_SOURCE,
    METADATA_KEY,
    OBJECT_SOURCES,
    ShardMetadata,
    VideoFeatures,
    check_shard,
    read_metadata,
    read_shard,
    to_table,
    write_shard,
)
from anograph.io.storage import Storage


def make_video(n_frames: int = 5, seed: int = 0) -> VideoFeatures:
    rng = np.random.default_rng(seed)
    frames = np.sort(rng.integers(0, n_frames, size=12)).astype(np.int32)
    frames = frames[frames != 2]  # frame 2 has no objects
    n = len(frames)
    layout = FeatureLayout.of([("appearance", 6), ("geometry", 4)])
    metadata = ShardMetadata(
        video="clip", n_frames=n_frames, fps=10.0, width=64, height=48, source="/videos/clip.mp4",
        detector={"name": "motion", "weights_sha256": None}, class_names=["object"],
        feature_layout=layout, extraction={"frames_per_second": 12.5},
    )
    top_left = rng.uniform(0, 30, size=(n, 2))
    boxes = np.concatenate([top_left, top_left + rng.uniform(2, 10, size=(n, 2))], axis=1).astype(np.float32)
    return VideoFeatures(
        metadata=metadata, frames=frames, boxes=boxes, scores=rng.uniform(size=n).astype(np.float32),
        class_ids=np.zeros(n, np.int32), features=rng.normal(size=(n, layout.width)).astype(np.float32),
    )


def test_roundtrip_preserves_rows_and_metadata(tmp_path):
    storage = Storage(tmp_path)
    video = make_video()
    write_shard(storage, "shards/clip.parquet", video)
    back = read_shard(storage, "shards/clip.parquet")
    np.testing.assert_array_equal(back.frames, video.frames)
    np.testing.assert_array_equal(back.boxes, video.boxes)
    np.testing.assert_array_equal(back.scores, video.scores)
    # Features are stored as float16 on purpose: equal up to half precision.
    np.testing.assert_array_equal(back.features, video.features.astype(np.float16))
    assert back.metadata == video.metadata
    assert read_metadata(storage, "shards/clip.parquet").feature_layout == video.metadata.feature_layout


def test_schema_columns_and_types(tmp_path):
    storage = Storage(tmp_path)
    write_shard(storage, "s.parquet", make_video())
    table = pq.read_table(tmp_path / "s.parquet")
    assert table.column_names == ["video", "frame", "box", "score", "class_id", "source", "track_id", "feature",
                                  "cells"]
    assert table.schema.field("source").type == pa.int8() and table.schema.field("track_id").type == pa.int32()
    assert table.schema.field("cells").type == pa.binary() and table.column("cells").null_count == table.num_rows
    assert table.schema.field("feature").type == pa.binary(2 * 10)
    assert table.schema.field("box").type == pa.list_(pa.float32(), 4)
    assert set(table.column("video").to_pylist()) == {"clip"}


def test_cell_speeds_travel_as_frame_rows_after_the_objects(tmp_path):
    storage = Storage(tmp_path)
    video = make_video()
    rng = np.random.default_rng(1)
    video.cell_speeds = rng.uniform(0, 0.05, size=(video.metadata.n_frames, 6)).astype(np.float32)
    write_shard(storage, "s.parquet", video)
    table = pq.read_table(tmp_path / "s.parquet")
    sources = table.column("source").to_numpy()
    # One frame row a frame, after every object row, holding that frame's cells and nothing else.
    assert (sources == FRAME_ROW_SOURCE).sum() == video.metadata.n_frames
    assert np.all(sources[: video.n_objects] != FRAME_ROW_SOURCE) and np.all(sources[video.n_objects :] == FRAME_ROW_SOURCE)
    back = read_shard(storage, "s.parquet")
    assert back.n_objects == video.n_objects
    np.testing.assert_array_equal(back.frames, video.frames)
    np.testing.assert_array_equal(back.cell_speeds, video.cell_speeds.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(back.frame_offsets(), video.frame_offsets())


def test_a_shard_without_cell_speeds_reads_none(tmp_path):
    storage = Storage(tmp_path)
    write_shard(storage, "s.parquet", make_video())
    assert read_shard(storage, "s.parquet").cell_speeds is None


def test_frame_offsets_cover_empty_frames():
    video = make_video()
    offsets = video.frame_offsets()
    assert len(offsets) == video.metadata.n_frames + 1
    assert offsets[2] == offsets[3]  # frame 2 is empty
    for t in range(video.metadata.n_frames):
        assert np.all(video.frames[offsets[t] : offsets[t + 1]] == t)


def test_empty_video_roundtrip(tmp_path):
    storage = Storage(tmp_path)
    video = make_video()
    empty = VideoFeatures(video.metadata, video.frames[:0], video.boxes[:0], video.scores[:0],
                          video.class_ids[:0], video.features[:0])
    write_shard(storage, "e.parquet", empty)
    back = read_shard(storage, "e.parquet")
    assert back.n_objects == 0 and back.features.shape == (0, 10)


def test_a_parquet_file_that_is_not_a_shard_is_named_in_the_error(tmp_path):
    storage = Storage(tmp_path)
    sink = io.BytesIO()
    pq.write_table(pa.table({"x": [1, 2]}), sink)
    storage.write_bytes("foreign.parquet", sink.getvalue())
    storage.write_bytes("garbage.parquet", b"not parquet at all")
    with pytest.raises(InputError, match="foreign.parquet.*not an anograph feature shard"):
        read_shard(storage, "foreign.parquet")
    with pytest.raises(InputError, match="garbage.parquet"):
        read_shard(storage, "garbage.parquet")


def test_features_with_the_wrong_width_are_refused():
    video = make_video()
    with pytest.raises(ValueError, match="expected"):
        VideoFeatures(video.metadata, video.frames, video.boxes, video.scores, video.class_ids,
                      video.features[:, :3])


def test_shard_keys_carry_their_fingerprint():
    from anograph.io.extraction_settings import fingerprint_of, shard_key

    assert fingerprint_of(shard_key("yolox-abc123", "test", "Test001", "ab" * 32)) == "yolox-abc123"
    with pytest.raises(ValueError, match="not a shard key"):
        fingerprint_of("models/x/model.json")


def test_sources_and_track_ids_roundtrip_and_default(tmp_path):
    storage = Storage(tmp_path)
    video = make_video()
    assert np.all(video.sources == 0) and np.all(video.track_ids == -1), "unset: detector objects, untracked"
    n = video.n_objects
    video.sources = (np.arange(n) % len(OBJECT_SOURCES)).astype(np.int8)
    video.track_ids = np.arange(n, dtype=np.int32)[::-1].copy()
    write_shard(storage, "t.parquet", video)
    back = read_shard(storage, "t.parquet")
    np.testing.assert_array_equal(back.sources, video.sources)
    np.testing.assert_array_equal(back.track_ids, video.track_ids)
    with pytest.raises(ValueError, match="sources must index"):
        VideoFeatures(video.metadata, video.frames, video.boxes, video.scores, video.class_ids, video.features,
                      sources=np.full(n, len(OBJECT_SOURCES), np.int8))


def test_format_1_shards_without_source_and_track_columns_still_read(tmp_path):
    """A shard written before format 2 has neither column: its objects read as untracked detector objects."""
    storage = Storage(tmp_path)
    video = make_video()
    video.metadata.format_version = 1
    table = to_table(video).drop_columns(["source", "track_id"])
    assert table.schema.metadata[METADATA_KEY]
    sink = io.BytesIO()
    pq.write_table(table, sink)
    storage.write_bytes("old.parquet", sink.getvalue())
    assert check_shard(storage, "old.parquet") is None
    back = read_shard(storage, "old.parquet")
    assert back.metadata.format_version == 1
    np.testing.assert_array_equal(back.frames, video.frames)
    assert np.all(back.sources == 0) and np.all(back.track_ids == -1)
    video.metadata.format_version = 99
    write_shard(storage, "future.parquet", video)
    assert "not one of" in check_shard(storage, "future.parquet")
    with pytest.raises(InputError, match="future.parquet.*shard format 99"):
        read_shard(storage, "future.parquet")
