"""The Athena engine: the authored SQL sent as it is through pyathena.

Configuration comes from explicit arguments, then ``TRAILKIT_*`` environment variables, then AWS's own
configuration chain (profile, region). The only rewriting of the authored SQL is textual and local: the table
name ``cloudtrail`` becomes the configured ``"database"."table"`` and ``:name`` placeholders become pyathena's
``%(name)s``, whose values pyathena escapes. On a table partitioned by date, a windowed question also bounds
the partition column by the delivery days of ``layout.delivery_days``. Answers come through pyathena's
``ArrowCursor`` as Arrow. Every query's id, state, data scanned and cost are recorded.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

from ..errors import InvalidInput, QueryFailed, require
from ..inputs import Window, identifier, quote_identifier
from .base import Engine, QueryStats, athena_cost_usd
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
}


@dataclass(frozen=True)
class AthenaConfig:
    """Where the CloudTrail table lives and how to query it.

    ``partition_column`` names the date partition (``timestamp`` in AWS's partition-projection table, values
    ``yyyy/MM/dd``); leave it unset for the console's non-partitioned table.
    """

    database: str = "default"
    table: str = "cloudtrail"
    workgroup: str | None = None
    output_location: str | None = None
    region: str | None = None
    profile: str | None = None
    partition_column: str | None = None
    partition_format: str = "%Y/%m/%d"

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
        if tok.token_type == TokenType.VAR and tok.text.lower() == "cloudtrail" and (
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
            self._connection = pyathena.connect(
                s3_staging_dir=self.config.output_location,
                work_group=self.config.workgroup,
                region_name=self.config.region,
                profile_name=self.config.profile,
                schema_name=self.config.database,
            )
        return self._connection

    # -- partitions: only this engine has them

    def render(self, request: Request) -> tuple[str, dict]:
        """The authored SQL with the date partition bounded to the window's delivery days, when the table has
        a partition column and the question a window."""
        column = self.config.partition_column
        if not column:
            return super().render(request)
        params = {**request.params, **self.partition_params(request.hints.window)}
        return request.query.render(params, quote_identifier(column, "partition column"))

    def partition_params(self, window: Window) -> dict:
        """Partition bounds for ``window``, padded as the local engine pads folders (``delivery_days``)."""
        if not window.bounded:
            return {}
        first, last = delivery_days(window)
        fmt = self.config.partition_format
        return {"partition_start": first.strftime(fmt) if first else "0000/01/01",
                "partition_end": last.strftime(fmt) if last else "9999/12/31"}

    # -- running

    def athena_sql(self, sql: str, params: dict) -> str:
        return _splice(sql, self.table_name, bool(params))

    def statement(self, request: Request) -> str:
        from pyathena.formatter import DefaultParameterFormatter

        sql, params = self.render(request)
        return DefaultParameterFormatter().format(self.athena_sql(sql, params), params or None) + ";\n"

    def run(self, sql: str, params: dict, hints: ScanHints | None = None) -> pa.Table:
        require("pyathena.arrow.cursor", "pyathena[arrow]")
        from pyathena.arrow.cursor import ArrowCursor
        from pyathena.error import Error as AthenaError

        text = self.athena_sql(sql, params)
        started = time.perf_counter()
        cursor = self.connection.cursor(ArrowCursor)
        try:
            cursor.execute(text, params or None)
            table = cursor.as_arrow()
        except AthenaError as e:
            stats = self._stats(cursor, text, params, started, 0)
            # pyathena raises before exposing the final state; a raised query did not succeed.
            stats.state = stats.state if stats.state not in (None, "SUCCEEDED") else "FAILED"
            self._record(stats)
            reason = str(e).strip() or (stats.state or "unknown reason")
            raise QueryFailed(
                f"Athena query {stats.query_id or '(not started)'} {stats.state or 'FAILED'}: {reason}",
                engine=self.name, sql=text, query_id=stats.query_id, state=stats.state,
            ) from e
        self._record(self._stats(cursor, text, params, started, table.num_rows))
        return table

    def _stats(self, cursor, text, params, started, rows) -> QueryStats:
        scanned = getattr(cursor, "data_scanned_in_bytes", None)
        return QueryStats(
            self.name, text, dict(params), time.perf_counter() - started, rows,
            query_id=getattr(cursor, "query_id", None), state=getattr(cursor, "state", None),
            bytes_scanned=scanned, cost_usd=athena_cost_usd(scanned) if scanned is not None else None,
        )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
