"""Fast Deep Graph Infomax training of the one-layer GCN, full-batch or in bounded memory.

The encoder is ``H = PReLU(Â X W + b)``. The two dense products with ``W`` dominate
the time, so this module

* multiplies by ``W`` first: ``Z = X W`` is one dense product per epoch, shared by the clean
  and the corrupted branch, since the corruption ``X̃ = P X`` (a row shuffle) gives
  ``X̃ W = P Z``; ``Â Z`` and ``Â (P Z)`` are then sparse products on the ``hidden``-wide
  ``Z`` instead of the input-wide ``X``;
* writes the sparse product's backward itself (``Âᵀ G``, with ``Âᵀ`` stored once), because
  autograd would transpose (and sort) the CSR matrix on every step;
* computes a full-batch epoch without autograd (:mod:`anograph.models.fused_epoch`): hand-written
  gradients into buffers allocated once per run, since fresh ``n x hidden`` tensors cost
  more in page faults than the sparse products themselves (the batched path below still
  uses autograd, with the hand-written sparse backward);
* can run the dense products in bfloat16 (``precision="bfloat16"``: ``X`` stored in bf16,
  ``W`` cast per step, fp32 accumulation and fp32 master weights; sparse products stay in
  fp32, which torch's CPU CSR kernels require anyway).

**Bounded memory** (:func:`train_dgi_batched`). The training graph is block-diagonal over
videos, so a batch of whole videos holds every 1-hop neighbourhood of its nodes: ``Â X``
restricted to a batch is exact. The readout ``s = sigmoid(mean_i h_i)`` is the mean over
*all* nodes, streamed over the batches, and the gradient is the exact full-graph gradient,
in three passes per epoch: (1) the mean embedding, without gradients; (2) each batch's
share of the loss with ``s`` held as a leaf, which accumulates the parameters' gradients
and ``dL/ds``; (3) the path through the readout, ``dL/dmean = s (1 - s) dL/ds``, pushed back
through each batch's embeddings. One Adam step per epoch, as full-batch training. The only
difference from full-batch training is the corruption: each batch shuffles its own rows.
So the batches bound the memory, not the optimisation; an epoch has 5 dense products
with ``W`` instead of 2.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sparse
import torch
from torch import nn

from anograph.devices import DEVICES_HELP, resolve_device  # noqa: F401 - re-exported for the estimator
from anograph.errors import InputError
from anograph.models.fused_epoch import DGIWorkspace, dgi_epoch

PRECISIONS = ("float32", "bfloat16")


def resolve_precision(precision: str) -> torch.dtype:
    """The dtype of the dense products: ``"float32"`` or ``"bfloat16"``."""
    if precision not in PRECISIONS:
        raise InputError(None, f"precision must be one of {PRECISIONS}, not {precision!r}")
    return torch.float32 if precision == "float32" else torch.bfloat16


def torch_csr(matrix: sparse.spmatrix, device: torch.device) -> torch.Tensor:
    """``matrix`` as a float32 torch sparse CSR tensor on ``device`` (duplicates summed, columns sorted)."""
    csr = sparse.csr_matrix(matrix, dtype=np.float32, copy=True)
    csr.sum_duplicates()  # also sorts the column indices, as torch's CSR requires
    with warnings.catch_warnings():  # "sparse CSR support is in beta": noise for a plain product
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.astype(np.int64)),
            torch.from_numpy(csr.indices.astype(np.int64)),
            torch.from_numpy(csr.data),
            size=csr.shape,
            check_invariants=False,  # scipy built it; sum_duplicates sorted it
        ).to(device)


class SparseOperator:
    """``Â`` and ``Âᵀ`` as torch CSR (float32) on a device, for :func:`sparse_propagate`."""

    def __init__(self, adjacency: sparse.spmatrix, device: torch.device) -> None:
        self.forward_matrix = torch_csr(adjacency, device)
        self.transpose_matrix = torch_csr(sparse.csr_matrix(adjacency).T, device)
        self.n_nodes = int(adjacency.shape[0])


class _Propagate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, dense: torch.Tensor, operator: SparseOperator) -> torch.Tensor:  # type: ignore[override]
        ctx.operator = operator
        return operator.forward_matrix @ dense

    @staticmethod
    def backward(ctx, gradient: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return ctx.operator.transpose_matrix @ gradient.contiguous(), None


def sparse_propagate(operator: SparseOperator, dense: torch.Tensor) -> torch.Tensor:
    """``Â @ dense`` (float32) with the backward ``Âᵀ @ gradient`` from the stored transpose."""
    return _Propagate.apply(dense.float().contiguous(), operator)


def project(features: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    """``X W`` (no bias) in the dtype of ``features``: the only product at the input width."""
    return features @ linear.weight.to(features.dtype).T


def encode(
    operator: SparseOperator,
    features: torch.Tensor,
    linear: nn.Linear,
    activation: nn.Module,
    permutation: torch.Tensor | None = None,
    projected: torch.Tensor | None = None,
) -> torch.Tensor:
    """``PReLU(Â (P X) W + b)``: ``X W`` first, in the dtype of ``features``; ``P`` = ``permutation``.

    ``projected``, when given, is :func:`project` ``(features, linear)`` computed once and
    shared by the clean and the corrupted branch: a row shuffle of ``X`` is the same row
    shuffle of ``X W``, so an epoch needs one forward and one backward product at the
    input width instead of two each.
    """
    if projected is None:
        projected = project(features, linear)
    if permutation is not None:
        projected = projected[permutation]
    return activation(sparse_propagate(operator, projected) + linear.bias)


def embed(
    adjacency: sparse.spmatrix, features: np.ndarray, encoder: nn.Module, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Inference ``PReLU(Â (X W) + b)`` (float32 result): ``X W`` in ``dtype``, then one sparse product.

    Multiplying by ``W`` first makes the sparse product ``hidden`` wide instead of input wide.
    """
    with torch.no_grad():
        inputs = torch.from_numpy(np.ascontiguousarray(features, np.float32)).to(device=device, dtype=dtype)
        projected = project(inputs, encoder.linear).float()
        return encoder.activation(torch_csr(adjacency, device) @ projected + encoder.linear.bias)


