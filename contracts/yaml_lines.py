"""YAML with line numbers: ``yaml.safe_load`` semantics, plus where every key and item was.

A :class:`yaml.SafeLoader` subclass builds :class:`LineDict` / :class:`LineList` (plain ``dict``
and ``list`` subclasses, so JSON Schema and pydantic accept them) that remember the 1-based line
of each key and item, and reports duplicate keys instead of silently keeping the last one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

__all__ = ["LineDict", "LineList", "load_yaml_with_lines", "line_of"]


class LineDict(dict):
    """A mapping that knows its own line and the line of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class LineList(list):
    """A sequence that knows its own line and the line of each item."""

    line: int = 0
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    """SafeLoader (no Python tags) that records marks and duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []

    def construct_mapping(self, node, deep=False):
        self.flatten_mapping(node)
        out = LineDict()
        out.line = node.start_mark.line + 1
        out.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in out.key_lines:
                self.duplicates.append((key_node.start_mark.line + 1, str(key)))
            out[key] = self.construct_object(value_node, deep=True)
            out.key_lines[key] = key_node.start_mark.line + 1
        return out

    def construct_sequence(self, node, deep=False):
        out = LineList(self.construct_object(child, deep=True) for child in node.value)
        out.line = node.start_mark.line + 1
        out.item_lines = [child.start_mark.line + 1 for child in node.value]
        return out


_LineLoader.add_constructor("tag:yaml.org,2002:map", _LineLoader.construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _LineLoader.construct_sequence)


def load_yaml_with_lines(text: str) -> tuple[Any, list[tuple[int, str]]]:
    """Parse one YAML document safely; returns (document, [(line, duplicate key), ...]).

    Raises:
        yaml.YAMLError: not YAML, or a tag ``safe_load`` refuses (``!!python/object`` ...).
    """
    loader = _LineLoader(text)
    try:
        doc = loader.get_single_data()
        return doc, loader.duplicates
    finally:
        loader.dispose()


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
