"""A scanner for raw personal values in the artifacts of a run: files and results stores.

The rule is ``tests/monitors/alerts/pii_scanner.py``'s (the values are its
:func:`collect_pii_values` of the contracts' personal fields, read from the warehouse rows),
extended from rendered text to artifacts:

- an **identifier** (``u123``, ``M-01234``) is a leak anywhere, as a whole token;
- a **long number** (>= 5 significant digits: incomes, loan amounts in cents) is a leak anywhere
  as a number token equal to a real value;
- a **short number** (a 3-digit credit score) is as common as any count, so it is a leak only
  where a value of that field is stored: a parquet column named for the field, a JSON entry
  whose key is the field (or whose ``feature`` is the field) under ``examples``, ``served``,
  ``offline``, ``online`` or ``keys``.

The contract's published sentinels and bounds are not personal data. Files are read by kind
(parquet by column, SQLite by row, a torch file by its pickle, text as text); the JavaScript
every Evidently page embeds is left out (:func:`evidently_noise`).
"""

from __future__ import annotations

import functools
import json
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tests.monitors.alerts.pii_scanner import (
    _NUMBER,
    MIN_SIGNIFICANT_DIGITS,
    PiiValues,
    _decimal,
    collect_pii_values,
    significant_digits,
)

__all__ = ["Leak", "Scanner", "evidently_noise", "leak_summary"]

VALUE_KEYS = frozenset({"examples", "served", "offline", "online", "keys"})
_TOKEN = re.compile(r"[\w][\w\-]*")


@dataclass(frozen=True)
class Leak:
    """A raw value of personal field ``field`` found at ``where`` (a file, ``file [column]``,
    ``store:table.column``)."""

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
            number = _decimal(token)
            if number is None:
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


def leak_summary(leaks: list[Leak]) -> str:
    """How many leaks, in which artifacts, and the first (an assertion's message)."""
    where = Counter(leak.where.split(" [")[0] for leak in leaks)
    return (f"{len(leaks)} raw personal values in artifacts ({dict(where)}), e.g. "
            f"{leaks[0] if leaks else None}")
