"""Bounded YAML (and JSON) with line numbers: ``yaml.safe_load`` semantics, refused past limits.

Every file funnelguard reads as configuration — contracts, project files, training configs,
thresholds — goes through :func:`read_yaml_file` (or :func:`read_json_file`), so each is bounded
the same way (:class:`YamlLimits`, docs/contracts.md "Limits"): the file's size is checked before
it is read, and while the document is composed its nesting depth, node count and alias count are
counted; before anything is constructed the document's size *with every alias expanded* (what
JSON Schema, pydantic or ``json.dumps`` would walk) is measured on the composed graph, so a
400-byte alias bomb or a merge-key bomb is refused in milliseconds instead of being expanded.
Only plain YAML is accepted (mappings, lists, strings, numbers, booleans, null, dates): no
``!!python/...``, ``!!binary``, ``!!set`` or other tags, no list or mapping as a key.

The loader builds :class:`LineDict` / :class:`LineList` (plain ``dict`` and ``list``
subclasses, so JSON Schema and pydantic accept them) that remember the 1-based line of each key
and item, and reports duplicate keys instead of silently keeping the last one. Any file that
cannot be read raises :class:`YamlInputError` (exit 2) with the file, the line and what limit or
rule was broken.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from funnelguard.errors import InputError

__all__ = [
    "LIMITS",
    "LineDict",
    "LineList",
    "YamlInputError",
    "YamlLimits",
    "describe_yaml",
    "duplicate_keys_message",
    "line_of",
    "load_yaml_with_lines",
    "read_config_file",
    "read_json_file",
    "read_yaml_file",
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
_TAG_HINT = ("funnelguard reads YAML with yaml.safe_load semantics and plain data only: no Python "
             "or other tags; mappings, lists, strings, numbers, booleans, null and dates")


class YamlInputError(InputError):
    """A configuration file that cannot be read: too big, too deep, an alias bomb, not YAML ...

    Attributes:
        path: the file (or the ``where`` given to :func:`load_yaml_with_lines`).
        line: 1-based line where the problem was found, or None.
        message: what was expected and what was found.
        hint: how to fix it, or empty.
    """

    def __init__(self, path: str, line: int | None, message: str, hint: str = "") -> None:
        self.path, self.line, self.message, self.hint = path, line, message, hint
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}" + (f" (hint: {hint})" if hint else ""))


class LineDict(dict):
    """A mapping that knows its own line and the line of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class LineList(list):
    """A sequence that knows its own line and the line of each item."""

    line: int = 0
    item_lines: list[int]


def _line(mark: Any) -> int | None:
    return mark.line + 1 if mark is not None else None


class _BoundedComposer(Composer):
    """PyYAML's composer, counting depth, nodes and aliases as it goes (refusing past limits)."""

    limits: YamlLimits = LIMITS
    where: str = "<string>"

    def _refuse(self, message: str, hint: str = "") -> YamlInputError:
        return YamlInputError(self.where, _line(self.peek_event().start_mark), message, hint)

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


class _LineConstructor(yaml.constructor.SafeConstructor):
    """SafeConstructor (no Python tags) that records lines and duplicate keys."""

    def construct_mapping(self, node, deep=False):
        # A key written twice is a duplicate; a key that overrides a merged one (`<<: *base`)
        # is what merging is for.
        own = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        self.flatten_mapping(node)
        out = LineDict()
        out.line = node.start_mark.line + 1
        out.key_lines = {}
        written: set = set()
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if id(key_node) in own:
                if key in written:
                    self.duplicates.append((key_node.start_mark.line + 1, str(key)))
                written.add(key)
            out[key] = self.construct_object(value_node, deep=True)
            out.key_lines[key] = key_node.start_mark.line + 1
        return out

    def construct_sequence(self, node, deep=False):
        out = LineList(self.construct_object(child, deep=True) for child in node.value)
        out.line = node.start_mark.line + 1
        out.item_lines = [child.start_mark.line + 1 for child in node.value]
        return out


_LineConstructor.add_constructor("tag:yaml.org,2002:map", _LineConstructor.construct_mapping)
_LineConstructor.add_constructor("tag:yaml.org,2002:seq", _LineConstructor.construct_sequence)
# libyaml scans and parses (fast, no recursion); composing stays in Python so it can be bounded.
try:
    from yaml.cyaml import CParser
except ImportError:  # a PyYAML built without libyaml: the pure-Python reader and scanner
    CParser = None
_LIBYAML = CParser is not None
_PARSER = (CParser,) if _LIBYAML else (yaml.reader.Reader, yaml.scanner.Scanner,
                                             yaml.parser.Parser)


class _LineLoader(_BoundedComposer, *_PARSER, _LineConstructor, yaml.resolver.Resolver):
    def __init__(self, stream: str, limits: YamlLimits, where: str) -> None:
        if _LIBYAML:
            CParser.__init__(self, stream)
        else:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
        Composer.__init__(self)
        _LineConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self.limits, self.where = limits, where
        self._nodes = self._aliases = self._depth = 0
        self.duplicates: list[tuple[int, str]] = []


