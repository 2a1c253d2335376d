"""The DuckDB side of the local engine's SQL: CloudTrail records as the Athena table, and Athena SQL transpiled.

``records_sql`` turns rows holding JSON (whole ``{"Records": [...]}`` files, or single records) into the Athena
table's columns and struct shapes (see ``trailkit.schema``); ``source`` reads files for it. ``transpile`` turns
the authored Athena (Trino) SQL into DuckDB's dialect with sqlglot, keeping the results on disk beside the
caches. Every Athena-vs-DuckDB difference lives here and in ``trailkit.schema``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from .. import schema
from ..paths import cache_dir

if TYPE_CHECKING:
    import pyarrow as pa

# Real delivered files can exceed DuckDB's 16 MB default object size.
MAX_OBJECT = 1 << 30
#: a source with the shape ``source`` gives, and no rows
EMPTY = "(SELECT '{}'::JSON AS json, ''::VARCHAR AS filename WHERE false)"


def records_sql(source: str, keep: str | None = None) -> str:
    """Records of ``source`` (rows with a ``json`` column: whole files or single records) as Athena columns.

    ``keep`` names one more column of ``source`` to carry through, first (the cache keeps ``filename``).
    """
    shape = schema.duckdb_shape().replace("'", "''")
    carry = f"{keep}, " if keep else ""
    return (
        f"SELECT\n  {carry}" + schema.duckdb_select("r") + "\nFROM (\n"
        f"  SELECT {carry}unnest(CASE WHEN (json -> 'Records') IS NOT NULL\n"
        f"    THEN json_transform(json -> 'Records', '[{shape}]')\n"
        f"    ELSE [json_transform(json, '{shape}')] END) AS r\n"
        f"  FROM {source}\n)\n"
        # a JSON object with none of CloudTrail's event fields is not an event (a digest, a settings file)
        "WHERE r.eventID IS NOT NULL OR r.eventTime IS NOT NULL OR r.eventName IS NOT NULL "
        "OR r.eventSource IS NOT NULL"
    )


def records_table(con, table: str, texts: list[str], as_json: bool = False) -> None:
    """The records of ``texts`` (single records as a scan cuts them out, or whole documents), in their order, into
    the temporary table ``table``, as ``records_sql`` reads them. Where no text can be a ``{"Records": [...]}``
    document (none holds that name, nor a ``\\u`` escape that could hide it: CloudTrail's own records), each is
    parsed once, not three times, and the records are checked to be events once they are columns (a filter on
    the parsed struct copies all of it). Their order is kept: it decides which of two copies of an event that
    differ is the one counted. ``as_json``: the texts as they are, in a column ``json`` (for ``records_sql``, to
    read what a question needs)."""
    source = "(SELECT unnest($texts) AS json)"
    if as_json:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT json::JSON AS json FROM {source}", {"texts": texts})
    elif any('"Records"' in t or "\\u" in t for t in texts):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {records_sql(source)}", {"texts": texts})
    else:
        shape = schema.duckdb_shape().replace("'", "''")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {schema.duckdb_select('r')} FROM (SELECT "
                    f"json_transform(json, '{shape}') AS r FROM {source})", {"texts": texts})
        con.execute(f"DELETE FROM {table} WHERE {NOT_AN_EVENT}")


# a JSON object with none of CloudTrail's event fields is not an event (a digest, a settings file)
NOT_AN_EVENT = "eventid IS NULL AND eventtime IS NULL AND eventname IS NULL AND eventsource IS NULL"


def literal_path(path: str) -> str:
    """``path`` as a glob pattern that matches only itself: DuckDB expands ``*``, ``?`` and ``[...]`` in the
    names it is given, so ``part[1].json.gz`` would be missed and ``part1.json.gz`` read twice."""
    return "".join(f"[{c}]" if c in "[*?" else c for c in path)


def source(paths: list[str], filename: bool = False) -> str:
    """A table function reading ``paths`` as JSON documents (the path list as a literal quoted by sqlglot;
    file names are data, never patterns)."""
    from sqlglot import exp

    listing = exp.convert([literal_path(p) for p in paths]).sql(dialect="duckdb")
    extra = ", filename=true" if filename else ""
    return f"read_json_objects({listing}, format='auto', maximum_object_size={MAX_OBJECT}{extra})"


@lru_cache(maxsize=256)
def transpile(sql: str) -> str:
    """Athena (Trino) SQL → DuckDB SQL. Placeholders ``:name`` become ``$name``.

    Results are also kept on disk beside the caches, per sqlglot version: importing sqlglot and transpiling
    costs a third of a second, which a repeated question should not pay.
    """
    store = transpiled()
    digest = hashlib.sha256(sql.encode()).hexdigest()
    if digest not in store:
        import sqlglot

        store[digest] = sqlglot.transpile(sql, read="athena", write="duckdb", pretty=True)[0]
        _prewarm(store)
    return store[digest]


def _prewarm(store: dict) -> None:
    """While sqlglot is loaded anyway, the one-key questions' usual SQL too (the key alone, no window): the first
    question pays for the next ones, which then start without importing sqlglot at all."""
    import sqlglot

    from .. import questions
    from ..inputs import KeyMatch

    key = KeyMatch.parse("AKIAIOSFODNN7EXAMPLE")
    for request in (questions.usage(key), questions.ips(key), questions.owner(key), questions.minted(key)):
        sql = request.query.render(request.params)[0]
        for text in filter(None, (sql, copies_of(sql))):  # the question, and its count of copies set aside
            digest = hashlib.sha256(text.encode()).hexdigest()
            if digest not in store:
                store[digest] = sqlglot.transpile(text, read="athena", write="duckdb", pretty=True)[0]


class _Transpiled(dict):
    """Athena→DuckDB translations on disk (a small JSON file), written through on every addition."""

    def __init__(self, path: Path):
        self.path = path
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            stored = {}
        super().__init__(stored if isinstance(stored, dict) and all(isinstance(v, str) for v in stored.values())
                         else {})

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self))
            tmp.replace(self.path)  # atomic: a reader sees the old file or the new one
        except OSError:  # a read-only cache directory costs speed, not answers
            pass


@lru_cache(maxsize=None)
def transpiled() -> dict:
    """The on-disk store of transpiled SQL for the installed sqlglot (its output may change between versions).

    The installation is told apart by its version file's path, size and time, which an upgrade changes:
    asking importlib.metadata for the version costs more than the lookup it keys.
    """
    from importlib.util import find_spec

    spec = find_spec("sqlglot")
    origin = os.path.join(os.path.dirname(spec.origin), "_version.py") if spec and spec.origin else ""
    try:
        st = os.stat(origin)
        stamp = f"{origin}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        stamp = origin
    return _Transpiled(cache_dir() / f"transpiled-sqlglot-{hashlib.sha256(stamp.encode()).hexdigest()[:12]}.json")


def with_values(duck_sql: str, params: dict) -> str:
    """``duck_sql`` with its ``$name`` placeholders replaced by literals (for showing, never for running). The
    same statement asked again (an investigation re-run in a notebook) is not parsed again."""
    return _with_values(duck_sql, tuple(sorted(params.items())))


@lru_cache(maxsize=64)
def _with_values(duck_sql: str, params: tuple) -> str:
    import sqlglot
    from sqlglot import exp

    literal = {k: exp.convert(v) for k, v in params}
    tree = sqlglot.parse_one(duck_sql, read="duckdb").transform(
        lambda node: literal.get(node.name, node) if isinstance(node, (exp.Placeholder, exp.Parameter)) else node)
    return tree.sql(dialect="duckdb", pretty=True)


def arrow(result) -> "pa.Table":
    """A DuckDB result as an Arrow table; ``count_if`` and ``sum`` (HUGEINT, arriving as decimals) as int64."""
    import pyarrow as pa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "makes an extra copy": still far cheaper than .df()
        table = result.to_arrow_table()
    for i, f in enumerate(table.schema):
        if pa.types.is_decimal(f.type) and f.type.scale == 0:
            table = table.set_column(i, f.name, table.column(i).cast(pa.int64()))
    return table


def plain_name(path: str) -> bool:
    """Whether DuckDB can be given this file's name (it takes names as UTF-8 text)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def interruptibly(connection, work):
    """``work()`` on a thread of its own, so that Ctrl-C reaches this one at once and interrupts DuckDB
    (which does not look for signals while it runs) on the connection ``connection()`` returns then: stopped
    within a second, a transaction under way rolled back."""
    import threading

    box, done = {}, threading.Event()

    def run():
        try:
            box["out"] = work()
        except BaseException as e:  # noqa: B036 - handed to the caller as it is
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=run, name="trailkit-query", daemon=True).start()
    try:  # (an Event, not Thread.join: a join cut short by Ctrl-C may later return before the thread ends)
        while not done.wait(0.05):
            pass
    except KeyboardInterrupt:
        con = connection()
        if con is not None:
            con.interrupt()
        done.wait(10)  # DuckDB stops at its next check; a transaction under way is rolled back
        raise
    if "error" in box:
        raise box["error"]
    return box["out"]


