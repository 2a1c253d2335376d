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
    from ..questions import Request, ScanHints

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


def check(engine, request: Request) -> None:
    """Refuse, before anything is sent, a question that would read every day of a date-partitioned table
    (unless ``all_time``), one that leaves an injected partition open, and one whose estimated scan is
    larger than ``max_scan``."""
    p = engine.partitioning
    hints, where = request.hints, f"table {engine.config.database}.{engine.config.table}"
    columns = "/".join(p.date_columns)
    if p.dated and not engine.config.all_time and (
            not request.contract.free and hints.window.start is None
            or request.contract.free and not bounds(request.query.text, p.date_columns)):
        what = (f"this SQL does not bound {columns} in the WHERE of every SELECT that reads cloudtrail"
                if request.contract.free else "this question has no start" if hints.window.end else
                "this question has no window")
        raise InvalidInput(
            f"{where} is partitioned by date ({columns}) and {what}: it would scan every day of the logs. "
            f"Give a window (--start 2026-10-01 --end 2026-10-31, or --start 7d)"
            f"{f' or a condition such as {columns} >= ...' if request.contract.free else ''}, or --all-time to "
            "scan everything")
    if p.account in p.injected and not request.contract.free and not hints.scope.accounts:
        raise InvalidInput(f"{where} projects its accounts as 'injected': Athena needs them named; give "
                           f"--accounts 111122223333[,...]")
    if not request.contract.free:
        _outside(engine, p, hints)
    if engine.config.max_scan is None:
        return
    if request.contract.free:
        engine.tell("free", "no scan estimate for free SQL: the query is stopped if Athena reports more than "
                   f"{size(engine.config.max_scan)} scanned")
        return
    first, last = delivery_days(hints.window) if hints.window.bounded else (p.start, None)
    if p.start and (first is None or first < p.start):
        first = p.start  # Athena reads no day before the projection's first
    accounts = [a for a in hints.scope.accounts if a in p.values.get(p.account, (a,))]
    regions = [r for r in hints.scope.regions if r in p.values.get(p.region, (r,))]
    total, how = p.estimate(engine.client("s3"), first, last, accounts, regions)
    if total is None:
        engine.tell(how, f"no scan estimate ({how}): the query is stopped if Athena reports more than "
                   f"{size(engine.config.max_scan)} scanned")
    elif total > engine.config.max_scan:
        raise InvalidInput(f"this question would scan about {size(total)} ({how}), more than --max-scan "
                           f"{size(engine.config.max_scan)}: narrow the window or --accounts/--regions, or raise --max-scan")


def _outside(engine, p, hints) -> None:
    """Say when a question asks for days, accounts or regions the table cannot hold: Athena answers nothing
    there, which would read as "nothing happened"."""
    end = hints.window.end
    if p.start and end is not None and end.date() < p.start:
        engine.tell(f"start {p.start}", f"the window ends before the table's first day ({p.start}, the start of its "
                    "date projection): the answer is empty whatever the logs hold; recreate the table with an "
                    "earlier trailkit ddl --start")
    for role, column, asked in (("accounts", p.account, hints.scope.accounts), ("regions", p.region, hints.scope.regions)):
        known = p.values.get(column)
        missing = [v for v in asked if known and v not in known]
        if missing:
            engine.tell(f"{role} {missing}", f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not among "
                        f"the table's projected {role} ({', '.join(known)}): Athena reads nothing for "
                        f"{'it' if len(missing) == 1 else 'them'}; add {'it' if len(missing) == 1 else 'them'} "
                        "to the table (trailkit ddl)")


def reuse_minutes(engine, hints: ScanHints | None) -> int | None:
    """Minutes of result reuse allowed for a question with ``hints``: never while its logs may still be
    arriving, nor when its window is not known (free SQL)."""
    minutes = engine.config.reuse_minutes
    if not minutes:
        return None
    end = hints.window.end if hints is not None else None
    settled = end + timedelta(days=1) if end is not None else None  # logs delivered late have arrived by then
    now = datetime.now(timezone.utc)
    if settled is None or settled > now:
        engine.tell("reuse", "results are not reused for a question whose window ends within the last day "
                   "(or is not known): its logs may still be arriving")
        return None
    # a result made before the window's logs had all arrived must not be reused: no older than that moment
    minutes = min(minutes, int((now - settled).total_seconds() // 60))
    if minutes < 1:
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
            self.engine.on_progress(f"athena: query {execution.state.lower()} for {elapsed:.0f} s, "
                                    f"{size(scanned)} scanned so far", elapsed, execution.state in TERMINAL)
        if execution.state in TERMINAL or self.stopped:
            return
        if self.timeout is not None and elapsed > self.timeout:
            self.stopped = f"ran past --timeout {self.timeout:g} s"
        elif self.max_scan is not None and scanned > self.max_scan:
            self.stopped = f"scanned {size(scanned)}, more than --max-scan {size(self.max_scan)}"
        else:
            return
        self.engine.connection.client.stop_query_execution(QueryExecutionId=execution.query_id)


def bounds(sql: str, columns: tuple[str, ...]) -> bool:
    """Whether every SELECT of ``sql`` that reads ``cloudtrail`` bounds one of ``columns`` from below in its
    WHERE: ``=``, ``>``, ``>=``, BETWEEN or IN on the column with the other side constant, as a condition that
    must hold (an AND term, not an OR)."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="athena")
    except sqlglot.errors.SqlglotError:
        return False
    wanted = {c.lower() for c in columns}

    def bounding(term) -> bool:
        if isinstance(term, exp.Paren):
            return bounding(term.this)
        if not isinstance(term, (exp.EQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between, exp.In)):
            return False
        column = term.this
        others = [v for k, v in term.args.items() if k != "this" and v is not None]
        flat = [x for v in others for x in (v if isinstance(v, list) else [v])]
        lower = not isinstance(term, (exp.LT, exp.LTE))  # "date" < x alone reads every day before x
        if not isinstance(column, exp.Column) and isinstance(term, (exp.EQ, exp.GT, exp.GTE, exp.LT, exp.LTE)):
            column, flat = term.expression, [term.this]
            lower = not isinstance(term, (exp.GT, exp.GTE))
        return lower and isinstance(column, exp.Column) and column.name.lower() in wanted and \
            all(not list(x.find_all(exp.Column)) for x in flat)

    readers = [s for s in tree.find_all(exp.Select)
               if any(t.name.lower() == "cloudtrail" for t in s.find_all(exp.Table) if t.find_ancestor(exp.Select) is s)]
    for select in readers:
        where = select.args.get("where")
        terms = list(where.this.flatten()) if where is not None and isinstance(where.this, exp.And) else \
            [where.this] if where is not None else []
        if not any(bounding(t) for t in terms):
            return False
    return bool(readers)


def size(n: int) -> str:
    for unit, scale in (("TB", 1024 ** 4), ("GB", 1024 ** 3), ("MB", 1024 ** 2), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
