"""Cost before it is spent, on Athena: what a question may scan, and what a running query may do.

``check`` refuses, before anything is sent, a question that would read every day of a date-partitioned table
(unless ``all_time``), one that leaves an injected partition open (Athena would refuse it), and one whose
estimated scan (the S3 objects under the partitions it reads) is larger than ``max_scan``. ``Watch`` is
pyathena's poll callback: it stops a query that runs past ``timeout`` or reports more than ``max_scan``
scanned (StopQueryExecution), and reports progress. ``cost_of`` is what Athena bills for what it reported.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from ..errors import InvalidInput
from .base import athena_cost_usd
from .layout import delivery_days

if TYPE_CHECKING:
    from ..questions import Request

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


def check(engine, request: Request) -> None:
    """Refuse, before anything is sent, a question that would read every day of a date-partitioned table
    (unless ``all_time``), one that leaves an injected partition open, and one whose estimated scan is
    larger than ``max_scan``."""
    p = engine.partitioning
    hints, where = request.hints, f"table {engine.config.database}.{engine.config.table}"
    if p.date and not engine.config.all_time and (
            not request.contract.free and not hints.window.bounded
            or request.contract.free and not mentions(request.query.text, p.date)):
        what = "this SQL does not bound its partition column" if request.contract.free else "this question has no window"
        raise InvalidInput(
            f"{where} is partitioned by date ({p.date}) and {what}: it would scan every day of the logs. "
            f"Give a window (--start 2026-10-01 --end 2026-10-31, or --start 7d)"
            f"{f' or a condition on {p.date}' if request.contract.free else ''}, or --all-time to scan everything")
    if p.account in p.injected and not request.contract.free and not hints.scope.accounts:
        raise InvalidInput(f"{where} projects its accounts as 'injected': Athena needs them named; give "
                           f"--accounts 111122223333[,...]")
    if engine.config.max_scan is None:
        return
    if request.contract.free:
        engine.tell("free", "no scan estimate for free SQL: the query is stopped if Athena reports more than "
                   f"{size(engine.config.max_scan)} scanned")
        return
    first, last = delivery_days(hints.window) if hints.window.bounded else (p.start, None)
    total, how = p.estimate(engine.client("s3"), first, last, hints.scope.accounts, hints.scope.regions)
    if total is None:
        engine.tell(how, f"no scan estimate ({how}): the query is stopped if Athena reports more than "
                   f"{size(engine.config.max_scan)} scanned")
    elif total > engine.config.max_scan:
        raise InvalidInput(f"this question would scan about {size(total)} ({how}), more than --max-scan "
                           f"{size(engine.config.max_scan)}: narrow the window or --accounts/--regions, or raise --max-scan")


def reuse_minutes(engine, request: Request) -> int | None:
    """Minutes of result reuse allowed for ``request``: never while its logs may still be arriving."""
    minutes = engine.config.reuse_minutes
    if not minutes:
        return None
    end = request.hints.window.end
    if request.contract.free or end is None or end > datetime.now(timezone.utc) - timedelta(days=1):
        engine.tell("reuse", "results are not reused for a question whose window ends within the last day "
                   "(or is not known): its logs may still be arriving")
        return None
    if engine.config.output_location:
        engine.tell("reuse-output", "Athena does not reuse results when the result location is given (--output);"
                   " leave it to the workgroup to reuse results")
    return minutes


def cost_of(state: str | None, scanned: int | None, reused: bool) -> float | None:
    """What Athena bills: nothing for a failed query or a reused result; a cancelled one what it scanned."""
    if state == "FAILED" or reused:
        return 0.0
    if scanned is None:
        return None
    if state == "CANCELLED" and not scanned:
        return 0.0
    return athena_cost_usd(scanned)


class Watch:
    """pyathena's poll callback: stops a query past its deadline or its scan limit, and reports progress."""

    def __init__(self, engine, timeout: float | None, max_scan: int | None):
        self.engine, self.timeout, self.max_scan = engine, timeout, max_scan
        self.query_id: str | None = None
        self.stopped: str | None = None
        self.began = time.monotonic()

    def started(self, query_id: str) -> None:
        self.query_id = query_id
        self.began = time.monotonic()

    def __call__(self, execution) -> None:
        elapsed, scanned = time.monotonic() - self.began, execution.data_scanned_in_bytes or 0
        if self.engine.on_progress is not None:
            self.engine.on_progress(execution.state, elapsed, scanned)
        if execution.state in TERMINAL or self.stopped:
            return
        if self.timeout is not None and elapsed > self.timeout:
            self.stopped = f"ran past --timeout {self.timeout:g} s"
        elif self.max_scan is not None and scanned > self.max_scan:
            self.stopped = f"scanned {size(scanned)}, more than --max-scan {size(self.max_scan)}"
        else:
            return
        self.engine.connection.client.stop_query_execution(QueryExecutionId=execution.query_id)


def mentions(sql: str, column: str) -> bool:
    """Whether ``sql`` refers to ``column`` anywhere (a condition on the partition it can bound)."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="athena")
    except sqlglot.errors.SqlglotError:
        return False
    return any(c.name.lower() == column.lower() for c in tree.find_all(exp.Column))


def size(n: int) -> str:
    for unit, scale in (("TB", 1024 ** 4), ("GB", 1024 ** 3), ("MB", 1024 ** 2), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