def copies_of(sql: str) -> str | None:
    """The Athena SQL counting the copies a question's ``delivered`` part sets aside, or None if it has none."""
    head, sep, _ = sql.partition("\n)\nSELECT")
    if not sep or not head.lstrip().upper().startswith("WITH DELIVERED AS ("):
        return None
    return head + "\n)\nSELECT count(*) AS copies FROM delivered WHERE delivery > 1 AND eventid IS NOT NULL"


def counted(con, sql: str, params: dict) -> tuple[int | None, int | None]:
    """What one of trailkit's questions set aside, in one query over the view: how many records it counted once
    because their event had been delivered before (the questions number each event's copies in a first part
    ``delivered``, see ``queries/``; records without an ``eventid`` are never copies), and how many records read
    have no usable time. (None, None) when that cannot be told."""
    copies_sql = copies_of(sql)
    if copies_sql is None:
        return None, None
    query = transpile(copies_sql)
    used = {k: v for k, v in params.items() if re.search(rf"\${k}\b", query)}
    untimed = "(SELECT count(*) FROM cloudtrail WHERE TRY_CAST(eventtime AS TIMESTAMPTZ) IS NULL)"
    try:
        copies, none = con.execute(f"SELECT ({query.rstrip().rstrip(';')}), {untimed}", used).fetchone()
    except Exception as e:  # duckdb.Error: an interruption goes on up, anything else leaves them untold
        if type(e).__name__ == "InterruptException":
            raise
        return None, None
    return int(copies), int(none)
