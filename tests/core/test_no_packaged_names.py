"""The contracts are the only catalogue: product code names no table or column of the demo.

Scans the string literals of every product module (docstrings and comments excluded) for the
packaged demo project's table, column and stage names. The simulator, the demo and the
packaged-shaped synthetic sets of the model's unit tests (``model/synthetic.py``) are that
project's own code and are exempt; so is the packaged-stage fallback in ``contracts/spec.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "monitors", "model", "funnelguard", "dags")
EXEMPT = ("funnelguard/simulator/", "funnelguard/demo/", "model/synthetic.py")
EXEMPT_NAMES = {("contracts/spec.py", n) for n in ("click", "application", "conversion", "approval")}
# Inference recognises common naming conventions (``*_time``, ``*_ts``, ``event_ts`` ...).
EXEMPT_NAMES |= {("contracts/infer.py", "event_ts")}
# Exact literals that would hard-code the packaged warehouse.
PACKAGED_NAMES = {
    "ds", "impression_id", "event_ts", "served_at", "offline_features", "serving_log",
    "ranking_features", "device_type", "item_type", "approval_odds", "user_id",
    "click", "application", "conversion", "approval", "model_version",
}
# The replay's documented metric names (score_logged_mad ...) are not column names.
EXEMPT_PIECES = {("model/evaluation/commands.py", "score_")}
# Pieces of f-strings that build packaged column names (score_{task}, {task}_ts, {task}_loaded_at).
PACKAGED_PIECES = {"score_", "_ts", "_loaded_at"}


def _docstring_ids(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _hits(path: Path) -> list[str]:
    rel = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text(), filename=rel)
    docs = _docstring_ids(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            for piece in node.values:
                if (isinstance(piece, ast.Constant) and piece.value in PACKAGED_PIECES
                        and (rel, piece.value) not in EXEMPT_PIECES):
                    hits.append(f"{rel}:{node.lineno}: f-string piece {piece.value!r}")
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in docs and node.value in PACKAGED_NAMES
              and (rel, node.value) not in EXEMPT_NAMES):
            hits.append(f"{rel}:{node.lineno}: {node.value!r}")
    return hits


def _product_files() -> list[Path]:
    files = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith(EXEMPT) and "/migrations/" not in rel:
                files.append(path)
    return files


def test_the_scan_finds_a_planted_literal(tmp_path, monkeypatch):
    planted = ROOT / "funnelguard" / "_planted_for_test.py"
    planted.write_text('KEY = "impression_id"\nCOL = f"score_{1}"\n')
    try:
        assert len(_hits(planted)) == 2
    finally:
        planted.unlink()


@pytest.mark.parametrize("path", _product_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_product_code_names_no_packaged_table_or_column(path):
    assert _hits(path) == []