def _measure(root: Any, limits: YamlLimits, where: str) -> None:
    """Refuse a composed document whose alias-expanded form is too big or deep, or has tags.

    Aliases share nodes, so sizes are memoised per node: linear in the nodes as written, however
    large the expansion would be.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, height)
    open_: set[int] = set()
    too_deep = f"expected mappings and lists nested at most {limits.max_depth} deep with aliases"

    def refuse(node: Any, message: str, hint: str = "") -> YamlInputError:
        return YamlInputError(where, _line(node.start_mark), message, hint)

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
                         _TAG_HINT)
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


def _syntax_error(exc: yaml.YAMLError, text: str, limits: YamlLimits, where: str
                  ) -> YamlInputError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = _line(mark)
    if line is None and isinstance(getattr(exc, "position", None), int):  # a ReaderError
        line = text.count("\n", 0, exc.position) + 1
    problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
    if "nesting depth" in problem:  # libyaml's own guard (1000 levels) fired before ours
        return YamlInputError(where, line, f"expected mappings and lists nested at most "
                              f"{limits.max_depth} deep, found deeper nesting")
    context = getattr(exc, "context", None)
    hint = _TAG_HINT if "constructor" in str(exc) else ""
    return YamlInputError(where, line, f"not valid YAML: {context + ', ' if context else ''}"
                          f"{problem}", hint)


def load_yaml_with_lines(text: str, *, where: str = "<string>", limits: YamlLimits = LIMITS
                         ) -> tuple[Any, list[tuple[int, str]]]:
    """Parse one YAML document safely and within ``limits``.

    Args:
        text: the document.
        where: the file it came from, for the error.
        limits: what the document may hold (size is :func:`read_yaml_file`'s to check).

    Returns:
        (document, [(line, duplicate key), ...]).

    Raises:
        YamlInputError: not YAML, a tag ``safe_load`` refuses, a non-scalar key, or a limit
            crossed (nesting, nodes, aliases, alias expansion), with the line.
    """
    loader = None
    try:
        loader = _LineLoader(text, limits, where)  # the pure-Python reader checks characters
        root = loader.get_single_node()
        if root is None:
            return None, []
        _measure(root, limits, where)
        return loader.construct_document(root), loader.duplicates
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, text, limits, where) from None
    except RecursionError:  # not reachable within max_depth; a last line of defence
        raise YamlInputError(where, None, "expected a document nested at most "
                             f"{limits.max_depth} deep, found deeper") from None
    finally:
        if loader is not None:
            loader.dispose()


def _size(n: int) -> str:
    return f"{n} bytes" + (f" ({n / (1 << 20):.1f} MiB)" if n >= 1 << 20 else "")


def _read_text(path: Path, limits: YamlLimits, kind: str) -> str:
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


def read_yaml_file(path: str | Path, *, limits: YamlLimits = LIMITS, kind: str = "YAML file"
                   ) -> tuple[Any, list[tuple[int, str]]]:
    """Read and parse a YAML file within ``limits`` (its size is checked before it is read).

    Args:
        path: the file.
        limits: what it may hold.
        kind: what the file is, for messages (``contract file``, ``project file``).

    Returns:
        (document, [(line, duplicate key), ...]).

    Raises:
        YamlInputError: missing or unreadable, too big, not UTF-8, or any refusal of
            :func:`load_yaml_with_lines`.
    """
    path = Path(path)
    return load_yaml_with_lines(_read_text(path, limits, kind), where=str(path), limits=limits)


# One JSON token: a string, a bracket or separator, or a bare scalar (number, true, null ...).
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]|[^\s\[\]{},:"]+', re.S)


def read_json_file(path: str | Path, *, limits: YamlLimits = LIMITS, kind: str = "JSON file"
                   ) -> tuple[Any, list[tuple[int | None, str]]]:
    """Read and parse a JSON file within ``limits`` (size, nesting and node count).

    Returns:
        (document, [(line, duplicate key), ...]).

    Raises:
        YamlInputError: as :func:`read_yaml_file`, or not JSON (with line and column).
    """
    path = Path(path)
    shown = str(path)
    text = _read_text(path, limits, kind)
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


def read_config_file(path: str | Path, *, kind: str, limits: YamlLimits = LIMITS
                     ) -> tuple[Any, list[tuple[int | None, str]]]:
    """A ``.json`` file with :func:`read_json_file`, any other with :func:`read_yaml_file`."""
    reader = read_json_file if Path(path).suffix.lower() == ".json" else read_yaml_file
    return reader(path, limits=limits, kind=kind)


def duplicate_keys_message(path: str | Path, duplicates: list[tuple[int | None, str]]) -> str:
    """One line naming every duplicated key, for readers that refuse them."""
    return "; ".join(f"{path}{f':{line}' if line else ''}: key `{key}` appears twice in the "
                     "same mapping (YAML and JSON keep only the last one; remove the other)"
                     for line, key in duplicates)


def describe_yaml(value: Any, *, empty: str = "an empty document") -> str:
    """What a loaded YAML value is, in words for a message: ``a list``, ``a text``, ``a number``.

    Never a Python class name (``NoneType``, ``LineList``); ``empty`` is what None reads as
    (a whole file: an empty document; a key: ``nothing``).
    """
    import datetime as dt

    if value is None:
        return empty
    for kind, words in ((bool, "a boolean"), ((int, float), "a number"), (str, "a text"),
                        (list, "a list"), (dict, "a mapping"), (dt.datetime, "a timestamp"),
                        (dt.date, "a date")):
        if isinstance(value, kind):
            return words
    return "a value that is not plain YAML data"


def line_of(doc: Any, path: Iterable[Any]) -> int | None:
    """The line of the deepest node along ``path`` (keys and indices) that has one."""
    node, line = doc, getattr(doc, "line", None)
    for step in path:
        if isinstance(node, LineDict) and step in node:
            line = node.key_lines.get(step, line)
            node = node[step]
        elif isinstance(node, LineList) and isinstance(step, int) and 0 <= step < len(node):
            line = node.item_lines[step]
            node = node[step]
        else:
            break
    return line
