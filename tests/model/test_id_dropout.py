"""``model.id_dropout``: ids fall back to the ``unknown`` row in training only, reproducibly."""

from __future__ import annotations

import pytest
import torch

from model.config import ConfigError, config_from_dict
from model.job import run_training
from model.modules import EmbeddingTables
from model.synthetic import synthetic_training_set
from tests.model.conftest import tiny_config

DROP = {"model": {"id_dropout": 0.5}, "optim": {"epochs": 2}, "run": {"checkpoint_every": 5}}


def _tables(p: float) -> tuple[EmbeddingTables, torch.Tensor]:
    torch.manual_seed(0)
    tables = EmbeddingTables({"user_id": 50, "item_id": 20}, 4, sparse=True, dropout=p)
    indices = torch.randint(1, 20, (4000, 2))
    return tables, indices


def test_id_dropout_replaces_rows_by_unknown_in_training_only():
    tables, indices = _tables(0.3)
    exact = torch.stack([tables.tables["user_id"](indices[:, 0]),
                         tables.tables["item_id"](indices[:, 1])], 1)
    tables.eval()
    assert torch.equal(tables(indices), exact)  # eval: never dropped
    tables.train()
    out = tables(indices)
    unknown = torch.stack([tables.tables[n].weight[0] for n in ("user_id", "item_id")])
    dropped = (out == unknown.unsqueeze(0)).all(-1)  # B x 2: the row is the unknown row
    kept = (out == exact).all(-1)
    assert bool((dropped | kept).all())
    assert 0.27 < dropped.float().mean().item() < 0.33  # 8000 draws at p = 0.3
    off, _ = _tables(0.0)
    off.train()
    assert torch.equal(off(indices), exact)


def test_id_dropout_is_deterministic_under_the_seed():
    tables, indices = _tables(0.5)
    torch.manual_seed(1)
    a = tables(indices)
    torch.manual_seed(1)
    b = tables(indices)
    torch.manual_seed(2)
    c = tables(indices)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_id_dropout_out_of_range_is_refused():
    with pytest.raises(ConfigError, match=r"model.id_dropout .* found 1.0"):
        config_from_dict({"model": {"id_dropout": 1.0}})


def test_an_id_table_of_one_bucket_is_refused():
    with pytest.raises(ConfigError, match=r"model.id_buckets .* found \{'user_id': 1\}"):
        config_from_dict({"model": {"id_buckets": {"user_id": 1, "item_id": 2}}})


class _Interrupt(Exception):
    pass


def _interrupt_at(step: int):
    def on_step(stats):
        if stats.step == step:
            raise _Interrupt
    return on_step


def test_training_with_id_dropout_changes_weights_and_resumes_bit_identically(tmp_path):
    data = synthetic_training_set(3000, seed=3, ids=1000, days=20)
    straight = run_training(data, tmp_path / "straight", tiny_config(**DROP))
    again = run_training(data, tmp_path / "again", tiny_config(**DROP))
    without = run_training(data, tmp_path / "without",
                           tiny_config(**{**DROP, "model": {"id_dropout": 0.0}}))
    assert straight.status == again.status == without.status == "pass"
    with pytest.raises(_Interrupt):
        run_training(data, tmp_path / "cut", tiny_config(**DROP), on_step=_interrupt_at(12))
    resumed = run_training(data, tmp_path / "cut", tiny_config(**DROP))
    assert resumed.status == "pass" and "resumed from step 10" in resumed.findings[0].message

    def weights(name):
        return torch.load(tmp_path / name / "weights.pt", weights_only=True)

    a, b, c, d = (weights(n) for n in ("straight", "again", "without", "cut"))
    for name in a:
        assert torch.equal(a[name], b[name]), name  # same seed, same draws
        assert torch.equal(a[name], d[name]), name  # resumed after a crash at step 12
    assert not torch.equal(a["id_embeddings.tables.user_id.weight"],
                           c["id_embeddings.tables.user_id.weight"])
