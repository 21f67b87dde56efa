"""No raw personal data in any artifact the fault catalogue produces.

Two projects, every command that writes something: the packaged simulated warehouse carrying
every fault of the catalogue (the same warehouse as tests/monitors/alerts/
test_alerts_pii_catalogue.py) and the second project with its fault (``marketplace_faulted``).
On each: ``validate`` (offline, online), ``drift`` and ``skew`` (own HTML and Evidently's),
``freshness``, ``replay``, ``explain`` (plain and ``--show-restricted``), a training run that
the guard stops (the packaged warehouse's ``nan_burst``; on the marketplace, non-finite
``loan_amount`` values in the first batch) with its forensic bundle, and ``gate``, each with
``--json`` into one results store. Then every file under the run's folder (JSON, HTML, parquet,
torch files, the key folder, model directories) and every row of every table of the store is
scanned for the raw values of the contracts' personal fields, read from the warehouse rows.

Matching rule (``tests/monitors/alerts/pii_scanner.py``'s, extended to artifacts):
- an **identifier** (``u123``, ``M-01234``) is a leak anywhere, as a whole token;
- a **long number** (>= 5 significant digits: incomes, loan amounts in cents) is a leak anywhere
  as a number token equal to a real value;
- a **short number** (a 3-digit credit score) is as common as any count, so it is a leak only
  where a value of that field is stored: a parquet column named for the field, a JSON entry
  whose key is the field (or whose ``feature`` is the field) under ``examples``, ``served``,
  ``offline``, ``online`` or ``keys``.
The contract's published sentinels and bounds are not personal data. The scan is shown not to
be vacuous (the artifacts exist and name the personal features) and to find planted leaks: an
Evidently page drawn from raw values (the issue's bin-edge leak), an unredacted batch, raw
examples in a stored finding, a raw id in a store row.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import os
import re
import stat
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from tests.monitors.alerts.pii_scanner import (
    _NUMBER,
    MIN_SIGNIFICANT_DIGITS,
    PiiValues,
    collect_pii_values,
    significant_digits,
)

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
VALUE_KEYS = frozenset({"examples", "served", "offline", "online", "keys"})
_TOKEN = re.compile(r"[\w][\w\-]*")


@dataclass(frozen=True)
class Leak:
    where: str
    field: str
    value: str


@dataclass
class Scanner:
    """The personal values of one warehouse and where each artifact shows one."""

    values: PiiValues
    fields: frozenset[str]

    @classmethod
    def of(cls, engine, contracts) -> Scanner:
        values = collect_pii_values(engine, contracts)
        return cls(values, frozenset(values.fields))

    def _raw(self, name: str) -> tuple[frozenset, frozenset]:
        ids = self.values.identifiers.get(name, frozenset())
        numbers = (self.values.long_numbers.get(name, frozenset())
                   | self.values.short_numbers.get(name, frozenset()))
        return ids, numbers

    def text(self, text: str, where: str, noise: frozenset = frozenset()) -> list[Leak]:
        """Identifiers as whole tokens and long numbers as number tokens, anywhere (but the
        tokens of ``noise``: the JavaScript every Evidently page embeds)."""
        leaks = []
        tokens = (set(_TOKEN.findall(text)) | set(re.findall(r"\w+", text))) - noise
        for name, ids in self.values.identifiers.items():
            leaks += [Leak(where, name, t) for t in sorted(tokens & ids)]
        longs = self.values.long_numbers
        for m in _NUMBER.finditer(text):
            token = m.group()
            if token in noise or significant_digits(token) < MIN_SIGNIFICANT_DIGITS:
                continue
            try:
                number = Decimal(token.replace(",", ""))
            except ArithmeticError:
                continue
            leaks += [Leak(where, name, token) for name, v in longs.items() if number in v]
        return leaks

    def value(self, name: str, value, where: str) -> list[Leak]:
        """A value stored as field ``name``'s: a leak when it is one of its raw values."""
        ids, numbers = self._raw(name)
        if value is None or isinstance(value, bool):
            return []
        if isinstance(value, (int, float, np.integer, np.floating)):
            if not np.isfinite(float(value)):
                return []
            number = Decimal(repr(float(value))) if isinstance(value, (float, np.floating)) \
                else Decimal(int(value))
            return [Leak(where, name, str(value))] if number in numbers else []
        text = str(value)
        if text in ids:
            return [Leak(where, name, text)]
        try:
            number = Decimal(text)
        except ArithmeticError:
            return []
        return [Leak(where, name, text)] if number in numbers else []

    def document(self, doc, where: str, field: str | None = None,
                 under_value: bool = False) -> list[Leak]:
        """The structural rule on a parsed JSON document."""
        leaks: list[Leak] = []
        if isinstance(doc, dict):
            own = doc.get("feature") if doc.get("feature") in self.fields else field
            for k, v in doc.items():
                if k in self.fields:
                    if isinstance(v, (dict, list)):
                        leaks += self.document(v, where, k, under_value)
                    else:
                        leaks += self.value(k, v, f"{where} [{k}]")
                else:
                    leaks += self.document(v, where, own, under_value or k in VALUE_KEYS)
        elif isinstance(doc, list):
            for v in doc:
                leaks += self.document(v, where, field, under_value)
        elif field is not None and under_value:
            leaks += self.value(field, doc, f"{where} [{field}]")
        return leaks

    def cell(self, value, where: str) -> list[Leak]:
        if value is None:
            return []
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        leaks = self.text(text, where)
        if text[:1] in "[{":
            try:
                leaks += self.document(json.loads(text), where)
            except ValueError:
                pass
        return leaks

    def parquet(self, path: Path, where: str) -> list[Leak]:
        frame = pd.read_parquet(path)
        leaks = []
        for col in frame.columns:
            values = frame[col].dropna().unique()
            if col in self.fields:
                for v in values:
                    leaks += self.value(col, v.item() if hasattr(v, "item") else v,
                                        f"{where} [{col}]")
            else:
                leaks += self.text("\n".join(map(str, values)), f"{where} [{col}]")
        return leaks

    def file(self, path: Path, where: str) -> list[Leak]:
        """One file by its kind: parquet by column, a SQLite file by row, a torch file by its
        pickle (strings live there; tensors are numbers of the model), text as text."""
        if path.suffix == ".parquet":
            return self.parquet(path, where)
        if path.suffix == ".db":
            return self.store(f"sqlite:///{path}", where)
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return [leak for name in archive.namelist() if name.endswith(".pkl")
                        for leak in self.text(archive.read(name).decode("latin-1"),
                                              f"{where}:{name}")]
        data = path.read_bytes()
        text = data.decode("utf-8") if path.suffix in (".json", ".html", ".yaml", ".txt",
                                                       ".md", ".csv") else data.decode("latin-1")
        noise = evidently_noise() if "window.drawDashboard" in text else frozenset()
        leaks = self.text(text, where, noise)
        if path.suffix == ".json":
            leaks += self.document(json.loads(text), where)
        return leaks

    def store(self, url: str, name: str = "store") -> list[Leak]:
        engine = sa.create_engine(url)
        leaks: list[Leak] = []
        try:
            inspector = sa.inspect(engine)
            with engine.connect() as conn:
                for table in inspector.get_table_names():
                    for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')).mappings():
                        feature = row.get("feature")
                        for col, value in row.items():
                            where = f"{name}:{table}.{col}"
                            leaks += self.cell(value, where)
                            if col == "examples" and feature in self.fields and value:
                                doc = json.loads(value) if isinstance(value, str) else value
                                leaks += self.document({"feature": feature, "examples": doc},
                                                       where)
        finally:
            engine.dispose()
        return leaks


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


