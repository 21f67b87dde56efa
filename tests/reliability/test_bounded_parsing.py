"""Bounded parsing: every configuration file funnelguard reads is refused past its limits.

Contracts (``contracts lint``), project files (``validate --project``), training configs
(``train --config``) and thresholds files (``evaluate --thresholds``) are all read by
:mod:`contracts.yaml_lines` (docs/contracts.md "Limits"). Each hostile file below — alias bombs
of 3 to 10 levels, a merge-key bomb, an alias cycle, a 60 MB file, deep nesting, too many keys,
binary garbage, another encoding, a Python tag, duplicate keys, broken JSON — must give exit 2,
a message naming the file (and what was expected and found), and no traceback. The commands
run in-process under a deadline (a hang fails the test instead of stalling the suite); two of
them also run as the real ``funnelguard`` program in a subprocess with a timeout.
"""

from __future__ import annotations

import json
import math
import random
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from contracts.yaml_lines import LIMITS, YamlInputError, YamlLimits, load_yaml_with_lines

ROOT = Path(__file__).resolve().parents[2]
PACKAGED_PROJECT = ROOT / "contracts" / "funnelguard.yaml"
DEADLINE_S = 60  # generous: each refusal is expected to take milliseconds
HUGE_BYTES = 60 * 1024 * 1024


# -- hostile files ------------------------------------------------------------------------------


def alias_bomb(depth: int) -> str:
    """A billion-laughs document: ``depth`` levels, each listing the previous one ``fanout``
    times, so the expansion passes the expanded-node limit at every depth."""
    fanout = max(3, math.ceil((LIMITS.max_expanded_nodes * 1.2) ** (1 / depth)) + 1)
    lines = ["x0: &x0 [" + ", ".join(["lol"] * fanout) + "]"]
    for level in range(1, depth + 1):
        lines.append(f"x{level}: &x{level} [" + ", ".join([f"*x{level - 1}"] * fanout) + "]")
    lines.append(f"description: {{purpose: *x{depth}}}")
    return "\n".join(lines) + "\n"


def merge_bomb() -> str:
    lines = ["m0: &m0 {a: 1, b: 2}"]
    lines += [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: {i}}}" for i in range(1, 25)]
    return "\n".join(lines) + "\n"


def deep_block(levels: int = 100) -> str:
    return "".join("  " * i + f"k{i}:\n" for i in range(levels)) + "  " * levels + "leaf\n"


def many_keys(count: int = 60_000) -> str:
    return "".join(f"key_{i}: {i}\n" for i in range(count))


def garbage() -> bytes:
    return random.Random(15).randbytes(4096)


# (id, suffix, content, expected message regex). Content is text (written as UTF-8), bytes, or
# None for the 60 MB file (written once per module).
COMMON: list[tuple[str, str, str | bytes | None, str]] = [
    ("alias_bomb_10", ".yaml", alias_bomb(10), r"alias"),
    ("merge_key_bomb", ".yaml", merge_bomb(), r"nodes with aliases expanded"),
    ("alias_cycle", ".yaml", "a: &a [1, *a]\n", r"cycle"),
    ("huge_60mb", ".yaml", None, r"at most 1048576 bytes.*found 62914560 bytes"),
    ("deep_block_nesting", ".yaml", deep_block(), r"nested at most 64 deep"),
    ("deep_flow_nesting", ".yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n",
     r"nested at most 64 deep"),
    ("many_keys", ".yaml", many_keys(), r"at most 50000 YAML nodes"),
    ("binary_garbage", ".yaml", garbage(), r"expected UTF-8 text|not valid YAML"),
    ("latin1_encoding", ".yaml", "name: caf\u00e9\n".encode("latin-1"),
     r"expected UTF-8 text, found byte 0xe9"),
    ("utf16_encoding", ".yaml", "name: x\n".encode("utf-16"), r"found UTF-16"),
    ("nul_character", ".yaml", "name: a\x00b\n", r"not valid YAML"),
    ("python_tag", ".yaml", "x: !!python/object/apply:os.system ['echo owned']\n",
     r"found tag `!!python/object/apply:os.system`"),
    ("binary_tag", ".yaml", "x: !!binary aGVsbG8=\n", r"found tag `!!binary`"),
    ("list_as_key", ".yaml", "? [a, b]\n: 1\n", r"expected a plain key"),
    ("not_yaml", ".yaml", "a: b: c\n", r"not valid YAML"),
]
# Per target: a document with a duplicated key, otherwise as that file would be.
DUPLICATES = {
    "contracts lint": "apiVersion: v3.1.0\nkind: DataContract\nkind: DataContract\n",
    "validate --project": "name: a\nname: b\ncontracts: {}\n",
    "train --config": "optim:\n  lr: 0.01\n  lr: 0.02\n",
    "evaluate --thresholds": "evaluation:\n  oracle_gap: 0.01\n  oracle_gap: 0.02\n",
}
JSON_CASES: list[tuple[str, str, str | bytes | None, str]] = [
    ("json_deep_nesting", ".json", "[" * 10_000 + "]" * 10_000, r"nested at most 64 deep"),
    ("json_duplicate_key", ".json", '{"optim": {"lr": 0.1, "lr": 0.2}}',
     r"key `lr` appears twice"),
    ("json_broken", ".json", '{"optim": {"lr": 0.1,}}', r"not valid JSON"),
    ("json_huge_60mb", ".json", None, r"at most 1048576 bytes"),
]


