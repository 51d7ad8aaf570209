"""The Ano-Graph estimator: parameters, fitting and scoring, composed from the model's parts.

:class:`AnoGraph` follows the scikit-learn conventions (explicit documented parameters,
``fit`` returning ``self``, fitted attributes ending in ``_``) and delegates to:

* :mod:`anograph.models.scaling`: which feature groups are read, and their standardiser;
* :mod:`anograph.models.dgi`: the one-layer GCN encoder trained with Deep Graph Infomax
  (paper Section 3, Eqs. 3-4) over the block-diagonal spatio-temporal graph of all
  training videos (:func:`anograph.graph.build.build_graph`);
* :mod:`anograph.models.fitting` / :mod:`anograph.models.streamed_fit`: full-batch
  training in memory, or bounded-memory training from shards (Adam, early stopping on the
  training loss, the parameters of the best epoch kept; :mod:`anograph.models.training`);
* :mod:`anograph.models.scorers`: the graph-node scorers and their label-free calibration;
* :mod:`anograph.models.attribute_scoring`: the attribute ensemble chosen on pseudo-anomalies;
* :mod:`anograph.models.artifact`: safetensors + JSON artifacts.

Test graphs are sliding windows (:func:`anograph.graph.windows.window_adjacency`); for this
one-layer encoder they give the whole-video graph's rows whenever the radius reaches the
encoder's receptive field (see that module).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sparse
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from anograph.errors import InputError, ModelArtifactError
from anograph.graph.batches import ShardVideos
from anograph.graph.build import GraphConfig, VideoNodes, build_graph, normalize_adjacency
from anograph.graph.windows import WindowGraph, window_adjacency
from anograph.io.extraction_settings import check_same_extraction
from anograph.io.shards import ShardMetadata, VideoFeatures, read_metadata
from anograph.io.storage import Storage
from anograph.models.artifact import SIDECAR_FILE, load_model, save_model
from anograph.models.attribute_scoring import ATTRIBUTE_SCORER, AttributeScoring, supports_attributes
from anograph.models.camera_scoring import CameraScorings, fit_attribute_scoring
from anograph.models.dgi import SEPARATION_DRAWS, RowShuffleCorruption, propagate
from anograph.models.fitting import Progress, TrainedParts, TrainingGraph, TrainingSettings, fit_full_batch
from anograph.models.scaling import FeatureSelection, GroupStandardizer, shared_layout
from anograph.models.scorers import SCORER_CLASSES, NodeRows, Scorer, ScorerContext, make_scorers
from anograph.models.scorers import SCORERS as NODE_SCORERS
from anograph.models.streamed_fit import fit_streamed
from anograph.models.training import embed, resolve_device, resolve_precision

# Re-exported for the callers that import them from here.
__all__ = ["SCORERS", "SIDECAR_FILE", "AnoGraph", "TrainingGraph", "WindowGraph"]

#: Every scorer a fitted model offers: the attribute ensemble, then the graph-node scorers.
SCORERS = (ATTRIBUTE_SCORER, *NODE_SCORERS)

CALIBRATION_QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)


def _video_path(video: VideoFeatures) -> str:
    return video.metadata.source or video.metadata.video


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
        ``"group"`` (default) or ``"column"``: see :class:`anograph.models.scaling.GroupStandardizer`.
    score_propagation_steps:
        After scoring, spread each object's score over the test window's graph this many
        times (``s <- Â s`` with the row-normalised window adjacency), so an object's score
        also reflects the objects it interacts with in its own and nearby frames, the way
        the GCN aggregates features. Capped at the window radius, so every step stays
        inside frames ``t-i .. t+i``. Default 0 (off, as in the paper). Whether it helps
        depends on the scene (README, "What each part adds").
    device:
        Torch device for training and encoding. Default ``"cpu"``. ``"auto"`` uses CUDA
        when a GPU is present, else the CPU.
    precision:
        Dtype of the dense products in training and encoding: ``"float32"`` (default) or
        ``"bfloat16"`` (faster matrix products on CPUs with AVX-512 BF16 and on GPUs; fp32
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
    dgi_ : anograph.models.dgi.DeepGraphInfomax
        The trained modules (also as ``encoder_`` and ``discriminator_``).
    standardizer_ : anograph.models.scaling.GroupStandardizer
        The fitted standardiser (``feature_mean_``, ``feature_std_``).
    selection_ : anograph.models.scaling.FeatureSelection
        The feature groups read (``feature_layout_``, ``feature_groups_``, ``columns_``).
    embedding_bank_, feature_bank_ : numpy.ndarray
        Embeddings and standardised features of the bank nodes the scorers compare with;
        ``bank_nodes_`` (not saved) are their training-graph node indices.
    scorers_ : dict[str, anograph.models.scorers.Scorer]
        The fitted scorers, by name.
    calibration_scores_ : dict[str, numpy.ndarray]
        Sorted training scores per scorer (see :mod:`anograph.models.scorers`).
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

    @property
    def graph_config(self) -> GraphConfig:
        return self.graph if self.graph is not None else GraphConfig()

    # Fitted parts, under the names callers use.
    feature_layout_ = property(lambda self: self.selection_.layout, doc="The training shards' feature layout.")
    feature_groups_ = property(lambda self: self.selection_.groups, doc="The feature groups read, in order.")
    columns_ = property(lambda self: self.selection_.columns, doc="Their columns in the shard layout.")
    feature_mean_ = property(lambda self: self.standardizer_.mean_, doc="The standardiser's centre.")
    feature_std_ = property(lambda self: self.standardizer_.std_, doc="The standardiser's divisor.")
    encoder_ = property(lambda self: self.dgi_.encoder, doc="The trained one-layer GCN.")
    discriminator_ = property(lambda self: self.dgi_.discriminator, doc="The trained bilinear discriminator.")

    @property
    def calibration_scores_(self) -> dict[str, np.ndarray]:
        """Sorted training scores per scorer (see :mod:`anograph.models.scorers`)."""
        return {name: scorer.calibration_scores_ for name, scorer in self.scorers_.items()}

    @property
    def group_scale_(self) -> np.ndarray:
        """The per-group training scales of ``"group_knn"``."""
        return self.scorers_["group_knn"].scale_

    @property
    def training_score_quantiles_(self) -> dict[str, dict[str, float]]:
        """Quantiles of ``calibration_scores_`` per scorer, keyed by the quantile level."""
        self._check_fitted()
        return {
            name: {str(level): float(np.quantile(values, level)) for level in CALIBRATION_QUANTILES}
            for name, values in self.calibration_scores_.items()
        }

    # ------------------------------------------------------------------ fitting

    def fit(
        self, videos: Sequence[VideoFeatures], batch_nodes: int | None = None, progress: Progress | None = None
    ) -> AnoGraph:
        """Train on normal videos.

        Parameters
        ----------
        videos:
            Training videos (normal behaviour only), all with the same feature layout.
            Their graphs are joined block-diagonally: no edge crosses two videos.
        batch_nodes:
            ``None`` (default): full-batch training in memory (:meth:`prepare_training_graph`,
            then :meth:`fit_graph`). A number: train with about that many nodes' features in
            memory (:mod:`anograph.models.streamed_fit`, a video larger than that is a batch
            of its own); ``videos`` must then be shard-backed
            (:class:`anograph.graph.batches.ShardVideos`), since batches are re-read every epoch.
        progress:
            ``progress(epoch, loss)`` after every epoch.

        Returns ``self``, fitted. Raises :class:`InputError` for no videos or objects, layouts
        that differ (naming the video), unknown feature groups, non-finite features, or
        ``batch_nodes`` with videos not read from shards.
        """
        if batch_nodes is None:
            return self.fit_graph(self.prepare_training_graph(videos), progress)
        if not isinstance(videos, ShardVideos):
            raise InputError(
                None, "batch_nodes needs shard-backed videos (anograph.graph.batches.ShardVideos) to re-read batches"
            )
        return self._fit_streamed(videos.storage, videos.keys, int(batch_nodes), progress)

    def fit_shards(
        self, storage: Storage, keys: Sequence[str], batch_nodes: int = 100_000, progress: Progress | None = None
    ) -> AnoGraph:
        """:meth:`fit` on the shards at ``keys`` (in training order) with about ``batch_nodes`` nodes in memory.

        ``batch_nodes`` defaults to 100000. Layouts are checked from each shard's footer before
        any rows are read, and errors name the shard. The result equals :meth:`fit`'s on the
        same videos in memory (:mod:`anograph.models.streamed_fit`).
        """
        return self.fit(ShardVideos(storage, keys), batch_nodes=batch_nodes, progress=progress)

    def prepare_training_graph(self, videos: Sequence[VideoFeatures]) -> TrainingGraph:
        """Check the videos, fit the feature standardiser and build the training graph.

        This is the graph stage of training, separate so a pipeline can run (and time) it
        on its own. It sets the standardiser and layout attributes on ``self``.
        """
        started = time.perf_counter()
        videos = list(videos)
        if not videos:
            raise InputError(None, "no training videos given")
        paths = [_video_path(video) for video in videos]
        self._adopt_layout([video.metadata for video in videos], paths)
        for video, path in zip(videos, paths, strict=True):
            self.selection_.check_finite(video, path)
        self.standardizer_ = self.new_standardizer().fit_videos(videos, self.selection_.columns)
        self._fit_attributes(videos)
        standardized = [self.standardizer_.transform(self.selection_.select(video.features)) for video in videos]
        return TrainingGraph(
            adjacency=self._graph(videos, standardized),
            node_features=np.concatenate(standardized),
            video_of_node=np.repeat(np.arange(len(videos)), [len(chunk) for chunk in standardized]),
            video_names=[video.metadata.video for video in videos], seconds=time.perf_counter() - started,
        )

    def fit_graph(self, training_graph: TrainingGraph, progress: Progress | None = None) -> AnoGraph:
        """Train the GCN + DGI on a graph from :meth:`prepare_training_graph` of this model.

        ``progress(epoch, loss)``, when given, is called after every epoch.
        """
        if not hasattr(self, "feature_mean_"):
            raise NotFittedError("call prepare_training_graph() on this model before fit_graph()")
        started = time.perf_counter() - training_graph.seconds
        self._adopt(fit_full_batch(training_graph, self.training_settings(), progress))
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def training_settings(self) -> TrainingSettings:
        """The parameters training reads, resolved (device, precision) and typed."""
        return TrainingSettings(
            hidden_channels=int(self.hidden_channels), learning_rate=float(self.learning_rate),
            max_epochs=int(self.max_epochs), patience=int(self.patience), seed=int(self.seed),
            knn_bank_size=int(self.knn_bank_size), device=resolve_device(self.device),
            precision=resolve_precision(self.precision),
        )

    def new_standardizer(self) -> GroupStandardizer:
        """An unfitted standardiser with this model's ``feature_scaling`` over its selected groups."""
        return GroupStandardizer(self.feature_scaling, list(self.selection_.group_columns().values()))

    @property
    def scorer_context(self) -> ScorerContext:
        """What this fitted model's scorers are built with."""
        return ScorerContext(int(self.knn_neighbors), self.selection_.group_columns(), self.dgi_, self.summary_)

    def _fit_streamed(
        self, storage: Storage, keys: Sequence[str], batch_nodes: int, progress: Progress | None
    ) -> AnoGraph:
        started = time.perf_counter()
        keys = list(keys)
        if not keys:
            raise InputError(None, "no training shards given")
        if batch_nodes < 1:
            raise InputError(None, f"batch_nodes must be at least 1, not {batch_nodes}")
        self._adopt_layout([read_metadata(storage, key) for key in keys], [storage.location(key) for key in keys])
        standardizer = self.new_standardizer()
        parts = fit_streamed(
            storage, keys, self.selection_, standardizer, self.training_settings(), self.graph_config,
            batch_nodes, progress,
        )
        self.standardizer_ = standardizer
        self._fit_attributes(ShardVideos(storage, keys))
        self._adopt(parts)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _fit_attributes(self, videos: Sequence[VideoFeatures]) -> None:
        """Select and fit the attribute ensemble where the shards carry its feature groups."""
        supported = supports_attributes(self.selection_.layout.names)
        self.attribute_scoring_ = fit_attribute_scoring(videos, seed=int(self.seed)) if supported else None

    def _adopt_layout(self, metadata: list[ShardMetadata], paths: list[str | None]) -> None:
        """Check that all training videos share one layout; set the selection, class names and detector."""
        self.selection_ = FeatureSelection.of(shared_layout(metadata, paths), self.feature_groups)
        self.class_names_ = list(metadata[0].class_names)
        self.detector_ = dict(metadata[0].detector)
        self.extraction_features_ = dict(metadata[0].extraction.get("features") or {})

    def _adopt(self, parts: TrainedParts) -> None:
        """Keep the trained parts and fit every registered scorer on the sampled rows."""
        self.dgi_ = parts.dgi
        self.history_ = parts.result.history
        self.n_epochs_ = len(parts.result.history)
        self.best_epoch_ = parts.result.best_epoch
        self.summary_ = parts.summary
        self.training_separation_ = parts.separation
        self.n_training_nodes_ = parts.n_nodes
        self.training_videos_ = parts.video_names
        self.embedding_bank_ = parts.bank.embeddings
        self.feature_bank_ = parts.bank.features
        # Training-graph node of each bank row; in memory only (not saved), so a
        # calibration right after fitting can leave a video's own rows out.
        self.bank_nodes_ = parts.bank_nodes
        self.scorers_ = {
            name: scorer.fit(parts.bank, parts.calibration)
            for name, scorer in make_scorers(SCORER_CLASSES, self.scorer_context).items()
        }

    def _graph(self, videos: Sequence[VideoFeatures], standardized: Sequence[np.ndarray]) -> sparse.csr_matrix:
        return build_graph(
            [
                VideoNodes(video.frame_offsets(), video.boxes, chunk)
                for video, chunk in zip(videos, standardized, strict=True)
            ],
            self.graph_config,
        )

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
            self._check_features(video)
        standardized = [self.standardizer_.transform(self.selection_.select(video.features)) for video in videos]
        adjacency = self._graph(videos, standardized)
        node_features = np.concatenate(standardized)
        propagated = torch.from_numpy(propagate(adjacency, node_features)).to(resolve_device(self.device))
        corruption = RowShuffleCorruption(adjacency, node_features, propagated.device)
        generator = torch.Generator().manual_seed(int(seed))
        return self.dgi_.separation(propagated, corruption, self.summary_, generator, n_draws)

    # ------------------------------------------------------------------ scoring

    def _check_fitted(self) -> None:
        if not hasattr(self, "dgi_"):
            raise NotFittedError("this AnoGraph model is not fitted yet; call fit() or AnoGraph.load()")

    def _check_features(self, video: VideoFeatures) -> None:
        if video.metadata.feature_layout != self.feature_layout_:
            raise ModelArtifactError(
                _video_path(video),
                f"model was trained on feature layout {self.feature_layout_.to_json()} but shard "
                f"{video.metadata.video!r} has {video.metadata.feature_layout.to_json()}; re-extract or retrain",
            )
        check_same_extraction(self.extraction_features_, video.metadata.extraction.get("features"),
                              _video_path(video), f"the features of shard {video.metadata.video!r}")

    def window_graph(self, video: VideoFeatures, window_radius: int) -> WindowGraph:
        """The video's test-window graph with its objects' standardised features and GCN embeddings."""
        self._check_fitted()
        self._check_features(video)
        features = self.standardizer_.transform(self.selection_.select(video.features))
        if not np.all(np.isfinite(features)):  # (x - mean) / std is finite exactly where x is
            raise InputError(_video_path(video), f"video {video.metadata.video!r} has NaN or infinite features")
        adjacency = window_adjacency(video.frame_offsets(), video.boxes, features, window_radius, self.graph_config)
        dtype = resolve_precision(self.precision)
        embeddings = embed(adjacency, features, self.encoder_, dtype, resolve_device(self.device)).cpu().numpy()
        return WindowGraph(features, embeddings, adjacency)

    def embed_video(self, video: VideoFeatures, window_radius: int) -> tuple[np.ndarray, np.ndarray]:
        """``(standardised features (n, d), GCN embeddings (n, hidden_channels))``, float32, from sliding windows."""
        window = self.window_graph(video, window_radius)
        return window.features, window.embeddings

    def score_video(
        self, video: VideoFeatures, window_radius: int, scorers: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Anomaly score of every object of ``video`` (higher = more anomalous), per scorer.

        ``video`` has the training layout; ``window_radius`` is the frames on each side of the
        centre frame in its test window (paper: one second); ``scorers`` are names of
        :attr:`scorer_names` (all of them by default). Returns ``(n_objects,)`` float64 per
        scorer, aligned with the video's rows.
        """
        scorers = self.scorer_names if scorers is None else list(scorers)
        node_scorers = [name for name in scorers if name != ATTRIBUTE_SCORER]
        self._scorers(node_scorers)
        self._check_features(video)  # the attribute scorer reads the raw rows, without window_graph()
        if video.n_objects == 0:
            return {name: np.zeros(0) for name in scorers}
        scores: dict[str, np.ndarray] = {}
        if ATTRIBUTE_SCORER in scorers:
            scores[ATTRIBUTE_SCORER] = self.attribute_scoring().score(video)
        window = self.window_graph(video, window_radius) if node_scorers or self.score_propagation_steps else None
        if node_scorers:
            scores.update(self.score_embedded(window.features, window.embeddings, node_scorers))
        scores = {name: scores[name] for name in scorers}
        steps = self.propagation_steps(window_radius)
        if steps:
            diffusion = normalize_adjacency(abs(window.adjacency), "row")
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
        rows = NodeRows(features, embeddings)
        bank = NodeRows(self.feature_bank_, self.embedding_bank_)
        return {name: scorer.score(rows, bank) for name, scorer in self._scorers(scorers).items()}

    @property
    def scorer_names(self) -> list[str]:
        """The scorers this fitted model offers, in report order (``attributes`` only where fitted)."""
        has_attributes = getattr(self, "attribute_scoring_", None) is not None
        return [name for name in SCORERS if name != ATTRIBUTE_SCORER or has_attributes]

    def attribute_scoring(self) -> AttributeScoring | CameraScorings:
        """The fitted attribute scorer (:mod:`~anograph.models.camera_scoring`); else an error naming what is missing."""
        self._check_fitted()
        if getattr(self, "attribute_scoring_", None) is None:
            raise InputError(None, "this model has no attribute scorer: its shards lack the flow_stats or class "
                             "feature group (extract again with the default features, or pick another --scorer)")
        return self.attribute_scoring_

    def _scorers(self, names: Sequence[str]) -> dict[str, Scorer]:
        self._check_fitted()
        unknown = [name for name in names if name not in self.scorers_]
        if unknown:
            raise InputError(None, f"unknown scorers {unknown}; choose from {list(self.scorers_)}")
        return {name: self.scorers_[name] for name in names}

    def standardize_features(self, raw_features: np.ndarray) -> np.ndarray:
        """The model's input rows for raw shard-layout features ``(n, layout width)``: selected, z-scored."""
        self._check_fitted()
        raw_features = np.asarray(raw_features, np.float32).reshape(-1, self.feature_layout_.width)
        return self.standardizer_.transform(raw_features[:, self.columns_])

    def propagation_steps(self, window_radius: int) -> int:
        """Score-propagation steps :meth:`score_video` applies: capped so the receptive field stays in the window."""
        return min(int(self.score_propagation_steps), max(int(window_radius), 0))

    # ------------------------------------------------------------------ artifacts

    def save(self, storage: Storage, key: str) -> None:
        """Write the model under ``key`` (:func:`anograph.models.artifact.save_model`)."""
        self._check_fitted()
        save_model(self, storage, key)

    @classmethod
    def load(cls, storage: Storage, key: str, device: str | None = None) -> AnoGraph:
        """Read a model written by :meth:`save` (:func:`anograph.models.artifact.load_model`).

        ``device`` overrides the saved device; without it, a model saved with ``"cuda"`` loads
        on the CPU where torch sees no GPU. Anything missing, corrupt or inconsistent raises
        :class:`ModelArtifactError` naming the artifact.
        """
        return load_model(cls, storage, key, device)

