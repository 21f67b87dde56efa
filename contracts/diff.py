"""Comparing two versions of a contract: every change, classified for producers and the model.

A change is *breaking for producers* when data that met the old contract can fail the new one
(a tightened range, a newly required field, a removed allowed value ...), and *breaking for the
model* when the model can receive data it was not built for (a removed or retyped field, a
widened range, a new category, a changed default, a changed maturity window ...). Changes are
listed most severe first, in plain language for a data owner. :func:`render_markdown` and
``Change.to_json`` are what ``funnelguard contracts diff`` prints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from contracts.spec import Contract, FieldContract

__all__ = ["Change", "diff_contracts", "render_markdown", "is_breaking"]


@dataclass(frozen=True)
class Change:
    """One difference between two contracts.

    Attributes:
        kind: e.g. ``field_removed``, ``type_changed``, ``range_tightened``.
        field: the field, or None for a contract-level change.
        breaking_producers: data that met the old contract may fail the new one.
        breaking_model: the model may receive data it was not built for.
        message: plain language for a data owner.
    """

    kind: str
    field: str | None
    breaking_producers: bool
    breaking_model: bool
    message: str

    @property
    def breaking(self) -> bool:
        return self.breaking_producers or self.breaking_model

    @property
    def rank(self) -> int:
        return 2 * self.breaking_producers + 2 * self.breaking_model

    def to_json(self) -> dict:
        return {**asdict(self), "breaking": self.breaking}


def _fmt(v) -> str:
    return "none" if v is None else repr(v)


def _catalogue(contract: Contract, attr: str) -> str | None:
    """The contract's partition or key column, or None when it marks none."""
    try:
        return getattr(contract, attr)
    except KeyError:
        return None


def _window(w) -> str:
    return f"{w.days:g} d from {w.counts_from}" if w is not None else "none"


def _range_changes(o: FieldContract, n: FieldContract) -> list[Change]:
    out = []
    for bound, lower_is_tighter in (("minimum", False), ("maximum", True)):
        a, b = getattr(o, bound), getattr(n, bound)
        if a == b:
            continue
        if a is None:
            tighter = True
        elif b is None:
            tighter = False
        else:
            tighter = (b < a) if lower_is_tighter else (b > a)
        kind = "range_tightened" if tighter else "range_widened"
        msg = (f"{n.name}: {bound} {_fmt(a)} -> {_fmt(b)}. "
               + ("Values that were valid can now fail validation; producers must check "
                  "their output." if tighter else
                  "The model may now receive values outside the range it was trained on."))
        out.append(Change(kind, n.name, tighter, not tighter, msg))
    return out


