"""Errors of the monitors (drift, default rate, skew, freshness), each with its exit code.

``MonitorInputError`` (exit 2): the monitor cannot run on what it was given — a partition with
no rows, a contract without the tables or features the monitor needs. The message says what
was expected, what was found and where (table, partition, warehouse). Failed checks are
findings, never errors.
"""

from __future__ import annotations

from funnelguard.errors import InputError

__all__ = ["MonitorInputError", "EmptyPartition"]


class MonitorInputError(InputError):
    """A monitor cannot run on its input (exit 2)."""


class EmptyPartition(MonitorInputError):
    """The partition to compare has no rows in a table the comparison needs."""

    def __init__(self, table: str, partition: str, where: str) -> None:
        super().__init__(
            f"expected rows with ds = {partition} in table {table!r} of warehouse {where}, "
            f"found none (run `funnelguard freshness` to see which partitions arrived)")
        self.table = table
        self.partition = partition
