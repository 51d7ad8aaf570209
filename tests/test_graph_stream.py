"""Streaming shards into the graph builder: read-ahead keeps order and content."""

from __future__ import annotations

import threading

import numpy as np
from synthetic_features import make_videos

from anograph.graph.batches import build_graph_from_shards, iter_shard_nodes, iter_shard_videos
from anograph.graph.build import GraphConfig, build_graph
from anograph.io.shards import write_shard
from anograph.io.storage import Storage


def test_read_ahead_yields_the_same_videos_in_order_and_the_same_graph(tmp_path) -> None:
    storage = Storage(str(tmp_path))
    videos = make_videos(5, seed=3)
    keys = [f"shards/{video.metadata.video}-{index}.parquet" for index, video in enumerate(videos)]
    for key, video in zip(keys, videos, strict=True):
        write_shard(storage, key, video)
    keys = keys + keys[:2]  # a shard read twice counts as two videos
    plain = list(iter_shard_videos(storage, keys, prefetch=0))
    for prefetch in (1, 3, 10):
        ahead = list(iter_shard_videos(storage, keys, prefetch=prefetch))
        assert [video.metadata.video for video in ahead] == [video.metadata.video for video in plain]
        for got, expected in zip(ahead, plain, strict=True):
            np.testing.assert_array_equal(got.features, expected.features)
            np.testing.assert_array_equal(got.boxes, expected.boxes)
    graph = build_graph(iter_shard_nodes(storage, keys), GraphConfig())
    reference = build_graph(
        [(video.frame_offsets(), video.boxes, video.features) for video in plain], GraphConfig()
    )
    assert (graph != reference).nnz == 0


def test_a_consumer_that_stops_early_leaves_no_reader_behind(tmp_path) -> None:
    storage = Storage(str(tmp_path))
    keys = []
    for index, video in enumerate(make_videos(4, seed=4)):
        keys.append(f"v{index}.parquet")
        write_shard(storage, keys[-1], video)
    stream = iter_shard_videos(storage, keys, prefetch=2)
    first = next(stream)
    assert any(thread.name.startswith("shard-reader") for thread in threading.enumerate())
    stream.close()  # leaves the executor's block, which joins the reader thread
    assert first.metadata.video == make_videos(4, seed=4)[0].metadata.video
    assert not any(thread.name.startswith("shard-reader") for thread in threading.enumerate())


def test_building_videos_in_parallel_threads_gives_the_same_graph(tmp_path) -> None:
    storage = Storage(str(tmp_path))
    keys = []
    for index, video in enumerate(make_videos(5, seed=6)):
        keys.append(f"v{index}.parquet")
        write_shard(storage, keys[-1], video)
    keys = keys + keys[1:3]
    reference = build_graph(iter_shard_nodes(storage, keys, prefetch=0), GraphConfig(), dtype=np.float32)
    for workers in (1, 2, 3):
        graph = build_graph_from_shards(storage, keys, GraphConfig(), np.float32, workers=workers)
        assert graph.shape == reference.shape and graph.dtype == np.float32
        assert (graph != reference).nnz == 0
