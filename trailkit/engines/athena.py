"""The Athena engine: the authored SQL sent as it is through pyathena.

Configuration comes from explicit arguments, then ``TRAILKIT_*`` environment variables, then AWS's own
configuration chain (profile, region). The only rewriting of the authored SQL is textual and local: the table
name ``cloudtrail`` becomes the configured ``"database"."table"`` and ``:name`` placeholders become pyathena's
``%(name)s``, whose values pyathena escapes.

The table's partitions are learned from the table itself (``athena_table``): a question bounds the date
partition by the delivery days of ``layout.delivery_days`` and the account and region partitions by the
accounts and regions it is narrowed to. Cost is bounded before it is spent: a question that would read every day
of a date-partitioned table is refused unless ``all_time`` is set; with ``max_scan`` the S3 objects under the
partitions are summed first and a larger scan is refused, and a running query that reports more, or runs past
``timeout``, is stopped (StopQueryExecution). Throttled API calls are retried by botocore's standard mode with
the attempts set here, and counted. Answers come through pyathena's ``ArrowCursor`` as Arrow. Every query's
id, state, data scanned, cost (0 when it failed or reused a result) and retries are recorded.
"""
from __future__ import annotations

import logging
import os
import re
import time
import warnings
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

from ..errors import InvalidInput, Notice, QueryFailed, require
from ..inputs import Window, byte_size, identifier, positive_int, quote_identifier, seconds
from . import athena_guard
from .athena_table import Partitioning, learn
from .base import Engine, QueryStats
from .layout import delivery_days

if TYPE_CHECKING:
    import pyarrow as pa

    from ..questions import Request, ScanHints


ENV = {
    "database": "TRAILKIT_DATABASE",
    "table": "TRAILKIT_TABLE",
    "workgroup": "TRAILKIT_WORKGROUP",
    "output_location": "TRAILKIT_OUTPUT",
    "region": "TRAILKIT_REGION",
    "profile": "TRAILKIT_PROFILE",
    "partition_column": "TRAILKIT_PARTITION_COLUMN",
    "max_scan": "TRAILKIT_MAX_SCAN",
    "timeout": "TRAILKIT_TIMEOUT",
    "reuse_minutes": "TRAILKIT_REUSE_MINUTES",
}
#: botocore's standard retry mode retries ThrottlingException and TooManyRequestsException with jittered
#: exponential backoff (at most 20 s between attempts); this many attempts in all, per API call
API_ATTEMPTS = 8
#: Athena keeps a result for reuse at most 7 days
REUSE_MAX_MINUTES = 7 * 24 * 60


@dataclass(frozen=True)
class AthenaConfig:
    """Where the CloudTrail table lives and how to query it.

    ``partition_column`` names the date partition (values ``yyyy/MM/dd``) and skips reading the table's
    definition; unset, the partitions are learned from the table (Glue, else ``information_schema``).
    ``all_time`` allows a question without a window on a date-partitioned table (it reads every day);
    ``max_scan`` (bytes) refuses a larger estimated scan and stops a query that reports more; ``timeout``
    (seconds) stops a query that runs longer; ``reuse_minutes`` lets Athena reuse a result at most that old
    (never for a window that ends within the last day).
    """

    database: str = "default"
    table: str = "cloudtrail"
    workgroup: str | None = None
    output_location: str | None = None
    region: str | None = None
    profile: str | None = None
    partition_column: str | None = None
    partition_format: str = "%Y/%m/%d"
    all_time: bool = False
    max_scan: int | None = None
    timeout: float | None = None
    reuse_minutes: int | None = None

    @classmethod
    def resolve(cls, **given) -> "AthenaConfig":
        """Explicit values first, then TRAILKIT_* variables, then the AWS config chain (region of the profile)."""
        values = {}
        for f in fields(cls):
            value = given.get(f.name)
            if value in (None, "") and f.name in ENV:
                value = os.environ.get(ENV[f.name]) or None
            if value not in (None, ""):
                values[f.name] = value
        if "max_scan" in values:
            values["max_scan"] = byte_size(values["max_scan"])
        if "timeout" in values:
            values["timeout"] = seconds(values["timeout"])
        if "reuse_minutes" in values:
            values["reuse_minutes"] = positive_int(values["reuse_minutes"], "--reuse")
            if values["reuse_minutes"] > REUSE_MAX_MINUTES:
                raise InvalidInput(f"--reuse {values['reuse_minutes']}: Athena reuses results at most "
                                   f"{REUSE_MAX_MINUTES} minutes (7 days) old")
        values["all_time"] = bool(values.get("all_time"))
        config = cls(**values)
        identifier(config.database, "database name")
        identifier(config.table, "table name")
        if config.partition_column:
            identifier(config.partition_column, "partition column")
        if config.output_location and not config.output_location.startswith("s3://"):
            raise InvalidInput(f"{config.output_location!r} is not an S3 location such as s3://my-athena-results/trailkit/")
        if config.region is None:
            boto3 = require("boto3")
            try:
                region = boto3.session.Session(profile_name=config.profile).region_name
            except Exception as e:  # botocore's ProfileNotFound and friends
                raise InvalidInput(f"AWS profile {config.profile!r} cannot be used: {e}") from e
            region = region or os.environ.get("AWS_REGION")
            if not region:
                raise InvalidInput("no AWS region: pass --region, set TRAILKIT_REGION or AWS_REGION, or configure a profile")
            config = replace(config, region=region)
        return config


