"""``simulate()``: build the clean world, inject the faults, write every table.

The edge of the simulator: it checks the configuration and the target warehouse, creates the
tables of :data:`funnelguard.warehouse.metadata`, writes them in one transaction (bulk inserts,
``COPY`` on PostgreSQL) and returns a :class:`SimSummary` of what it built.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from funnelguard.errors import EnvironmentFailure
from funnelguard.simulator.config import SimConfig
from funnelguard.simulator.errors import SimConfigError, WarehouseNotEmptyError
from funnelguard.simulator.inject import ManifestEntry, apply_faults
from funnelguard.simulator.schema import TASKS, metadata

__all__ = ["SimSummary", "simulate", "LABELS_FINAL_AFTER_DAYS"]

# A label is final once the attribution window (14 days) has passed and its last landing ran.
LABELS_FINAL_AFTER_DAYS = 16
_TABLE_FRAMES = {"impressions": "impressions", "offline_features": "offline",
                 "serving_log": "online", "labels": "labels", "oracle": "oracle"}


@dataclass(frozen=True)
class SimSummary:
    """What :func:`simulate` built.

    Attributes:
        config: the configuration built.
        rows: rows written per table.
        expected_rates: mean true (oracle) probability of each task over all impressions.
        matured_rates: observed label rate of each task over the impressions whose labels are
            final as of "now" (``ds <= now - 16 days``); empty when no cohort has matured.
        matured_impressions: how many impressions ``matured_rates`` is measured on.
        manifest: the ``fault_manifest`` rows.
    """

    config: SimConfig
    rows: dict[str, int]
    expected_rates: dict[str, float]
    matured_rates: dict[str, float]
    matured_impressions: int
    manifest: tuple[ManifestEntry, ...] = field(default=())

    def describe(self) -> str:
        """A few lines for the terminal: tables, funnel rates, faults."""
        c = self.config
        lines = [f"simulated {c.days} days from {c.start} (now = {c.now:%Y-%m-%d %H:%M} UTC), "
                 f"seed {c.seed}, ~{c.per_day}/day"]
        lines.append("rows: " + ", ".join(f"{t} {n:,}" for t, n in self.rows.items()))
        lines.append("expected rate per impression: "
                     + ", ".join(f"{t} {r:.3%}" for t, r in self.expected_rates.items()))
        if self.matured_rates:
            lines.append(f"observed on {self.matured_impressions:,} matured impressions: "
                         + ", ".join(f"{t} {r:.3%}" for t, r in self.matured_rates.items()))
        else:
            lines.append(f"no matured cohort yet (labels are final {LABELS_FINAL_AFTER_DAYS} days "
                         "after the impression)")
        grouped: dict[tuple, list[ManifestEntry]] = {}
        for m in self.manifest:
            grouped.setdefault((m.spec, m.feature or m.task or "rows", m.environment), []).append(m)
        for (spec, what, env), entries in grouped.items():
            days = sorted(str(m.ds) for m in entries if m.ds)
            span = days[0] if len(set(days)) == 1 else f"{days[0]}..{days[-1]}" if days else ""
            rows = sum(m.affected_rows for m in entries)
            lines.append(f"fault {spec}: {what} {env or ''} {span} {rows:,} rows")
        return "\n".join(lines)


def _check_config(config: SimConfig) -> None:
    if config.days < 1 or config.per_day < 1:
        raise SimConfigError(f"expected --days >= 1 and --per-day >= 1, found days={config.days}, "
                             f"per_day={config.per_day}")
    if config.seed < 0:
        raise SimConfigError(f"expected a seed >= 0, found {config.seed}")


def _prepare(engine: Engine, replace: bool) -> None:
    """Create the tables; refuse a warehouse that already holds rows unless ``replace``."""
    where = engine.url.render_as_string(hide_password=True)
    insp = sa.inspect(engine)
    present = [t for t in metadata.sorted_tables if insp.has_table(t.name)]
    if present and not replace:
        with engine.connect() as conn:
            counts = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                      for t in present}
        filled = {n: c for n, c in counts.items() if c}
        if filled:
            raise WarehouseNotEmptyError(
                f"expected an empty warehouse at {where}, found "
                + ", ".join(f"{n} ({c:,} rows)" for n, c in filled.items())
                + "; pass --replace (replace=True) to rebuild it")
    if replace:
        metadata.drop_all(engine, tables=present)
    metadata.create_all(engine)


def simulate(engine: Engine, config: SimConfig, *, replace: bool = False,
             progress: bool = False) -> SimSummary:
    """Build the simulated warehouse of ``config`` in ``engine``.

    Args:
        engine: the target database (SQLite or PostgreSQL).
        config: dates, size, seed and faults.
        replace: drop and rebuild the simulator's tables if they hold rows.
        progress: show a progress bar (tqdm, on stderr) while writing.

    Returns:
        What was built: rows per table, funnel rates, the fault manifest.

    Raises:
        SimConfigError: impossible size or seed.
        WarehouseNotEmptyError: the warehouse holds rows and ``replace`` is False.
        FaultSpecError: a fault cannot be applied (e.g. an integer overflow).
        EnvironmentFailure: the database failed while writing.
    """
    from funnelguard.simulator.tables import build_clean_world
    from funnelguard.simulator.writer import write_table

    _check_config(config)
    world = build_clean_world(config)
    manifest = apply_faults(world)
    frames = {name: getattr(world, attr) for name, attr in _TABLE_FRAMES.items()}
    total = sum(len(f) for f in frames.values())
    bar = None
    if progress:
        from funnelguard.progress import progress as progress_bar

        bar = progress_bar(total, "writing warehouse", unit="row", stream=sys.stderr)
    try:
        _prepare(engine, replace)
        with engine.begin() as conn:
            for name, frame in frames.items():
                write_table(conn, metadata.tables[name], frame, bar=bar)
            if manifest:
                conn.execute(metadata.tables["fault_manifest"].insert(),
                             [{k: getattr(m, k) for k in ("fault", "spec", "feature", "task",
                                                          "environment", "ds", "affected_rows")}
                              for m in manifest])
    except sa.exc.OperationalError as exc:
        raise EnvironmentFailure(
            f"writing the warehouse at {engine.url.render_as_string(hide_password=True)} failed: "
            f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}") from exc
    finally:
        if bar is not None:
            bar.close()
    return _summarise(world, frames, manifest)


def _summarise(world, frames, manifest) -> SimSummary:
    config = world.config
    oracle, labels = world.oracle, world.labels
    expected = {t: float(oracle[f"p_{t}"].mean()) for t in TASKS}
    matured_last = (config.now.date() - dt.timedelta(days=LABELS_FINAL_AFTER_DAYS)
                    - dt.date(1970, 1, 1)).days
    matured = labels[labels["ds"].to_numpy() <= matured_last]
    rates = {t: float((matured[f"{t}_loaded_at"].to_numpy() >= 0).mean()) for t in TASKS} \
        if len(matured) else {}
    return SimSummary(config=config, rows={n: len(f) for n, f in frames.items()},
                      expected_rates=expected, matured_rates=rates,
                      matured_impressions=len(matured), manifest=tuple(manifest))


