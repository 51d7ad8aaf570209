"""Deep Graph Infomax around a one-layer GCN: encoder, readout, discriminator and corruption.

The parts of the paper's model (Section 3, Eqs. 3-4, after Velickovic et al., DGI 2019),
composed as one :class:`torch.nn.Module` the way PyG's ``DeepGraphInfomax`` composes an
encoder, a summary and a corruption:

* Encoder ``H = PReLU(Â X W + b)`` (:class:`OneLayerGCN`), taking the propagated features
  ``Â X``. Training (:mod:`anograph.models.training`) computes ``Â (X W)`` instead, with a
  hand-written sparse backward; both orders give the same ``H``.
* Readout ``s = sigmoid(mean_i h_i)`` (Eq. 3, :func:`readout`).
* Discriminator logit ``h_i^T W s + c`` (:class:`BilinearDiscriminator`), computed as
  ``H (W s) + c``: one matrix-vector product instead of ``nn.Bilinear`` with ``s`` expanded
  to every node.
* Corruption: DGI's row shuffle of ``X`` (``X̃ = P X``), keeping ``Â``
  (:class:`RowShuffleCorruption`). The paper says it row-permutes only ``A``; for a
  one-layer encoder that is useless: ``(P Â) X W = P (Â X W)`` merely reorders the rows of
  ``H``, so every negative equals some positive, the readout is unchanged and the
  discriminator cannot separate the two sets (the loss stays at log 2). Shuffling ``X``
  instead pairs each node's real neighbourhood structure with foreign features, which is
  the corruption DGI's own code and PyG use.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sparse
import torch
from torch import nn

from anograph.models.training import torch_csr

# Corruption draws used to measure the trained discriminator's separation.
SEPARATION_DRAWS = 3


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


class RowShuffleCorruption:
    """``Â X̃`` for a fresh row shuffle ``X̃`` of ``X`` per call, drawn from the caller's generator.

    Parameters
    ----------
    adjacency, node_features:
        ``Â`` (scipy) and ``X`` ``(n, d)``.
    device:
        Where the result goes.
    use_scipy:
        Compute the product with scipy (faster than torch's sparse CSR product on the CPU)
        or with torch sparse CSR on ``device``. ``None`` (default): scipy exactly when
        ``device`` is the CPU. Neither needs autograd: ``X̃`` has no parameters.
    """

    def __init__(
        self,
        adjacency: sparse.spmatrix,
        node_features: np.ndarray,
        device: torch.device,
        use_scipy: bool | None = None,
    ) -> None:
        self.device = device
        self.use_scipy = device.type == "cpu" if use_scipy is None else bool(use_scipy)
        self.n_nodes = len(node_features)
        features = np.ascontiguousarray(node_features, np.float32)
        if self.use_scipy:
            self.adjacency: sparse.csr_matrix | torch.Tensor = sparse.csr_matrix(adjacency, dtype=np.float32)
            self.features: np.ndarray | torch.Tensor = features
        else:
            self.adjacency = torch_csr(adjacency, device)
            self.features = torch.from_numpy(features).to(device)

    def __call__(self, generator: torch.Generator) -> torch.Tensor:
        permutation = torch.randperm(self.n_nodes, generator=generator)
        if self.use_scipy:
            return torch.from_numpy(np.asarray(self.adjacency @ self.features[permutation.numpy()])).to(self.device)
        return self.adjacency @ self.features[permutation.to(self.device)]


class DeepGraphInfomax(nn.Module):
    """The one-layer GCN encoder and the bilinear discriminator of DGI, with the readout.

    Parameters
    ----------
    in_channels:
        Width of the (standardised, selected) node features.
    hidden_channels:
        Embedding size ``K'``.
    """

    def __init__(self, in_channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.encoder = OneLayerGCN(in_channels, hidden_channels)
        self.discriminator = BilinearDiscriminator(hidden_channels)

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Xavier-uniform weights drawn from ``generator`` (encoder first), zero encoder bias."""
        nn.init.xavier_uniform_(self.encoder.linear.weight, generator=generator)
        nn.init.zeros_(self.encoder.linear.bias)
        nn.init.xavier_uniform_(self.discriminator.weight, generator=generator)

    def forward(self, propagated_features: torch.Tensor) -> torch.Tensor:
        """Embeddings ``H`` from ``Â X``."""
        return self.encoder(propagated_features)

    @staticmethod
    def summary(embeddings: torch.Tensor) -> torch.Tensor:
        """The readout ``s`` (Eq. 3)."""
        return readout(embeddings)

    def discriminate(self, embeddings: torch.Tensor, summary: torch.Tensor) -> torch.Tensor:
        """One logit per row of ``embeddings``: positive means "drawn with ``summary``"."""
        return self.discriminator(embeddings, summary)

    def separation(
        self,
        propagated: torch.Tensor,
        corruption: RowShuffleCorruption,
        summary: torch.Tensor,
        generator: torch.Generator,
        n_draws: int = SEPARATION_DRAWS,
    ) -> float:
        """Balanced accuracy of the discriminator: clean nodes (logit > 0) vs ``n_draws`` corruptions (logit <= 0).

        ``propagated`` is ``Â X`` of the graph that ``corruption`` shuffles; 0.5 means no separation.
        """
        with torch.no_grad():
            positive_correct = (self.discriminate(self(propagated), summary) > 0).double().mean()
            negative_correct = torch.stack(
                [
                    (self.discriminate(self(corruption(generator)), summary) <= 0).double().mean()
                    for _ in range(n_draws)
                ]
            ).mean()
        return float((positive_correct + negative_correct) / 2)