def _splice(sql: str, table: str, with_params: bool) -> str:
    """Rename the ``cloudtrail`` table and turn ``:name`` into ``%(name)s``, leaving every other character as authored."""
    import sqlglot
    from sqlglot.tokens import TokenType

    tokens = sqlglot.Dialect.get_or_raise("athena").tokenize(sql)
    edits = []
    for i, tok in enumerate(tokens):
        prev = tokens[i - 1] if i else None
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        # the table after FROM, JOIN or a comma among FROM's tables, and as a qualifier (cloudtrail.eventname)
        if tok.token_type in (TokenType.VAR, TokenType.IDENTIFIER) and tok.text.lower() == "cloudtrail" and (
                prev is not None and prev.token_type in (TokenType.FROM, TokenType.JOIN, TokenType.COMMA)
                or nxt is not None and nxt.token_type == TokenType.DOT and (prev is None or prev.token_type != TokenType.DOT)):
            edits.append((tok.start, tok.end + 1, table))
        elif tok.token_type == TokenType.COLON and i + 1 < len(tokens) and tokens[i + 1].start == tok.end + 1 \
                and re.fullmatch(r"[A-Za-z_]\w*", tokens[i + 1].text):
            name = tokens[i + 1]
            edits.append((tok.start, name.end + 1, f"%({name.text})s"))
    out, pos = [], 0
    for start, end, text in edits:
        chunk = sql[pos:start]
        out.append(chunk.replace("%", "%%") if with_params else chunk)
        out.append(text)
        pos = end
    tail = sql[pos:]
    out.append(tail.replace("%", "%%") if with_params else tail)
    return "".join(out)


