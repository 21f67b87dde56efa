"""The limits a configuration file is read within, and the code that enforces them.

:class:`YamlLimits` (docs/contracts.md "Limits") bounds every file funnelguard reads as
configuration: :func:`read_bounded_text` checks the size before reading and decodes UTF-8;
:class:`BoundedComposer` counts nesting depth, nodes and aliases while a YAML document is
composed; :func:`check_expanded` measures the composed graph with every alias expanded (and
refuses tags that are not plain data) before anything is constructed; :func:`read_json_file`
bounds depth and node count before ``json`` decodes. A refusal is a :class:`YamlInputError`
(exit 2) with the file, the line and the limit or rule broken. The line-keeping YAML loader built
on these is :mod:`contracts.yaml_lines`, which re-exports the names callers import from it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yaml.composer import Composer
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from funnelguard.errors import InputError

__all__ = [
    "LIMITS",
    "TAG_HINT",
    "BoundedComposer",
    "YamlInputError",
    "YamlLimits",
    "check_expanded",
    "mark_line",
    "read_bounded_text",
    "read_json_file",
]


@dataclass(frozen=True)
class YamlLimits:
    """What one configuration file may hold; past any of these it is refused (exit 2).

    Attributes:
        max_bytes: file size; checked before the file is read.
        max_depth: nesting of mappings and lists, aliases expanded.
        max_nodes: keys, values and items as written (each alias counts once).
        max_aliases: ``*alias`` references.
        max_expanded_nodes: nodes with every alias expanded (what a consumer walks).
    """

    max_bytes: int = 1 << 20
    max_depth: int = 64
    max_nodes: int = 50_000
    max_aliases: int = 100
    max_expanded_nodes: int = 50_000


LIMITS = YamlLimits()
# The tags yaml.safe_load resolves plain YAML to; anything else (!!python/..., !!binary, !!set,
# !!omap, a local !tag) builds objects no JSON Schema, pydantic model or JSON writer expects.
_PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in (
    "null", "bool", "int", "float", "str", "timestamp", "seq", "map", "merge", "value"))
_ALIAS_HINT = "funnelguard files need no aliases; write the values out"
TAG_HINT = ("funnelguard reads YAML with yaml.safe_load semantics and plain data only: no Python "
            "or other tags; mappings, lists, strings, numbers, booleans, null and dates")


class YamlInputError(InputError):
    """A configuration file that cannot be read: too big, too deep, an alias bomb, not YAML ...

    Attributes:
        path: the file (or the ``where`` given to
            :func:`~contracts.yaml_lines.load_yaml_with_lines`).
        line: 1-based line where the problem was found, or None.
        message: what was expected and what was found.
        hint: how to fix it, or empty.
    """

    def __init__(self, path: str, line: int | None, message: str, hint: str = "") -> None:
        self.path, self.line, self.message, self.hint = path, line, message, hint
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}" + (f" (hint: {hint})" if hint else ""))


def mark_line(mark: Any) -> int | None:
    """The 1-based line of a PyYAML mark, or None."""
    return mark.line + 1 if mark is not None else None


class BoundedComposer(Composer):
    """PyYAML's composer, counting depth, nodes and aliases as it goes (refusing past limits)."""

    limits: YamlLimits = LIMITS
    where: str = "<string>"

    def _refuse(self, message: str, hint: str = "") -> YamlInputError:
        return YamlInputError(self.where, mark_line(self.peek_event().start_mark), message, hint)

    def compose_node(self, parent, index):
        limits = self.limits
        if self.check_event(AliasEvent):
            self._aliases += 1
            if self._aliases > limits.max_aliases:
                raise self._refuse(f"expected at most {limits.max_aliases} aliases (*name), "
                                   f"found alias number {self._aliases} here", _ALIAS_HINT)
            return super().compose_node(parent, index)
        self._nodes += 1
        if self._nodes > limits.max_nodes:
            raise self._refuse(f"expected at most {limits.max_nodes} YAML nodes (keys, values, "
                               f"items), found node number {self._nodes} here")
        nested = self.check_event(SequenceStartEvent, MappingStartEvent)
        if nested:
            self._depth += 1
            if self._depth > limits.max_depth:
                raise self._refuse(f"expected mappings and lists nested at most "
                                   f"{limits.max_depth} deep, found level {self._depth} here")
        try:
            return super().compose_node(parent, index)
        finally:
            if nested:
                self._depth -= 1


