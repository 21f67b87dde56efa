"""Errors of the monitors (drift, default rate, skew, freshness), each with its exit code.

``MonitorInputError`` (exit 2): the monitor cannot run on what it was given — a partition with
no rows, a contract without the tables, key or partition column the monitor needs. The message
says what was expected, what was found and where (table, partition, warehouse, contract file).
Failed checks are findings, never errors.
"""

from __future__ import annotations

from funnelguard.errors import InputError

__all__ = ["MonitorInputError", "EmptyPartition", "ContractShapeError"]


class MonitorInputError(InputError):
    """A monitor cannot run on its input (exit 2)."""


class EmptyPartition(MonitorInputError):
    """The partition to compare has no rows in a table the comparison needs."""

    def __init__(self, table: str, partition: str, where: str, *,
                 partition_column: str = "partition") -> None:
        super().__init__(
            f"expected rows with {partition_column} = {partition} in table {table!r} of "
            f"warehouse {where}, found none (run `funnelguard freshness` to see which "
            "partitions arrived)")
        self.table = table
        self.partition = partition
        self.partition_column = partition_column


class ContractShapeError(MonitorInputError):
    """The contract lacks something a monitor needs (an environment's table, a key, a partition)."""

    def __init__(self, contract_name: str, contract_path: str, expected: str, found: str) -> None:
        super().__init__(f"contract {contract_name} ({contract_path}): expected {expected}, "
                         f"found {found}")
        self.contract_name = contract_name
