"""The simulated warehouse's catalogue: the packaged demo project, as its contracts describe it.

The simulator is one project among others. Its tables, feature specs and funnel stages are read
from the packaged contracts (``contracts/funnelguard.yaml``), so what it writes is exactly what
those contracts promise; only the two tables no contract covers (``oracle``, the simulator's
ground truth, and ``fault_manifest``) are defined here. The world generator (``world.py``,
``funnel.py``) knows its own features by name: it is this project's data, not the product's.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa

from funnelguard.project import PACKAGED_PROJECT, Project, load_project
from funnelguard.warehouse import FeatureSpec, tables_for

__all__ = [
    "packaged_project",
    "TASKS",
    "FEATURES",
    "FEATURE_BY_NAME",
    "ITEM_TYPES",
    "DEVICE_TYPES",
    "TIMESTAMP_COLUMNS",
    "feature_names",
    "metadata",
    "impressions",
    "offline_features",
    "serving_log",
    "labels",
    "oracle",
    "fault_manifest",
]


@functools.cache
def packaged_project() -> Project:
    """The packaged demo project (the simulator's warehouse)."""
    return load_project(PACKAGED_PROJECT)


def _categories(name: str) -> tuple[str, ...]:
    return next(f.categories for f in packaged_project().feature_specs() if f.name == name)


@functools.cache
def _metadata() -> sa.MetaData:
    project = packaged_project()
    md = tables_for(project.contracts.values())
    key, part = project.key_column, project.features.partition_column
    sa.Table("oracle", md, sa.Column(key, sa.Text, nullable=False),
             sa.Column(part, sa.Date, nullable=False),
             *[sa.Column(f"p_{t}", sa.Float(precision=53), nullable=False) for t in project.tasks],
             sa.Index(f"ix_oracle_{part}", part))
    sa.Table("fault_manifest", md,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("fault", sa.Text, nullable=False), sa.Column("spec", sa.Text, nullable=False),
             sa.Column("feature", sa.Text), sa.Column("task", sa.Text),
             sa.Column("environment", sa.Text), sa.Column(part, sa.Date),
             sa.Column("affected_rows", sa.BigInteger, nullable=False))
    return md


def feature_names(kinds=None) -> list[str]:
    """The packaged project's feature names, optionally only those of the given kinds."""
    return [f.name for f in packaged_project().feature_specs() if kinds is None or f.kind in kinds]


_PROJECT = packaged_project()
TASKS: tuple[str, ...] = _PROJECT.tasks
FEATURES: tuple[FeatureSpec, ...] = _PROJECT.feature_specs()
FEATURE_BY_NAME: dict[str, FeatureSpec] = {f.name: f for f in FEATURES}
ITEM_TYPES: tuple[str, ...] = _categories("item_type")
DEVICE_TYPES: tuple[str, ...] = _categories("device_type")
TIMESTAMP_COLUMNS: dict[str, tuple[str, ...]] = {
    c.table(env): c.timestamp_columns(env) for c in _PROJECT.contracts.values() for env in c.tables}
metadata: sa.MetaData = _metadata()
impressions, offline_features, serving_log, labels, oracle, fault_manifest = (
    metadata.tables[n] for n in ("impressions", "offline_features", "serving_log", "labels",
                                 "oracle", "fault_manifest"))
