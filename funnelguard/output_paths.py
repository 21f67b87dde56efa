"""Checks of the paths a command will write, made before it reads or computes anything.

A report folder (``--html``), a model folder (``train --out``), a draft file (``contracts
infer --out``) or a project folder (``init DIR``) that cannot be written should fail in the
first second with one line (exit 2), not with an ``OSError`` traceback after the whole run.
Each check looks at what is on disk now: the path itself, and the nearest of its parents that
exists (a regular file there means the folder can never be created).
"""

from __future__ import annotations

import os
from pathlib import Path

from funnelguard.errors import InputError

__all__ = ["expect_folder", "expect_file_path"]


def _file_above(path: Path) -> Path | None:
    """The nearest existing parent of ``path`` when it is not a folder, else None."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def expect_folder(flag: str, path: str | os.PathLike, what: str = "a folder") -> Path:
    """``path`` as a folder that exists or can be created.

    Args:
        flag: how the user named it (``--html``, ``--out``, ``DIR``), for the message.
        path: the folder.
        what: what it should be (``a model folder``).

    Raises:
        InputError: ``path`` is a regular file, or lies under one (exit 2).
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{flag} {path}: expected {what}, found a regular file")
    above = _file_above(folder)
    if above is not None:
        raise InputError(f"{flag} {path}: expected {what}, found a regular file where its "
                         f"folder should be ({above})")
    return folder


def expect_file_path(flag: str, path: str | os.PathLike,
                     what: str = "a file path it can write") -> Path:
    """``path`` as a file that can be written (created or replaced).

    Raises:
        InputError: ``path`` is a folder, or lies under a regular file (exit 2).
    """
    file = Path(path)
    if file.is_dir():
        raise InputError(f"{flag} {path}: expected {what}, found a directory")
    above = _file_above(file)
    if above is not None:
        raise InputError(f"{flag} {path}: expected {what}, found a regular file where its "
                         f"folder should be ({above})")
    return file