class AthenaEngine(Engine):
    """Athena through pyathena's ArrowCursor.

    Args:
        config: where the table is; ``AthenaConfig.resolve()`` when omitted.
        connection: an open pyathena connection to use instead of making one (tests, custom sessions).
    """

    name = "athena"
    dialect = "athena"
    reports_cost = True

    def __init__(self, config: AthenaConfig | None = None, *, connection=None):
        super().__init__()
        self.config = config or AthenaConfig.resolve()
        self._connection = connection
        self._partitioning: Partitioning | None = None
        self._retries = 0
        self._told: set[str] = set()

    @property
    def table_name(self) -> str:
        return f"{quote_identifier(self.config.database, 'database')}.{quote_identifier(self.config.table, 'table')}"

    def describe(self) -> str:
        where = f"Athena table {self.config.database}.{self.config.table} in {self.config.region}"
        return where + (f", workgroup {self.config.workgroup}" if self.config.workgroup else "")

    @property
    def connection(self):
        if self._connection is None:
            pyathena = require("pyathena", "pyathena[arrow]")
            from botocore.config import Config
            from pyathena.util import RetryConfig

            quiet = logging.getLogger("pyathena")
            if quiet.level == logging.NOTSET:  # its tracebacks would come before trailkit's one line saying why
                quiet.setLevel(logging.CRITICAL)
            try:
                self._connection = pyathena.connect(
                    s3_staging_dir=self.config.output_location,
                    work_group=self.config.workgroup,
                    region_name=self.config.region,
                    profile_name=self.config.profile,
                    schema_name=self.config.database,
                    # botocore retries throttling (counted below); pyathena's own retry would repeat it 5 times more
                    config=Config(retries={"mode": "standard", "max_attempts": API_ATTEMPTS}),
                    retry_config=RetryConfig(attempt=1),
                )
            except pyathena.error.ProgrammingError as e:
                raise InvalidInput(f"Athena cannot be asked yet ({e}); pass --output s3://BUCKET/PREFIX/ for the "
                                   "query results, or --workgroup NAME of a workgroup that has an output "
                                   "location") from None
        if not getattr(self._connection, "_trailkit_counted", False):
            self._connection.client.meta.events.register("after-call.athena", self._count_retries)
            self._connection._trailkit_counted = True
        return self._connection

    def _count_retries(self, parsed=None, **_):
        self._retries += int(((parsed or {}).get("ResponseMetadata") or {}).get("RetryAttempts") or 0)

    def client(self, service: str):
        """A boto3 client of the engine's profile and region (Glue, S3, Athena's own)."""
        import boto3

        return boto3.session.Session(profile_name=self.config.profile, region_name=self.config.region).client(service)

    # -- the table's partitions: only this engine has them

    @property
    def partitioning(self) -> Partitioning:
        """How the table is partitioned: the date column given, else learned from the table once."""
        if self._partitioning is None:
            if self.config.partition_column:
                self._partitioning = Partitioning.given(self.config.partition_column, self.config.partition_format)
            else:
                self._partitioning = learn(self.client("glue"), self._metadata, self.config.database, self.config.table)
        return self._partitioning

    def _metadata(self, sql: str, params: dict) -> list[tuple]:
        cursor = self.connection.cursor()
        cursor.execute(sql, params)
        return cursor.fetchall()

    def render(self, request: Request) -> tuple[str, dict]:
        """The authored SQL with every partition it can narrow bounded: the date by the window's delivery days,
        the account and region by the request's scope."""
        p = self.partitioning
        if request.contract.free or not p.partitioned:
            return super().render(request)
        params, predicates = dict(request.params), []
        if p.dated and request.hints.window.bounded:
            params.update(self.partition_params(request.hints.window, p.date_format))
            date = p.date_sql(lambda c: quote_identifier(c, "partition column"))
            predicates.append(f"AND {date} BETWEEN :partition_start AND :partition_end")
        for column, values in ((p.account, request.hints.scope.accounts), (p.region, request.hints.scope.regions)):
            if column and values:
                params[f"partition_{column}"] = values
                predicates.append(f"AND {quote_identifier(column, 'partition column')} IN (:partition_{column})")
        return request.query.render(params, " ".join(predicates))

    @staticmethod
    def partition_params(window: Window, fmt: str) -> dict:
        """Partition bounds for ``window`` in the partition's format ``fmt``, padded as the local engine pads
        folders (``delivery_days``)."""
        if not window.bounded:
            return {}
        first, last = delivery_days(window)
        return {"partition_start": first.strftime(fmt) if first else "0000/01/01",
                "partition_end": last.strftime(fmt) if last else "9999/12/31"}

    # -- cost before it is spent

    def check(self, request: Request) -> None:
        """Refuse, before anything is sent, what would cost more than was allowed (see ``athena_guard.check``)."""
        athena_guard.check(self, request)

    def tell(self, topic: str, message: str) -> None:
        if topic not in self._told:
            self._told.add(topic)
            warnings.warn(message, Notice, stacklevel=3)

    def table(self, request: Request) -> pa.Table:
        """The answer, once the request passed ``check`` (the command line's rows come through here too)."""
        self.check(request)
        return super().table(request)

    # -- running

    def athena_sql(self, sql: str, params: dict) -> str:
        return _splice(sql, self.table_name, bool(params))

    def explain(self, request: Request) -> str:
        """What would be sent, after the same refusals as a run (a query that would be refused is not shown
        as ready to paste)."""
        self.check(request)
        return super().explain(request)

    def statement(self, request: Request) -> str:
        from pyathena.formatter import DefaultParameterFormatter

        sql, params = self.render(request)
        return DefaultParameterFormatter().format(self.athena_sql(sql, params), params or None) + ";\n"

    def run(self, sql: str, params: dict, hints: ScanHints | None = None) -> pa.Table:
        require("pyathena.arrow.cursor", "pyathena[arrow]")
        from pyathena.arrow.cursor import ArrowCursor
        from pyathena.error import Error as AthenaError

        text = self.athena_sql(sql, params)
        reuse = athena_guard.reuse_minutes(self, hints)
        watch = athena_guard.Watch(self, self.config.timeout, self.config.max_scan)
        retries_before, started = self._retries, time.perf_counter()
        cursor = self.connection.cursor(ArrowCursor, on_poll=watch)
        options = {"result_reuse_enable": True, "result_reuse_minutes": reuse} if reuse else {}
        try:
            cursor.execute(text, params or None, on_start_query_execution=watch.started, **options)
            table = cursor.as_arrow()
        except AthenaError as e:
            stats = self._final(watch.query_id, text, params, started, retries_before)
            self._record(stats)
            raise QueryFailed(self._why(stats, watch, e), engine=self.name, sql=text, query_id=stats.query_id,
                              state=stats.state) from e
        reused = bool(getattr(cursor, "reused_previous_result", False))
        scanned = getattr(cursor, "data_scanned_in_bytes", None)
        self._record(QueryStats(self.name, text, dict(params), time.perf_counter() - started, table.num_rows,
                                query_id=getattr(cursor, "query_id", None), state=getattr(cursor, "state", None),
                                bytes_scanned=scanned, cost_usd=athena_guard.cost_of("SUCCEEDED", scanned, reused), reused=reused,
                                retries=self._retries - retries_before))
        return table

    def _final(self, query_id, text, params, started, retries_before) -> QueryStats:
        """What Athena says of a query that did not succeed (pyathena raises before exposing it)."""
        state = reason = scanned = None
        if query_id:
            try:
                execution = self.connection.client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
                state = execution["Status"]["State"]
                reason = execution["Status"].get("StateChangeReason")
                scanned = (execution.get("Statistics") or {}).get("DataScannedInBytes")
            except Exception:  # the error being reported matters more than its figures
                pass
        state = state if state not in (None, "SUCCEEDED", "QUEUED", "RUNNING") else "FAILED"
        stats = QueryStats(self.name, text, dict(params), time.perf_counter() - started, 0, query_id=query_id,
                           state=state, bytes_scanned=scanned, cost_usd=athena_guard.cost_of(state, scanned, False),
                           retries=self._retries - retries_before, reason=reason)
        return stats

    def _why(self, stats: QueryStats, watch: athena_guard.Watch, error: Exception) -> str:
        head = f"Athena query {stats.query_id or '(not started)'} {stats.state}"
        spent = f"{athena_guard.size(stats.bytes_scanned or 0)} scanned, ~USD {stats.cost_usd or 0:.4f}"
        if watch.stopped:
            return f"{head}: stopped by trailkit because it {watch.stopped} ({spent})"
        reason = stats.reason or str(error).strip() or stats.state
        if stats.state == "CANCELLED" and "scanned" in reason.lower() and "limit" in reason.lower():
            cutoff = self._workgroup_cutoff()
            limit = f" of {athena_guard.size(cutoff)}" if cutoff else ""
            return (f"{head}: Athena stopped it at the workgroup's per-query limit{limit} "
                    f"(BytesScannedCutoffPerQuery of workgroup {self.config.workgroup or 'primary'}; {spent}); "
                    "narrow the window or --accounts/--regions, or ask for a higher limit")
        if stats.retries:
            reason += f" (after {stats.retries} throttled calls were retried)"
        return f"{head}: {reason}"

    def _workgroup_cutoff(self) -> int | None:
        try:
            group = self.client("athena").get_work_group(WorkGroup=self.config.workgroup or "primary")
            return group["WorkGroup"]["Configuration"].get("BytesScannedCutoffPerQuery")
        except Exception:  # a figure for the message, not worth failing over
            return None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
