"""The multi-task funnel network: embeddings and dense features, a shared trunk, task heads.

``FunnelNet(batch)`` returns ``{task: B logits}`` in fp32 for every configured task. With
``esmm`` the heads model conditional probabilities along the funnel (p(application | click), ...)
and the returned logit is that of the chained, unconditional probability, computed in log space
(``log p_t = sum of logsigmoid`` over the chain, then ``logit = log p - log(1 - p)``) so that
no product of small probabilities underflows and every loss still starts from a logit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from model.config import ModelConfig
from model.encoding import FeatureBatch
from model.modules import DenseArch, EmbeddingTables, MMoE, SharedBottom, TaskHead, logit

__all__ = ["FunnelNet", "log1mexp", "chain_logits"]


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for ``x < 0``, accurate at both ends (Mächler, 2012)."""
    x = x.clamp(max=-1e-7)
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def chain_logits(conditional: Mapping[str, torch.Tensor], order: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """ESMM chaining in fp32 log space.

    Args:
        conditional: per task ``B`` logits of p(task | previous task) (the first: unconditional).
        order: the funnel order.

    Returns:
        per task ``B`` logits of the unconditional probability.
    """
    out, log_p = {}, None
    for task in order:
        step = torch.nn.functional.logsigmoid(conditional[task].float())
        log_p = step if log_p is None else log_p + step
        out[task] = log_p - log1mexp(log_p)
    return out


class FunnelNet(nn.Module):
    """Embeddings + dense projection -> shared bottom or MMoE -> one head per task.

    Args:
        config: the model section of the training config; its ``tasks`` are the heads (a
            config not bound to a project names none: the tasks of ``base_rates``, in order).
        id_buckets: rows of each hashed id table.
        vocab_sizes: rows of each categorical table.
        dense_width: ``F`` dense input columns.
        base_rates: per task, the training positive rate (initialises the output biases).
        sparse: sparse embedding gradients.

    Call with a :class:`~model.encoding.FeatureBatch` (``ids: B x I``, ``cats: B x C``,
    ``dense: B x F``); returns ``{task: B}`` fp32 logits.
    """

    def __init__(self, config: ModelConfig, id_buckets: Mapping[str, int],
                 vocab_sizes: Mapping[str, int], dense_width: int,
                 base_rates: Mapping[str, float], sparse: bool = True) -> None:
        super().__init__()
        self.tasks = tuple(config.tasks) or tuple(base_rates)
        if not self.tasks:
            from model.errors import ConfigError

            raise ConfigError("model.tasks: expected the stages to train (bind the config to a "
                              "project, or pass base rates per task), found none")
        self.esmm = config.esmm
        dim = config.embedding_dim
        self.id_embeddings = EmbeddingTables(id_buckets, dim, sparse, config.id_dropout)
        self.cat_embeddings = EmbeddingTables(vocab_sizes, dim, sparse)
        self.dense_arch = DenseArch(dense_width, config.dense_dim)
        width = dim * (len(id_buckets) + len(vocab_sizes)) + config.dense_dim
        if config.architecture == "mmoe":
            self.bottom: SharedBottom | MMoE = MMoE(width, config.trunk, config.num_experts,
                                                    self.tasks, config.dropout)
        else:
            self.bottom = SharedBottom(width, config.trunk, self.tasks, config.dropout)
        biases = self._initial_biases(base_rates)
        self.heads = nn.ModuleDict({
            t: TaskHead(self.bottom.out_features, config.head_hidden, biases[t]) for t in self.tasks})

    def _initial_biases(self, base_rates: Mapping[str, float]) -> dict[str, float]:
        rates = {t: min(max(float(base_rates.get(t, 0.5)), 1e-6), 1 - 1e-6) for t in self.tasks}
        if not self.esmm:
            return {t: logit(rates[t]) for t in self.tasks}
        out, previous = {}, None
        for t in self.tasks:
            out[t] = logit(rates[t] if previous is None else min(rates[t] / previous, 1 - 1e-6))
            previous = rates[t]
        return out

    def head_logits(self, batch: FeatureBatch) -> dict[str, torch.Tensor]:
        """Each head's own ``B`` logits (ESMM: of the conditional probability, unchained)."""
        ids = self.id_embeddings(batch.ids)  # B x I x D
        cats = self.cat_embeddings(batch.cats)  # B x C x D
        dense = self.dense_arch(batch.dense)  # B x O
        x = torch.cat([ids.flatten(1), cats.flatten(1), dense], dim=1)
        reps = self.bottom(x)
        return {t: self.heads[t](reps[t]) for t in self.tasks}

    def forward(self, batch: FeatureBatch) -> dict[str, torch.Tensor]:
        logits = self.head_logits(batch)
        if self.esmm:
            return chain_logits(logits, self.tasks)
        return {t: v.float() for t, v in logits.items()}

    def embedding_tables(self) -> dict[str, nn.Embedding]:
        return {**dict(self.id_embeddings.tables.items()), **dict(self.cat_embeddings.tables.items())}

    def last_shared_parameters(self) -> list[nn.Parameter]:
        """The last shared layer's weights: where the per-task gradient probe looks."""
        return self.bottom.last_shared_parameters()
