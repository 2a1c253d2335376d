"""The embedded engine: DuckDB, in-process, over CloudTrail files in a folder.

It reads the delivered S3 layout (``AWSLogs/[o-id/]<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz``), any
folder of ``{"Records": [...]}`` files, and JSON-lines exports (one record per line), gzipped or not. A window
first prunes files by the date in their path, then the SQL filters ``eventtime`` exactly. The files are exposed
as a view named ``cloudtrail`` with the Athena table's columns and struct shapes, and the authored Athena SQL is
transpiled to DuckDB by sqlglot. Everything Athena-vs-DuckDB lives in this module.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import warnings
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .. import schema
from ..errors import InvalidInput, QueryFailed
from ..inputs import Window
from .base import Engine, QueryStats, ScanHints

if TYPE_CHECKING:
    import pyarrow as pa


log = logging.getLogger(__name__)

LOG_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
_DAY_DIR_RE = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})$")
# Real delivered files can exceed DuckDB's 16 MB default object size.
_MAX_OBJECT = 1 << 30


class SkippedFile(UserWarning):
    """A log file could not be read and was left out of the answer (its path is in the message)."""


class LogFile(NamedTuple):
    path: str
    day: date | None  # delivery date from the path, None outside the delivered layout
    size: int | None  # size and modification time: None when listed without them (no cache to key)
    mtime_ns: int | None


class Listing(NamedTuple):
    """The log files found, and the dated folders deliberately not listed (outside a window)."""

    files: list[LogFile]
    unlisted: set[str]

    def covers(self, path: str) -> bool:
        """Whether ``path`` would have been listed if it existed (so its absence means it is gone)."""
        return os.path.dirname(path) not in self.unlisted


def listing(root: str | os.PathLike, window: Window | None = None, stat: bool = True, watch=None) -> Listing:
    """The event files under ``root``. With a ``window``, dated folders outside it (see ``prune``) are not
    listed at all: a one-day question over a month of logs looks at two days of files. ``stat=False`` leaves
    out each file's size and modification time (only the cache needs them: ~5 µs a file). ``watch`` (a
    ``FolderWatch``) is given each directory before it is read."""
    root = os.fspath(root)
    if not os.path.exists(root):
        raise InvalidInput(f"log folder {root!r} does not exist; pass --logs DIR or set TRAILKIT_LOGS")
    if os.path.isfile(root):
        st = os.stat(root)
        return Listing([LogFile(root, None, st.st_size, st.st_mtime_ns)], set())
    out = Listing([], set())
    _walk(root, "", out, *_day_range(window or Window()), stat, watch)
    return out


def has_log_files(root: str | os.PathLike) -> bool:
    """Whether there is at least one event file under ``root`` (stops at the first; raises if it is missing)."""
    root = os.fspath(root)
    if not os.path.exists(root):
        raise InvalidInput(f"log folder {root!r} does not exist; pass --logs DIR or set TRAILKIT_LOGS")
    if os.path.isfile(root):
        return True
    for path, dirs, names in os.walk(root):
        dirs[:] = sorted(filter(_is_log_dir, dirs))
        if any(map(_is_log_file, names)):
            return True
    return False


def _is_log_dir(name: str) -> bool:
    """Whether a folder can hold event files (digests and hidden folders cannot)."""
    return name != "CloudTrail-Digest" and not name.startswith(".")


def _is_log_file(name: str) -> bool:
    return name.endswith(LOG_SUFFIXES) and "CloudTrail-Digest" not in name


def _walk(path: str, rel: str, out: Listing, first: date | None, last: date | None, stat: bool, watch) -> None:
    # One scandir per folder and the folder's date parsed once: a month of logs is ~10,000 files.
    m = _DAY_DIR_RE.search(rel)
    day = None
    if m:
        try:
            day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            day = None
    if day is not None and not _in_range(day, first, last):
        out.unlisted.add(path)
        return
    if watch is not None:
        watch.add(path)
    with os.scandir(path) as it:
        entries = list(it)  # listing order: answers never depend on the order files are read in
    for entry in entries:
        if entry.is_dir():
            if _is_log_dir(entry.name):
                _walk(entry.path, f"{rel}/{entry.name}" if rel else entry.name, out, first, last, stat, watch)
        elif _is_log_file(entry.name):
            if stat:
                st = entry.stat()
                out.files.append(LogFile(entry.path, day, st.st_size, st.st_mtime_ns))
            else:
                out.files.append(LogFile(entry.path, day, None, None))


def _day_range(window: Window) -> tuple[date | None, date | None]:
    """The delivery days that can hold events inside ``window``.

    A file is delivered after the events it holds, so nothing delivered before the window's first day can be
    in it; delivery lags by minutes, so files up to a day after the window's last day are kept as well.
    """
    first = window.start.date() if window.start else None
    last = ((window.end - timedelta(microseconds=1)).date() + timedelta(days=1)) if window.end else None
    return first, last


def _in_range(day: date, first: date | None, last: date | None) -> bool:
    return (first is None or day >= first) and (last is None or day <= last)


def prune(files: list[LogFile], window: Window) -> list[LogFile]:
    """Files that can hold events inside ``window``, by their delivery date (undated files always)."""
    first, last = _day_range(window)
    return [f for f in files if f.day is None or _in_range(f.day, first, last)]


@lru_cache(maxsize=256)
def transpile(sql: str) -> str:
    """Athena (Trino) SQL → DuckDB SQL. Placeholders ``:name`` become ``$name``.

    Results are also kept on disk beside the caches, per sqlglot version: importing sqlglot and transpiling
    costs a third of a second, which a repeated question should not pay.
    """
    from .cache import transpiled

    store = transpiled()
    digest = hashlib.sha256(sql.encode()).hexdigest()
    if digest not in store:
        import sqlglot

        store[digest] = sqlglot.transpile(sql, read="athena", write="duckdb", pretty=True)[0]
    return store[digest]


def _records_sql(source: str, keep: str | None = None) -> str:
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
        f"  FROM {source}\n)"
    )


def _source(paths: list[str], filename: bool = False) -> str:
    from sqlglot import exp

    listing = exp.convert(list(paths)).sql(dialect="duckdb")
    extra = ", filename=true" if filename else ""
    return f"read_json_objects({listing}, format='auto', maximum_object_size={_MAX_OBJECT}{extra})"


def _printable_sql(duck_sql: str, columns: dict) -> str:
    """``duck_sql`` with the column contract applied as ``queries.conform`` then ``queries.printable`` do on
    Arrow: declared order, times as ISO 8601 UTC text with a Z (whole seconds), BIGINT, text with '' as NULL.
    An outer SELECT keeps its input's row order in DuckDB, so the query's ORDER BY still holds."""
    convert = {
        "time": "strftime(timezone('UTC', CAST({} AS TIMESTAMPTZ)), '%Y-%m-%dT%H:%M:%SZ')",
        "int": "CAST({} AS BIGINT)",
        "string": "NULLIF(CAST({} AS VARCHAR), '')",
    }
    select = ",\n  ".join(convert[kind].format(f'tk_result."{name}"') + f' AS "{name}"'
                          for name, kind in columns.items())
    return f"SELECT\n  {select}\nFROM (\n{duck_sql.rstrip().rstrip(';')}\n) AS tk_result"


def _arrow(result) -> "pa.Table":
    """A DuckDB result as an Arrow table; ``count_if`` and ``sum`` (HUGEINT, arriving as decimals) as int64."""
    import pyarrow as pa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "makes an extra copy": still far cheaper than .df()
        table = result.to_arrow_table()
    for i, f in enumerate(table.schema):
        if pa.types.is_decimal(f.type) and f.type.scale == 0:
            table = table.set_column(i, f.name, table.column(i).cast(pa.int64()))
    return table


class LocalEngine(Engine):
    """DuckDB over the CloudTrail files under ``path``.

    Example:
        >>> engine = LocalEngine("data/sample")
        >>> engine.run("SELECT count(*) AS n FROM cloudtrail", {})  # doctest: +SKIP
    """

    name = "local"
    dialect = "duckdb"

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None, cache: bool = True,
                 cache_dir: str | os.PathLike | None = None, fast_scan: bool = True, watch: bool = True):
        """
        Args:
            path: the folder (or one file) of CloudTrail logs.
            threads: DuckDB's and the scanner's threads (default: all cores).
            cache: keep what questions read in the folder's cache (see ``trailkit.engines.cache``).
            cache_dir: where caches live (default ``$TRAILKIT_CACHE`` or ``~/.cache/trailkit``).
            fast_scan: answer questions about one key by scanning for its bytes first; False reads every
                record with DuckDB (the plain engine, kept for comparison).
            watch: keep the folder's listing between questions while inotify reports no change (see
                ``trailkit.engines.watch``); the command line, which asks one question, turns it off.
        """
        super().__init__()
        self.fast_scan = fast_scan
        self.path = Path(path)
        self.threads = threads
        self._con = None
        self.skipped: list[str] = []
        self._cache = None  # a Cache once the connection is open, with cache=True
        self._use_cache = cache
        self._cache_dir = cache_dir
        self._watching = watch
        self._watch = None  # a FolderWatch once the whole folder was listed, False where there can be none
        self._memo: Listing | None = None  # that listing, exact while the watch reports nothing
        self._prefetched = None  # a ForkedScan started by prefetch()
        if not has_log_files(self.path):
            raise InvalidInput(
                f"no CloudTrail files (.json, .json.gz, .jsonl) under {str(self.path)!r}; "
                "point --logs at the folder holding AWSLogs/ or your exported logs"
            )

    def describe(self) -> str:
        return f"local files under {self.path}"

    @property
    def con(self):
        """The DuckDB connection: to the folder's cache file when caching, else in memory."""
        if self._con is None:
            import duckdb

            if self._use_cache:
                from .cache import Cache

                cache = Cache(self.path, self._cache_dir)
                try:
                    self._con, self._cache = cache.open(), cache
                except duckdb.Error as e:  # held by another trailkit process: answer without it
                    warnings.warn(f"cache {cache.path} is in use ({str(e).splitlines()[0]}); answering without it",
                                  SkippedFile, stacklevel=3)
                    self._use_cache = False
            if self._con is None:
                self._con = duckdb.connect()
            # date_trunc and casts on TIMESTAMPTZ follow the session zone: investigations are in UTC, always.
            self._con.execute("SET TimeZone = 'UTC'")
            if self.threads:
                self._con.execute(f"SET threads = {int(self.threads)}")
        return self._con

    def _listing(self, hints: ScanHints | None) -> Listing:
        """The files of the folder: the kept listing while the watch reports no change; else a new one, of
        the whole folder under a watch where there can be one, or of the window's days only."""
        if self._memo is not None and not self._watch.changed():
            return self._memo
        self._memo = None
        if self._watching and self._watch is None:
            from .watch import FolderWatch

            self._watch = FolderWatch.open(self.path) or False
        if self._watch:
            self._memo = listing(self.path, stat=self._use_cache, watch=self._watch)
            return self._memo
        return listing(self.path, hints.window if hints else None, stat=self._use_cache)

    def files(self, hints: ScanHints | None = None) -> list[LogFile]:
        """The files a question with ``hints`` reads (readable ones, pruned by the window)."""
        return self._needed(self._listing(hints).files, hints)

    def _needed(self, files: list[LogFile], hints: ScanHints | None) -> list[LogFile]:
        window = hints.window if hints else Window()
        return [f for f in prune(files, window) if f.path not in self.skipped]

    @property
    def cache(self):
        """The folder's cache (opened with the connection), or None with ``cache=False``."""
        self.con  # noqa: B018 - opening the connection opens the cache
        return self._cache

    def _skip(self, bad: list[tuple[str, str]]) -> None:
        for path, reason in bad:
            if path not in self.skipped:
                self.skipped.append(path)
                warnings.warn(f"skipped unreadable file {path}: {reason}", SkippedFile, stacklevel=4)

    def _bind_view(self, hints: ScanHints | None) -> int:
        """Point the view ``cloudtrail`` at what the question needs; returns how many log files were read.

        With a key: the records mentioning it (from the cache, or a fast scan). Otherwise: every record of the
        files in the window (from the cache, or read directly).
        """
        found = self._listing(hints)
        needed = self._needed(found.files, hints)
        key = hints.key if hints and self.fast_scan else None
        cache = self.cache
        if cache is not None and key:
            select, params, read = cache.key_source(key, needed, found,
                                                    lambda fs: self._checked(self._scan(fs, key)))
            self._skip(cache.unreadable)
            # A view cannot take parameters: the key's rows go to a temporary table first (a few thousand rows).
            self.con.execute("CREATE OR REPLACE TEMP TABLE tk_rows AS " + select, params)
            view = "SELECT * FROM tk_rows"
        elif cache is not None:
            view, read = cache.records_source(needed, found, self._unreadable)
            self._skip(cache.unreadable)
        elif key:
            view, read = self._scan_view(self._checked(self._scan(needed, key))), len(needed)
        else:
            # A view cannot take parameters, so the path list goes in as a literal quoted by sqlglot.
            source = _source([f.path for f in needed]) if needed else "(SELECT '{}'::JSON AS json WHERE false)"
            view, read = _records_sql(source), len(needed)
        self.con.execute("CREATE OR REPLACE TEMP VIEW cloudtrail AS " + view)
        return read

    def prefetch(self, hints: ScanHints | None) -> None:
        """Start the key scan the question with ``hints`` will need in a child process now (see
        ``scan.ForkedScan``), when nothing cached can spare it: for the command line, which then imports
        DuckDB and opens the cache while the child inflates."""
        key = hints.key if hints and self.fast_scan else None
        if not key or self._prefetched is not None:
            return
        if self._use_cache:
            from .cache import cache_path

            if cache_path(self.path, self._cache_dir).exists():  # perhaps warm: do not compete with it
                return
        from .scan import ForkedScan

        self._prefetched = ForkedScan.start(os.fspath(self.path), hints.window, key, self.threads)

    def _scan(self, files: list[LogFile], key: str):
        from .scan import scan

        pending, self._prefetched = self._prefetched, None
        if pending is not None:
            result = pending.result(files, key, self.threads)
            if result is not None:
                return result
        return scan(files, key, self.threads)

    def _checked(self, result):
        """Files the scan handed back whole are read by DuckDB: make sure it can, or name them."""
        if result.whole_files:
            bad = self._unreadable(result.whole_files)
            result.unreadable += bad
            names = {p for p, _ in bad}
            result.whole_files = [f for f in result.whole_files if f.path not in names]
        return result

    def _scan_view(self, result) -> str:
        self._skip(result.unreadable)
        self.con.execute("CREATE OR REPLACE TEMP TABLE tk_hits AS SELECT unnest($docs)::JSON AS json",
                         {"docs": [d for _, d in result.documents]})
        parts = [_records_sql("(SELECT json FROM tk_hits)")]
        if result.whole_files:
            parts.append(_records_sql(_source([f.path for f in result.whole_files])))
        return "\nUNION ALL\n".join(parts)

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

    def run(self, sql: str, params: dict, hints: ScanHints | None = None) -> pa.Table:
        return self._execute(sql, params, hints, _arrow)

    def rows(self, sql: str, params: dict, hints: ScanHints | None, columns: dict) -> tuple[list[str], list[tuple]]:
        """As ``Engine.rows``, with the contract applied by DuckDB (``_printable_sql``) and its rows fetched as
        they are: no pyarrow import, and no Python work per value however many rows there are."""
        if not columns:  # free SQL: any column type, so through Arrow's general conversions
            return super().rows(sql, params, hints, columns)
        return list(columns), self._execute(sql, params, hints, lambda result: result.fetchall(),
                                            wrap=lambda duck_sql: _printable_sql(duck_sql, columns))

    def _execute(self, sql: str, params: dict, hints: ScanHints | None, fetch, wrap=None):
        """Run ``sql`` (transpiled, then passed through ``wrap``) over the view of what the question needs;
        ``fetch(result)`` collects the rows."""
        started = time.perf_counter()
        duck_sql = transpile(sql)
        if wrap is not None:
            duck_sql = wrap(duck_sql)
        while True:
            read = self._bind_view(hints)
            try:
                out = fetch(self.con.execute(duck_sql, params))
                break
            except Exception as e:  # duckdb.Error; the module is imported lazily
                direct = self.cache is None and not (hints and hints.key and self.fast_scan)
                bad = self._unreadable(self.files(hints)) if direct else []
                if not bad:
                    raise QueryFailed(f"local query failed: {str(e).splitlines()[0]}", engine=self.name,
                                      sql=duck_sql) from e
                self._skip(bad)
        self._record(QueryStats(self.name, duck_sql, dict(params), time.perf_counter() - started, len(out),
                                files=read))
        return out

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
        if self._prefetched is not None:
            self._prefetched.cancel()
            self._prefetched = None
        if self._watch:
            self._watch.close()
            self._watch, self._memo = None, None
        if self._con is not None:
            self._con.close()
            self._con = None
