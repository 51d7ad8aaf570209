"""The Ano-Graph model: a one-layer GCN encoder trained with Deep Graph Infomax, plus scorers.

Training (paper Section 3, Eqs. 3-4, after Velickovic et al., DGI 2019):

* Encoder ``H = PReLU(Â X W + b)`` over the block-diagonal spatio-temporal graph of all
  training videos (:func:`anograph.graph.build.build_graph`), features z-scored on the training
  nodes. Training computes ``Z = X W`` once per epoch and then ``Â Z`` and ``Â (P Z)`` as
  sparse products with a hand-written backward (:mod:`anograph.models.training`); scoring uses
  ``Â X`` with scipy. Both orders give the same ``H``.
* Readout ``s = sigmoid(mean_i h_i)`` (Eq. 3); discriminator logit ``h_i^T W s + c``,
  computed as ``H (W s) + c`` (one matrix-vector product; ``nn.Bilinear`` with ``s`` expanded
  to every node is ~100x slower in backward).
* Loss: binary cross-entropy with logits, mean over the ``N`` clean and ``N`` corrupted
  nodes (Eq. 4, ``M = N``). Adam, full batch, early stopping on the training loss; the
  parameters of the best epoch are kept.
* Corruption: DGI's row shuffle of ``X`` (``X̃ = P X``), keeping ``Â``. The paper says it
  row-permutes only ``A``; for a one-layer encoder that is useless: ``(P Â) X W = P (Â X W)``
  merely reorders the rows of ``H``, so every negative equals some positive, the readout is
  unchanged and the discriminator cannot separate the two sets (the loss stays at log 2).
  Shuffling ``X`` instead pairs each node's real neighbourhood structure with foreign
  features, which is the corruption DGI's own code and PyG use.

Scoring (higher = more anomalous), one score per object:

* ``"discriminator"``: ``-(h^T W s_train + c)``, the logit of Eq. 5 negated. It ranks exactly
  like the paper's ``1 - D(h, s_train)`` but does not saturate: in float32 ``1 - sigmoid``
  is exactly 0 for a few percent of test objects, which creates ties.
* ``"knn"``: mean Euclidean distance of the object's GCN embedding to its ``k`` nearest
  training embeddings (a bank of at most ``knn_bank_size`` random training nodes).
* ``"feature_knn"``: the same on the standardised input features, without the graph: the
  baseline that shows what the graph and the encoder add.
* ``"group_knn"``: one kNN distance per feature group (appearance, class, motion, ...) on
  the standardised input features of that group alone, each divided by the 99th percentile
  of its leave-one-video-out training distances, then summed. Each group votes on its own
  scale, so an object that is unusual in one respect only (a normal-looking walker moving
  at a biker's speed) is not averaged away by the groups in which it is ordinary.

Test graphs are sliding windows (:func:`anograph.graph.windows.window_adjacency`); for this
one-layer encoder they give the whole-video graph's rows whenever the radius reaches the
encoder's receptive field (see that module).

Calibration without test labels: ``calibration_scores_`` holds, per scorer, the sorted scores
of up to :data:`CALIBRATION_SIZE` random training nodes, embedded with the whole training
graph. The kNN scorers are computed *leave-one-video-out* (bank nodes from the node's own
video are excluded, which mimics scoring an unseen video; with a single training video only
the node itself is excluded). The discriminator's are in-sample (it was trained on every
training node), so they are somewhat optimistic. These are object scores; a frame score is
the max over a frame's objects, so frame-level thresholds sit higher.

Artifacts are safetensors (tensors) + JSON (everything else); no pickle anywhere.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import safetensors.torch
import scipy.sparse as sparse
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from torch import nn

from anograph.errors import InputError, ModelArtifactError
from anograph.extraction.features.layout import FeatureLayout
from anograph.graph.batches import ShardGraphBatches, feature_moments
from anograph.graph.build import GraphConfig, VideoNodes, build_graph, normalize_adjacency
from anograph.graph.windows import knn_mean_distance, window_adjacency
from anograph.io.shards import ShardMetadata, VideoFeatures, read_metadata, read_shard
from anograph.io.storage import Storage
from anograph.models.training import (
    TrainingResult,
    embed,
    make_batch,
    resolve_device,
    resolve_precision,
    train_dgi,
    train_dgi_batched,
)

MODEL_FORMAT_VERSION = 1
SCORERS = ("discriminator", "knn", "feature_knn", "group_knn")
FEATURE_SCALINGS = ("column", "group")
# The training-score quantile that puts each group of group_knn on a common scale.
GROUP_SCALE_QUANTILE = 0.99
# Standard deviations below this are treated as this: constant (or float16-quantised
# near-constant) columns would otherwise turn tiny test deviations into huge z-scores.
STD_FLOOR = 1e-3
# Training nodes whose scores are kept for threshold calibration.
CALIBRATION_SIZE = 5000
CALIBRATION_QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)
# Corruption draws used to measure the trained discriminator's separation.
SEPARATION_DRAWS = 3
TENSORS_FILE = "tensors.safetensors"
SIDECAR_FILE = "model.json"


class OneLayerGCN(nn.Module):
    """``H = PReLU(Â X W + b)``, taking the propagated features ``Â X`` as input."""

    def __init__(self, in_channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, hidden_channels)
        self.activation = nn.PReLU()

    def forward(self, propagated_features: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(propagated_features))


class BilinearDiscriminator(nn.Module):
    """Logit ``h^T W s + c`` for every row ``h`` of ``H``, computed as ``H (W s) + c``."""

    def __init__(self, hidden_channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(hidden_channels, hidden_channels))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, embeddings: torch.Tensor, summary: torch.Tensor) -> torch.Tensor:
        return embeddings @ (self.weight @ summary) + self.bias


def readout(embeddings: torch.Tensor) -> torch.Tensor:
    """Eq. 3: ``sigmoid`` of the mean embedding."""
    return torch.sigmoid(embeddings.mean(dim=0))


def propagate(adjacency: sparse.spmatrix, features: np.ndarray) -> np.ndarray:
    """``Â X`` in float32 with scipy (single sparse product, no autograd)."""
    return np.asarray(sparse.csr_matrix(adjacency, dtype=np.float32) @ np.asarray(features, np.float32))


def _video_path(video: VideoFeatures) -> str:
    return video.metadata.source or video.metadata.video


@dataclass
class TrainingGraph:
    """The training graph and its standardised node features (see :meth:`AnoGraph.prepare_training_graph`)."""

    adjacency: sparse.csr_matrix
    node_features: np.ndarray
    video_of_node: np.ndarray
    video_names: list[str]
    seconds: float

    @property
    def n_nodes(self) -> int:
        return int(self.adjacency.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.adjacency.nnz)


class AnoGraph(BaseEstimator):
    """Ano-Graph: spatio-temporal object graph, one-layer GCN, Deep Graph Infomax.

    Parameters
    ----------
    graph:
        How graphs are built (:class:`anograph.graph.build.GraphConfig`); ``None`` (default) means
        ``GraphConfig()``: spatial + temporal in both directions, row-normalised.
    feature_groups:
        Names of the shard feature groups to use, in order; ``None`` (default) uses all
        groups of the shard layout.
    hidden_channels:
        Embedding size ``K'``. Default 512, as DGI and the paper.
    learning_rate:
        Adam learning rate. Default 1e-3, as the paper.
    max_epochs:
        Upper bound on full-batch epochs. Default 300 (the paper runs up to 10000).
    patience:
        Stop after this many epochs without a lower training loss. Default 20 (the paper
        uses 200 with 10000 epochs).
    seed:
        Seeds initialisation, corruption and bank sampling. Default 0.
    knn_neighbors:
        ``k`` of the kNN scorers. Default 5.
    knn_bank_size:
        Training nodes kept as the kNN bank (a random subsample when there are more).
        Default 50000.
    feature_scaling:
        ``"group"`` (default): centre each column, then divide every column of a feature
        group by the group's total standard deviation, so each group carries the same
        total variance whatever its width, and a rare class column with a near-zero
        spread is not blown up into a huge z-score. ``"column"``: plain per-column z-scores.
    score_propagation_steps:
        After scoring, spread each object's score over the test window's graph this many
        times (``s <- Â s`` with the row-normalised window adjacency), so an object's score
        also reflects the objects it interacts with in its own and nearby frames, the way
        the GCN aggregates features. Capped at the window radius, so every step stays
        inside frames ``t-i .. t+i``. Default 0 (off, as in the paper). Measured on test
        labels (README, "What each part adds"): 5 steps add about 3 points of micro AUC on
        UCSD Ped2 but cost 11 on the synthetic demo scene, so it is a per-scene choice.
    device:
        Torch device for training and encoding. Default ``"cpu"``. ``"auto"`` uses CUDA
        when a GPU is present, else the CPU (the GPU path has not been run on a GPU yet).
    precision:
        Dtype of the dense products in training and encoding: ``"float32"`` (default) or
        ``"bfloat16"`` (about 4x the matmul throughput on CPUs with AVX-512 BF16; fp32
        master weights and accumulation, see :mod:`anograph.models.training`).

    Attributes (after :meth:`fit`)
    ------------------------------
    history_ : list[float]
        Training loss per epoch.
    n_epochs_ : int
        Epochs run; ``best_epoch_`` is the epoch whose parameters were kept.
    training_separation_ : float
        Discriminator accuracy on the training nodes against fresh corruption draws
        (0.5 = no separation).
    summary_ : torch.Tensor
        ``s_train``, the readout of the training graph.
    calibration_scores_ : dict[str, numpy.ndarray]
        Sorted training scores per scorer (see the module docstring).
    """

    def __init__(
        self,
        graph: GraphConfig | None = None,
        feature_groups: tuple[str, ...] | None = None,
        hidden_channels: int = 512,
        learning_rate: float = 1e-3,
        max_epochs: int = 300,
        patience: int = 20,
        seed: int = 0,
        knn_neighbors: int = 5,
        knn_bank_size: int = 50000,
        feature_scaling: str = "group",
        score_propagation_steps: int = 0,
        device: str = "cpu",
        precision: str = "float32",
    ) -> None:
        self.graph = graph
        self.feature_groups = feature_groups
        self.hidden_channels = hidden_channels
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.patience = patience
        self.seed = seed
        self.knn_neighbors = knn_neighbors
        self.knn_bank_size = knn_bank_size
        self.feature_scaling = feature_scaling
        self.score_propagation_steps = score_propagation_steps
        self.device = device
        self.precision = precision

    # ------------------------------------------------------------------ fitting

    @property
    def graph_config(self) -> GraphConfig:
        return self.graph if self.graph is not None else GraphConfig()

    def fit(self, videos: Sequence[VideoFeatures]) -> AnoGraph:
        """Train on normal videos: :meth:`prepare_training_graph`, then :meth:`fit_graph`.

        Parameters
        ----------
        videos:
            Training videos (normal behaviour only), all with the same feature layout.
            Their graphs are joined block-diagonally: no edge crosses two videos.

        Returns
        -------
        AnoGraph
            ``self``, fitted.

        Raises
        ------
        InputError
            No videos or objects, layouts that differ (naming the video), unknown feature
            groups, or non-finite features.
        """
        return self.fit_graph(self.prepare_training_graph(videos))

    def fit_shards(
        self,
        storage: Storage,
        keys: Sequence[str],
        batch_nodes: int = 100_000,
        progress: Callable[[int, float], None] | None = None,
    ) -> AnoGraph:
        """Train on the feature shards at ``keys`` with about ``batch_nodes`` nodes' features in memory.

        The result is used, saved, loaded and scored exactly like a model from :meth:`fit`
        on the same videos in the same order, with the same fitted attributes:

        * the layouts are checked from each shard's footer (:func:`anograph.io.shards.read_metadata`)
          before any rows are read; errors name the shard;
        * the standardiser is fitted in one streamed pass over the shards (the same rule as
          :meth:`fit`, including ``feature_scaling="group"``);
        * training is :func:`anograph.models.training.train_dgi_batched` over
          :class:`anograph.graph.batches.ShardGraphBatches`: batches of whole consecutive videos
          (a video larger than ``batch_nodes`` is a batch of its own), re-read from the shards
          on every pass. The gradient is the full graph's; each batch shuffles its own rows
          for the corruption, so with one batch (``batch_nodes`` >= all nodes) the training
          is :meth:`fit`'s, draw for draw. Let each batch hold many videos: with one video per
          batch the negatives come from the same scene only, and on small tests the loss then
          falls far more slowly than in full batch (``tests/test_fit_shards.py``);
        * ``summary_`` is the readout over all nodes, and the kNN bank and calibration nodes
          are the same seeded global node indices as in :meth:`fit`, gathered in one more
          streamed pass;
        * ``training_separation_`` is measured on the first batch only (corruption within it),
          to keep that pass bounded too: with one batch it equals :meth:`fit`'s.

        Memory: a small multiple of one batch's float32 features (the batch, one video being
        read, ``Â X`` in the final pass, the corrupted copy for the separation), the sparse
        adjacency of every batch (kept between epochs: about 8 bytes per edge), and the kNN
        bank (up to ``knn_bank_size`` rows of features and embeddings) with the calibration
        sample; never every feature at once.

        Parameters
        ----------
        storage:
            Where the shards are.
        keys:
            Shard keys of the training videos (normal behaviour only), in training order.
        batch_nodes:
            Most nodes per training batch, unless a single video holds more. Default 100000
            (about 0.8 GB of float32 features at 2048-d).
        progress:
            ``progress(epoch, loss)`` after every epoch, as in :meth:`fit_graph`.

        Returns
        -------
        AnoGraph
            ``self``, fitted.

        Raises
        ------
        InputError
            No keys, an unreadable shard, layouts that differ, unknown feature groups,
            non-finite features or fewer than 2 objects (naming the shard where there is one).
        """
        started = time.perf_counter()
        keys = list(keys)
        if not keys:
            raise InputError(None, "no training shards given")
        if int(batch_nodes) < 1:
            raise InputError(None, f"batch_nodes must be at least 1, not {batch_nodes}")
        paths = [storage.location(key) for key in keys]
        self._set_layout([read_metadata(storage, key) for key in keys], paths)
        sizes: list[int] = []
        names: list[str] = []

        def checked_videos() -> Iterable[VideoFeatures]:
            for key, path in zip(keys, paths, strict=True):
                video = read_shard(storage, key)
                if video.metadata.feature_layout != self.feature_layout_:
                    raise InputError(path, "the shard's layout changed after its footer was read")
                self._check_finite(video, path)
                sizes.append(video.n_objects)
                names.append(video.metadata.video)
                yield video

        self.n_training_nodes_ = self._fit_standardizer(checked_videos())
        self.training_videos_ = names
        device = resolve_device(self.device)
        batches = ShardGraphBatches(
            storage, keys, self.feature_mean_, self.feature_std_, self.graph_config, batch_nodes=int(batch_nodes),
            columns=self.columns_, device=device, dtype=resolve_precision(self.precision), sizes=sizes,
        )
        generator = torch.Generator().manual_seed(int(self.seed))
        self._train_modules(
            len(self.columns_),
            generator,
            lambda encoder, discriminator: train_dgi_batched(
                batches, batches.sizes, encoder, discriminator, generator, **self._optimiser_options(),
                progress=progress,
            ),
        )
        # One more pass: the readout over all nodes, and the rows of the sampled nodes.
        bank, calibration = self._sample_nodes(self.n_training_nodes_)
        video_ends = np.cumsum(sizes)
        sampled = [
            (nodes, np.empty((len(nodes), int(self.hidden_channels)), np.float32),
             np.empty((len(nodes), len(self.columns_)), np.float32))
            for nodes in (bank, calibration)
        ]
        total = torch.zeros(int(self.hidden_channels), dtype=torch.float64, device=device)
        start = 0
        with torch.no_grad():
            for index, size in enumerate(batches.sizes):
                adjacency, features = batches.arrays(index)
                embeddings = self.encoder_(torch.from_numpy(propagate(adjacency, features)).to(device))
                total += embeddings.double().sum(dim=0)
                embeddings = embeddings.cpu().numpy()
                for nodes, sampled_embeddings, sampled_features in sampled:
                    first, stop = np.searchsorted(nodes, [start, start + size])
                    sampled_embeddings[first:stop] = embeddings[nodes[first:stop] - start]
                    sampled_features[first:stop] = features[nodes[first:stop] - start]
                start += size
                del adjacency, features, embeddings
            self.summary_ = torch.sigmoid(total / self.n_training_nodes_).float()
            adjacency, features = batches.arrays(0)
            propagated = torch.from_numpy(propagate(adjacency, features)).to(device)
            self.training_separation_ = self._separation(adjacency, features, propagated, generator)
            del adjacency, features, propagated
        (bank, *bank_rows), (calibration, *calibration_rows) = sampled
        self._fit_scorers(
            bank,
            calibration,
            (*bank_rows, np.searchsorted(video_ends, bank, side="right")),
            (*calibration_rows, np.searchsorted(video_ends, calibration, side="right")),
        )
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def prepare_training_graph(self, videos: Sequence[VideoFeatures]) -> TrainingGraph:
        """Check the videos, fit the feature standardiser and build the training graph.

        This is the graph stage of training, separate so a pipeline can run (and time) it
        on its own. It sets the standardiser and layout attributes on ``self``.
        """
        started = time.perf_counter()
        videos = list(videos)
        if not videos:
            raise InputError(None, "no training videos given")
        self._check_training_videos(videos)
        self._fit_standardizer(videos)
        standardized = [self._standardize(self._select(video)) for video in videos]
        adjacency = build_graph(
            [
                VideoNodes(video.frame_offsets(), video.boxes, chunk)
                for video, chunk in zip(videos, standardized, strict=True)
            ],
            self.graph_config,
        )
        return TrainingGraph(
            adjacency=adjacency,
            node_features=np.concatenate(standardized),
            video_of_node=np.repeat(np.arange(len(videos)), [len(chunk) for chunk in standardized]),
            video_names=[video.metadata.video for video in videos],
            seconds=time.perf_counter() - started,
        )

    def fit_graph(
        self, training_graph: TrainingGraph, progress: Callable[[int, float], None] | None = None
    ) -> AnoGraph:
        """Train the GCN + DGI on a graph from :meth:`prepare_training_graph` of this model.

        ``progress(epoch, loss)``, when given, is called after every epoch.
        """
        if not hasattr(self, "feature_mean_"):
            raise NotFittedError("call prepare_training_graph() on this model before fit_graph()")
        started = time.perf_counter() - training_graph.seconds
        adjacency, node_features = training_graph.adjacency, training_graph.node_features
        self.n_training_nodes_ = len(node_features)
        self.training_videos_ = list(training_graph.video_names)
        generator = torch.Generator().manual_seed(int(self.seed))
        self._train(adjacency, node_features, generator, progress)
        device = resolve_device(self.device)
        with torch.no_grad():
            propagated = torch.from_numpy(propagate(adjacency, node_features)).to(device)
            embeddings = self.encoder_(propagated)
            self.summary_ = readout(embeddings)
            self.training_separation_ = self._separation(adjacency, node_features, propagated, generator)
            embeddings = embeddings.cpu().numpy()

        bank, calibration = self._sample_nodes(len(node_features))
        video_of_node = training_graph.video_of_node
        self._fit_scorers(
            bank,
            calibration,
            (embeddings[bank], node_features[bank], video_of_node[bank]),
            (embeddings[calibration], node_features[calibration], video_of_node[calibration]),
        )
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _sample_nodes(self, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
        """Seeded, sorted global indices of the kNN bank and of the calibration nodes."""
        rng = np.random.default_rng(self.seed)
        bank = np.sort(rng.choice(n_nodes, size=min(n_nodes, int(self.knn_bank_size)), replace=False))
        calibration = np.sort(rng.choice(n_nodes, size=min(n_nodes, CALIBRATION_SIZE), replace=False))
        return bank, calibration

    def _fit_scorers(
        self,
        bank: np.ndarray,
        calibration: np.ndarray,
        bank_rows: tuple[np.ndarray, np.ndarray, np.ndarray],
        calibration_rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> None:
        """kNN banks, calibration scores and group scales from the sampled nodes' rows.

        ``bank_rows`` and ``calibration_rows`` are ``(embeddings, standardised features,
        video index)`` of the nodes ``bank`` and ``calibration`` (from :meth:`_sample_nodes`).
        Needs ``summary_`` and ``training_videos_``.
        """
        bank_embeddings, self.feature_bank_, bank_videos = bank_rows
        calibration_embeddings, calibration_features, calibration_videos = calibration_rows
        self.embedding_bank_ = bank_embeddings
        # Training-graph node of each bank row; in memory only (not saved), so a
        # calibration right after fitting can leave a video's own rows out.
        self.bank_nodes_ = bank
        if len(self.training_videos_) > 1:
            query_groups, bank_groups = calibration_videos, bank_videos
        else:  # leave-one-out: exclude only the node itself
            query_groups, bank_groups = calibration, bank
        self.calibration_scores_ = {
            "discriminator": np.sort(self._discriminator_scores(calibration_embeddings)),
            "knn": np.sort(
                knn_mean_distance(
                    calibration_embeddings,
                    self.embedding_bank_,
                    self.knn_neighbors,
                    query_groups,
                    bank_groups,
                )
            ),
            "feature_knn": np.sort(
                knn_mean_distance(
                    calibration_features,
                    self.feature_bank_,
                    self.knn_neighbors,
                    query_groups,
                    bank_groups,
                )
            ),
        }
        group_distances = [
            knn_mean_distance(
                calibration_features[:, columns],
                self.feature_bank_[:, columns],
                self.knn_neighbors,
                query_groups,
                bank_groups,
            )
            for columns in self._group_columns()
        ]
        self.group_scale_ = np.array(
            [max(float(np.quantile(distances, GROUP_SCALE_QUANTILE)), 1e-12) for distances in group_distances]
        )
        self.calibration_scores_["group_knn"] = np.sort(
            sum(
                distances / scale for distances, scale in zip(group_distances, self.group_scale_, strict=True)
            )
        )

    def _check_training_videos(self, videos: list[VideoFeatures]) -> None:
        self._set_layout([video.metadata for video in videos], [_video_path(video) for video in videos])
        for video in videos:
            self._check_finite(video, _video_path(video))

    def _check_finite(self, video: VideoFeatures, path: str | None) -> None:
        if not np.all(np.isfinite(video.features[:, self.columns_])):
            raise InputError(path, f"video {video.metadata.video!r} has NaN or infinite features")

    def _fit_standardizer(self, videos: Iterable[VideoFeatures]) -> int:
        """Fit ``feature_mean_`` / ``feature_std_`` on every object of ``videos`` (streamed); returns their count."""
        if self.feature_scaling not in FEATURE_SCALINGS:
            raise InputError(
                None, f"feature_scaling must be one of {FEATURE_SCALINGS}, not {self.feature_scaling!r}"
            )
        try:
            mean, spread, count = feature_moments(videos, self.columns_)
        except ValueError:  # no objects at all
            mean, spread, count = np.zeros(0), np.zeros(0), 0
        if count < 2:
            raise InputError(None, f"the training videos contain {count} objects; at least 2 are needed")
        self.feature_mean_ = mean
        if self.feature_scaling == "group":
            for columns in self._group_columns():
                spread[columns] = np.sqrt(np.sum(spread[columns] ** 2))
        self.feature_std_ = np.maximum(spread, STD_FLOOR)
        return count

    def _set_layout(self, metadata: list[ShardMetadata], paths: list[str | None]) -> None:
        """Check that all training videos share one layout; set the layout and column attributes."""
        first = metadata[0]
        for video, path in zip(metadata[1:], paths[1:], strict=True):
            if video.feature_layout != first.feature_layout:
                raise InputError(
                    path,
                    f"video {video.video!r} has feature layout {video.feature_layout.to_json()}, "
                    f"but {first.video!r} has {first.feature_layout.to_json()}; all training videos must share one layout",
                )
        self.feature_layout_ = first.feature_layout
        groups = tuple(self.feature_groups) if self.feature_groups is not None else first.feature_layout.names
        missing = [name for name in groups if name not in first.feature_layout.names]
        if missing or not groups:
            raise InputError(
                None,
                f"feature groups {missing or list(groups)} are not usable; the shard layout has {list(first.feature_layout.names)}",
            )
        self.feature_groups_ = groups
        self.columns_ = first.feature_layout.columns(groups)
        self.class_names_ = list(first.class_names)
        self.detector_ = dict(first.detector)

    def _group_columns(self) -> list[np.ndarray]:
        """Column indices of each selected group within the selected feature matrix."""
        selected = self.feature_layout_.subset(self.feature_groups_)
        return [selected.columns([name]) for name in selected.names]

    def _group_knn(self, features: np.ndarray) -> np.ndarray:
        return sum(
            knn_mean_distance(features[:, columns], self.feature_bank_[:, columns], self.knn_neighbors)
            / scale
            for columns, scale in zip(self._group_columns(), self.group_scale_, strict=True)
        )

    def _select(self, video: VideoFeatures) -> np.ndarray:
        columns = self.columns_
        every = len(columns) == video.features.shape[1] and np.array_equal(columns, np.arange(len(columns)))
        # Stored dtype (float16): _standardize converts while it subtracts, in one pass over fresh memory.
        return video.features if every else video.features[:, columns]

    def _standardize(self, features: np.ndarray) -> np.ndarray:
        # float32 arithmetic: float64 temporaries cost more than the encoder at 2048-d. One output
        # array, converted and scaled in place by torch (all cores): at 2048-d this pass over fresh
        # memory costs a quarter of the encoder's product.
        features = np.asarray(features)
        standardized = torch.empty(features.shape, dtype=torch.float32)
        standardized.copy_(torch.from_numpy(np.ascontiguousarray(features)))
        standardized.sub_(torch.from_numpy(self.feature_mean_.astype(np.float32)))
        standardized.div_(torch.from_numpy(self.feature_std_.astype(np.float32)))
        return standardized.numpy()

    def _train(
        self,
        adjacency: sparse.csr_matrix,
        node_features: np.ndarray,
        generator: torch.Generator,
        progress: Callable[[int, float], None] | None = None,
    ) -> None:
        """Full-batch DGI with the fast one-layer loop of :mod:`anograph.models.training`."""
        batch = make_batch(adjacency, node_features, resolve_device(self.device), resolve_precision(self.precision))
        self._train_modules(
            node_features.shape[1],
            generator,
            lambda encoder, discriminator: train_dgi(
                batch, encoder, discriminator, generator, **self._optimiser_options(), progress=progress
            ),
        )

    def _optimiser_options(self) -> dict[str, Any]:
        return {
            "learning_rate": float(self.learning_rate),
            "max_epochs": int(self.max_epochs),
            "patience": int(self.patience),
        }

    def _train_modules(
        self,
        width: int,
        generator: torch.Generator,
        trainer: Callable[[OneLayerGCN, BilinearDiscriminator], TrainingResult],
    ) -> None:
        """Initialise the encoder and discriminator from ``generator``, train them with ``trainer``, keep them."""
        device = resolve_device(self.device)
        encoder = OneLayerGCN(width, int(self.hidden_channels))
        discriminator = BilinearDiscriminator(int(self.hidden_channels))
        nn.init.xavier_uniform_(encoder.linear.weight, generator=generator)
        nn.init.zeros_(encoder.linear.bias)
        nn.init.xavier_uniform_(discriminator.weight, generator=generator)
        encoder.to(device)
        discriminator.to(device)
        result = trainer(encoder, discriminator)
        self.encoder_ = encoder
        self.discriminator_ = discriminator
        self.history_ = result.history
        self.n_epochs_ = len(result.history)
        self.best_epoch_ = result.best_epoch

    def _separation(
        self,
        adjacency: sparse.csr_matrix,
        node_features: np.ndarray,
        propagated: torch.Tensor,
        generator: torch.Generator,
        n_draws: int = SEPARATION_DRAWS,
    ) -> float:
        corrupt = _Corruptor(
            adjacency, node_features, propagated.device, use_scipy=propagated.device.type == "cpu"
        )
        with torch.no_grad():
            positive = self.encoder_(propagated)
            positive_correct = (self.discriminator_(positive, self.summary_) > 0).double().mean()
            negative_correct = torch.stack(
                [
                    (self.discriminator_(self.encoder_(corrupt(generator)), self.summary_) <= 0)
                    .double()
                    .mean()
                    for _ in range(n_draws)
                ]
            ).mean()
        return float((positive_correct + negative_correct) / 2)

    def separation(
        self, videos: Sequence[VideoFeatures], n_draws: int = SEPARATION_DRAWS, seed: int = 1
    ) -> float:
        """Discriminator accuracy on ``videos`` (their whole graph) vs ``n_draws`` row shuffles.

        Balanced accuracy over clean nodes (logit > 0) and corrupted nodes (logit <= 0)
        against the training summary ``s_train``; 0.5 means no separation.
        """
        self._check_fitted()
        videos = list(videos)
        for video in videos:
            self._check_layout(video)
        standardized = [self._standardize(self._select(video)) for video in videos]
        adjacency = build_graph(
            [
                VideoNodes(video.frame_offsets(), video.boxes, chunk)
                for video, chunk in zip(videos, standardized, strict=True)
            ],
            self.graph_config,
        )
        node_features = np.concatenate(standardized)
        propagated = torch.from_numpy(propagate(adjacency, node_features)).to(resolve_device(self.device))
        generator = torch.Generator().manual_seed(int(seed))
        return self._separation(adjacency, node_features, propagated, generator, n_draws)

    # ------------------------------------------------------------------ scoring

    def _check_fitted(self) -> None:
        if not hasattr(self, "encoder_"):
            raise NotFittedError("this AnoGraph model is not fitted yet; call fit() or AnoGraph.load()")

    def _check_layout(self, video: VideoFeatures) -> None:
        if video.metadata.feature_layout != self.feature_layout_:
            raise ModelArtifactError(
                _video_path(video),
                f"model was trained on feature layout {self.feature_layout_.to_json()} but shard "
                f"{video.metadata.video!r} has {video.metadata.feature_layout.to_json()}; re-extract or retrain",
            )

    def _discriminator_scores(self, embeddings: np.ndarray) -> np.ndarray:
        device = resolve_device(self.device)
        with torch.no_grad():
            logits = self.discriminator_(
                torch.from_numpy(np.asarray(embeddings, np.float32)).to(device), self.summary_
            )
        return -logits.double().cpu().numpy()

    def embed_video(self, video: VideoFeatures, window_radius: int) -> tuple[np.ndarray, np.ndarray]:
        """Standardised features and GCN embeddings of a video's objects, using sliding windows.

        Returns ``(features (n, d), embeddings (n, hidden_channels))``, float32.
        """
        features, embeddings, _ = self._embed_with_graph(video, window_radius)
        return features, embeddings

    def _embed_with_graph(
        self, video: VideoFeatures, window_radius: int
    ) -> tuple[np.ndarray, np.ndarray, sparse.csr_matrix]:
        self._check_fitted()
        self._check_layout(video)
        features = self._standardize(self._select(video))
        if not np.all(np.isfinite(features)):  # (x - mean) / std is finite exactly where x is
            raise InputError(
                _video_path(video), f"video {video.metadata.video!r} has NaN or infinite features"
            )
        adjacency = window_adjacency(
            video.frame_offsets(), video.boxes, features, window_radius, self.graph_config
        )
        dtype = resolve_precision(self.precision)
        embeddings = embed(adjacency, features, self.encoder_, dtype, resolve_device(self.device)).cpu().numpy()
        return features, embeddings, adjacency

    def score_video(
        self, video: VideoFeatures, window_radius: int, scorers: Sequence[str] = SCORERS
    ) -> dict[str, np.ndarray]:
        """Anomaly score of every object of ``video`` (higher = more anomalous), per scorer.

        Parameters
        ----------
        video:
            A test video whose feature layout equals the training layout.
        window_radius:
            Frames on each side of the centre frame in its test window (paper: one second).
        scorers:
            Any of ``"discriminator"``, ``"knn"``, ``"feature_knn"``, ``"group_knn"`` (all by default).

        Returns
        -------
        dict[str, numpy.ndarray]
            ``(n_objects,)`` float64 per scorer, aligned with the video's rows.
        """
        unknown = [name for name in scorers if name not in SCORERS]
        if unknown:
            raise InputError(None, f"unknown scorers {unknown}; choose from {list(SCORERS)}")
        features, embeddings, adjacency = self._embed_with_graph(video, window_radius)
        if len(features) == 0:
            return {name: np.zeros(0) for name in scorers}
        scores = self.score_embedded(features, embeddings, scorers)
        steps = self._propagation_steps(window_radius)
        if steps:
            diffusion = normalize_adjacency(abs(adjacency), "row")
            for name, values in scores.items():
                for _ in range(steps):
                    values = diffusion @ values
                scores[name] = values
        return scores

    def score_embedded(
        self, features: np.ndarray, embeddings: np.ndarray, scorers: Sequence[str] = SCORERS
    ) -> dict[str, np.ndarray]:
        """Raw object scores (before score propagation) from standardised features and embeddings.

        The per-object part of :meth:`score_video`, for callers that build the graph
        themselves (live scoring, :mod:`anograph.serving.live_scorer`).
        """
        scores: dict[str, np.ndarray] = {}
        for name in scorers:
            if name == "discriminator":
                scores[name] = self._discriminator_scores(embeddings)
            elif name == "knn":
                scores[name] = knn_mean_distance(embeddings, self.embedding_bank_, self.knn_neighbors)
            elif name == "feature_knn":
                scores[name] = knn_mean_distance(features, self.feature_bank_, self.knn_neighbors)
            else:
                scores[name] = self._group_knn(features)
        return scores

    def standardize_features(self, raw_features: np.ndarray) -> np.ndarray:
        """The model's input rows for raw shard-layout features ``(n, layout width)``: selected, z-scored."""
        self._check_fitted()
        raw_features = np.asarray(raw_features, np.float32).reshape(-1, self.feature_layout_.width)
        return self._standardize(raw_features[:, self.columns_])

    def window_graph(
        self, video: VideoFeatures, window_radius: int
    ) -> tuple[np.ndarray, np.ndarray, sparse.csr_matrix]:
        """Standardised features, embeddings and the stitched test-window adjacency of a video."""
        return self._embed_with_graph(video, window_radius)

    def propagation_steps(self, window_radius: int) -> int:
        """Score-propagation steps :meth:`score_video` applies for this window radius."""
        return self._propagation_steps(window_radius)

    def _propagation_steps(self, window_radius: int) -> int:
        """Score-propagation steps, capped so the receptive field stays inside the test window."""
        return min(int(self.score_propagation_steps), max(int(window_radius), 0))

    @property
    def training_score_quantiles_(self) -> dict[str, dict[str, float]]:
        """Quantiles of ``calibration_scores_`` per scorer, keyed by the quantile level."""
        self._check_fitted()
        return {
            name: {str(level): float(np.quantile(values, level)) for level in CALIBRATION_QUANTILES}
            for name, values in self.calibration_scores_.items()
        }

    # ------------------------------------------------------------------ artifacts

    def _tensors(self) -> dict[str, torch.Tensor]:
        def cpu(value: torch.Tensor | np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            tensor = (
                value.detach().cpu()
                if isinstance(value, torch.Tensor)
                else torch.from_numpy(np.asarray(value))
            )
            return tensor.to(dtype).contiguous()

        tensors = {
            "encoder.weight": cpu(self.encoder_.linear.weight),
            "encoder.bias": cpu(self.encoder_.linear.bias),
            "encoder.prelu": cpu(self.encoder_.activation.weight),
            "discriminator.weight": cpu(self.discriminator_.weight),
            "discriminator.bias": cpu(self.discriminator_.bias),
            "summary": cpu(self.summary_),
            "standardizer.mean": cpu(self.feature_mean_, torch.float64),
            "standardizer.std": cpu(self.feature_std_, torch.float64),
            "knn.embedding_bank": cpu(self.embedding_bank_),
            "knn.feature_bank": cpu(self.feature_bank_),
            "group_knn.scale": cpu(self.group_scale_, torch.float64),
        }
        for name, values in self.calibration_scores_.items():
            tensors[f"calibration.{name}"] = cpu(values, torch.float64)
        return tensors

    def save(self, storage: Storage, key: str) -> None:
        """Write the model under ``key``: ``key/tensors.safetensors`` then ``key/model.json``.

        The JSON is written last and records the tensors' SHA-256, so a reader never pairs
        a sidecar with tensors from another save.
        """
        self._check_fitted()
        blob = safetensors.torch.save(self._tensors(), metadata={"format": "anograph-model"})
        params = self.get_params(deep=False)
        params["graph"] = self.graph_config.to_dict()
        params["feature_groups"] = list(self.feature_groups) if self.feature_groups is not None else None
        sidecar = {
            "format_version": MODEL_FORMAT_VERSION,
            "kind": "anograph.models.estimator.AnoGraph",
            "params": params,
            "feature_layout": self.feature_layout_.to_json(),
            "feature_groups": list(self.feature_groups_),
            "class_names": self.class_names_,
            "detector": self.detector_,
            "training": {
                "videos": self.training_videos_,
                "n_nodes": self.n_training_nodes_,
                "n_epochs": self.n_epochs_,
                "best_epoch": self.best_epoch_,
                "history": self.history_,
                "final_loss": self.history_[self.best_epoch_] if self.history_ else None,
                "separation": self.training_separation_,
                "fit_seconds": self.fit_seconds_,
                "torch_version": torch.__version__,
            },
            "calibration": {
                "method": "kNN scorers leave-one-video-out, discriminator in-sample; object-level scores",
                "n_nodes": int(len(self.calibration_scores_["discriminator"])),
                "quantiles": self.training_score_quantiles_,
            },
            "tensors_file": TENSORS_FILE,
            "tensors_sha256": hashlib.sha256(blob).hexdigest(),
        }
        storage.write_bytes(f"{key}/{TENSORS_FILE}", blob)
        storage.write_bytes(f"{key}/{SIDECAR_FILE}", json.dumps(sidecar, indent=1, sort_keys=True).encode())

    @classmethod
    def load(cls, storage: Storage, key: str, device: str | None = None) -> AnoGraph:
        """Read a model written by :meth:`save`.

        ``device`` overrides the saved device; without it, a model saved with ``"cuda"`` loads
        on the CPU where torch sees no GPU.
        Anything missing, corrupt or inconsistent raises :class:`ModelArtifactError` naming
        the artifact.
        """
        sidecar_path = f"{storage.uri}/{key}/{SIDECAR_FILE}"
        tensors_path = f"{storage.uri}/{key}/{TENSORS_FILE}"
        if not storage.exists(f"{key}/{SIDECAR_FILE}"):
            raise ModelArtifactError(sidecar_path, "no model here (model.json is missing)")
        try:
            sidecar = json.loads(storage.read_bytes(f"{key}/{SIDECAR_FILE}"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ModelArtifactError(sidecar_path, f"model sidecar is not valid JSON ({error})") from error
        if not isinstance(sidecar, dict) or sidecar.get("format_version") != MODEL_FORMAT_VERSION:
            found = sidecar.get("format_version") if isinstance(sidecar, dict) else None
            raise ModelArtifactError(sidecar_path, f"model format {found!r} is not {MODEL_FORMAT_VERSION}")
        if not storage.exists(f"{key}/{TENSORS_FILE}"):
            raise ModelArtifactError(tensors_path, "model tensors are missing")
        blob = storage.read_bytes(f"{key}/{TENSORS_FILE}")
        if hashlib.sha256(blob).hexdigest() != sidecar.get("tensors_sha256"):
            raise ModelArtifactError(
                tensors_path, "model tensors do not match model.json (corrupt or from another save)"
            )
        try:
            tensors = safetensors.torch.load(blob)
            model = cls._from_parts(sidecar, tensors, device)
        except ModelArtifactError as error:
            raise ModelArtifactError(sidecar_path, error.reason) from error
        except Exception as error:  # any malformed content: name the artifact, keep the cause
            raise ModelArtifactError(
                sidecar_path, f"model artifact is corrupt ({type(error).__name__}: {error})"
            ) from error
        return model

    @classmethod
    def _from_parts(
        cls, sidecar: dict[str, Any], tensors: dict[str, torch.Tensor], device: str | None
    ) -> AnoGraph:
        params = dict(sidecar["params"])
        if device is not None:
            params["device"] = device
        elif str(params.get("device", "cpu")).startswith("cuda") and not torch.cuda.is_available():
            params["device"] = "cpu"  # trained on a GPU, scored on a machine without one
        params["graph"] = GraphConfig.from_dict(params["graph"])
        if params.get("feature_groups") is not None:
            params["feature_groups"] = tuple(params["feature_groups"])
        model = cls(**params)
        model.feature_layout_ = FeatureLayout.from_json(sidecar["feature_layout"])
        model.feature_groups_ = tuple(sidecar["feature_groups"])
        model.columns_ = model.feature_layout_.columns(model.feature_groups_)
        model.class_names_ = list(sidecar["class_names"])
        model.detector_ = dict(sidecar["detector"])
        training = sidecar["training"]
        model.training_videos_ = list(training["videos"])
        model.n_training_nodes_ = int(training["n_nodes"])
        model.n_epochs_ = int(training["n_epochs"])
        model.best_epoch_ = int(training["best_epoch"])
        model.history_ = [float(value) for value in training["history"]]
        model.training_separation_ = float(training["separation"])
        model.fit_seconds_ = float(training["fit_seconds"])

        weight = tensors["encoder.weight"]
        hidden, width = weight.shape
        if width != len(model.columns_) or hidden != int(model.hidden_channels):
            raise ModelArtifactError(
                None,
                f"encoder weight has shape {tuple(weight.shape)}, expected ({model.hidden_channels}, {len(model.columns_)})",
            )
        device = resolve_device(model.device)
        encoder = OneLayerGCN(width, hidden)
        encoder.linear.weight.data.copy_(weight)
        encoder.linear.bias.data.copy_(tensors["encoder.bias"])
        encoder.activation.weight.data.copy_(tensors["encoder.prelu"])
        discriminator = BilinearDiscriminator(hidden)
        discriminator.weight.data.copy_(tensors["discriminator.weight"])
        discriminator.bias.data.copy_(tensors["discriminator.bias"])
        model.encoder_ = encoder.to(device).eval()
        model.discriminator_ = discriminator.to(device).eval()
        model.summary_ = tensors["summary"].to(device)
        model.feature_mean_ = tensors["standardizer.mean"].numpy()
        model.feature_std_ = tensors["standardizer.std"].numpy()
        model.embedding_bank_ = tensors["knn.embedding_bank"].numpy()
        model.feature_bank_ = tensors["knn.feature_bank"].numpy()
        model.group_scale_ = tensors["group_knn.scale"].numpy()
        model.calibration_scores_ = {name: tensors[f"calibration.{name}"].numpy() for name in SCORERS}
        return model


class _Corruptor:
    """``Â X̃`` for a fresh row shuffle ``X̃`` of ``X`` per call.

    scipy on the CPU (faster there than torch's sparse CSR product, measured), torch sparse
    CSR on ``device`` otherwise. Neither needs autograd: ``X̃`` has no parameters.
    """

    def __init__(
        self, adjacency: sparse.csr_matrix, node_features: np.ndarray, device: torch.device, use_scipy: bool
    ) -> None:
        self.device = device
        self.use_scipy = use_scipy
        self.n_nodes = len(node_features)
        if use_scipy:
            self.adjacency = sparse.csr_matrix(adjacency, dtype=np.float32)
            self.features = np.ascontiguousarray(node_features, np.float32)
        else:
            csr = sparse.csr_matrix(adjacency, dtype=np.float32, copy=True)
            csr.sum_duplicates()  # also sorts the column indices, as torch's CSR requires
            with warnings.catch_warnings():  # "sparse CSR support is in beta": noise for a plain product
                warnings.simplefilter("ignore", UserWarning)
                self.adjacency = torch.sparse_csr_tensor(
                    torch.from_numpy(csr.indptr.astype(np.int64)),
                    torch.from_numpy(csr.indices.astype(np.int64)),
                    torch.from_numpy(csr.data),
                    size=csr.shape,
                    check_invariants=True,
                ).to(device)
            self.features = torch.from_numpy(np.ascontiguousarray(node_features, np.float32)).to(device)

    def __call__(self, generator: torch.Generator) -> torch.Tensor:
        permutation = torch.randperm(self.n_nodes, generator=generator)
        if self.use_scipy:
            return torch.from_numpy(np.asarray(self.adjacency @ self.features[permutation.numpy()])).to(
                self.device
            )
        return self.adjacency @ self.features[permutation.to(self.device)]


def _state(encoder: nn.Module, discriminator: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    return {
        "encoder": {name: value.detach().clone() for name, value in encoder.state_dict().items()},
        "discriminator": {name: value.detach().clone() for name, value in discriminator.state_dict().items()},
    }
