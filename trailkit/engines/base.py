"""The small contract every engine keeps.

An engine is given a ``Request`` (see ``trailkit.questions``) and answers it: ``render`` makes the SQL and
parameters it will run (an engine that can bound its scan adds that here), ``run`` executes SQL and returns
Arrow, and ``table``/``rows`` apply the question's column contract, once per path.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from ..questions import Request, ScanHints


log = logging.getLogger(__name__)

# Athena bills USD 5 per TB scanned, rounded up to the megabyte, 10 MB at least per query.
USD_PER_TB = 5.0
_MB = 1024 ** 2
_TB = 1024 ** 4


def athena_cost_usd(bytes_scanned: int | None) -> float:
    """What Athena charges for a query that scanned ``bytes_scanned`` bytes."""
    billed = max(-(-int(bytes_scanned or 0) // _MB), 10) * _MB
    return billed / _TB * USD_PER_TB


def progress_line(report):
    """A scan's ``progress`` callback saying files done and an estimate of the time left to ``report`` (the
    engine's ``on_progress``), or None without one."""
    if report is None:
        return None

    def said(done: int, total: int, seconds: float) -> None:
        left = seconds / done * (total - done) if done else 0
        report(f"scanning log files: {done:,} of {total:,} ({100 * done // max(total, 1)}%), about {left:.0f} s "
               "left", seconds, done >= total)

    return said


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
    files: int | None = None  # log files read for the question (the cache spares the rest)
    covered: int | None = None  # log files the question's window covers
    duplicates: int | None = None  # records counted once because their event was delivered before
    untimed: int | None = None  # records read whose eventtime is no time (left out of every window)
    skipped: list = field(default_factory=list)  # (path, why) of files that could not be read
    notes: list = field(default_factory=list)  # (path, how) of files read from an export's layout or in part
    reused: bool | None = None  # Athena answered from a previous query's result (no charge)
    retries: int = 0  # throttled API calls retried
    reason: str | None = None  # why a query did not succeed, as Athena said

    def summary(self) -> str:
        parts = [f"{self.engine}: {self.rows} rows in {self.seconds:.2f} s"]
        if self.files is not None:
            parts.append(f"{self.files} files read")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate deliveries counted once")
        if self.untimed:
            parts.append(f"{self.untimed} records without a usable time")
        if self.skipped:
            parts.append(f"{len(self.skipped)} files skipped")
        if self.query_id:
            parts.append(f"query id {self.query_id}, {self.state}")
        if self.reused:
            parts.append("reused a previous result (no charge)")
        if self.bytes_scanned is not None:
            parts.append(f"{self.bytes_scanned / _MB:.1f} MB scanned, ~USD {self.cost_usd or 0:.4f}")
        if self.retries:
            parts.append(f"{self.retries} throttled calls retried")
        return "; ".join(parts)


class Engine(ABC):
    """Answers requests written in Athena SQL (against a table called ``cloudtrail``).

    Capability flags say what callers may expect instead of probing for methods.
    """

    name: str = "engine"
    #: the sqlglot dialect the engine executes
    dialect: str = "athena"
    #: whether queries report bytes scanned and a cost
    reports_cost: bool = False

    def __init__(self):
        self.history: list[QueryStats] = []
        #: long work's progress: called with (a line saying how far it is, seconds since it began, finished)
        self.on_progress = None
        self._snapshot: dict | None = None  # window -> the listing its questions read, within ``snapshot()``

    @contextmanager
    def snapshot(self):
        """Within it, the questions read one listing of the data (per window): several questions that make one
        answer (a lineage's links, then its figures) see the same files. Outside it, each question looks again."""
        self._snapshot = {}
        try:
            yield self
        finally:
            self._snapshot = None

    # -- what callers use

    def render(self, request: Request) -> tuple[str, dict]:
        """The authored SQL and parameters this engine runs for ``request`` (no partitions by default)."""
        return request.query.render(request.params)

    def table(self, request: Request) -> pa.Table:
        """The answer as Arrow, the question's contract applied (the one place, for the Arrow path)."""
        sql, params = self.render(request)
        return request.contract.conform(self.run(sql, params, request.hints))

    def rows(self, request: Request, spreadsheet_safe: bool = False) -> tuple[list[str], list[tuple]]:
        """Column names and printable rows (times as ISO 8601 text with Z), the contract applied: what the
        command line prints (``spreadsheet_safe`` for CSV). Engines that can answer without Arrow override it."""
        return request.contract.printable(self.table(request), spreadsheet_safe)

    def explain(self, request: Request) -> str:
        """The exact text this engine would execute for ``request`` (runs nothing): ``statement`` and, where
        the engine has one, a line saying what it would read."""
        return self.statement(request)

    def prepare(self, request: Request) -> None:
        """Start, ahead of time, work the question will need (nothing by default); for the command line."""

    def lineage_keys(self, key: str, links: Request) -> frozenset | None:
        """The keys of ``key``'s lineage (a superset), found by reading the data once for them and the links
        (``links``: the links question), so that the links and the lineage's figures are then answered from what
        was found; None where the engine does not do that (the links are then asked whole)."""
        return None

    def describe(self) -> str:
        """A line saying where the data comes from."""
        return self.name

    def generation(self) -> object | None:
        """Something equal between two moments only if the data cannot have changed in between (a watched,
        unchanged folder's listing); None when that cannot be known, and then nothing is reused."""
        return None

    # -- what engines implement

    @abstractmethod
    def run(self, sql: str, params: dict, hints: ScanHints | None = None) -> pa.Table:
        """Execute rendered ``sql`` with bound ``params``; the rows as Arrow, before the contract."""

    @abstractmethod
    def statement(self, request: Request) -> str:
        """The SQL this engine sends for ``request``, values in place (reads nothing, runs nothing)."""

    # -- bookkeeping

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
