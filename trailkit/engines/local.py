"""The embedded engine: DuckDB, in-process, over CloudTrail files in a folder.

It reads the delivered S3 layout (``AWSLogs/[o-id/]<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz``), any
folder of ``{"Records": [...]}`` files, and JSON-lines exports (one record per line), gzipped or not. A window
first prunes files by the date in their path, then the SQL filters ``eventtime`` exactly. The files are exposed
as a view named ``cloudtrail`` with the Athena table's columns and struct shapes, and the authored Athena SQL is
transpiled to DuckDB by sqlglot. Everything Athena-vs-DuckDB lives in this module.
"""
from __future__ import annotations

import logging
import os
import re
import time
import warnings
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import pandas as pd

from .. import schema
from ..errors import InvalidInput, QueryFailed
from ..inputs import Window
from .base import Engine, QueryStats, ScanHints

log = logging.getLogger(__name__)

LOG_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
_DATE_RE = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/[^/]+$")
# Real delivered files can exceed DuckDB's 16 MB default object size.
_MAX_OBJECT = 1 << 30


class SkippedFile(UserWarning):
    """A log file could not be read and was left out of the answer (its path is in the message)."""


@dataclass(frozen=True)
class LogFile:
    path: str
    day: date | None  # delivery date from the path, None outside the delivered layout
    size: int
    mtime_ns: int


def is_digest(rel: str) -> bool:
    return "CloudTrail-Digest" in rel


def discover(root: str | os.PathLike) -> list[LogFile]:
    """Every CloudTrail event file under ``root`` (digest files excluded), sorted by path."""
    root = Path(root)
    if not root.exists():
        raise InvalidInput(f"log folder {str(root)!r} does not exist; pass --logs DIR or set TRAILKIT_LOGS")
    if root.is_file():
        entries = [(root, root.name)]
    else:
        entries = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "CloudTrail-Digest" and not d.startswith("."))
            for name in filenames:
                if name.endswith(LOG_SUFFIXES):
                    full = os.path.join(dirpath, name)
                    entries.append((Path(full), os.path.relpath(full, root).replace(os.sep, "/")))
    files = []
    for path, rel in sorted(entries, key=lambda e: e[1]):
        if is_digest(rel):
            continue
        st = path.stat()
        m = _DATE_RE.search(rel)
        day = None
        if m:
            try:
                day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                day = None
        files.append(LogFile(str(path), day, st.st_size, st.st_mtime_ns))
    return files


def prune(files: list[LogFile], window: Window) -> list[LogFile]:
    """Files that can hold events inside ``window``, by their delivery date.

    A file is delivered after the events it holds, so nothing delivered before the window's first day can be
    in it; delivery lags by minutes, so files up to a day after the window's last day are kept as well.
    Files outside the dated layout are always kept.
    """
    if not window.bounded:
        return list(files)
    first = window.start.date() if window.start else None
    last = ((window.end - timedelta(microseconds=1)).date() + timedelta(days=1)) if window.end else None
    return [
        f for f in files
        if f.day is None or ((first is None or f.day >= first) and (last is None or f.day <= last))
    ]


@lru_cache(maxsize=256)
def transpile(sql: str) -> str:
    """Athena (Trino) SQL → DuckDB SQL. Placeholders ``:name`` become ``$name``."""
    import sqlglot

    return sqlglot.transpile(sql, read="athena", write="duckdb", pretty=True)[0]


def _records_sql(source: str) -> str:
    shape = schema.duckdb_shape().replace("'", "''")
    return (
        "SELECT\n  " + schema.duckdb_select("r") + "\nFROM (\n"
        "  SELECT unnest(CASE WHEN (json -> 'Records') IS NOT NULL\n"
        f"    THEN json_transform(json -> 'Records', '[{shape}]')\n"
        f"    ELSE [json_transform(json, '{shape}')] END) AS r\n"
        f"  FROM {source}\n)"
    )


def _source(paths: list[str]) -> str:
    from sqlglot import exp

    listing = exp.convert(list(paths)).sql(dialect="duckdb")
    return f"read_json_objects({listing}, format='auto', maximum_object_size={_MAX_OBJECT})"


