"""One full-batch DGI epoch with hand-written gradients, in buffers allocated once per training run.

Why not autograd: on a CPU most of an epoch that is not the two dense products with ``W``
went to *fresh* ``n x hidden`` tensors. Each one is a new ``mmap`` that the kernel must
fault in page by page, and autograd makes about a dozen per epoch (the gather of the
corrupted rows, every sparse product, PReLU and its backward); writing into a reused
tensor (``addmm(..., out=)``) avoids that (figures: ``docs/performance.md``). So this
module computes the loss and gradients that autograd computes for
:func:`anograph.models.training.encode` (as the batched path does), with every large intermediate
written into one of six ``n x hidden`` buffers of a :class:`DGIWorkspace`.

The model (``anograph.models.estimator``): ``H = PReLU_a(Â X Wᵀ + b)`` with one PReLU slope ``a``, the
corrupted ``H̃`` from the rows of ``X W`` shuffled by ``P``, the summary ``s = σ(mean H)``,
logits ``l = H (D s) + c`` and the loss ``(Σ softplus(-l) + Σ softplus(l̃)) / 2n``. With
``v = D s``:

* ``∂L/∂l = (σ(l) - 1) / 2n``, ``∂L/∂l̃ = σ(l̃) / 2n``, ``∂L/∂c = Σ ∂L/∂l + Σ ∂L/∂l̃``;
* ``∂L/∂v = Hᵀ ∂L/∂l + H̃ᵀ ∂L/∂l̃``, ``∂L/∂D = (∂L/∂v) sᵀ``, and through the summary
  ``∂L/∂mean = s (1 - s) ⊙ Dᵀ ∂L/∂v``, which reaches every row of ``H`` as ``/ n``;
* ``∂L/∂H = ∂L/∂l vᵀ + 1 (∂L/∂mean)ᵀ / n``, ``∂L/∂H̃ = ∂L/∂l̃ vᵀ``;
* PReLU: ``∂L/∂Y = ∂L/∂H ⊙ (1 if Y > 0 else a)``, ``∂L/∂a = Σ ∂L/∂H ⊙ min(Y, 0)``;
* ``∂L/∂b = Σ_rows (∂L/∂Y + ∂L/∂Ỹ)``, ``∂L/∂Z = Âᵀ ∂L/∂Y + Pᵀ Âᵀ ∂L/∂Ỹ`` and
  ``∂L/∂W = (∂L/∂Z)ᵀ X``.

``tests/test_training.py`` checks it against the textbook autograd formulation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from anograph.models.training import GraphBatch


class DGIWorkspace:
    """Six ``(n_nodes, hidden)`` float32 buffers, reused by every epoch of one training run.

    Memory: ``24 * n_nodes * hidden`` bytes (measured against autograd in ``docs/performance.md``).
    """

    def __init__(self, n_nodes: int, hidden: int, device: torch.device) -> None:
        def buffer() -> torch.Tensor:
            return torch.empty(n_nodes, hidden, device=device)

        # Forward: projected rows, their shuffle, pre-activations and embeddings of both branches.
        self.projected, self.shuffled = buffer(), buffer()
        self.pre_activation, self.corrupt_pre_activation = buffer(), buffer()
        self.embedding, self.corrupt_embedding = buffer(), buffer()
        self.zero_bias = torch.zeros(hidden, device=device)
        self.n_nodes, self.hidden, self.device = int(n_nodes), int(hidden), device

    def fits(self, n_nodes: int, hidden: int, device: torch.device) -> bool:
        return (self.n_nodes, self.hidden, self.device) == (int(n_nodes), int(hidden), device)


def _prelu(pre_activation: torch.Tensor, slope: float, out: torch.Tensor) -> torch.Tensor:
    """``PReLU_a`` into ``out`` in two passes: ``max(y, a y)`` for ``a <= 1``, ``min`` above."""
    torch.mul(pre_activation, slope, out=out)
    return torch.maximum(out, pre_activation, out=out) if slope <= 1 else torch.minimum(out, pre_activation, out=out)


def _prelu_backward(
    gradient: torch.Tensor, pre_activation: torch.Tensor, slope: float, scratch: torch.Tensor
) -> torch.Tensor:
    """``∂L/∂a`` of one branch; turns ``gradient`` (``∂L/∂H``) into ``∂L/∂Y`` in place."""
    torch.clamp(pre_activation, max=0, out=scratch)
    slope_gradient = torch.dot(gradient.view(-1), scratch.view(-1))
    torch.le(pre_activation, 0, out=scratch)  # 1.0 where the slope applies
    scratch.mul_(slope - 1).add_(1)
    gradient.mul_(scratch)
    return slope_gradient


def _accumulate(parameter: nn.Parameter, gradient: torch.Tensor) -> None:
    gradient = gradient.reshape(parameter.shape).to(parameter.dtype)
    if parameter.grad is None:
        parameter.grad = gradient.clone()
    else:
        parameter.grad.add_(gradient)


def dgi_epoch(
    batch: GraphBatch,
    encoder: nn.Module,
    discriminator: nn.Module,
    permutation: torch.Tensor,
    workspace: DGIWorkspace,
) -> float:
    """Full-batch DGI loss (BCE mean over ``n`` clean + ``n`` corrupted nodes); adds to ``.grad``.

    ``encoder`` is a one-layer GCN (``linear``, a single-slope ``activation``),
    ``discriminator`` a bilinear one (``weight``, ``bias``); ``permutation`` shuffles the
    rows for the corrupted branch. Nothing is recorded for autograd.
    """
    operator, features = batch.operator, batch.features
    linear, activation = encoder.linear, encoder.activation
    n = batch.n_nodes
    space = workspace
    with torch.no_grad():
        slope = float(activation.weight)
        weight = linear.weight.to(features.dtype)
        if features.dtype == torch.float32:
            torch.mm(features, weight.T, out=space.projected)
        else:  # bfloat16 product, float32 sparse products
            space.projected.copy_(features @ weight.T)
        torch.index_select(space.projected, 0, permutation, out=space.shuffled)
        torch.addmm(linear.bias, operator.forward_matrix, space.projected, out=space.pre_activation)
        torch.addmm(linear.bias, operator.forward_matrix, space.shuffled, out=space.corrupt_pre_activation)
        embedding = _prelu(space.pre_activation, slope, space.embedding)
        corrupt = _prelu(space.corrupt_pre_activation, slope, space.corrupt_embedding)

        summary = torch.sigmoid(embedding.mean(dim=0))
        direction = discriminator.weight @ summary
        bias = discriminator.bias
        logits = torch.mv(embedding, direction) + bias
        corrupt_logits = torch.mv(corrupt, direction) + bias
        loss = (nn.functional.softplus(-logits).sum() + nn.functional.softplus(corrupt_logits).sum()) / (2 * n)

        logit_gradient = (torch.sigmoid(logits) - 1) / (2 * n)
        corrupt_logit_gradient = torch.sigmoid(corrupt_logits) / (2 * n)
        direction_gradient = torch.mv(embedding.T, logit_gradient) + torch.mv(corrupt.T, corrupt_logit_gradient)
        mean_gradient = summary * (1 - summary) * (discriminator.weight.T @ direction_gradient)
        _accumulate(discriminator.weight, torch.outer(direction_gradient, summary))
        _accumulate(discriminator.bias, logit_gradient.sum() + corrupt_logit_gradient.sum())

        # ∂L/∂H overwrites H, whose last use was ∂L/∂v; projected and shuffled serve as scratch.
        gradient = torch.outer(logit_gradient, direction, out=space.embedding).add_(mean_gradient / n)
        corrupt_gradient = torch.outer(corrupt_logit_gradient, direction, out=space.corrupt_embedding)
        slope_gradient = _prelu_backward(gradient, space.pre_activation, slope, space.projected)
        slope_gradient += _prelu_backward(corrupt_gradient, space.corrupt_pre_activation, slope, space.shuffled)
        _accumulate(activation.weight, slope_gradient)
        _accumulate(linear.bias, gradient.sum(dim=0) + corrupt_gradient.sum(dim=0))

        projected_gradient = torch.addmm(
            space.zero_bias, operator.transpose_matrix, gradient, beta=0, out=space.projected
        )
        shuffled_gradient = torch.addmm(
            space.zero_bias, operator.transpose_matrix, corrupt_gradient, beta=0, out=space.shuffled
        )
        projected_gradient.index_add_(0, permutation, shuffled_gradient)  # Pᵀ: back to the original rows
        if features.dtype == torch.float32:
            weight_gradient = torch.mm(projected_gradient.T, features)
        else:
            weight_gradient = projected_gradient.T.to(features.dtype) @ features
        _accumulate(linear.weight, weight_gradient)
    return float(loss)
