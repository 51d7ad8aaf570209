"""One training run: fit a model on training shards and calibrate its alert thresholds.

Why one function: a model that is served needs its frame calibration
(:mod:`anograph.serving.calibration`), and the calibration can only be computed right after
fitting, on the model in memory. The pipeline, the retraining ablations and nightly
retraining all train through :func:`train_model`, so none of them can ship a model without
one. Saving goes through the existing artifact code: :func:`save_trained_model` for a plain
storage key, :meth:`anograph.ops.registry.ModelRegistry.register` for a registry version.

Model options are JSON-friendly (``graph`` as a dict, ``feature_groups`` as a list), as flow
parameters and registry records hold them; :func:`new_model` and :func:`model_options`
convert between them and estimators.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from anograph.defaults import (
    DEFAULT_SCORER,
    DEFAULT_WINDOW_SECONDS,
    REFERENCE_FEATURE_GROUPS,
    REFERENCE_FEATURE_SCALING,
    REFERENCE_MAX_EPOCHS,
)
from anograph.errors import InputError
from anograph.evaluation.ablations import discard_training_frames
from anograph.graph.batches import ShardVideos
from anograph.graph.build import GraphConfig
from anograph.io.shards import VideoFeatures, read_metadata, read_shard
from anograph.io.storage import Storage
from anograph.models.estimator import AnoGraph
from anograph.models.scorers import GCN_SCORERS
from anograph.serving.calibration import (
    DEFAULT_THRESHOLD_QUANTILE,
    FrameCalibration,
    calibrate_frame_scores,
    save_frame_calibration,
)


def new_model(options: Mapping[str, Any] | None = None) -> AnoGraph:
    """An unfitted model from JSON-friendly options (``graph`` as a dict, groups as a list)."""
    options = dict(options or {})
    if isinstance(options.get("graph"), dict):
        options["graph"] = GraphConfig.from_dict(options["graph"])
    if options.get("feature_groups") is not None:
        options["feature_groups"] = tuple(options["feature_groups"])
    return AnoGraph(**options)


def model_options(model: AnoGraph) -> dict[str, Any]:
    """A model's parameters as JSON-friendly options, the inverse of :func:`new_model`."""
    options = model.get_params(deep=False) | {"graph": model.graph_config.to_dict()}
    if options.get("feature_groups") is not None:
        options["feature_groups"] = list(options["feature_groups"])
    return options


def gcn_role(headline_scorer: str | None) -> str:
    """``"headline"`` when ``headline_scorer`` (default :data:`DEFAULT_SCORER`) reads the GCN, else ``"reference"``."""
    return "headline" if (headline_scorer or DEFAULT_SCORER) in GCN_SCORERS else "reference"


def options_for_headline(options: Mapping[str, Any] | None, headline_scorer: str | None,
                         feature_groups: Sequence[str] = ()) -> dict[str, Any]:
    """``options`` with the GCN's training budget and input set by what the headline scorer needs.

    A headline that does not read the GCN (:func:`gcn_role` ``"reference"``) scores the same
    after any training, so the GCN is trained for at most :data:`REFERENCE_MAX_EPOCHS`, which
    keeps the paper's discriminator in the report without paying for a full fit. Its input is
    then :data:`REFERENCE_FEATURE_GROUPS`, column-scaled, where the shards' ``feature_groups``
    hold them (the input the validation measured). Explicit ``max_epochs``, ``feature_groups``
    or ``feature_scaling`` always win; a GCN headline keeps the model's defaults.
    """
    options = dict(options or {})
    if gcn_role(headline_scorer) != "reference":
        return options
    if options.get("max_epochs") is None:
        options["max_epochs"] = REFERENCE_MAX_EPOCHS
    chosen_input = options.get("feature_groups") is not None or options.get("feature_scaling") is not None
    if not chosen_input and set(REFERENCE_FEATURE_GROUPS) <= set(feature_groups):
        options.update(feature_groups=list(REFERENCE_FEATURE_GROUPS), feature_scaling=REFERENCE_FEATURE_SCALING)
    return options


