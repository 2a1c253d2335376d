"""The incremental columnar cache of the local engine: instant repeats on the same files.

One DuckDB database file per log folder, under the user's cache directory (``$TRAILKIT_CACHE``, else
``$XDG_CACHE_HOME/trailkit``, else ``~/.cache/trailkit``). Two kinds of entries, both keyed by each source
file's path, size and modification time, so new or changed files are read again and removed files dropped:

- ``key_records``: for one access key, the records that mention it (what the fast scan found), already in the
  Athena table's columns, and the list of files scanned for it. A second question about the same key reads
  no log file at all.
- ``records``: every record of the files a question without a key needed (e.g. a one-day window), already
  in the Athena table's columns.

Entries are filled lazily by the questions that need them, for the files those questions read. A cache that
cannot be opened or has another layout is deleted and rebuilt, never trusted.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

from .local import LogFile, SkippedFile, _records_sql, _source

VERSION = 2


def default_dir() -> Path:
    base = os.environ.get("TRAILKIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "trailkit")
    return Path(base)


def cache_path(root: str | os.PathLike, directory: str | os.PathLike | None = None) -> Path:
    """Where the cache of the log folder ``root`` lives."""
    real = os.path.realpath(os.fspath(root))
    digest = hashlib.sha256(real.encode()).hexdigest()[:16]
    return Path(directory or default_dir()) / f"{Path(real).name or 'root'}-{digest}.duckdb"


def _literal(value) -> str:
    from sqlglot import exp

    return exp.convert(value).sql(dialect="duckdb")


class Cache:
    """The cache of one log folder, attached to a DuckDB connection as ``tk_cache``."""

    def __init__(self, root: str | os.PathLike, directory: str | os.PathLike | None = None):
        self.root = os.fspath(root)
        self.path = cache_path(root, directory)
        self._con = None
        # What each entry covers, as last read or written by this process (the file is ours while attached).
        self._known: dict[tuple, dict] = {}

    # -- opening

    def attach(self, con) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._attach(con)
        except Exception as e:  # a torn or foreign file: never trusted, rebuilt
            if "lock" in str(e).lower():
                raise
            warnings.warn(f"cache {self.path} was unreadable ({str(e).splitlines()[0]}); rebuilding it",
                          SkippedFile, stacklevel=3)
            self._detach(con)
            for p in (self.path, Path(str(self.path) + ".wal")):
                p.unlink(missing_ok=True)
            self._attach(con)
        self._con = con

    def _attach(self, con) -> None:
        con.execute(f"ATTACH {_literal(str(self.path))} AS tk_cache")
        tables = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'tk_cache'").fetchall()}
        if tables and ("meta" not in tables or
                       con.execute("SELECT max(version) FROM tk_cache.meta").fetchone()[0] != VERSION):
            raise ValueError(f"cache layout is not version {VERSION}")
        # A schema check: reading one row of each table proves the file is whole enough to use.
        for table in tables:
            con.execute(f"SELECT * FROM tk_cache.{table} LIMIT 1").fetchall()
        if not tables:
            con.execute("CREATE TABLE tk_cache.meta (version INTEGER, root VARCHAR)")
            con.execute("INSERT INTO tk_cache.meta VALUES (?, ?)", [VERSION, os.path.realpath(self.root)])
            con.execute("CREATE TABLE tk_cache.key_files (key VARCHAR, path VARCHAR, size BIGINT, mtime BIGINT)")
            con.execute("CREATE TABLE tk_cache.key_records AS SELECT ''::VARCHAR AS key, * FROM (" +
                        _records_sql("(SELECT '{}'::JSON AS json, ''::VARCHAR AS filename WHERE false)",
                                     keep="filename") + ")")
            con.execute("CREATE TABLE tk_cache.rec_files (path VARCHAR, size BIGINT, mtime BIGINT)")
            con.execute("CREATE TABLE tk_cache.records AS " +
                        _records_sql("(SELECT '{}'::JSON AS json, ''::VARCHAR AS filename WHERE false)",
                                     keep="filename"))

    @staticmethod
    def _detach(con) -> None:
        try:
            con.execute("DETACH tk_cache")
        except Exception:
            pass

    # -- bookkeeping

    def _stale(self, table: str, where: str, needed: list[LogFile], present: set[str]):
        known = self._known.get((table, where))
        if known is None:
            known = self._known[(table, where)] = {p: (s, m) for p, s, m in self._con.execute(
                f"SELECT path, size, mtime FROM tk_cache.{table} WHERE {where}").fetchall()}
        gone = [p for p in known if p not in present]
        stale = [f for f in needed if known.get(f.path) != (f.size, f.mtime_ns)]
        return gone, stale

    def _covered(self, table: str, where: str, gone: list[str], files: list[LogFile]) -> None:
        known = self._known[(table, where)]
        for path in gone:
            known.pop(path, None)
        known.update({f.path: (f.size, f.mtime_ns) for f in files})

    def _forget(self, tables: dict[str, str], where: str, paths: list[str]) -> None:
        """Delete the rows of ``paths`` from each table (name -> its path column) that match ``where``."""
        if not paths:
            return
        self._con.execute("CREATE OR REPLACE TEMP TABLE tk_forget AS SELECT unnest($p) AS path", {"p": paths})
        for table, column in tables.items():
            self._con.execute(f"DELETE FROM tk_cache.{table} WHERE {where} AND {column} IN (SELECT path FROM tk_forget)")

    # -- the two entries

    def key_source(self, key: str, needed: list[LogFile], present: set[str], scan) -> tuple[str, int]:
        """SELECT of the records mentioning ``key`` in ``needed`` (Athena columns), refreshed first.

        ``scan(files)`` is the engine's fast scan. Returns the SELECT and how many files had to be read.
        """
        where = f"key = {_literal(key)}"
        gone, stale = self._stale("key_files", where, needed, present)
        self.unreadable = []
        if gone or stale:
            result = scan(stale)
            bad = {p for p, _ in result.unreadable}
            scanned = [f for f in stale if f.path not in bad]  # unreadable ones are tried (and named) again
            con = self._con
            con.execute("BEGIN TRANSACTION")
            try:
                self._forget({"key_records": "filename", "key_files": "path"}, where, gone + [f.path for f in stale])
                if scanned:
                    self._insert_frame("key_files", {"key": [key] * len(scanned), "path": [f.path for f in scanned],
                                                     "size": [f.size for f in scanned],
                                                     "mtime": [f.mtime_ns for f in scanned]})
                insert = f"INSERT INTO tk_cache.key_records SELECT {_literal(key)}, * FROM "
                if result.documents:
                    self._insert_frame(None, {"filename": [p for p, _ in result.documents],
                                              "json": [d for _, d in result.documents]},
                                       insert + "(" + _records_sql(
                                           "(SELECT json::JSON AS json, filename FROM tk_frame)", keep="filename") + ")")
                if result.whole_files:
                    con.execute(insert + "(" + _records_sql(
                        _source([f.path for f in result.whole_files], filename=True), keep="filename") + ")")
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                self._known.pop(("key_files", where), None)
                raise
            self._covered("key_files", where, gone, scanned)
            self.unreadable = result.unreadable
        return f"SELECT * EXCLUDE (key, filename) FROM tk_cache.key_records WHERE {where}", len(stale)

    def records_source(self, needed: list[LogFile], present: set[str], find_unreadable) -> tuple[str, int]:
        """SQL source of every record of ``needed`` (Athena columns), refreshed first."""
        gone, stale = self._stale("rec_files", "TRUE", needed, present)
        self.unreadable = []
        if gone or stale:
            todo = list(stale)
            con = self._con
            while True:
                con.execute("BEGIN TRANSACTION")
                try:
                    self._forget({"records": "filename", "rec_files": "path"}, "TRUE", gone + [f.path for f in stale])
                    if todo:
                        con.execute("INSERT INTO tk_cache.records " +
                                    _records_sql(_source([f.path for f in todo], filename=True), keep="filename"))
                        self._insert_frame("rec_files", {"path": [f.path for f in todo],
                                                         "size": [f.size for f in todo],
                                                         "mtime": [f.mtime_ns for f in todo]})
                    con.execute("COMMIT")
                    self._covered("rec_files", "TRUE", gone, todo)
                    break
                except Exception:
                    con.execute("ROLLBACK")
                    self._known.pop(("rec_files", "TRUE"), None)
                    bad = find_unreadable(todo)
                    if not bad:
                        raise
                    self.unreadable += bad
                    names = {p for p, _ in bad}
                    todo = [f for f in todo if f.path not in names]
        return "SELECT * EXCLUDE (filename) FROM tk_cache.records", len(stale)

    def _insert_frame(self, table: str | None, columns: dict, sql: str | None = None) -> None:
        """Insert ``columns`` (name -> list) into ``table``, or run ``sql`` reading them as ``tk_frame``."""
        import pandas as pd

        self._con.register("tk_frame", pd.DataFrame(columns))
        try:
            self._con.execute(sql or f"INSERT INTO tk_cache.{table} SELECT * FROM tk_frame")
        finally:
            self._con.unregister("tk_frame")

    # -- showing and clearing

    def summary(self, con) -> dict:
        keys = con.execute("SELECT key, count(*) FROM tk_cache.key_files GROUP BY key ORDER BY key").fetchall()
        files = con.execute("SELECT count(*) FROM tk_cache.rec_files").fetchone()[0]
        records = con.execute("SELECT count(*) FROM tk_cache.records").fetchone()[0]
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return {"path": str(self.path), "bytes": size, "keys": dict(keys), "record_files": files, "records": records}


def clear(root: str | os.PathLike | None = None, directory: str | os.PathLike | None = None) -> list[Path]:
    """Delete the cache of ``root``, or every trailkit cache when ``root`` is None. Returns what was removed."""
    if root is not None:
        base = cache_path(root, directory)
        targets = [p for p in base.parent.glob(base.name + "*") if p.is_file()]
    else:
        d = Path(directory or default_dir())
        targets = [p for p in d.glob("*.duckdb*")] if d.exists() else []
    for p in targets:
        p.unlink()
    return targets