def check_expanded(root: Any, limits: YamlLimits, where: str) -> None:
    """Refuse a composed document whose alias-expanded form is too big or deep, or has tags.

    Aliases share nodes, so sizes are memoised per node: linear in the nodes as written, however
    large the expansion would be.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, height)
    open_: set[int] = set()
    too_deep = f"expected mappings and lists nested at most {limits.max_depth} deep with aliases"

    def refuse(node: Any, message: str, hint: str = "") -> YamlInputError:
        return YamlInputError(where, mark_line(node.start_mark), message, hint)

    def walk(node: Any, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in sizes:
            size, height = sizes[key]
            if depth + height - 1 > limits.max_depth:
                raise refuse(node, f"{too_deep} expanded, found level {depth + height - 1}")
            return size, height
        if key in open_:
            raise refuse(node, "expected a tree, found an alias that refers to the mapping or "
                         "list containing it (a cycle)")
        if node.tag not in _PLAIN_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise refuse(node, f"not valid YAML here: expected plain data, found tag `{tag}`",
                         TAG_HINT)
        if isinstance(node, ScalarNode):
            sizes[key] = (1, 0)
            return 1, 0
        if depth > limits.max_depth:
            raise refuse(node, f"{too_deep} expanded, found level {depth}")
        children: list[Any] = node.value
        if isinstance(node, MappingNode):
            for key_node, _ in node.value:
                if not isinstance(key_node, ScalarNode):
                    found = "list" if isinstance(key_node, SequenceNode) else "mapping"
                    raise refuse(key_node, f"expected a plain key (a name), found a {found} as a "
                                 "key")
            children = [n for pair in node.value for n in pair]
        open_.add(key)
        size, height = 1, 0
        for child in children:
            child_size, child_height = walk(child, depth + 1)
            size, height = size + child_size, max(height, child_height)
            if size > limits.max_expanded_nodes:
                kind = "mapping" if isinstance(node, MappingNode) else "list"
                raise refuse(node, f"expected at most {limits.max_expanded_nodes} nodes with "
                             f"aliases expanded, found this {kind} alone expands to more (an "
                             "alias or merge-key bomb)", _ALIAS_HINT)
        open_.discard(key)
        sizes[key] = (size, height + 1)
        return size, height + 1

    walk(root, 1)


def _size(n: int) -> str:
    return f"{n} bytes" + (f" ({n / (1 << 20):.1f} MiB)" if n >= 1 << 20 else "")


def read_bounded_text(path: Path, limits: YamlLimits, kind: str) -> str:
    """The file's text as UTF-8, refusing it before reading when it is too big."""
    shown = str(path)
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise YamlInputError(shown, None, f"expected a {kind} of at most "
                                 f"{_size(limits.max_bytes)}, found {_size(size)}")
        with path.open("rb") as fh:  # read one byte past the limit: a pipe has no st_size
            data = fh.read(limits.max_bytes + 1)
    except FileNotFoundError:
        raise YamlInputError(shown, None, f"expected a {kind}, found no such file") from None
    except IsADirectoryError:
        raise YamlInputError(shown, None, f"expected a {kind}, found a directory") from None
    except OSError as exc:
        raise YamlInputError(shown, None,
                             f"cannot read the {kind}: {exc.strerror or exc}") from None
    if len(data) > limits.max_bytes:
        raise YamlInputError(shown, None, f"expected a {kind} of at most "
                             f"{_size(limits.max_bytes)}, found more")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise YamlInputError(shown, 1, "expected UTF-8 text, found UTF-16 (a byte-order mark)",
                             "save the file as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise YamlInputError(shown, line, f"expected UTF-8 text, found byte "
                             f"0x{data[exc.start]:02x} that is not (binary data or another "
                             "encoding?)", "save the file as UTF-8") from None


# One JSON token: a string, a bracket or separator, or a bare scalar (number, true, null ...).
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]|[^\s\[\]{},:"]+', re.S)


def read_json_file(path: str | Path, *, limits: YamlLimits = LIMITS, kind: str = "JSON file"
                   ) -> tuple[Any, list[tuple[int | None, str]]]:
    """Read and parse a JSON file within ``limits`` (size, nesting and node count).

    Returns:
        (document, [(line, duplicate key), ...]).

    Raises:
        YamlInputError: as :func:`~contracts.yaml_lines.read_yaml_file`, or not JSON (with line
            and column).
    """
    path = Path(path)
    shown = str(path)
    text = read_bounded_text(path, limits, kind)
    depth = nodes = 0
    for token in _JSON_TOKEN.finditer(text):  # bound it before json's recursive decoder runs
        first = token.group()[0]
        if first in "]}":
            depth -= 1
        elif first not in ",:":
            nodes += 1
            if first in "[{":
                depth += 1
            if depth > limits.max_depth:
                raise YamlInputError(shown, text.count("\n", 0, token.start()) + 1,
                                     f"expected objects and arrays nested at most "
                                     f"{limits.max_depth} deep, found deeper nesting")
            if nodes > limits.max_nodes:
                raise YamlInputError(shown, text.count("\n", 0, token.start()) + 1,
                                     f"expected at most {limits.max_nodes} JSON values (keys, "
                                     "values, items), found more")
    duplicates: list[tuple[int | None, str]] = []  # json keeps no positions

    def pairs(items: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for key, value in items:
            if key in out:
                duplicates.append((None, key))
            out[key] = value
        return out

    try:
        doc = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise YamlInputError(shown, exc.lineno, f"not valid JSON: {exc.msg} (column "
                             f"{exc.colno})") from None
    return doc, duplicates