def _field_changes(o: FieldContract, n: FieldContract) -> list[Change]:
    name, out = n.name, []
    if o.logical_type != n.logical_type:
        out.append(Change("type_changed", name, True, True,
                          f"{name}: type {o.logical_type} -> {n.logical_type}. Producers must "
                          "write the new type and the model must be retrained on it."))
    if o.required != n.required:
        if n.required:
            out.append(Change("nullable_to_required", name, True, False,
                              f"{name}: was optional, now required. Producers may no longer "
                              "write nulls."))
        else:
            out.append(Change("required_to_nullable", name, False, True,
                              f"{name}: was required, now may be null. The model must handle "
                              "missing values it never saw."))
    if o.unique != n.unique:
        out.append(Change("unique_added" if n.unique else "unique_removed", name, n.unique,
                          not n.unique, f"{name}: " + (
                              "must now be unique; duplicates that were allowed now fail."
                              if n.unique else "no longer unique; joins on it may duplicate rows.")))
    out += _range_changes(o, n)
    old_vals, new_vals = set(o.allowed_values or ()), set(n.allowed_values or ())
    if o.allowed_values is not None or n.allowed_values is not None:
        if removed := sorted(old_vals - new_vals, key=str):
            out.append(Change("allowed_values_removed", name, True, False,
                              f"{name}: values {removed} are no longer allowed; producers "
                              "still writing them will fail."))
        if added := sorted(new_vals - old_vals, key=str):
            out.append(Change("allowed_values_added", name, False, True,
                              f"{name}: new values {added} are allowed; the model has never "
                              "seen them (unknown category)."))
    if o.default != n.default:
        out.append(Change("default_changed", name, True, True,
                          f"{name}: default (missing-value sentinel) {_fmt(o.default)} -> "
                          f"{_fmt(n.default)}. Producers must write the new sentinel; the model "
                          "would read the old one as a real value."))
    for env in sorted(set(o.max_default_rate) | set(n.max_default_rate)):
        a, b = o.max_default_rate.get(env), n.max_default_rate.get(env)
        if a != b:
            tighter = b is not None and (a is None or b < a)
            out.append(Change("max_default_rate_tightened" if tighter else "max_default_rate_loosened",
                              name, tighter, False,
                              f"{name}: largest tolerated default rate {env} {_fmt(a)} -> {_fmt(b)}."))
    if removed_envs := sorted(set(o.environments) - set(n.environments)):
        out.append(Change("environment_removed", name, False, True,
                          f"{name}: no longer present {', '.join(removed_envs)}; the model "
                          "reading it there breaks."))
    if added_envs := sorted(set(n.environments) - set(o.environments)):
        out.append(Change("environment_added", name, n.required, False,
                          f"{name}: now expected {', '.join(added_envs)} as well."))
    if (o.owner and o.owner.team) != (n.owner and n.owner.team):
        out.append(Change("owner_changed", name, False, False,
                          f"{name}: owner {o.owner.team if o.owner else 'the contract team'} -> "
                          f"{n.owner.team if n.owner else 'the contract team'}; alerts go there."))
    if o.pii != n.pii:
        out.append(Change("classification_changed", name, False, False,
                          f"{name}: {'now' if n.pii else 'no longer'} personal data; examples "
                          f"are {'redacted' if n.pii else 'shown'}."))
    for attr, label in (("checks", "check policy"), ("drift_method", "drift method"),
                        ("drift_threshold", "drift threshold"),
                        ("drift_trend", "drift trend"),
                        ("numeric_tolerance", "offline/online tolerance"),
                        ("relative_tolerance", "relative offline/online tolerance")):
        if getattr(o, attr) != getattr(n, attr):
            out.append(Change(f"{attr}_changed", name, False, False,
                              f"{name}: {label} {_fmt(getattr(o, attr))} -> {_fmt(getattr(n, attr))}."))
    return out


def _renames(removed: list[FieldContract], added: list[FieldContract]) -> list[tuple]:
    """Pairs that look like a rename: same type, range, allowed values and default."""
    def shape(f: FieldContract) -> tuple:
        return (f.logical_type, f.minimum, f.maximum, f.allowed_values, f.default, f.role)

    pairs = []
    for r in list(removed):
        match = next((a for a in added if shape(a) == shape(r)), None)
        if match is not None:
            pairs.append((r, match))
            removed.remove(r)
            added.remove(match)
    return pairs


def _contract_changes(old: Contract, new: Contract) -> list[Change]:
    out = []
    for env in sorted(set(old.tables) | set(new.tables)):
        a, b = old.tables.get(env), new.tables.get(env)
        if a != b:
            out.append(Change("table_changed", None, True, True,
                              f"environment {env}: table {_fmt(a)} -> {_fmt(b)}; readers and "
                              "writers must move."))
    if old.owner.team != new.owner.team or old.owner.slack != new.owner.slack:
        out.append(Change("owner_changed", None, False, False,
                          f"contract owner {old.owner.team} {list(old.owner.slack)} -> "
                          f"{new.owner.team} {list(new.owner.slack)}; alerts go to the new owner."))
    for what, attr in (("partition column", "partition_column"), ("key", "key_column")):
        a, b = _catalogue(old, attr), _catalogue(new, attr)
        if a != b:
            out.append(Change(f"{attr}_changed", None, True, True,
                              f"{what} {_fmt(a)} -> {_fmt(b)}; every reader and writer of the "
                              "tables must move with it."))
    for task in sorted(set(old.maturity) | set(new.maturity)):
        a, b = old.maturity.get(task), new.maturity.get(task)
        if a != b:
            out.append(Change("maturity_window_changed", None, False, True,
                              f"label {task}: maturity {_window(a)} -> {_window(b)}. Which labels "
                              "count as final changes, and with it the training set."))
    if old.tasks != new.tasks and set(old.tasks) == set(new.tasks):
        out.append(Change("stage_order_changed", None, False, True,
                          f"funnel stages {list(old.tasks)} -> {list(new.tasks)}: the model's "
                          "chain of stages changes; retrain it."))
    if old.freshness_hours != new.freshness_hours:
        tighter = new.freshness_hours is not None and (
            old.freshness_hours is None or new.freshness_hours < old.freshness_hours)
        out.append(Change("freshness_changed", None, tighter, False,
                          f"freshness SLA {_fmt(old.freshness_hours)} h -> "
                          f"{_fmt(new.freshness_hours)} h after the day ends."))
    if old.default_policy != new.default_policy:
        out.append(Change("check_policy_changed", None, False, False,
                          f"default check policy {old.default_policy} -> {new.default_policy}."))
    if old.segments != new.segments:
        out.append(Change("segments_changed", None, False, False,
                          f"monitor segments {list(old.segments)} -> {list(new.segments)}."))
    return out


