"""Every command's --help reads as plain text: no reStructuredText markup, no cut sentence."""

from __future__ import annotations

import argparse

import pytest

from funnelguard.cli import build_parser


def _commands(parser: argparse.ArgumentParser, prefix: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}", sub
                yield from _commands(sub, f"{prefix}{name} ")


COMMANDS = dict(_commands(build_parser()))


def test_every_command_is_listed():
    assert {"validate", "drift", "gate", "train", "evaluate", "init", "runs list",
            "site build", "store sync", "alerts preview"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_is_plain_and_whole(name):
    parser = COMMANDS[name]
    text = parser.format_help()
    assert "``" not in text and ":mod:" not in text and ":func:" not in text
    description = (parser.description or "").strip()
    if description:
        assert description[-1] in ".?)", f"{name}: description cut: {description[-40:]!r}"
