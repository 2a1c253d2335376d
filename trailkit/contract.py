"""The column contract: what every question's answer looks like, whichever engine computed it.

A question's SQL file declares its columns and a kind for each (``time``, ``int``, ``string``, ``json``). Applied,
the contract gives exactly those columns in that order, times as UTC instants, integers as int64 and text with
'' as NULL, so the local engine and Athena give equal frames. ``json`` is text holding a JSON document from the
log (``requestparameters``): the secrets a record can carry (session tokens, secret keys, passwords, SAML
assertions) are masked in it, as in every text column of free SQL, wherever an answer is shown. It is applied in one place per engine path:

- Arrow (the API, the notebook, the report): ``Contract.conform``, called by ``Engine.table``;
- printable rows (the command line): ``Contract.printable`` on Arrow (Athena), or ``Contract.duckdb_sql``
  wrapped around the local engine's query, so the command line never imports pyarrow or pandas.

Free SQL (``trailkit sql``) has ``FREE``: its columns are whatever the query gives.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

KINDS = ("time", "int", "string", "json")
#: JSON keys whose string values are credentials: masked in every answer (matched without regard to case)
SECRET_KEYS = ("sessionToken", "secretAccessKey", "password", "newPassword", "oldPassword", "currentPassword",
               "secretString", "secretBinary", "privateKey", "clientSecret", "accessToken", "refreshToken",
               "idToken", "sAMLAssertion", "webIdentityToken", "passwordData")
MASK = "<masked>"
# RE2 (Arrow and DuckDB alike): the key, its string value (escapes included), the closing quote
SECRET_RE = '("(?i:' + "|".join(SECRET_KEYS) + r')"\s*:\s*")(?:[^"\\]|\\.)*(")'
_SECRET_SUB = r"\1" + MASK + r"\2"
_ISO_Z = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Contract:
    """The declared columns of a question as (name, kind) pairs; ``columns=None`` is free SQL."""

    columns: tuple[tuple[str, str], ...] | None

    @classmethod
    def of(cls, columns: dict) -> "Contract":
        bad = {k: v for k, v in columns.items() if v not in KINDS}
        if not columns or bad:
            raise ValueError(f"a contract needs columns of kinds {', '.join(KINDS)}; got {bad or 'none'}")
        return cls(tuple(columns.items()))

    @property
    def free(self) -> bool:
        return self.columns is None

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns or ()]

    def conform(self, table: "pa.Table") -> "pa.Table":
        """``table`` with exactly the declared columns, one Arrow type per kind (free SQL: as it is, its text
        columns masked)."""
        import pyarrow as pa

        if self.free:
            for i, field in enumerate(table.schema):
                if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                    table = table.set_column(i, field.name, _masked(table.column(i)))
            return table

        arrays = []
        for name, kind in self.columns:
            values = table.column(name) if name in table.column_names else pa.nulls(table.num_rows)
            arrays.append(_convert(values, kind))
        return pa.Table.from_arrays(arrays, names=self.names)  # (pa.table() would import pandas to sniff)

    def printable(self, table: "pa.Table", spreadsheet_safe: bool = False) -> tuple[list[str], Iterator[tuple]]:
        """Column names and rows of Python values for printing, conformed first; times as ISO 8601 text in UTC
        with a Z (whole seconds, as CloudTrail writes them); with ``spreadsheet_safe``, text a spreadsheet
        would run as a formula begins with an apostrophe (see ``FORMULA_RE``). The rows are made one Arrow
        batch at a time as they are read, so a large answer is never held twice."""
        table = self.conform(table)
        return table.column_names, (row for batch in table.to_batches() for row in self._batch_rows(batch, spreadsheet_safe))

    def printable_dicts(self, rows: list[dict], spreadsheet_safe: bool = False) -> tuple[list[str], list[tuple]]:
        """``printable`` for rows of dicts whose times are datetimes (``Graph.lineage_rows``): no pyarrow."""
        formula = re.compile(FORMULA_RE)

        def shown(value):
            if isinstance(value, datetime):
                return value.astimezone(timezone.utc).strftime(_ISO_Z)
            return "'" + value if spreadsheet_safe and isinstance(value, str) and formula.match(value) else value

        return self.names, [tuple(shown(row.get(name)) for name in self.names) for row in rows]

    @staticmethod
    def _batch_rows(batch, spreadsheet_safe: bool):
        import pyarrow as pa
        import pyarrow.compute as pc

        columns = []
        for col in batch.columns:
            if pa.types.is_timestamp(col.type):
                # to UTC first: the Z written after it must be true whatever zone the engine returned
                seconds = pc.floor_temporal(col, unit="second").cast(pa.timestamp("s", tz="UTC"))
                col = pc.strftime(seconds, format=_ISO_Z)
            elif spreadsheet_safe and (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
                formula = pc.fill_null(pc.match_substring_regex(col, FORMULA_RE), False)
                col = pc.if_else(formula, pc.binary_join_element_wise("'", col, ""), col)
            columns.append(col.to_pylist())
        return zip(*columns)

    def duckdb_sql(self, duck_sql: str, spreadsheet_safe: bool = False) -> str:
        """``duck_sql`` wrapped so DuckDB returns what ``printable`` would: declared order, times as ISO 8601 UTC
        text with a Z, BIGINT, text with '' as NULL (and, ``spreadsheet_safe``, formulas defused). An outer
        SELECT keeps its input's row order in DuckDB, so the query's ORDER BY still holds."""
        if self.free:
            return duck_sql
        convert = {  # a time that does not parse is empty, as on the Arrow path
            "json": "NULLIF(regexp_replace(CAST({0} AS VARCHAR), '" + SECRET_RE.replace("'", "''") + "', '"
                    + _SECRET_SUB + "', 'g'), '')",
            "time": "strftime(timezone('UTC', coalesce(TRY_CAST({0} AS TIMESTAMPTZ), "
                    "try_strptime(CAST({0} AS VARCHAR), '" + _AWS_TEXT_TIME + "') AT TIME ZONE 'UTC')), '"
                    + _ISO_Z + "')",
            "int": "CAST({} AS BIGINT)",
            "string": "NULLIF(CAST({} AS VARCHAR), '')",
        }
        def shown(name, kind):
            value = convert[kind].format(f'tk_result."{name}"')
            if spreadsheet_safe and kind in ("string", "json"):
                value = (f"CASE WHEN regexp_matches({value}, '{FORMULA_RE}') THEN " + QUOTE +
                         f" || {value} ELSE {value} END")
            return f'{value} AS "{name}"'

        select = ",\n  ".join(shown(name, kind) for name, kind in self.columns)
        return f"SELECT\n  {select}\nFROM (\n{duck_sql.rstrip().rstrip(';')}\n) AS tk_result"


FREE = Contract(None)

# Text a spreadsheet would run as a formula (OWASP "CSV injection") starts with one of = + - @ tab or carriage
# return. In CSV output it is written with a leading apostrophe, which spreadsheets show as text.
FORMULA_RE = "^[=+@\\t\\r-]"
QUOTE = "''''"  # SQL for the text of one apostrophe


# Characters a terminal acts on (ANSI escapes, carriage returns, newlines) or that reorder text (bidi controls):
# an attacker chooses user agents and request parameters, and must not hide rows on a responder's screen.
CONTROL = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\u061c\\u180e\\u200b-\\u200f\\u2028\\u2029\\u202a-\\u202e"
                     "\\u2060-\\u2069\\ufeff\\ufff9-\\ufffb]")


def visible(text: str) -> str:
    """``text`` with every control character written as its escape (``\\x1b``, ``\\n``, ``\\u202e``)."""
    return CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _convert(values, kind: str):
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind == "time":
        utc = pa.timestamp("us", tz="UTC")
        if pa.types.is_timestamp(values.type):
            return values.cast(utc)
        text = values.cast(pa.string())
        try:
            return text.cast(utc)  # ISO 8601, offsets honoured: every well-formed CloudTrail time
        except pa.ArrowInvalid:
            pass
        # AWS's text times (an STS expiration: "Oct 24, 2026, 11:00:00 AM", UTC) all at once; what neither reads
        # (another spelling, or not a time) one value at a time, never an error
        aws = pc.strptime(text, format=_AWS_TEXT_TIME, unit="us", error_is_null=True).cast(pa.timestamp("us"))
        aws = pc.assume_timezone(aws, "UTC")
        if aws.null_count == text.null_count:
            return aws.cast(utc)
        rest = [_instant(v) if t is None else t for v, t in zip(text.to_pylist(), aws.to_pylist())]
        return pa.array(rest, utc)
    if kind == "int":
        return values.cast(pa.int64())  # whole numbers only: a fraction is an error, not a rounding
    text = values.cast(pa.string())
    if kind == "json":
        text = _masked(text)
    # Athena's CSV results cannot tell NULL from '', and neither is worth telling apart to an investigator.
    # (Built from arrays only: turning a Python value into an Arrow scalar makes pyarrow import pandas.)
    empty = pc.invert(pc.cast(pc.utf8_length(text), pa.bool_()))
    return pc.if_else(empty, pa.nulls(len(text), pa.string()), text)


def _masked(text):
    import pyarrow.compute as pc

    return pc.replace_substring_regex(text, SECRET_RE, _SECRET_SUB)


# How AWS writes some times inside responses (STS credentials' expiration, IAM's createDate), always in UTC.
_AWS_TEXT_TIME = "%b %d, %Y, %I:%M:%S %p"


def _instant(value: str | None):
    """A time as CloudTrail or AWS writes it (ISO 8601, naive meaning UTC, or ``Jul 10, 2023, 2:25:32 PM``), as
    a UTC datetime; None when it is no time at all."""
    from datetime import datetime, timezone

    if not value:
        return None
    for parse in (datetime.fromisoformat, lambda v: datetime.strptime(v, _AWS_TEXT_TIME)):
        try:
            moment = parse(value.strip())
        except ValueError:
            continue
        return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return None


def to_frame(table: "pa.Table") -> "pd.DataFrame":
    """An answer as pandas: timestamps as datetime64[us, UTC], integers as Int64, text as the string dtype."""
    import pandas as pd
    import pyarrow as pa

    mapping = {pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype(), pa.int64(): pd.Int64Dtype(),
               pa.int32(): pd.Int64Dtype()}
    return table.to_pandas(types_mapper=mapping.get)