class LocalEngine(Engine):
    """DuckDB over the CloudTrail files under ``path``.

    Example:
        >>> engine = LocalEngine("data/sample")
        >>> engine.run("SELECT count(*) AS n FROM cloudtrail", {})  # doctest: +SKIP
    """

    name = "local"
    dialect = "duckdb"

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None):
        super().__init__()
        self.path = Path(path)
        self.threads = threads
        self._con = None
        self.skipped: list[str] = []
        files = discover(self.path)
        if not files:
            raise InvalidInput(
                f"no CloudTrail files (.json, .json.gz, .jsonl) under {str(self.path)!r}; "
                "point --logs at the folder holding AWSLogs/ or your exported logs"
            )

    def describe(self) -> str:
        return f"local files under {self.path}"

    @property
    def con(self):
        if self._con is None:
            import duckdb

            self._con = duckdb.connect()
            # date_trunc and casts on TIMESTAMPTZ follow the session zone: investigations are in UTC, always.
            self._con.execute("SET TimeZone = 'UTC'")
            if self.threads:
                self._con.execute(f"SET threads = {int(self.threads)}")
        return self._con

    def files(self, hints: ScanHints | None = None) -> list[LogFile]:
        """The files a question with ``hints`` reads (readable ones, pruned by the window)."""
        files = discover(self.path)
        window = hints.window if hints else Window()
        return [f for f in prune(files, window) if f.path not in self.skipped]

    def _bind_view(self, files: list[LogFile]) -> None:
        # A view cannot take parameters, so the path list goes in as a literal quoted by sqlglot.
        source = _source([f.path for f in files]) if files else "(SELECT '{}'::JSON AS json WHERE false)"
        self.con.execute("CREATE OR REPLACE TEMP VIEW cloudtrail AS " + _records_sql(source))

    def explain(self, sql: str, params: dict, hints: ScanHints | None = None) -> str:
        import sqlglot
        from sqlglot import exp

        tree = sqlglot.parse_one(transpile(sql), read="duckdb")
        literal = {k: exp.convert(v) for k, v in params.items()}
        tree = tree.transform(
            lambda node: literal.get(node.name, node) if isinstance(node, (exp.Placeholder, exp.Parameter)) else node
        )
        files = self.files(hints)
        return (f"-- DuckDB over {len(files)} file(s) under {self.path} (view cloudtrail: the Athena table's columns)\n"
                + tree.sql(dialect="duckdb", pretty=True) + ";\n")

    def run(self, sql: str, params: dict, hints: ScanHints | None = None) -> pd.DataFrame:
        duck_sql = transpile(sql)
        started = time.perf_counter()
        while True:
            files = self.files(hints)
            self._bind_view(files)
            try:
                result = self.con.execute(duck_sql, params)
                huge = [d[0] for d in result.description if str(d[1]) in ("HUGEINT", "UHUGEINT")]
                df = result.df()
                break
            except Exception as e:  # duckdb.Error; the module is imported lazily
                bad = self._unreadable(files) if files else []
                if not bad:
                    raise QueryFailed(f"local query failed: {str(e).splitlines()[0]}", engine=self.name,
                                      sql=duck_sql) from e
                for path, reason in bad:
                    self.skipped.append(path)
                    warnings.warn(f"skipped unreadable file {path}: {reason}", SkippedFile, stacklevel=2)
        # count_if and sum are HUGEINT in DuckDB, which pandas receives as float: counts stay whole numbers.
        for col in huge:
            df[col] = df[col].astype("Int64")
        self._record(QueryStats(self.name, duck_sql, dict(params), time.perf_counter() - started, len(df),
                                files=len(files)))
        return df

    def _unreadable(self, files: list[LogFile]) -> list[tuple[str, str]]:
        """Find the files DuckDB cannot read, one at a time (only after a query over all of them failed)."""
        bad = []
        for f in files:
            try:
                self.con.execute(f"SELECT count(*) FROM ({_records_sql(_source([f.path]))})").fetchall()
            except Exception as e:
                bad.append((f.path, str(e).splitlines()[0]))
        return bad

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
