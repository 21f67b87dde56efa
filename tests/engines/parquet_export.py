"""Copy a project's warehouse tables into a parquet dataset, the layout both parquet engines
read: ``<root>/<table>/<partition column>=<YYYY-MM-DD>/part-0.parquet``.

Column types come from the contract (``integer`` columns stay integers with their NULLs,
timestamps are UTC), so a check counts the same rows on the copy as on the source.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

__all__ = ["export_parquet"]

_ARROW = {"integer": pa.int64(), "number": pa.float64(), "string": pa.string(),
          "boolean": pa.bool_(), "timestamp": pa.timestamp("us", tz="UTC")}


def _arrow_schema(contract, environment: str, columns) -> pa.Schema:
    by_name = {f.name: f for f in contract.fields_for(environment)}
    return pa.schema([(c, _ARROW.get(by_name[c].logical_type, pa.string()) if c in by_name
                       else pa.string()) for c in columns])


def export_parquet(project, engine: sa.Engine, root: Path, *, rows_per_file: int | None = None
                   ) -> str:
    """Write every contract table of ``project`` found in ``engine`` under ``root``.

    Args:
        project: a :class:`funnelguard.project.Project`.
        engine: its warehouse (SQLAlchemy).
        root: the dataset folder (created).
        rows_per_file: split a partition into files of at most this many rows.

    Returns:
        The folder as an absolute path (for ``parquet:///`` and ``spark+parquet:///`` URLs).
    """
    from funnelguard.warehouse import read_range

    root.mkdir(parents=True, exist_ok=True)
    inspector = sa.inspect(engine)
    for contract in (project.impressions, project.features, project.labels):
        partition = contract.partition_column
        for environment, table in contract.tables.items():
            if not inspector.has_table(table) or (root / table).exists():
                continue
            with engine.connect() as conn:
                low, high = conn.execute(sa.text(
                    f'SELECT min("{partition}"), max("{partition}") FROM "{table}"')).one()
            if low is None:
                continue
            start, end = (dt.date.fromisoformat(str(v)[:10]) for v in (low, high))
            frame = read_range(engine, table, start, end, partition_column=partition,
                               timestamps=contract.timestamp_columns(environment))
            columns = [c for c in frame.columns if c != partition]
            schema = _arrow_schema(contract, environment, columns)
            for day, rows in frame.groupby(partition, sort=True):
                folder = root / table / f"{partition}={day.isoformat()}"
                folder.mkdir(parents=True)
                data = pa.Table.from_pandas(rows[columns], schema=schema, preserve_index=False)
                step = rows_per_file or max(len(data), 1)
                for i, offset in enumerate(range(0, len(data), step)):
                    pq.write_table(data.slice(offset, step), folder / f"part-{i}.parquet")
    return str(root.resolve())
