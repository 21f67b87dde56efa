"""Publishing a trained model directory and recording it as the champion in the results store.

The nightly job trains a candidate into a scratch directory; once it has passed the guard and
the evaluation against the champion, :func:`publish_model` copies it to
``PUBLISHED_ROOT/VERSION`` and records it in ``fg_models`` as the only champion, in one
transaction. The version is the one ``funnelguard train`` recorded for the directory (its row
is moved to the published path), else one derived from the as-of date; either way a rerun of
the same night replaces its model instead of adding one.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from funnelguard.errors import InputError

__all__ = ["PublishedModel", "nightly_version", "champion", "publish_model"]


@dataclass(frozen=True)
class PublishedModel:
    """A model in ``fg_models``: its version, directory and as-of date."""

    version: str
    path: str
    as_of: str
    is_champion: bool


def nightly_version(as_of: str) -> str:
    """The version name of the model trained as of ``as_of`` (one per night)."""
    return f"funnel-asof-{as_of}"


def champion(store) -> PublishedModel | None:
    """The current champion, or ``None`` before the first model is published."""
    from monitors.store.models import ModelRow

    with store.session() as s:
        row = s.scalars(sa.select(ModelRow).where(ModelRow.is_champion.is_(True))
                        .order_by(ModelRow.created_at.desc())).first()
    if row is None:
        return None
    return PublishedModel(row.version, row.path, row.as_of, row.is_champion)


def _trained_row(session, out_dir: str):
    """The ``fg_models`` row ``funnelguard train`` wrote for this directory, if any."""
    from monitors.store.models import ModelRow

    return session.scalars(sa.select(ModelRow).where(ModelRow.path == out_dir)
                           .order_by(ModelRow.id.desc())).first()


def _training_run_id(session, out_dir: str) -> int | None:
    from monitors.store.models import TrainingRun

    return session.scalars(sa.select(TrainingRun.id).where(TrainingRun.out_dir == out_dir)
                           .order_by(TrainingRun.id.desc())).first()


def publish_model(store, *, model_dir: str | Path, as_of: str, published_root: str | Path,
                  metrics: dict[str, Any] | None = None) -> PublishedModel:
    """Copy a trained model directory under ``published_root`` and make it the champion.

    Args:
        store: an open :class:`monitors.store.Store`.
        model_dir: the trained (and evaluated) model directory.
        as_of: the training as-of date, ISO.
        published_root: where published models live; the model goes to ``root/VERSION``.
        metrics: evaluation numbers to keep beside the model.

    Raises:
        InputError: ``model_dir`` is not a directory.
    """
    from monitors.store.models import ModelRow

    source = Path(model_dir)
    if not source.is_dir():
        raise InputError(f"expected a trained model directory to publish, found nothing at {source}")
    with store.session() as s:
        trained = _trained_row(s, str(source))
        version = trained.version if trained is not None else nightly_version(as_of)
    target = Path(published_root).resolve() / version
    staging = target.with_name(target.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    with store.session() as s, s.begin():
        s.execute(sa.update(ModelRow).values(is_champion=False))
        row = s.scalars(sa.select(ModelRow).where(ModelRow.version == version)).one_or_none()
        run_id = _training_run_id(s, str(source))
        if row is None:
            row = ModelRow(version=version, path=str(target), as_of=as_of)
            s.add(row)
        row.training_run_id = row.training_run_id or run_id
        row.path = str(target)
        row.as_of = as_of
        row.is_champion = True
        row.metrics = {**(row.metrics or {}), **(metrics or {})}
    return PublishedModel(version, str(target), as_of, True)
