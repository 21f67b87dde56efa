"""A results store filled by real commands on the second project, and a site built from it.

``filled_store`` runs, in-process through ``funnelguard.cli.run`` with ``--project`` and
``--store``: on the faulted marketplace's last partition ``validate`` online, ``drift`` and
``skew`` (which fail on ``quoted_apr``), ``validate`` offline with a copy of the features
contract that allows no real ``member_ref`` (a PII column: it fails with redacted examples)
and ``freshness``; ``freshness`` on the day
before (a second partition); ``gate``; a tiny ``train`` and ``evaluate``. Built once per
session; tests that change a store use their own copy (``store_copy``).
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

TINY_TRAIN = Path(__file__).resolve().parent.parent / "byow" / "tiny_train.yaml"
FAILING = ("validate_online", "validate_offline", "drift", "skew", "evaluate")


@dataclass(frozen=True)
class FilledStore:
    """A store of real runs. ``runs`` maps a label (``validate_online``, ``drift`` ...) to the
    run's stored id; ``reports`` is the --html folder (outside any site)."""

    url: str
    path: Path
    market: object
    runs: dict[str, int]
    reports: Path
    model_dir: Path
    failing: tuple[str, ...] = FAILING


@pytest.fixture
def store_copy(filled_store, tmp_path) -> str:
    """The URL of this test's own copy of ``filled_store``."""
    target = tmp_path / "store-copy.db"
    shutil.copyfile(filled_store.path, target)
    return f"sqlite:///{target}"


@pytest.fixture(scope="session")
def filled_store(marketplace_faulted, tmp_path_factory) -> FilledStore:
    from funnelguard.cli import run

    m = marketplace_faulted
    root = tmp_path_factory.mktemp("site_store")
    path = root / "results.db"
    url = f"sqlite:///{path}"
    reports = root / "reports"
    model_dir = root / "model"
    day, before = m.last.isoformat(), (m.last - dt.timedelta(days=1)).isoformat()
    common = ("--project", str(m.project_path), "--store", url)
    pii_contract = _contract_refusing_member_refs(m, root)
    plan = {
        "validate_online": ("validate", "--date", day, "--env", "online"),
        "validate_offline": ("validate", "--date", day, "--env", "offline",
                             "--contract", str(pii_contract)),
        "drift": ("drift", "--date", day, "--html", str(reports / day)),
        "skew": ("skew", "--date", day, "--html", str(reports / day)),
        "freshness": ("freshness", "--date", day, "--html", str(reports / day)),
        "freshness_before": ("freshness", "--date", before, "--html", str(reports / before)),
        "gate": ("gate", "--as-of", m.as_of.isoformat()),
        "train": ("train", "--as-of", day, "--out", str(model_dir), "--config", str(TINY_TRAIN)),
        "evaluate": ("evaluate", "--model", str(model_dir), "--as-of", day, "--bootstrap", "20",
                     "--no-importance"),
    }
    runs = {}
    for label, argv in plan.items():
        code, result = run([*argv, *common])
        assert result is not None and result.error is None, (label, result and result.error)
        assert code == (1 if label in FAILING else 0), label
        runs[label] = _stored_id(url, result)
    return FilledStore(url, path, m, runs, reports, model_dir)


def _contract_refusing_member_refs(m, root: Path) -> Path:
    """The project's features contract, with ``member_ref`` allowed only its default."""
    source = m.root / "contracts" / "marketplace_features.yaml"
    text = source.read_text()
    anchor = "      - name: member_ref\n        logicalType: string\n        required: true\n"
    assert text.count(anchor) == 1
    target = root / "features_pii_enum.yaml"
    target.write_text(text.replace(anchor, anchor + "        enum:\n          - {value: anon}\n"))
    return target


def _stored_id(url: str, result) -> int:
    import sqlalchemy as sa

    from monitors.store import Run, open_store

    with open_store(url).session() as s:
        return s.scalar(sa.select(Run.id).filter_by(
            command=result.command, dataset=result.dataset or "",
            environment=result.environment or "", partition=result.partition or ""))


@pytest.fixture(scope="session")
def built_site(filled_store, tmp_path_factory):
    """(site folder, BuildReport) of a full build from ``filled_store``."""
    from monitors.site import build_site

    out = tmp_path_factory.mktemp("site") / "site"
    return out, build_site(filled_store.url, out)