@dataclass
class GraphBatch:
    """One batch of whole videos: its adjacency operator and its node features on the device."""

    operator: SparseOperator
    features: torch.Tensor

    @property
    def n_nodes(self) -> int:
        return self.operator.n_nodes


def make_batch(
    adjacency: sparse.spmatrix, node_features: np.ndarray, device: torch.device, dtype: torch.dtype
) -> GraphBatch:
    """A :class:`GraphBatch` from a scipy adjacency and ``(n, d)`` features (cast to ``dtype``)."""
    features = torch.from_numpy(np.ascontiguousarray(node_features, np.float32)).to(device=device, dtype=dtype)
    return GraphBatch(SparseOperator(adjacency, device), features)


def _bce_sum(discriminator: nn.Module, positive: torch.Tensor, negative: torch.Tensor, summary: torch.Tensor):
    logits = torch.cat([discriminator(positive, summary), discriminator(negative, summary)])
    labels = torch.cat([torch.ones(len(positive)), torch.zeros(len(negative))]).to(logits.device)
    return nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="sum")


def dgi_loss_and_gradients(
    batch: GraphBatch,
    encoder: nn.Module,
    discriminator: nn.Module,
    permutation: torch.Tensor,
    workspace: DGIWorkspace | None = None,
) -> float:
    """Full-batch DGI loss (BCE mean over ``N`` clean + ``N`` corrupted nodes); fills ``.grad``.

    Hand-written gradients in reused buffers (:mod:`anograph.models.fused_epoch`); pass the same
    ``workspace`` to every epoch of a run, or one is allocated for this call.
    """
    hidden = encoder.linear.out_features
    device = batch.features.device
    if workspace is None or not workspace.fits(batch.n_nodes, hidden, device):
        workspace = DGIWorkspace(batch.n_nodes, hidden, device)
    return dgi_epoch(batch, encoder, discriminator, permutation.to(device), workspace)


