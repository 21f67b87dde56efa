"""The results site: a static HTML site built from the results store.

``build_site(store_url, out)`` reads runs, findings, metrics, training runs and models from the
store and writes an index (a status grid of partitions x datasets x checks, failures first),
one page per run (``runs/<id>.html``: findings, failing examples as stored, owners, artifacts),
one trends page per dataset (``datasets/<name>.html``), evaluation and training pages, with
plotly charts that load one local copy of plotly.js, so pages open from ``file://``.
Rebuilds skip pages of unchanged runs. ``make_server`` previews a built site on 127.0.0.1.
The CLI is ``funnelguard site build|serve`` (:mod:`monitors.site.cli`); docs/site.md has the URL
scheme alerts link to. Nothing heavy is imported until one of these names is used, so the
CLI's registration stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from monitors.site.build import BuildReport, build_site
    from monitors.site.serve import make_server

__all__ = ["build_site", "BuildReport", "make_server"]

_HOMES = {"build_site": "monitors.site.build", "BuildReport": "monitors.site.build",
          "make_server": "monitors.site.serve"}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'monitors.site' has no attribute {name!r}")
