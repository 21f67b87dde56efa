"""Small typed building blocks of the funnel model (torchrec ``dlrm.py`` style).

Each module states the shapes it takes and returns; ``B`` is the batch size. The network that
assembles them is :class:`model.network.FunnelNet`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

__all__ = ["EmbeddingTables", "DenseArch", "MLP", "SharedBottom", "MMoE", "TaskHead", "logit"]


def logit(p: float) -> float:
    """log(p / (1 - p)) with p clamped to [1e-6, 1 - 1e-6]."""
    p = min(max(float(p), 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


class EmbeddingTables(nn.Module):
    """One embedding table per column, looked up side by side.

    Args:
        num_embeddings: rows per column (hashed buckets or vocabulary size), in input order.
        dim: embedding width ``D``.
        sparse: produce sparse gradients (for a lazy sparse optimizer such as SparseAdam).
        dropout: in training mode, each index is replaced by 0 (the ``unknown`` row) with this
            probability, independently per row and column (torch RNG); eval mode never drops.

    Call with ``indices``: ``B x T`` int64 (T = number of columns); returns ``B x T x D``.
    """

    def __init__(self, num_embeddings: Mapping[str, int], dim: int, sparse: bool = True,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.names = tuple(num_embeddings)
        self.dim = dim
        self.dropout = float(dropout)
        self.tables = nn.ModuleDict({
            name: nn.Embedding(int(n), dim, sparse=sparse) for name, n in num_embeddings.items()})
        for table in self.tables.values():
            nn.init.normal_(table.weight, std=0.05)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        if not self.names:
            return indices.new_zeros((indices.shape[0], 0, self.dim), dtype=torch.float32)
        if self.training and self.dropout > 0:
            dropped = torch.rand(indices.shape) < self.dropout
            indices = indices.masked_fill(dropped, 0)
        return torch.stack([self.tables[n](indices[:, i]) for i, n in enumerate(self.names)], 1)


class DenseArch(nn.Module):
    """Projects the dense features.

    Args:
        in_features: dense width ``F`` (standardized values and is-default indicators).
        out_features: projection width ``O``.

    Call with ``B x F`` float; returns ``B x O``.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, dense: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(dense))


class MLP(nn.Module):
    """Linear + ReLU (+ dropout) layers.

    Args:
        in_features: input width ``F``.
        widths: hidden widths; the output width is ``widths[-1]``.
        dropout: dropout probability after each layer.

    Call with ``B x F``; returns ``B x widths[-1]``.
    """

    def __init__(self, in_features: int, widths: Sequence[int], dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in widths:
            layers += [nn.Linear(in_features, width), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            in_features = width
        self.layers = nn.Sequential(*layers)
        self.out_features = in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    @property
    def last_linear(self) -> nn.Linear:
        return [m for m in self.layers if isinstance(m, nn.Linear)][-1]


class SharedBottom(nn.Module):
    """One trunk shared by every task.

    Args:
        in_features: input width ``F``.
        widths: trunk widths; ``H = widths[-1]``.
        tasks: task names.
        dropout: dropout after each layer.

    Call with ``B x F``; returns ``{task: B x H}`` (the same tensor for each task).
    """

    def __init__(self, in_features: int, widths: Sequence[int], tasks: Sequence[str],
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.trunk = MLP(in_features, widths, dropout)
        self.out_features = self.trunk.out_features

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.trunk(x)
        return {t: h for t in self.tasks}

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return [self.trunk.last_linear.weight]


class MMoE(nn.Module):
    """Multi-gate mixture of experts (Ma et al., 2018).

    Args:
        in_features: input width ``F``.
        widths: each expert's widths; ``H = widths[-1]``.
        num_experts: ``E`` experts.
        tasks: task names, one softmax gate each.
        dropout: dropout inside the experts.

    Call with ``B x F``; returns ``{task: B x H}``, each a gate-weighted sum of the ``E``
    expert outputs (``B x E x H``).
    """

    def __init__(self, in_features: int, widths: Sequence[int], num_experts: int,
                 tasks: Sequence[str], dropout: float = 0.0) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        self.experts = nn.ModuleList(MLP(in_features, widths, dropout) for _ in range(num_experts))
        self.gates = nn.ModuleDict({t: nn.Linear(in_features, num_experts) for t in self.tasks})
        self.out_features = self.experts[0].out_features

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        experts = torch.stack([e(x) for e in self.experts], 1)  # B x E x H
        out = {}
        for t in self.tasks:
            weights = torch.softmax(self.gates[t](x), dim=-1).unsqueeze(-1)  # B x E x 1
            out[t] = (weights * experts).sum(1)
        return out

    def last_shared_parameters(self) -> list[nn.Parameter]:
        return [e.last_linear.weight for e in self.experts]


class TaskHead(nn.Module):
    """One task's tower.

    Args:
        in_features: representation width ``H``.
        hidden: hidden width (0: a single linear layer).
        bias: initial output bias (the task's base-rate logit).

    Call with ``B x H``; returns ``B`` logits.
    """

    def __init__(self, in_features: int, hidden: int, bias: float = 0.0) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU()) if hidden else None
        self.out = nn.Linear(hidden or in_features, 1)
        with torch.no_grad():
            self.out.bias.fill_(bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.hidden is not None:
            h = self.hidden(h)
        return self.out(h).squeeze(-1)