def batched_dgi_loss_and_gradients(
    load_batch: Callable[[int], GraphBatch],
    n_batches: int,
    encoder: nn.Module,
    discriminator: nn.Module,
    permutations: Sequence[torch.Tensor],
) -> float:
    """The same loss and exact gradients over the union of batches, one batch in memory at a time.

    ``permutations[b]`` shuffles the rows of batch ``b`` (see the module docstring).
    """
    linear, activation = encoder.linear, encoder.activation
    with torch.no_grad():  # pass 1: the readout's mean over every node
        total, n_nodes = None, 0
        for index in range(n_batches):
            batch = load_batch(index)
            embedded = encode(batch.operator, batch.features, linear, activation).sum(dim=0)
            total = embedded if total is None else total + embedded
            n_nodes += batch.n_nodes
    if total is None or n_nodes == 0:
        raise InputError(None, "the training graph has no nodes")
    summary = torch.sigmoid(total / n_nodes).requires_grad_()
    loss_value = 0.0
    for index in range(n_batches):  # pass 2: the loss with the summary as a leaf
        batch = load_batch(index)
        projected = project(batch.features, linear)
        positive = encode(batch.operator, batch.features, linear, activation, projected=projected)
        permutation = permutations[index].to(batch.features.device)
        negative = encode(batch.operator, batch.features, linear, activation, permutation, projected)
        loss = _bce_sum(discriminator, positive, negative, summary) / (2 * n_nodes)
        loss.backward()
        loss_value += float(loss.detach())
    assert summary.grad is not None
    mean_gradient = (summary.grad * summary * (1 - summary)).detach() / n_nodes
    for index in range(n_batches):  # pass 3: the path through the readout
        batch = load_batch(index)
        positive = encode(batch.operator, batch.features, linear, activation)
        (positive.sum(dim=0) @ mean_gradient).backward()
    return loss_value


def _snapshot(modules: Sequence[nn.Module]) -> list[dict[str, torch.Tensor]]:
    return [{name: value.detach().clone() for name, value in module.state_dict().items()} for module in modules]


@dataclass
class TrainingResult:
    """Loss per epoch and the epoch whose parameters were kept (the lowest loss)."""

    history: list[float]
    best_epoch: int


def optimise(
    epoch_gradients: Callable[[int], float],
    encoder: nn.Module,
    discriminator: nn.Module,
    learning_rate: float,
    max_epochs: int,
    patience: int,
    progress: Callable[[int, float], None] | None = None,
) -> TrainingResult:
    """Adam with early stopping on the training loss; keeps the parameters of the best epoch.

    ``epoch_gradients(epoch)`` computes the loss at the current parameters and fills their
    ``.grad``; the parameters that produced the lowest loss are restored at the end.
    """
    modules = [encoder, discriminator]
    parameters = [parameter for module in modules for parameter in module.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=float(learning_rate))
    history: list[float] = []
    best_loss, best_epoch, waited = float("inf"), 0, 0
    best_state = _snapshot(modules)
    for epoch in range(int(max_epochs)):
        optimizer.zero_grad()
        value = epoch_gradients(epoch)
        history.append(value)
        if progress is not None:
            progress(epoch, value)
        if value < best_loss:
            best_loss, best_epoch, waited = value, epoch, 0
            best_state = _snapshot(modules)  # the parameters that produced this loss
        else:
            waited += 1
            if waited >= int(patience):
                break
        optimizer.step()
    for module, state in zip(modules, best_state, strict=True):
        module.load_state_dict(state)
        module.eval()
    return TrainingResult(history=history, best_epoch=best_epoch)


def train_dgi(
    batch: GraphBatch,
    encoder: nn.Module,
    discriminator: nn.Module,
    generator: torch.Generator,
    learning_rate: float,
    max_epochs: int,
    patience: int,
    progress: Callable[[int, float], None] | None = None,
) -> TrainingResult:
    """Full-batch DGI: one fresh row shuffle per epoch (drawn on the CPU from ``generator``)."""
    device = batch.features.device
    workspace = DGIWorkspace(batch.n_nodes, encoder.linear.out_features, device)

    def epoch_gradients(epoch: int) -> float:
        permutation = torch.randperm(batch.n_nodes, generator=generator).to(device)
        return dgi_loss_and_gradients(batch, encoder, discriminator, permutation, workspace)

    return optimise(epoch_gradients, encoder, discriminator, learning_rate, max_epochs, patience, progress)


def train_dgi_batched(
    load_batch: Callable[[int], GraphBatch],
    batch_sizes: Sequence[int],
    encoder: nn.Module,
    discriminator: nn.Module,
    generator: torch.Generator,
    learning_rate: float,
    max_epochs: int,
    patience: int,
    progress: Callable[[int, float], None] | None = None,
) -> TrainingResult:
    """DGI with one batch of whole videos in memory at a time (see the module docstring).

    ``load_batch(b)`` returns batch ``b`` (it may read it from disk each time);
    ``batch_sizes[b]`` is its node count, used to draw its row shuffle.
    """

    def epoch_gradients(epoch: int) -> float:
        permutations = [torch.randperm(int(size), generator=generator) for size in batch_sizes]
        return batched_dgi_loss_and_gradients(
            load_batch,
            len(batch_sizes),
            encoder,
            discriminator,
            permutations,
        )

    return optimise(epoch_gradients, encoder, discriminator, learning_rate, max_epochs, patience, progress)
