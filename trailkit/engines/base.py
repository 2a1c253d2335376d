"""The small contract every engine keeps."""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..inputs import Window

if TYPE_CHECKING:
    import pyarrow as pa


log = logging.getLogger(__name__)

# Athena bills USD 5 per TB scanned, rounded up to the megabyte, 10 MB at least per query.
USD_PER_TB = 5.0
_MB = 1024 ** 2
_TB = 1024 ** 4


def athena_cost_usd(bytes_scanned: int | None) -> float:
    """What Athena charges for a query that scanned ``bytes_scanned`` bytes."""
    billed = max(-(-int(bytes_scanned or 0) // _MB), 10) * _MB
    return billed / _TB * USD_PER_TB


@dataclass(frozen=True)
class ScanHints:
    """What the question is about, for engines that can skip data: the window, and the key if there is one."""

    window: Window = field(default_factory=Window)
    key: str | None = None


@dataclass
class QueryStats:
    """What one query did, readable after it ran (``engine.history``, ``Trail.last``)."""

    engine: str
    sql: str
    params: dict
    seconds: float = 0.0
    rows: int = 0
    query_id: str | None = None
    state: str | None = None
    bytes_scanned: int | None = None
    cost_usd: float | None = None
    files: int | None = None

    def summary(self) -> str:
        parts = [f"{self.engine}: {self.rows} rows in {self.seconds:.2f} s"]
        if self.files is not None:
            parts.append(f"{self.files} files read")
        if self.query_id:
            parts.append(f"query id {self.query_id}, {self.state}")
        if self.bytes_scanned is not None:
            parts.append(f"{self.bytes_scanned / _MB:.1f} MB scanned, ~USD {self.cost_usd:.4f}")
        return "; ".join(parts)


class Engine(ABC):
    """Runs authored Athena SQL (against a table called ``cloudtrail``) and returns an Arrow table."""

    name: str = "engine"
    #: the sqlglot dialect the engine executes
    dialect: str = "athena"
    #: whether a window can also be given as partition predicates (Athena with partition projection)
    partitioned: bool = False
    #: whether queries report bytes scanned and a cost
    reports_cost: bool = False

    def __init__(self):
        self.history: list[QueryStats] = []

    @abstractmethod
    def run(self, sql: str, params: dict, hints: ScanHints | None = None) -> pa.Table:
        """Execute ``sql`` with bound ``params`` and return its rows (as Arrow: the contract is applied on it)."""

    def rows(self, sql: str, params: dict, hints: ScanHints | None, columns: dict) -> tuple[list[str], list[tuple]]:
        """Column names and printable rows (see ``queries.printable``), the contract ``columns`` applied when
        given; for the command line. Engines that can answer without Arrow override it."""
        from ..queries import conform, printable

        table = self.run(sql, params, hints)
        if columns:
            table = conform(table, columns)
        return table.column_names, printable(table)

    @abstractmethod
    def explain(self, sql: str, params: dict, hints: ScanHints | None = None) -> str:
        """The exact text this engine would execute for ``sql`` and ``params`` (runs nothing)."""

    def partition_params(self, window: Window) -> dict:
        """Extra parameters that restrict the partitions scanned to ``window`` (none by default)."""
        return {}

    def partition_column(self) -> str | None:
        return None

    def describe(self) -> str:
        """A line saying where the data comes from."""
        return self.name

    @property
    def last(self) -> QueryStats | None:
        return self.history[-1] if self.history else None

    def _record(self, stats: QueryStats) -> None:
        self.history.append(stats)
        log.info("%s", stats.summary())

    def close(self) -> None:
        """Release connections."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
