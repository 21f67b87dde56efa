"""What a results store holds, read with a plain engine (not the product's), for the store tests."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["stored_validate_runs"]


def stored_validate_runs(url: str) -> dict[str, tuple[str, int, str | None, str | None]]:
    """partition -> (status, findings stored, project, contract) of the stored validate runs,
    read with a plain engine (not the product's)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT r.partition, r.status, r.project, r.contract, "
                "(SELECT count(*) FROM fg_findings f WHERE f.run_id = r.id) "
                "FROM fg_runs r WHERE r.command = 'validate'")).all()
    finally:
        engine.dispose()
    out: dict = {}
    for partition, status, project, contract, n in rows:
        assert partition not in out, f"two fg_runs rows for partition {partition}"
        out[partition] = (status, n, project, contract)
    return out
