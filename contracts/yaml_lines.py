"""YAML with line numbers: ``yaml.safe_load`` semantics, within :mod:`contracts.yaml_limits`.

Every file funnelguard reads as configuration — contracts, project files, training configs,
thresholds — goes through :func:`read_yaml_file` (or :func:`read_json_file`, or
:func:`read_config_file` which picks one by suffix), so each is bounded the same way
(:class:`YamlLimits`, docs/contracts.md "Limits"; the limits, the bounded composer, the
alias-expansion measure and the bounded file reads live in :mod:`contracts.yaml_limits` and are
re-exported here). Only plain YAML is accepted (mappings, lists, strings, numbers, booleans,
null, dates): no ``!!python/...``, ``!!binary``, ``!!set`` or other tags, no list or mapping as a
key.

The loader builds :class:`LineDict` / :class:`LineList` (plain ``dict`` and ``list``
subclasses, so JSON Schema and pydantic accept them) that remember the 1-based line of each key
and item, and reports duplicate keys instead of silently keeping the last one; :func:`line_of`
finds the line of a path in the document. Any file that cannot be read raises
:class:`YamlInputError` (exit 2) with the file, the line and what limit or rule was broken.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer

from contracts.yaml_limits import (
    LIMITS,
    TAG_HINT,
    BoundedComposer,
    YamlInputError,
    YamlLimits,
    check_expanded,
    mark_line,
    read_bounded_text,
    read_json_file,
)

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


class LineDict(dict):
    """A mapping that knows its own line and the line of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class LineList(list):
    """A sequence that knows its own line and the line of each item."""

    line: int = 0
    item_lines: list[int]


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


class _LineLoader(BoundedComposer, *_PARSER, _LineConstructor, yaml.resolver.Resolver):
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


def _syntax_error(exc: yaml.YAMLError, text: str, limits: YamlLimits, where: str
                  ) -> YamlInputError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark_line(mark)
    if line is None and isinstance(getattr(exc, "position", None), int):  # a ReaderError
        line = text.count("\n", 0, exc.position) + 1
    problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
    if "nesting depth" in problem:  # libyaml's own guard (1000 levels) fired before ours
        return YamlInputError(where, line, f"expected mappings and lists nested at most "
                              f"{limits.max_depth} deep, found deeper nesting")
    context = getattr(exc, "context", None)
    hint = TAG_HINT if "constructor" in str(exc) else ""
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
        check_expanded(root, limits, where)
        return loader.construct_document(root), loader.duplicates
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, text, limits, where) from None
    except RecursionError:  # not reachable within max_depth; a last line of defence
        raise YamlInputError(where, None, "expected a document nested at most "
                             f"{limits.max_depth} deep, found deeper") from None
    finally:
        if loader is not None:
            loader.dispose()


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
    text = read_bounded_text(path, limits, kind)
    return load_yaml_with_lines(text, where=str(path), limits=limits)


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
