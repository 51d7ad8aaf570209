"""Full-batch training of the DGI modules on a training graph, and what every fit produces.

The estimator (:class:`anograph.models.estimator.AnoGraph`) owns the parameters; this module
turns them (:class:`TrainingSettings`) and a standardised training graph (:class:`TrainingGraph`)
into :class:`TrainedParts`: the trained modules, the training readout, the separation
diagnostic and the rows of the sampled bank and calibration nodes that the scorers are
fitted on. The bounded-memory path (:mod:`anograph.models.streamed_fit`) produces the same
parts from shards, with the same seeded draws.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sparse
import torch

from anograph.models.dgi import DeepGraphInfomax, RowShuffleCorruption, propagate, readout
from anograph.models.scorers import NodeRows
from anograph.models.training import TrainingResult, make_batch, train_dgi

# Training nodes whose scores are kept for threshold calibration.
CALIBRATION_SIZE = 5000

Progress = Callable[[int, float], None]
Trainer = Callable[[torch.nn.Module, torch.nn.Module], TrainingResult]


@dataclass(frozen=True)
class TrainingSettings:
    """The estimator parameters that training reads (see :class:`anograph.models.estimator.AnoGraph`)."""

    hidden_channels: int
    learning_rate: float
    max_epochs: int
    patience: int
    seed: int
    knn_bank_size: int
    device: torch.device
    precision: torch.dtype

    def optimiser_options(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "max_epochs": self.max_epochs, "patience": self.patience}


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


@dataclass
class TrainedParts:
    """What training produces, before the scorers are fitted on ``bank`` and ``calibration``.

    ``bank_nodes`` / ``calibration_nodes`` are sorted global training-node indices; the rows'
    ``groups`` are what leave-one-out calibration leaves out (see :func:`held_out_groups`).
    """

    dgi: DeepGraphInfomax
    result: TrainingResult
    summary: torch.Tensor
    separation: float
    n_nodes: int
    video_names: list[str]
    bank_nodes: np.ndarray
    bank: NodeRows
    calibration_nodes: np.ndarray
    calibration: NodeRows


def sample_nodes(n_nodes: int, settings: TrainingSettings) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, sorted global indices of the kNN bank and of the calibration nodes."""
    rng = np.random.default_rng(settings.seed)
    bank = np.sort(rng.choice(n_nodes, size=min(n_nodes, int(settings.knn_bank_size)), replace=False))
    calibration = np.sort(rng.choice(n_nodes, size=min(n_nodes, CALIBRATION_SIZE), replace=False))
    return bank, calibration


def held_out_groups(nodes: np.ndarray, video_of_nodes: np.ndarray, n_videos: int) -> np.ndarray:
    """The group each sampled node leaves out in calibration: its video, or itself when there is one video."""
    return video_of_nodes if n_videos > 1 else nodes


def train_modules(
    width: int, settings: TrainingSettings, generator: torch.Generator, trainer: Trainer
) -> tuple[DeepGraphInfomax, TrainingResult]:
    """New DGI modules initialised from ``generator``, on the device, trained by ``trainer(encoder, discriminator)``."""
    dgi = DeepGraphInfomax(width, settings.hidden_channels)
    dgi.reset_parameters(generator)
    dgi.to(settings.device)
    return dgi, trainer(dgi.encoder, dgi.discriminator)


def _train_full_batch(
    graph: TrainingGraph, settings: TrainingSettings, generator: torch.Generator, progress: Progress | None
) -> tuple[DeepGraphInfomax, TrainingResult]:
    batch = make_batch(graph.adjacency, graph.node_features, settings.device, settings.precision)
    return train_modules(
        graph.node_features.shape[1],
        settings,
        generator,
        lambda encoder, discriminator: train_dgi(
            batch, encoder, discriminator, generator, **settings.optimiser_options(), progress=progress
        ),
    )


def fit_full_batch(
    graph: TrainingGraph, settings: TrainingSettings, progress: Progress | None = None
) -> TrainedParts:
    """Full-batch DGI on ``graph`` (:func:`anograph.models.training.train_dgi`), then the readout and samples.

    ``progress(epoch, loss)``, when given, is called after every epoch.
    """
    adjacency, node_features = graph.adjacency, graph.node_features
    generator = torch.Generator().manual_seed(int(settings.seed))
    dgi, result = _train_full_batch(graph, settings, generator, progress)
    with torch.no_grad():
        propagated = torch.from_numpy(propagate(adjacency, node_features)).to(settings.device)
        embeddings = dgi(propagated)
        summary = readout(embeddings)
        corruption = RowShuffleCorruption(adjacency, node_features, propagated.device)
        separation = dgi.separation(propagated, corruption, summary, generator)
        embeddings = embeddings.cpu().numpy()
    bank, calibration = sample_nodes(len(node_features), settings)
    n_videos = len(graph.video_names)

    def rows(nodes: np.ndarray) -> NodeRows:
        groups = held_out_groups(nodes, graph.video_of_node[nodes], n_videos)
        return NodeRows(node_features[nodes], embeddings[nodes], groups)

    return TrainedParts(
        dgi=dgi,
        result=result,
        summary=summary,
        separation=separation,
        n_nodes=len(node_features),
        video_names=list(graph.video_names),
        bank_nodes=bank,
        bank=rows(bank),
        calibration_nodes=calibration,
        calibration=rows(calibration),
    )