@dataclass
class TrainedModel:
    """A fitted model with its frame calibration and what the run did.

    ``calibration`` is ``None`` only when :func:`train_model` was told not to calibrate.
    ``n_training_edges`` is ``None`` for training in batches (the graph is never assembled).
    ``seconds`` has ``graph`` (full batch only), ``train`` and ``calibrate``.
    """

    model: AnoGraph
    calibration: FrameCalibration | None
    n_training_nodes: int
    n_training_edges: int | None
    seconds: dict[str, float] = field(default_factory=dict)
    batch_nodes: int | None = None
    gcn_role: str = "headline"

    @property
    def alert_thresholds(self) -> dict[str, float]:
        """Each scorer's alert threshold at the calibration's default quantile (empty without calibration)."""
        if self.calibration is None:
            return {}
        return {name: self.calibration.threshold(name) for name in self.calibration.frame_scores}

    def summary(self, model_key: str) -> dict[str, Any]:
        """What a report keeps of the run (its ``config.training``)."""
        summary = {
            "model_key": model_key,
            "seconds": dict(self.seconds),
            "alert_thresholds": self.alert_thresholds,
            "n_training_nodes": self.n_training_nodes,
            "n_training_edges": self.n_training_edges,
            "n_epochs": self.model.n_epochs_,
            "training_separation": self.model.training_separation_,
            "gcn": {"role": self.gcn_role, "max_epochs": int(self.model.max_epochs),
                    "feature_groups": list(self.model.feature_groups_), "feature_scaling": self.model.feature_scaling},
        }
        if self.batch_nodes is not None:
            summary["batch_nodes"] = self.batch_nodes
        return summary


def train_model(
    storage: Storage,
    shard_keys: Sequence[str],
    options: Mapping[str, Any] | None = None,
    calibrate: bool = True,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    default_fps: float | None = None,
    threshold_quantile: float = DEFAULT_THRESHOLD_QUANTILE,
    keep_fraction: float = 1.0,
    fraction_seed: int = 0,
    batch_nodes: int | None = None,
    progress: Callable[[int, float], None] | None = None,
    headline_scorer: str | None = None,
) -> TrainedModel:
    """Fit a model of ``options`` on the training shards at ``shard_keys`` and calibrate its alerts.

    Parameters
    ----------
    storage, shard_keys:
        Where the training shards are, in training order.
    options:
        JSON-friendly model options (:func:`new_model`); default the model's defaults.
    calibrate:
        Score the training videos leave-one-video-out for the frame alert thresholds
        (default ``True``; a served model needs them).
    window_seconds, default_fps:
        Test window of the calibration, and the frame rate of shards that carry none.
    threshold_quantile:
        The calibration's default alert quantile.
    keep_fraction, fraction_seed:
        Below 1, train on a seeded random share of the training frames
        (:func:`anograph.evaluation.ablations.discard_training_frames`); default all.
    batch_nodes:
        Default ``None``: full batch, every feature in memory. Else train from the shards with
        at most about that many nodes' features in memory (:meth:`AnoGraph.fit_shards`) and
        calibrate reading one shard at a time.
    progress:
        ``progress(epoch, loss)`` after every epoch.
    headline_scorer:
        The scorer the model will be judged and served by (default :data:`DEFAULT_SCORER`); it
        sets the GCN's training budget and input (:func:`options_for_headline`).
    """
    groups = read_metadata(storage, shard_keys[0]).feature_layout.names if shard_keys else ()
    model = new_model(options_for_headline(options, headline_scorer, groups))
    seconds: dict[str, float] = {}
    if batch_nodes is not None:
        if keep_fraction < 1.0:
            raise InputError(None, "keep_fraction < 1 discards frames in memory; it cannot be combined with batch_nodes")
        started = time.perf_counter()
        model.fit_shards(storage, shard_keys, batch_nodes=batch_nodes, progress=progress)
        seconds["train"] = time.perf_counter() - started
        videos: Sequence[VideoFeatures] = ShardVideos(storage, shard_keys)
        n_nodes, n_edges = model.n_training_nodes_, None
    else:
        videos = [read_shard(storage, key) for key in shard_keys]
        if keep_fraction < 1.0:
            videos = discard_training_frames(videos, keep_fraction, fraction_seed)
        started = time.perf_counter()
        graph = model.prepare_training_graph(videos)
        seconds["graph"] = time.perf_counter() - started
        model.fit_graph(graph, progress=progress)
        seconds["train"] = time.perf_counter() - started - seconds["graph"]
        n_nodes, n_edges = graph.n_nodes, graph.n_edges
    calibration = None
    if calibrate:
        started = time.perf_counter()
        calibration = calibrate_frame_scores(model, videos, window_seconds=window_seconds, default_fps=default_fps,
                                             default_quantile=threshold_quantile)
        seconds["calibrate"] = time.perf_counter() - started
    return TrainedModel(model=model, calibration=calibration, n_training_nodes=n_nodes, n_training_edges=n_edges,
                        seconds=seconds, batch_nodes=batch_nodes, gcn_role=gcn_role(headline_scorer))


def save_trained_model(trained: TrainedModel, storage: Storage, key: str) -> None:
    """Write the model artifact under ``key`` and its frame calibration beside it."""
    trained.model.save(storage, key)
    if trained.calibration is not None:
        save_frame_calibration(trained.calibration, storage, key)
