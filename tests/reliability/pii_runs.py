"""Every command that writes something, run on one project into one folder, for the PII scan.

:func:`run_packaged` runs the packaged project on the simulated warehouse carrying every fault
of the catalogue (:data:`FAULTS`, spread as in tests/monitors/alerts/
test_alerts_pii_catalogue.py); :func:`run_market` the second project on its faulted warehouse.
Both run ``validate`` (offline, online), ``drift`` and ``skew`` (own HTML and Evidently's),
``freshness``, ``replay``, ``explain`` (plain and ``--show-restricted``), a training run the
guard stops, with its forensic bundle, and ``gate``, each with ``--json`` into one results store,
inside the folder (the deployment's working directory, where its key file lands). The
:class:`Artifacts` they return scan themselves with :class:`tests.reliability.pii_scan.Scanner`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import yaml

from tests.reliability.pii_scan import Leak, Scanner

__all__ = ["Artifacts", "run_packaged", "run_market", "DAYS", "PER_DAY", "LAST", "OFFLINE_DAY",
           "KEYS_DAY", "MIDDLE", "AS_OF", "FAULTS"]

DAYS, PER_DAY = 24, 1800
LAST, OFFLINE_DAY, KEYS_DAY, MIDDLE = "2026-10-24", "2026-10-23", "2026-10-22", "2026-10-13"
AS_OF = "2026-10-25"
FAULTS = (  # the catalogue's faults, spread as in test_alerts_pii_catalogue.py
    "serving_default:feature=credit_score,device_type=android",
    "unit_mismatch:feature=annual_income",
    "stale_online:feature=user_ctr_30d",
    "category_remap:feature=item_type,rename=card/crypto_card",
    "tz_shift:hours=5",
    f"null_burst:feature=credit_score,share=0.3,day={OFFLINE_DAY}",
    f"outlier_burst:feature=annual_income,share=0.2,day={OFFLINE_DAY}",
    f"null_burst:feature=user_id,share=0.1,day={KEYS_DAY},env=online",
    f"duplicate_keys:share=0.05,day={KEYS_DAY},env=impressions",
    f"duplicate_keys:share=0.05,day={KEYS_DAY},env=offline",
    "nan_burst:feature=credit_utilization,share=0.2",
    "label_drop:task=conversion,share=0.8,since=2026-10-10",
    "label_lag:days=4",
)


@dataclass
class Artifacts:
    """What the commands of one project left behind."""

    root: Path
    url: str
    store: str
    scanner: Scanner
    results: dict[str, object]
    stdout: dict[str, str]
    stderr: dict[str, str]
    raw: dict[str, object]

    def path(self, artifact: str) -> Path:
        """An artifact path of a result (relative ones are under the run's folder)."""
        return self.root / artifact

    def files(self) -> Iterator[Path]:
        return (p for p in sorted(self.root.rglob("*")) if p.is_file())

    def leaks(self) -> list[Leak]:
        out = []
        for path in self.files():  # the results store is one of them
            out += self.scanner.file(path, str(path.relative_to(self.root)))
        return out

    def __repr__(self) -> str:  # the values are thousands
        return f"Artifacts({self.root}, {len(self.results)} runs)"


def _run(argv: list[str]) -> tuple[int, object, str, str]:
    from funnelguard.cli import run

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code, result = run([str(a) for a in argv])
    return code, result, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def _isolated(root: Path):
    """Run inside ``root`` (the deployment's working directory: its key file lands there)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("FUNNELGUARD_REDACTION_KEY", raising=False)
        mp.setenv("FUNNELGUARD_STORE", f"sqlite:///{root / 'default-store.db'}")
        try:
            yield
        finally:
            torch.set_num_threads(threads)


def _train_config(root: Path, **optim) -> Path:
    from tests.model.conftest import TINY

    raw = {k: dict(v) for k, v in TINY.items()}
    raw["optim"] = {"batch_size": 1024, "epochs": 1, "max_steps": 12, **optim}
    path = root / "train.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _record(state: dict, name: str, argv: list[str]) -> None:
    code, result, out, err = _run(argv)
    assert result is not None and result.error is None, (name, code, result)
    state["results"][name] = result
    state["stdout"][name], state["stderr"][name] = out, err


def run_packaged(url: str, root: Path) -> Artifacts:
    """The packaged project on the faulted warehouse ``url`` (:data:`FAULTS`): every command,
    into ``root``."""
    from contracts import load_contract
    from funnelguard.warehouse import connect

    store = f"sqlite:///{root / 'results.db'}"
    state: dict = {"results": {}, "stdout": {}, "stderr": {}}
    engine = connect(url)
    with engine.connect() as conn:  # an impression whose served income was multiplied
        iid = conn.execute(sa.text(
            "SELECT s.impression_id FROM serving_log s JOIN offline_features o "
            "ON o.impression_id = s.impression_id WHERE s.ds = :d AND s.annual_income > 0 "
            "AND s.annual_income <> o.annual_income ORDER BY s.impression_id LIMIT 1"),
            {"d": LAST}).scalar_one()
        raw = dict(conn.execute(sa.text(
            "SELECT user_id, credit_score, annual_income FROM serving_log "
            "WHERE impression_id = :i"), {"i": iid}).mappings().one())
    with _isolated(root):
        common = ["--warehouse", url, "--store", store]
        for day in (MIDDLE, KEYS_DAY, OFFLINE_DAY, LAST):
            for name, argv in (("validate-offline", ["validate", "--env", "offline"]),
                               ("validate-online", ["validate", "--env", "online"]),
                               ("drift", ["drift", "--html", f"html/{day}"]),
                               ("skew", ["skew", "--html", f"html/{day}"]),
                               ("freshness", ["freshness", "--html", f"html/{day}"])):
                _record(state, f"{name}-{day}", [
                    "-q", *argv, "--date", day, *common, "--json", f"json/{name}-{day}.json"])
        _record(state, "validate-impressions", [
            "-q", "validate", "--contract", "impressions", "--env", "offline", "--date",
            KEYS_DAY, *common, "--json", "json/validate-impressions.json"])
        for as_of in ("2026-10-21", AS_OF):
            _record(state, f"gate-{as_of}", ["-q", "gate", "--as-of", as_of, *common,
                                             "--json", f"json/gate-{as_of}.json"])
        _record(state, "replay", ["-q", "replay", "--date", LAST, "--model", "served", *common,
                                  "--json", "json/replay.json"])
        # --no-audit: the window holds every catalogue fault; this run must reach the guard
        _record(state, "train", ["-q", "train", "--as-of", AS_OF, "--out", "model", "--no-audit",
                                 "--config", _train_config(root), *common,
                                 "--json", "json/train.json"])
        _record(state, "explain", ["explain", iid, "--model", "served", "--warehouse", url,
                                   "--json", "json/explain.json"])
        _record(state, "explain-shown", ["-q", "explain", iid, "--model", "served",
                                         "--warehouse", url, "--show-restricted",
                                         "--json", "json/explain-shown.json"])
    try:
        contracts = [load_contract(n) for n in ("ranking_features", "impressions", "labels")]
        scanner = Scanner.of(engine, contracts)
    finally:
        engine.dispose()
    return Artifacts(root, url, store, scanner, state["results"], state["stdout"],
                     state["stderr"], {"impression": iid, **raw})


def run_market(marketplace_faulted, root: Path) -> Artifacts:
    """The second project on its faulted warehouse (the ``marketplace_faulted`` fixture's): the
    same commands, and a stopped training, into ``root``."""
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect
    from model.job import run_training
    from model.trainset import build_training_set
    from tests.model.conftest import tiny_config
    from tests.model.evaluation.conftest import untrained_model

    m = marketplace_faulted
    project = load_project(m.project_path)
    store = f"sqlite:///{root / 'results.db'}"
    state: dict = {"results": {}, "stdout": {}, "stderr": {}}
    engine = connect(m.warehouse_url)
    last = m.last.isoformat()
    with engine.connect() as conn:
        key = conn.execute(sa.text(
            "SELECT imp_key FROM features_served WHERE event_date = :d AND quoted_apr = -9.0 "
            "ORDER BY imp_key LIMIT 1"), {"d": last}).scalar_one()
    with _isolated(root):
        model_dir = untrained_model(project, m.warehouse_url, m.as_of, root / "model",
                                    default_id_buckets=32)
        common = ["--project", m.project_path, "--store", store]
        for name, argv in (("validate-offline", ["validate", "--env", "offline"]),
                           ("validate-online", ["validate", "--env", "online"]),
                           ("drift", ["drift", "--html", "html"]),
                           ("skew", ["skew", "--html", "html"]),
                           ("freshness", ["freshness", "--html", "html"]),
                           ("replay", ["replay", "--model", model_dir])):
            _record(state, name, ["-q", *argv, "--date", last, *common,
                                  "--json", f"json/{name}.json"])
        _record(state, "gate", ["-q", "gate", "--as-of", m.as_of.isoformat(), *common,
                                "--json", "json/gate.json"])
        _record(state, "explain", ["explain", key, "--model", model_dir, "--project",
                                   m.project_path, "--json", "json/explain.json"])
        _record(state, "explain-shown", ["-q", "explain", key, "--model", model_dir,
                                         "--project", m.project_path, "--show-restricted",
                                         "--json", "json/explain-shown.json"])
        ts = build_training_set(project, engine, m.as_of)
        frame = ts.frame.copy()
        train = np.flatnonzero(frame["split"].to_numpy() == "train")
        frame.loc[train[:256], "loan_amount"] = np.inf  # the first batch is the whole split
        cfg = tiny_config(project=project, optim={"batch_size": 50_000, "max_steps": 3})
        state["results"]["train"] = run_training(dataclasses.replace(ts, frame=frame),
                                                 root / "trained", cfg, project=project,
                                                 store_url=store)
    try:
        scanner = Scanner.of(engine, project.contracts.values())
    finally:
        engine.dispose()
    return Artifacts(root, m.warehouse_url, store, scanner, state["results"], state["stdout"],
                     state["stderr"], {"impression": key})
