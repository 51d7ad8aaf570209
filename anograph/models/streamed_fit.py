"""Bounded-memory training from feature shards: the same :class:`TrainedParts` as full-batch training.

:func:`fit_streamed` trains on shards with about ``batch_nodes`` nodes' features in memory,
and its result is used, saved, loaded and scored exactly like a full-batch model on the
same videos in the same order:

* the standardiser is fitted in one streamed pass over the shards (the same rule as in
  memory, including ``feature_scaling="group"``);
* training is :func:`anograph.models.training.train_dgi_batched` over
  :class:`anograph.graph.batches.ShardGraphBatches`: batches of whole consecutive videos (a
  video larger than ``batch_nodes`` is a batch of its own), re-read from the shards on
  every pass. The gradient is the full graph's; each batch shuffles its own rows for the
  corruption, so with one batch (``batch_nodes`` >= all nodes) the training is the full
  batch's, draw for draw. Let each batch hold many videos: with one video per batch the
  negatives come from the same scene only, and the loss then falls far more slowly than in
  full batch (``tests/test_fit_shards.py``);
* the readout is over all nodes, and the kNN bank and calibration nodes are the same
  seeded global node indices as in full batch, gathered in one more streamed pass;
* the separation diagnostic is measured on the first batch only (corruption within it), to
  keep that pass bounded too: with one batch it equals the full batch's.

Memory: a small multiple of one batch's float32 features (the batch, one video being read,
``Â X`` in the final pass, the corrupted copy for the separation), the sparse adjacency of
every batch (kept between epochs: about 8 bytes per edge), and the kNN bank (up to
``knn_bank_size`` rows of features and embeddings) with the calibration sample; never
every feature at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from anograph.errors import InputError
from anograph.graph.batches import ShardGraphBatches
from anograph.graph.build import GraphConfig
from anograph.io.shards import VideoFeatures, read_shard
from anograph.io.storage import Storage
from anograph.models.dgi import RowShuffleCorruption, propagate
from anograph.models.fitting import (
    Progress,
    TrainedParts,
    TrainingSettings,
    held_out_groups,
    sample_nodes,
    train_modules,
)
from anograph.models.scaling import FeatureSelection, GroupStandardizer
from anograph.models.scorers import NodeRows
from anograph.models.training import train_dgi_batched


def fit_streamed(
    storage: Storage,
    keys: Sequence[str],
    selection: FeatureSelection,
    standardizer: GroupStandardizer,
    settings: TrainingSettings,
    graph_config: GraphConfig,
    batch_nodes: int,
    progress: Progress | None = None,
) -> TrainedParts:
    """Fit ``standardizer`` and train on the shards at ``keys`` (see the module docstring).

    ``selection`` comes from the shards' footers, checked before any rows are read; a shard
    whose rows disagree with it, or with non-finite features, raises :class:`InputError`
    naming the shard.
    """
    paths = [storage.location(key) for key in keys]
    sizes: list[int] = []
    names: list[str] = []

    def checked_videos() -> Iterator[VideoFeatures]:
        for key, path in zip(keys, paths, strict=True):
            video = read_shard(storage, key)
            if video.metadata.feature_layout != selection.layout:
                raise InputError(path, "the shard's layout changed after its footer was read")
            selection.check_finite(video, path)
            sizes.append(video.n_objects)
            names.append(video.metadata.video)
            yield video

    standardizer.fit_videos(checked_videos(), selection.columns)
    n_nodes = standardizer.n_objects_
    device = settings.device
    batches = ShardGraphBatches(
        storage, keys, standardizer.mean_, standardizer.std_, graph_config, batch_nodes=int(batch_nodes),
        columns=selection.columns, device=device, dtype=settings.precision, sizes=sizes,
    )
    generator = torch.Generator().manual_seed(int(settings.seed))
    dgi, result = train_modules(
        selection.width,
        settings,
        generator,
        lambda encoder, discriminator: train_dgi_batched(
            batches, batches.sizes, encoder, discriminator, generator, **settings.optimiser_options(),
            progress=progress,
        ),
    )
    # One more pass: the readout over all nodes, and the rows of the sampled nodes.
    bank, calibration = sample_nodes(n_nodes, settings)
    sampled = [
        (nodes, np.empty((len(nodes), settings.hidden_channels), np.float32),
         np.empty((len(nodes), selection.width), np.float32))
        for nodes in (bank, calibration)
    ]
    total = torch.zeros(settings.hidden_channels, dtype=torch.float64, device=device)
    start = 0
    with torch.no_grad():
        for index, size in enumerate(batches.sizes):
            adjacency, features = batches.arrays(index)
            embeddings = dgi(torch.from_numpy(propagate(adjacency, features)).to(device))
            total += embeddings.double().sum(dim=0)
            embeddings = embeddings.cpu().numpy()
            for nodes, sampled_embeddings, sampled_features in sampled:
                first, stop = np.searchsorted(nodes, [start, start + size])
                sampled_embeddings[first:stop] = embeddings[nodes[first:stop] - start]
                sampled_features[first:stop] = features[nodes[first:stop] - start]
            start += size
            del adjacency, features, embeddings
        summary = torch.sigmoid(total / n_nodes).float()
        adjacency, features = batches.arrays(0)
        propagated = torch.from_numpy(propagate(adjacency, features)).to(device)
        corruption = RowShuffleCorruption(adjacency, features, propagated.device)
        separation = dgi.separation(propagated, corruption, summary, generator)
        del adjacency, features, propagated, corruption
    video_ends = np.cumsum(sizes)
    rows = [
        NodeRows(node_features, node_embeddings,
                 held_out_groups(nodes, np.searchsorted(video_ends, nodes, side="right"), len(names)))
        for nodes, node_embeddings, node_features in sampled
    ]
    return TrainedParts(
        dgi=dgi,
        result=result,
        summary=summary,
        separation=separation,
        n_nodes=n_nodes,
        video_names=names,
        bank_nodes=bank,
        bank=rows[0],
        calibration_nodes=calibration,
        calibration=rows[1],
    )
