"""A corrupt model directory is bad input (exit 2), naming the file and what is wrong with it.

Truncated or foreign weights, an invalid or missing manifest, encoder or config, through the
commands that load a model (``evaluate``, ``explain``, ``replay``) and through
:func:`model.artifacts.load_model` itself. The exit-code table is docs/operations.md's; the
database rows of it are test_exit_codes.py's.
"""

from __future__ import annotations

import shutil

import pytest

from funnelguard.errors import EXIT_INPUT
from tests.reliability.pg_standins import assert_clean


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A real (untrained) model directory of the packaged project's features."""
    import torch

    from model.artifacts import build_net, save_model
    from model.encoding import FeatureEncoder
    from model.synthetic import synthetic_training_set
    from tests.model.conftest import tiny_config

    synth = synthetic_training_set(1500, seed=0, ids=300, days=10)
    cfg = tiny_config()
    enc = FeatureEncoder.fit(synth.frame, cfg.model.id_buckets, synth.features)
    torch.manual_seed(0)
    net = build_net(cfg, enc, {"click": 0.05, "application": 0.02, "conversion": 0.005,
                               "approval": 0.003})
    return save_model(tmp_path_factory.mktemp("model") / "m", net, enc, cfg,
                      base_rates={"click": 0.05}, as_of="2026-10-25")


@pytest.fixture
def broken_model(model_dir, tmp_path):
    """A copy of the model directory; corrupt it in the test."""
    copy = tmp_path / "broken"
    shutil.copytree(model_dir, copy)
    return copy


@pytest.fixture(scope="module")
def small_warehouse(warehouse):
    """A small simulated warehouse of the packaged project, and one key of its served rows."""
    import sqlalchemy as sa

    url = warehouse(days=3, per_day=200)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        key, day = conn.execute(sa.text(
            "SELECT impression_id, ds FROM serving_log ORDER BY impression_id LIMIT 1")).one()
    engine.dispose()
    return url, str(key), str(day)[:10]


def test_truncated_weights_on_evaluate(run_cli, broken_model, small_warehouse):
    weights = broken_model / "weights.pt"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code, result = run_cli("evaluate", "--model", broken_model, "--as-of", "2026-10-04",
                           "--warehouse", small_warehouse[0])
    assert code == EXIT_INPUT
    message = result.error.message
    assert message.startswith(f"{weights}: expected the network's state_dict written by "
                              "torch.save")
    assert "does not load" in message and "bytes" in message
    assert_clean(message)


def test_invalid_model_json_on_explain(run_cli, broken_model, small_warehouse):
    url, key, _ = small_warehouse
    (broken_model / "model.json").write_text('{"format": "funnelguard-model/1",\n  "tasks": [')
    code, result = run_cli("explain", key, "--model", broken_model, "--warehouse", url)
    assert code == EXIT_INPUT, result.error
    assert result.error.message.startswith(
        f"{broken_model / 'model.json'}:2:13: expected the model manifest as JSON, found "
        "invalid JSON (Expecting value) in a file of 46 bytes")


def test_missing_encoder_on_replay(run_cli, broken_model, small_warehouse):
    url, _, day = small_warehouse
    (broken_model / "encoder.json").unlink()
    code, result = run_cli("replay", "--date", day, "--model", broken_model, "--warehouse", url)
    assert code == EXIT_INPUT, result.error
    assert result.error.message == (
        f"model directory {broken_model}: expected files ['model.json', 'config.json', "
        f"'weights.pt', 'encoder.json', 'training_set.json'], missing ['encoder.json']")


@pytest.mark.parametrize(("file", "damage", "expected"), [
    ("weights.pt", b"", "weights.pt: expected the network's state_dict written by torch.save"),
    ("weights.pt", b"not a zip", "found a file that does not load (9 bytes;"),
    ("encoder.json", b"", "encoder.json:1:1: expected the feature encoder as JSON, found an "
                          "empty file"),
    ("encoder.json", b'{"vocabularies": {}, "dense": []}',
     "encoder.json: expected the feature encoder (id_buckets, vocabularies, dense, features), "
     "found missing key 'id_buckets'"),
    ("encoder.json", b"\xff\xfe\x00garbage", "encoder.json: expected the feature encoder as "
                                             "JSON text, found bytes that are not UTF-8"),
    ("config.json", b"[1, 2]", "config.json: expected the training config (a JSON object), "
                               "found a JSON list"),
    ("config.json", b'{"optim": {"learning_rate": 0.1}}', "config.json: unknown key(s)"),
    ("model.json", b'{"format": "funnelguard-model/0"}',
     "model.json: expected format 'funnelguard-model/1', found 'funnelguard-model/0'"),
])
def test_each_damaged_file_is_named(file, damage, expected, broken_model):
    from model.artifacts import load_model
    from model.errors import ModelDirError

    (broken_model / file).write_bytes(damage)
    with pytest.raises(ModelDirError) as caught:
        load_model(broken_model)
    assert expected in str(caught.value)
    assert str(broken_model / file) in str(caught.value)
    assert_clean(str(caught.value))


def test_weights_of_another_network_are_named(broken_model, tmp_path):
    import torch

    from model.artifacts import load_model
    from model.errors import ModelDirError

    state = torch.load(broken_model / "weights.pt", weights_only=True)
    name = next(iter(state))
    state[name] = torch.zeros(3, 3, 3)
    torch.save(state, broken_model / "weights.pt")
    with pytest.raises(ModelDirError, match=r"weights.pt: weights do not match config.json and "
                                            r"encoder.json: RuntimeError: .*size mismatch"):
        load_model(broken_model)