@functools.cache
def evidently_noise() -> frozenset[str]:
    """The tokens of an Evidently page drawn from made-up numbers: its JavaScript and styles,
    the same in every page (``u9``, ``25095`` ... are code, not people)."""
    import tempfile

    from monitors import drift
    from monitors.reports import write_evidently_drift

    rng = np.random.default_rng(0)
    target = drift.DriftTarget("x", "num")
    ref = drift.profile_frame(pd.DataFrame({"x": rng.normal(size=2000)}), [target])
    cur = drift.profile_frame(pd.DataFrame({"x": rng.normal(1, size=2000)}), [target])
    with tempfile.TemporaryDirectory() as tmp:
        page = write_evidently_drift(Path(tmp) / "noise.html", ref, cur, [target],
                                     drift.compare_profiles(ref, cur, [target], "offline"))
        text = Path(page).read_text()
    # the page's own data (the script defining ``metric_...``) is not noise
    data = re.search(r"<script>\s*var metric_.*?</script>", text, re.S)
    code = text.replace(data.group(), "") if data else text
    return frozenset(set(_TOKEN.findall(code)) | set(re.findall(r"\w+", code))
                     | {m.group() for m in _NUMBER.finditer(code)})


def _summary(leaks: list[Leak]) -> str:
    where = Counter(leak.where.split(" [")[0] for leak in leaks)
    return (f"{len(leaks)} raw personal values in artifacts ({dict(where)}), e.g. "
            f"{leaks[0] if leaks else None}")


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