# -- running a command under a deadline ---------------------------------------------------------


class Hung(BaseException):
    """Raised by the deadline; a BaseException so no ``except Exception`` can swallow it."""


@pytest.fixture
def deadline():
    def _alarm(signum, frame):
        raise Hung(f"no answer within {DEADLINE_S} s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(DEADLINE_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def huge_files(tmp_path_factory) -> dict[str, Path]:
    """A 60 MB YAML file and a 60 MB JSON file, written once."""
    root = tmp_path_factory.mktemp("huge")
    yaml_path, json_path = root / "huge.yaml", root / "huge.json"
    line = b"description: " + b"x" * 1010 + b"\n"  # 1 KiB a line
    with yaml_path.open("wb") as fh:
        for _ in range(HUGE_BYTES // len(line)):
            fh.write(line)
    with json_path.open("wb") as fh:
        fh.write(b"[")
        item = b'"' + b"x" * 1021 + b'",'
        for _ in range(HUGE_BYTES // len(item) - 1):
            fh.write(item)
        fh.write(b'"' + b"x" * (HUGE_BYTES - fh.tell() - 3) + b'"]')
    assert yaml_path.stat().st_size == json_path.stat().st_size == HUGE_BYTES
    return {".yaml": yaml_path, ".json": json_path}


@pytest.fixture(scope="module")
def empty_warehouse(tmp_path_factory) -> str:
    """An existing SQLite warehouse (``evaluate`` connects before it reads its thresholds)."""
    path = tmp_path_factory.mktemp("warehouse") / "empty.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE placeholder (x INTEGER)")
    return f"sqlite:///{path}"


def _argv(target: str, path: Path, tmp_path: Path, warehouse: str) -> list[str]:
    return {
        "contracts lint": ["contracts", "lint", str(path)],
        "validate --project": ["validate", "--project", str(path), "--date", "2026-10-10",
                               "--env", "online"],
        "train --config": ["train", "--project", str(PACKAGED_PROJECT), "--config", str(path),
                           "--as-of", "2026-10-10", "--out", str(tmp_path / "model")],
        "evaluate --thresholds": ["evaluate", "--project", str(PACKAGED_PROJECT), "--thresholds",
                                  str(path), "--as-of", "2026-10-10", "--model",
                                  str(tmp_path / "no-model"), "--warehouse", warehouse],
    }[target]


def _write(tmp_path: Path, case_id: str, suffix: str, content: str | bytes | None,
           huge_files: dict[str, Path]) -> Path:
    if content is None:
        return huge_files[suffix]
    path = tmp_path / f"{case_id}{suffix}"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def _run(run_cli, capsys, argv: list[str]) -> tuple[int, str, str]:
    code, result = run_cli(*argv)
    captured = capsys.readouterr()
    message = captured.out + captured.err + (result.error.message if result and result.error
                                             else "")
    return code, message, captured.err


TARGETS = ("contracts lint", "validate --project", "train --config", "evaluate --thresholds")
CASES = (
    [pytest.param("contracts lint", f"alias_bomb_{d}", ".yaml", alias_bomb(d), r"alias",
                  id=f"contracts lint-alias_bomb_{d}") for d in range(3, 10)]
    + [pytest.param(target, *case, id=f"{target}-{case[0]}") for target in TARGETS
       for case in COMMON]
    + [pytest.param(target, "duplicate_key", ".yaml", DUPLICATES[target], r"appears twice",
                    id=f"{target}-duplicate_key") for target in TARGETS]
    + [pytest.param(target, *case, id=f"{target}-{case[0]}")
       for target in ("train --config", "evaluate --thresholds") for case in JSON_CASES]
)


@pytest.mark.parametrize(("target", "case_id", "suffix", "content", "expected"), CASES)
def test_hostile_file_is_refused_with_exit_2_naming_the_file(
        target, case_id, suffix, content, expected, run_cli, capsys, tmp_path, deadline,
        huge_files, empty_warehouse):
    path = _write(tmp_path, case_id, suffix, content, huge_files)
    code, message, stderr = _run(run_cli, capsys, _argv(target, path, tmp_path, empty_warehouse))
    assert code == 2, message
    assert str(path) in message, message
    assert re.search(expected, message, re.S), message
    assert "Traceback" not in stderr


@pytest.mark.parametrize("depth", [3, 7, 10])
def test_the_limit_and_the_line_are_named(depth):
    """The refusal names the line where the limit was crossed and what the limit is."""
    text = alias_bomb(depth)
    with pytest.raises(YamlInputError) as info:
        load_yaml_with_lines(text, where="bomb.yaml")
    error = info.value
    assert error.path == "bomb.yaml" and error.line is not None
    assert 1 <= error.line <= depth + 2
    assert re.search(r"at most (100 aliases|50000 nodes with aliases expanded)", error.message)
    assert str(error).startswith(f"bomb.yaml:{error.line}: expected at most")


def test_nesting_refused_at_the_line_of_level_65():
    text = deep_block(100)
    with pytest.raises(YamlInputError) as info:
        load_yaml_with_lines(text, where="deep.yaml")
    assert info.value.line == 65
    assert "nested at most 64 deep, found level 65" in info.value.message


def test_limits_are_configurable_and_aliases_within_them_load():
    """Aliases are bounded, not forbidden: a config that shares a block still loads."""
    text = "base: &base {lr: 0.01, batch_size: 512}\nfirst: *base\nsecond: *base\n"
    doc, duplicates = load_yaml_with_lines(text, where="shared.yaml")
    assert doc["first"] == doc["second"] == {"lr": 0.01, "batch_size": 512} and not duplicates
    with pytest.raises(YamlInputError, match=r"at most 1 aliases \(\*name\), found alias "
                                             r"number 2 here"):
        load_yaml_with_lines(text, where="shared.yaml", limits=YamlLimits(max_aliases=1))
    with pytest.raises(YamlInputError, match=r"at most 5 nodes with aliases expanded"):
        load_yaml_with_lines(text, where="shared.yaml", limits=YamlLimits(max_expanded_nodes=5))


def test_a_key_overriding_a_merged_one_is_not_a_duplicate():
    text = ("base: &b {lr: 0.01, epochs: 2}\nfast: {<<: *b, epochs: 1}\n"
            "slow: {epochs: 3, epochs: 4}\n")
    doc, duplicates = load_yaml_with_lines(text, where="merge.yaml")
    assert doc["fast"] == {"lr": 0.01, "epochs": 1}
    assert duplicates == [(3, "epochs")]


def test_every_packaged_file_is_well_within_the_limits():
    """The limits leave room: the packaged project, contracts and test configs all load."""
    from contracts.loader import load_contract
    from contracts.yaml_lines import read_yaml_file

    for path in sorted((ROOT / "contracts").glob("*.yaml")) + sorted(
            (ROOT / "tests").glob("*/*.yaml")):
        doc, _ = read_yaml_file(path)
        assert doc is not None, path
    for name in ("impressions", "ranking_features", "labels"):
        assert load_contract(name).fields


def test_a_training_config_with_an_anchor_still_trains_its_values(tmp_path):
    from model.config import load_config

    path = tmp_path / "shared.yaml"
    path.write_text("optim: &o {lr: 0.01, batch_size: 256}\n")
    assert load_config(path).optim.batch_size == 256
    path.write_text(json.dumps({"optim": {"lr": 0.01, "batch_size": 128}}))
    json_path = path.rename(tmp_path / "shared.json")
    assert load_config(json_path).optim.batch_size == 128


@pytest.mark.parametrize("which", ["alias_bomb_10", "huge_60mb"])
def test_the_real_program_refuses_without_a_traceback(which, tmp_path, huge_files):
    """``funnelguard contracts lint`` as the contracts CI workflow runs it: a process."""
    path = huge_files[".yaml"] if which == "huge_60mb" else tmp_path / "bomb.yaml"
    if which == "alias_bomb_10":
        path.write_text(alias_bomb(10))
    done = subprocess.run([sys.executable, "-m", "funnelguard.cli", "contracts", "lint",
                           str(path)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    assert str(path) in done.stderr
    assert "Traceback" not in done.stderr

