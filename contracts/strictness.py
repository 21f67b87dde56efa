"""Strict checking of a contract document: ODCS v3 JSON Schema, our extension schema, SQL names.

The standard's JSON Schema ships inside the installed ``open_data_contract_standard`` package;
ours is ``contracts/schema/funnelguard-extensions.json`` (the ``customProperties`` at the
contract, its team and each property). Every error becomes a :class:`Problem` with the line of
the offending key (from :mod:`contracts.yaml_lines`) and, for a misspelling, a hint.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from contracts.errors import Problem
from contracts.yaml_lines import LineDict, LineList, line_of

__all__ = ["schema_problems", "extension_problems", "identifier_problems", "looks_like_project",
           "PROJECT_HINT"]

HERE = Path(__file__).resolve().parent
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# Words that are reserved in PostgreSQL or SQLite and would need quoting everywhere.
_RESERVED = frozenset("""all and any as asc between by case cast check column constraint create
default delete desc distinct drop else end except from grant group having in index insert
intersect into is join limit not null offset on or order primary references select table then
to union unique update user using values when where with""".split())


@functools.cache
def _schemas() -> tuple[Any, Any]:
    import jsonschema

    odcs = json.loads(importlib.resources.files("open_data_contract_standard")
                      .joinpath("schema.json").read_text())
    ours = json.loads((HERE / "schema" / "funnelguard-extensions.json").read_text())
    return (jsonschema.Draft201909Validator(odcs), jsonschema.Draft201909Validator(ours))


@functools.cache
def _vocabulary() -> tuple[str, ...]:
    """Every key name either schema knows, for "did you mean" hints."""
    words: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("properties",):
                if isinstance(node.get(key), dict):
                    words.update(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for validator in _schemas():
        walk(validator.schema)
    return tuple(sorted(words))


def _did_you_mean(word: Any, candidates: Any, cutoff: float = 0.6) -> str:
    # The word itself is no suggestion: a key the schema knows elsewhere (`warehouse` of a
    # server) is still unknown where it stands.
    others = [str(c) for c in candidates if str(c) != str(word)]
    match = difflib.get_close_matches(str(word), others, n=1, cutoff=cutoff)
    return f"did you mean `{match[0]}`?" if match else ""


PROJECT_HINT = "lint a project file with `funnelguard contracts lint --project PATH`"


def looks_like_project(doc: Any) -> bool:
    """A project file (``funnelguard.yaml``: ``contracts:`` mapping parts to files) given where
    a contract was expected."""
    return isinstance(doc, dict) and isinstance(doc.get("contracts"), dict) \
        and "apiVersion" not in doc


def _where(doc: Any, path: list[Any]) -> str:
    """Readable location: ``property `credit_score``` or ``team`` or the key path."""
    if len(path) >= 4 and path[0] == "schema" and path[2] == "properties":
        try:
            name = doc["schema"][path[1]]["properties"][path[3]].get("name")
        except (KeyError, IndexError, TypeError, AttributeError):
            name = None
        rest = ".".join(str(p) for p in path[4:])
        return f"property `{name or path[3]}`" + (f" key `{rest}`" if rest else "")
    return "top level" if not path else "`" + ".".join(str(p) for p in path) + "`"


def _leaf_errors(error: Any) -> Iterator[Any]:
    """oneOf/anyOf errors say little: report their most specific sub-errors instead."""
    if error.context:
        specific = [e for e in error.context if e.validator not in ("type", "oneOf", "anyOf")]
        for sub in specific or error.context:
            yield from _leaf_errors(sub)
    else:
        yield error


def schema_problems(path: str, doc: Any) -> list[Problem]:
    """Every violation of the ODCS v3 JSON Schema, deduplicated, with lines and hints."""
    problems: dict[tuple, Problem] = {}
    label = "ODCS v3"
    for top in _schemas()[0].iter_errors(doc):
        for err in _leaf_errors(top):
            rel = list(err.absolute_path)
            line = line_of(doc, rel)
            where = _where(doc, rel)
            if err.validator in ("unevaluatedProperties", "additionalProperties"):
                keys = re.findall(r"'([^']+)'", err.message.split("(")[-1]) or ["?"]
                # A project file's keys get no spelling hints: the loader says what it is.
                project = not rel and looks_like_project(doc)
                for key in keys:
                    key_line = line_of(doc, rel + [key]) or line
                    problems[(key_line, key)] = Problem(
                        path, key_line, f"unknown key `{key}` in {where} ({label})",
                        "" if project else _did_you_mean(key, _vocabulary()))
                continue
            if err.validator == "enum":
                msg = f"{where}: expected one of {err.validator_value}, found {err.instance!r}"
                hint = _did_you_mean(err.instance, err.validator_value, 0.5)
            elif err.validator == "required":
                missing = re.findall(r"'([^']+)' is a required", err.message)
                msg = f"{where}: missing required key `{missing[0] if missing else err.message}`"
                hint = ""
            elif err.validator == "type":
                msg = (f"{where}: expected {err.validator_value}, found "
                       f"{type(err.instance).__name__} {err.instance!r}")
                hint = ""
            elif err.validator == "pattern":
                msg = f"{where}: expected a value matching {err.validator_value}, found {err.instance!r}"
                hint = "names must be safe SQL identifiers" if "A-Za-z_" in err.validator_value else ""
            else:
                msg = f"{where}: {err.message}"
                hint = ""
            problems[(line, msg)] = Problem(path, line, f"{msg} ({label})", hint)
    return list(problems.values())


def _custom_properties(node: Any) -> tuple[LineDict, list[tuple[int | None, str]]]:
    """A customProperties list as {property: value} (lines kept) and duplicate names."""
    out = LineDict()
    out.key_lines, out.line = {}, getattr(node, "line", 0)
    dupes: list[tuple[int | None, str]] = []
    if not isinstance(node, list):
        return out, dupes
    for i, item in enumerate(node):
        if isinstance(item, dict) and isinstance(item.get("property"), str):
            name = item["property"]
            if name in out:
                dupes.append((node.item_lines[i] if isinstance(node, LineList) else None, name))
            out[name] = item.get("value")
            out.key_lines[name] = (item.key_lines.get("value") if isinstance(item, LineDict)
                                   else None) or (node.item_lines[i] if isinstance(node, LineList) else 0)
    return out, dupes


def extension_problems(path: str, doc: dict) -> tuple[list[Problem], dict[str, Any]]:
    """Check our customProperties at the contract, team and each property; return them too."""
    ours = _schemas()[1]
    problems: list[Problem] = []
    found: dict[str, Any] = {"contract": {}, "team": {}, "property": {}}
    places: list[tuple[str, Any, str]] = [("contract", doc.get("customProperties"), "the contract")]
    if isinstance(doc.get("team"), dict):
        places.append(("team", doc["team"].get("customProperties"), "team"))
    for obj in doc.get("schema") or []:
        for prop in (obj.get("properties") or []) if isinstance(obj, dict) else []:
            if isinstance(prop, dict):
                places.append(("property", prop.get("customProperties"), f"property `{prop.get('name')}`"))
    for kind, node, where in places:
        values, dupes = _custom_properties(node)
        for line, name in dupes:
            problems.append(Problem(path, line, f"customProperty `{name}` given twice in {where}"))
        sub = ours.evolve(schema=ours.schema["properties"][kind])
        for err in sub.iter_errors(values):
            for leaf in _leaf_errors(err):
                rel = list(leaf.absolute_path)
                line = line_of(values, rel[:1]) or getattr(node, "line", None)
                if leaf.validator == "additionalProperties":
                    for key in re.findall(r"'([^']+)'", leaf.message.split("(")[-1]):
                        problems.append(Problem(
                            path, values.key_lines.get(key, line),
                            f"unknown customProperty `{key}` in {where} (funnelguard extensions)",
                            _did_you_mean(key, ours.schema["properties"][kind]["properties"])))
                    continue
                key = ".".join(str(p) for p in rel) or "customProperties"
                hint = (_did_you_mean(leaf.instance, leaf.validator_value, 0.5)
                        if leaf.validator == "enum" else "")
                problems.append(Problem(
                    path, line, f"customProperty `{key}` in {where}: {leaf.message}", hint))
        if kind == "property":
            found["property"][where] = values
        else:
            found[kind] = values
    return problems, found


def identifier_problems(path: str, line: int | None, what: str, name: Any) -> list[Problem]:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        return [Problem(path, line, f"{what}: expected a safe SQL identifier "
                        f"(letters, digits, _; not starting with a digit), found {name!r}",
                        "rename it; quoting is not supported")]
    if name.lower() in _RESERVED:
        return [Problem(path, line, f"{what}: {name!r} is a reserved SQL word",
                        "choose a name that needs no quoting")]
    return []