@pytest.fixture(scope="module")
def packaged(warehouse, tmp_path_factory) -> Artifacts:
    """The packaged project on the faulted warehouse: every command, into one folder."""
    from contracts import load_contract
    from funnelguard.warehouse import connect

    url = warehouse(*FAULTS, days=DAYS, per_day=PER_DAY)
    root = tmp_path_factory.mktemp("pii_packaged")
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
        _record(state, "train", ["-q", "train", "--as-of", AS_OF, "--out", "model",
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


@pytest.fixture(scope="module")
def market(marketplace_faulted, tmp_path_factory) -> Artifacts:
    """The second project on its faulted warehouse: the same commands, and a stopped training."""
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect
    from model.job import run_training
    from model.trainset import build_training_set
    from tests.model.conftest import tiny_config
    from tests.model.evaluation.conftest import untrained_model

    m = marketplace_faulted
    project = load_project(m.project_path)
    root = tmp_path_factory.mktemp("pii_market")
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


# -- the scans ---------------------------------------------------------------------------------


@pytest.mark.parametrize("project", ["packaged", "market"])
def test_no_raw_personal_value_in_any_artifact(project, request):
    artifacts: Artifacts = request.getfixturevalue(project)
    leaks = artifacts.leaks()
    assert leaks == [], _summary(leaks)


def test_the_packaged_artifacts_are_the_ones_that_could_leak(packaged):
    """Not vacuous: the scan read bundles, Evidently pages, explain and the store, and the
    warehouse holds thousands of personal values."""
    values = packaged.scanner.values
    assert packaged.scanner.fields == {"user_id", "credit_score", "annual_income"}
    assert len(values.identifiers["user_id"]) > 1000
    assert len(values.long_numbers["annual_income"]) > 1000
    assert len(values.short_numbers["credit_score"]) > 300
    files = {p.name for p in packaged.files()}
    assert {"batch.parquet", "bundle.json", "replay_state.pt", "drift_offline.html",
            "drift_online_vs_offline.html", "drift.html", "skew.html", "freshness.html",
            "explain.json", "replay.json", "train.json", "redaction.key"} <= files
    train = packaged.results["train"]
    assert train.status == "fail" and {f.check for f in train.findings} >= {"triage"}
    batch = pd.read_parquet(packaged.path(train.artifacts["bundle"]).with_name("batch.parquet"))
    # ids hashed, restricted numbers as their class
    assert batch["user_id"].dropna().str.startswith("h:").mean() > 0.9
    assert set(batch["annual_income"]) <= {"default", "in_contract", "out_of_contract", "nan",
                                           "+inf", "-inf"}
    # the Evidently page of the day annual_income was multiplied by 1e6 draws it, coarsened
    page = (packaged.root / "html" / OFFLINE_DAY / "drift_offline.html").read_text()
    assert "annual_income" in page and "rounded to two significant digits" in page
    store = sa.create_engine(packaged.store)
    with store.connect() as conn:
        features = {r[0] for r in conn.execute(sa.text(
            "SELECT DISTINCT feature FROM fg_findings WHERE examples IS NOT NULL"))}
    store.dispose()
    assert {"user_id", "credit_score", "annual_income"} <= features


def test_the_deployment_key_is_private_and_shared_by_the_bundles(packaged):
    from funnelguard.redaction import keyed_token

    key_file = packaged.root / ".funnelguard" / "redaction.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) == 64
    for path in packaged.files():
        if path != key_file:
            assert key.encode() not in path.read_bytes(), path
    # the bundle's tokens are HMACs under this key (not a key of the bundle's own)
    bundle_path = packaged.path(packaged.results["train"].artifacts["bundle"])
    assert "deployment key not stored" in json.loads(bundle_path.read_text())["redacted"]["rule"]
    tokens = {t for t in pd.read_parquet(bundle_path.with_name("batch.parquet"))["user_id"]
              if isinstance(t, str) and t.startswith("h:")}
    users = packaged.scanner.values.identifiers["user_id"]
    assert tokens and tokens <= {keyed_token(u, key.encode()) for u in users}


def test_explain_redacts_unless_show_restricted_which_prints_and_logs(packaged):
    plain, shown = packaged.results["explain"], packaged.results["explain-shown"]
    raw = packaged.raw
    printed = packaged.stdout["explain"]
    assert "<redacted pii>" in printed and "<redacted restricted>" in printed
    assert raw["user_id"] not in printed
    assert "show_restricted" not in plain.details
    # --show-restricted: the raw values on the terminal, a line on stderr, a flag in the result
    assert raw["user_id"] in packaged.stdout["explain-shown"]
    assert f"{raw['annual_income']:.6g}" in packaged.stdout["explain-shown"]
    assert "--show-restricted" in packaged.stderr["explain-shown"]
    assert "user_id" in packaged.stderr["explain-shown"]
    assert shown.details["show_restricted"] is True
    doc = json.loads((packaged.root / "json" / "explain-shown.json").read_text())
    assert doc["show_restricted"] is True
    rows = {f["feature"]: f for f in doc["explanation"]["features"]}
    assert rows["annual_income"]["differs"] and rows["annual_income"]["redacted"]
    assert rows["annual_income"]["served"] == "<redacted restricted>"
    for f in shown.findings:
        assert raw["user_id"] not in json.dumps(f.to_json())


def test_market_bundle_and_explain_redact_its_own_personal_fields(market):
    values = market.scanner.values
    assert market.scanner.fields == {"member_ref", "loan_amount"}
    assert len(values.identifiers["member_ref"]) > 1000
    assert len(values.long_numbers["loan_amount"]) > 1000
    train = market.results["train"]
    assert train.status == "fail" and "bundle" in train.artifacts
    bundle = json.loads(market.path(train.artifacts["bundle"]).read_text())
    assert bundle["redacted"]["columns"] == ["loan_amount", "member_ref"]
    doc = json.loads((market.root / "json" / "explain.json").read_text())["explanation"]
    rows = {f["feature"]: f for f in doc["features"]}
    assert rows["member_ref"]["served"] == "<redacted pii>"
    assert rows["loan_amount"]["served"] == "<redacted restricted>"
    assert "M-" in market.stdout["explain-shown"]
    assert "--show-restricted" in market.stderr["explain-shown"]


# -- the scanner finds leaks -------------------------------------------------------------------


def test_the_scanner_finds_planted_leaks(packaged, tmp_path):
    """An unredacted Evidently page (the issue's bin edge), batch, finding and store row."""
    from funnelguard.warehouse import connect
    from monitors import drift
    from monitors.reports import write_evidently_drift

    scanner = packaged.scanner
    engine = connect(packaged.url)
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text("SELECT annual_income, credit_score, user_id FROM "
                                    "offline_features WHERE ds = :d"), conn,
                            params={"d": OFFLINE_DAY})
        reference = pd.read_sql(sa.text("SELECT annual_income FROM offline_features "
                                        "WHERE ds = :d"), conn, params={"d": KEYS_DAY})
    engine.dispose()
    # 1. Evidently drawn from raw values embeds the sample's maximum as a bin edge
    raw_target = drift.DriftTarget("annual_income", "num")
    ref = drift.profile_frame(reference, [raw_target])
    cur = drift.profile_frame(frame, [raw_target])
    results = drift.compare_profiles(ref, cur, [raw_target], "offline")
    page = write_evidently_drift(tmp_path / "raw.html", ref, cur, [raw_target], results)
    found = scanner.file(Path(page), "raw.html")
    assert {leak.field for leak in found} == {"annual_income"}, found[:3]
    # ... and the same page with the contract's classification embeds none
    coarse = dataclasses.replace(raw_target, classification="restricted")
    page = write_evidently_drift(tmp_path / "coarse.html", ref, cur, [coarse], results)
    assert scanner.file(Path(page), "coarse.html") == []
    # 2. an unredacted batch: ids, short and long numbers by column
    frame.head(20).to_parquet(tmp_path / "batch.parquet")
    fields = {leak.field for leak in scanner.parquet(tmp_path / "batch.parquet", "batch")}
    assert fields == {"user_id", "credit_score", "annual_income"}
    # 3. a finding's raw examples, in a --json document
    score = int(frame["credit_score"][frame["credit_score"] > 300].iloc[0])
    doc = {"findings": [{"check": "range", "feature": "credit_score", "count": 630,
                         "examples": [score]},
                        {"check": "replay_skew", "feature": "annual_income",
                         "examples": [{"impression_id": "imp-1", "offline": "<redacted>",
                                       "online": "<redacted>"}]}]}
    assert [leak.field for leak in scanner.document(doc, "doc")] == ["credit_score"]
    (tmp_path / "r.json").write_text(json.dumps(doc))
    assert [leak.field for leak in scanner.file(tmp_path / "r.json", "r.json")] == \
        ["credit_score"]
    # 4. a raw id in any cell of a store
    store = f"sqlite:///{tmp_path / 's.db'}"
    db = sa.create_engine(store)
    with db.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (feature TEXT, examples TEXT, message TEXT)"))
        conn.execute(sa.text("INSERT INTO t VALUES ('item_type', NULL, :m)"),
                     {"m": f"seen {frame['user_id'].dropna().iloc[0]} twice"})
    db.dispose()
    assert [leak.field for leak in scanner.store(store)] == ["user_id"]
    # counts and published bounds are not personal values
    assert scanner.text("630 of 1800 rows; credit_score in [300, 850]", "t") == []


# -- the policy itself -------------------------------------------------------------------------


def test_examples_are_truncated_in_findings_and_json():
    from funnelguard.findings import Finding, RunResult

    huge = "x" * 1_000_000
    f = Finding("allowed_values", False, feature="item_type",
                examples=(huge, {"k": huge, "n": 3}, [huge] * 50, 7, None, "extra"))
    assert len(f.examples) == 5 and len(f.examples[0]) == 200 and f.examples[0].endswith("…")
    assert len(f.examples[1]["k"]) == 200 and f.examples[1]["n"] == 3
    assert len(f.examples[2]) == 20 and f.examples[3:] == (7, None)
    text = RunResult("validate", "2026-10-24", (f,)).dumps()
    assert len(text) < 10_000
    assert Finding.from_json(f.to_json()) == f


def test_coarse_numbers_and_classes():
    from funnelguard.redaction import coarse_numbers, number_classes

    x = np.array([61341.01, 0.0347, -1234.5, 0.0, np.nan, np.inf, 9.96])
    out = coarse_numbers(x)
    assert out[:4].tolist() == [61000.0, 0.035, -1200.0, 0.0] and out[6] == 10.0
    assert np.isnan(out[4]) and np.isposinf(out[5])
    classes = number_classes(np.array([5.0, -1.0, 99.0, np.nan, -np.inf]), 0.0, 50.0,
                             np.array([False, True, False, False, False]))
    assert classes.tolist() == ["in_contract", "default", "out_of_contract", "nan", "-inf"]


def test_deployment_key_from_the_environment_or_one_file(tmp_path, monkeypatch):
    from funnelguard.errors import EnvironmentFailure, InputError
    from funnelguard.redaction import KEY_ENV, deployment_key, keyed_token

    monkeypatch.delenv(KEY_ENV, raising=False)
    first = deployment_key(tmp_path)
    assert first == deployment_key(tmp_path)  # created once, then read
    path = tmp_path / ".funnelguard" / "redaction.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keyed_token("u1", first) == keyed_token("u1", deployment_key(tmp_path))
    assert keyed_token("u1", first) != keyed_token("u1", b"another deployment key")
    monkeypatch.setenv(KEY_ENV, "k" * 32)
    assert deployment_key(tmp_path) == b"k" * 32
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(InputError, match="at least 16 characters, found 5"):
        deployment_key(tmp_path)
    monkeypatch.delenv(KEY_ENV)
    path.write_text("tiny\n")
    with pytest.raises(EnvironmentFailure, match="redaction.key: expected at least 16"):
        deployment_key(tmp_path)


def test_personal_fields_follow_the_contract_classification():
    from contracts import load_contract
    from funnelguard.redaction import is_personal, personal_fields, redacted

    features = load_contract("ranking_features")
    assert personal_fields(features) == {"user_id": "pii", "credit_score": "restricted",
                                         "annual_income": "restricted"}
    assert is_personal(features, "annual_income") and not is_personal(features, "item_type")
    assert is_personal(None, "email") and not is_personal(None, "annual_income")
    assert redacted("restricted") == "<redacted restricted>"


def test_summary_page_redacts_segment_values_of_personal_columns(tmp_path):
    from funnelguard.findings import Finding
    from monitors.reports import write_summary

    findings = [Finding("default_rate", False, feature="credit_score", segment="zip=94110",
                        value=0.4, threshold=0.05, count=12, examples=("94110-raw",)),
                Finding("default_rate", False, feature="credit_score",
                        segment="device_type=android", value=0.3, threshold=0.05)]
    page = Path(write_summary(tmp_path / "s.html", "t", findings,
                              personal={"zip": "pii"})).read_text()
    assert "zip=&lt;redacted pii&gt;" in page and "94110" not in page
    assert "device_type=android" in page