def diff_contracts(old: Contract, new: Contract) -> list[Change]:
    """Every change from ``old`` to ``new``, most severe first."""
    changes = _contract_changes(old, new)
    old_f = {f.name: f for f in old.fields}
    new_f = {f.name: f for f in new.fields}
    removed = [f for n, f in old_f.items() if n not in new_f]
    added = [f for n, f in new_f.items() if n not in old_f]
    for r, a in _renames(removed, added):
        changes.append(Change("field_renamed", a.name, True, True,
                              f"{r.name} renamed to {a.name}: producers must write the new "
                              "column and the model must read it."))
    for f in removed:
        changes.append(Change("field_removed", f.name, False, f.role != "meta",
                              f"{f.name} removed: producers may stop writing it"
                              + ("; the model and monitors reading it break." if f.role != "meta"
                                 else ".")))
    for f in added:
        changes.append(Change("field_added", f.name, f.required, False,
                              f"{f.name} added" + (" as required: producers must write it "
                                                   "before this contract applies." if f.required
                                                   else " (optional).")))
    for name in (n for n in new_f if n in old_f):
        changes += _field_changes(old_f[name], new_f[name])
    if changes and any(c.breaking for c in changes) and old.version == new.version:
        changes.append(Change("version_not_bumped", None, False, False,
                              f"breaking changes but the version stays {new.version}; bump it."))
    return sorted(changes, key=lambda c: (-c.rank, -c.breaking_producers, c.kind, c.field or ""))


def is_breaking(changes: list[Change]) -> bool:
    return any(c.breaking for c in changes)


def render_markdown(old: Contract, new: Contract, changes: list[Change],
                    backtest: list[dict] | None = None) -> str:
    """The diff as Markdown for a pull request comment."""
    n_prod = sum(c.breaking_producers for c in changes)
    n_model = sum(c.breaking_model for c in changes)
    head = (f"## Contract `{new.name}`: {old.version} -> {new.version}\n\n"
            + (f"**Breaking**: {n_prod} change(s) break producers, {n_model} break the model.\n"
               if is_breaking(changes) else "No breaking change.\n"))
    if not changes:
        return head + "\nThe contracts are equivalent.\n"
    rows = ["| | change | field | breaks producers | breaks the model | what it means |",
            "|---|---|---|---|---|---|"]
    for c in changes:
        mark = "🔴" if c.breaking_producers and c.breaking_model else ("🟠" if c.breaking else "⚪")
        rows.append(f"| {mark} | {c.kind} | {c.field or '—'} | {'yes' if c.breaking_producers else 'no'} "
                    f"| {'yes' if c.breaking_model else 'no'} | {c.message} |")
    text = head + "\n" + "\n".join(rows) + "\n"
    if backtest:
        text += "\n### Backtest: what the new contract would fail\n\n"
        text += "| environment | partition | rows | failing rows (new) | failing rows (old) |\n|---|---|---|---|---|\n"
        for b in backtest:
            text += (f"| {b['environment']} | {b['partition']} | {b['rows']} | "
                     f"{b['new_failing_share']:.3%} | {b['old_failing_share']:.3%} |\n")
    return text
