"""The incremental columnar cache of the local engine: instant repeats on the same files.

One DuckDB database file per log folder, under the user's cache directory (``$TRAILKIT_CACHE``, else
``$XDG_CACHE_HOME/trailkit``, else ``~/.cache/trailkit``); the engine's connection is to that file. Two kinds of
entries, both keyed by each source file's path, size, modification time and inode change time, so new or
changed files are read again (a rewrite that keeps size and modification time too) and removed files dropped:

- ``key_records``: for one access key, the records that mention it (what the fast scan found), already in the
  Athena table's columns, and the list of files scanned for it (``key_files``). A second question about the
  same key reads no log file at all.
- ``records``: every record of the files a question without a key needed (e.g. a one-day window), in the same
  columns, and the files they came from (``rec_files``).

Entries are filled lazily by the questions that need them, for the files those questions read. A cache that
cannot be opened or has another layout is deleted and rebuilt, never trusted.
"""
from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path

from ..errors import SkippedFile
from ..paths import cache_dir
from .duck import EMPTY, records_sql, source
from .layout import Listing, LogFile

VERSION = 5


def cache_path(root: str | os.PathLike, directory: str | os.PathLike | None = None) -> Path:
    """Where the cache of the log folder ``root`` lives."""
    real = os.path.realpath(os.fspath(root))
    digest = hashlib.sha256(real.encode()).hexdigest()[:16]
    return Path(directory or cache_dir()) / f"{Path(real).name or 'root'}-{digest}.duckdb"


_OURS = re.compile(r".+-[0-9a-f]{16}\.duckdb(\.wal)?|transpiled-sqlglot-[0-9a-f]{12}\.json")


def _db(path: str) -> str:
    """A file's path as the cache stores it: DuckDB keeps UTF-8 text, and a name need not be UTF-8 (the bytes
    that are not are written as backslash escapes)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _files_of(path: Path) -> list[Path]:
    """The database file of a cache and its write-ahead log, those that exist."""
    return [p for p in (path, Path(str(path) + ".wal")) if p.is_file()]


class Cache:
    """The cache of one log folder. ``open()`` returns the DuckDB connection the engine then uses for all."""

    def __init__(self, root: str | os.PathLike, directory: str | os.PathLike | None = None):
        self.root = os.fspath(root)
        self.path = cache_path(root, directory)
        self.con = None
        self.unreadable: list[tuple[str, str]] = []
        self._parsed: dict = {}
        # What each entry covers, as last read or written here (the file is ours: DuckDB locks it).
        self._known: dict[tuple, dict] = {}
        # Per entry, the listing it was last brought up to date with and the paths then needed: asked again
        # with the very same listing (kept while the folder is watched and unchanged), nothing can be stale.
        self._checked: dict[tuple, tuple[Listing, set]] = {}

    # -- opening

    def open(self):
        """Connect to the cache file, creating or rebuilding it; raises if another process holds it."""
        import duckdb

        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self.con = self._open(duckdb)
        except duckdb.IOException as e:
            if "lock" in str(e).lower():
                raise
            self.con = self._rebuild(duckdb, e)
        except Exception as e:  # a torn or foreign file: never trusted, rebuilt
            self.con = self._rebuild(duckdb, e)
        return self.con

    def _rebuild(self, duckdb, error):
        warnings.warn(f"cache {self.path} was unreadable ({str(error).splitlines()[0]}); rebuilding it",
                      SkippedFile, stacklevel=4)
        for p in _files_of(self.path):
            p.unlink(missing_ok=True)
        return self._open(duckdb)

    def _open(self, duckdb):
        con = duckdb.connect(str(self.path))
        try:
            for p in _files_of(self.path):  # what the logs hold, kept: readable by its owner only
                try:
                    os.chmod(p, 0o600)
                except OSError:  # not ours to change (then not ours to delete either): used as it is
                    pass
            tables = {r[0] for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall()}
            if tables and ("meta" not in tables or
                           con.execute("SELECT max(version) FROM meta").fetchone()[0] != VERSION):
                raise ValueError(f"cache layout is not version {VERSION}")
            for table in tables:  # reading a row of each table proves the file is whole enough to use
                con.execute(f"SELECT * FROM {table} LIMIT 1").fetchall()
            if not tables:
                con.execute("CREATE TABLE meta (version INTEGER, root VARCHAR)")
                con.execute("INSERT INTO meta VALUES (?, ?)", [VERSION, os.path.realpath(self.root)])
                con.execute("CREATE TABLE key_files (key VARCHAR, path VARCHAR, size BIGINT, mtime BIGINT, ctime BIGINT)")
                con.execute("CREATE TABLE key_records AS SELECT ''::VARCHAR AS key, * FROM ("
                            + records_sql(EMPTY, keep="filename") + ")")
                con.execute("CREATE TABLE rec_files (path VARCHAR, size BIGINT, mtime BIGINT, ctime BIGINT)")
                # each scanned file's key ids (NULL: not indexable), so a question about another key skips the
                # files that do not use it (see scan.key_ids)
                con.execute("CREATE TABLE key_index (path VARCHAR, size BIGINT, mtime BIGINT, ctime BIGINT, "
                            "keys VARCHAR[])")
                con.execute("CREATE TABLE records AS " + records_sql(EMPTY, keep="filename"))
        except Exception:
            con.close()
            raise
        return con

    # -- bookkeeping

    def _stale(self, files_table: str, key: str | None, needed: list[LogFile], found: Listing):
        checked = self._checked.get((files_table, key))
        if checked is not None and checked[0] is found and all(f.path in checked[1] for f in needed):
            return [], []
        known = self._known.get((files_table, key))
        if known is None:
            rows = self.con.execute(f"SELECT path, size, mtime, ctime FROM {files_table} WHERE key = $k",
                                    {"k": key}).fetchall() if key else \
                self.con.execute(f"SELECT path, size, mtime, ctime FROM {files_table}").fetchall()
            known = self._known[(files_table, key)] = {p: (s, m, c) for p, s, m, c in rows}
        present = {_db(f.path) for f in found.files}
        gone = [p for p in known if p not in present and found.covers(p)]
        stale = [f for f in needed if known.get(_db(f.path)) != (f.size, f.mtime_ns, f.ctime_ns)]
        return gone, stale

    def _covered(self, files_table: str, key: str | None, gone: list[str], files: list[LogFile]) -> None:
        known = self._known.get((files_table, key))
        if known is None:  # forgotten when a transaction was rolled back: read again from the file next time
            return
        for path in gone:
            known.pop(path, None)
        known.update({_db(f.path): (f.size, f.mtime_ns, f.ctime_ns) for f in files})

    def _up_to_date(self, files_table: str, key: str | None, found: Listing, needed: list[LogFile]) -> None:
        """Remember that the entry now matches ``found`` for ``needed`` (less the files that could not be read)."""
        bad = {p for p, _ in self.unreadable}
        paths = {f.path for f in needed if f.path not in bad}
        checked = self._checked.get((files_table, key))
        if checked is not None and checked[0] is found:
            paths |= checked[1]
        self._checked[(files_table, key)] = (found, paths)

    def _forget(self, tables: dict[str, str], key: str | None, paths: list[str]) -> None:
        """Delete the rows of ``paths`` (and of ``key``, if given) from each table (name -> its path column)."""
        if not paths:
            return
        self.con.execute("CREATE OR REPLACE TEMP TABLE tk_forget AS SELECT unnest($p) AS path",
                         {"p": [_db(p) for p in paths]})  # (_db of a stored path is that path)
        for table, column in tables.items():
            self.con.execute(f"DELETE FROM {table} WHERE {column} IN (SELECT path FROM tk_forget)"
                             + (" AND key = $k" if key else ""), {"k": key} if key else {})

    def _add_files(self, table: str, key: str | None, files: list[LogFile]) -> None:
        if not files:
            return
        cols = "unnest($path), unnest($size), unnest($mtime), unnest($ctime)"
        params = {"path": [_db(f.path) for f in files], "size": [f.size for f in files],
                  "mtime": [f.mtime_ns for f in files], "ctime": [f.ctime_ns for f in files]}
        if key:
            cols, params["k"] = "$k, " + cols, key
        self.con.execute(f"INSERT INTO {table} SELECT {cols}", params)

    def _transaction(self, work, undo_known) -> None:
        self.con.execute("BEGIN TRANSACTION")
        try:
            work()
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            self._known.pop(undo_known, None)
            self._checked.pop(undo_known, None)
            raise

    # -- the two entries

    def key_source(self, needles: str, needed: list[LogFile], found: Listing, scan) -> tuple[str, dict, int]:
        """SELECT (and its parameters) of the records mentioning ``needles`` (a key, or strings joined by ``|``)
        in ``needed``, refreshed first.

        ``scan(files)`` is the engine's fast scan. Also returns how many log files had to be read. A long list of
        strings (a wide lineage's keys) is kept under its digest, not written into every row.
        """
        key = needles if len(needles) <= 256 else "sha256:" + hashlib.sha256(needles.encode()).hexdigest()
        gone, stale = self._stale("key_files", key, needed, found)
        self.unreadable, spared = [], set()
        if gone or stale:
            spared = self._spared(needles, stale)
            result = scan([f for f in stale if f.path not in spared])
            bad = {p for p, _ in result.unreadable}
            scanned = [f for f in stale if f.path not in bad]  # unreadable ones are tried (and named) again
            indexed = [f for f in stale if f.path in result.index]

            def work():
                if self._known.get(("key_files", key)):  # a key never asked has nothing to forget
                    self._forget({"key_records": "filename", "key_files": "path"}, key, gone + [f.path for f in stale])
                self._add_files("key_files", key, scanned)
                if indexed:
                    self._forget({"key_index": "path"}, None, [f.path for f in indexed])
                    self.con.execute("INSERT INTO key_index SELECT unnest($path), unnest($size), unnest($mtime), "
                                     "unnest($ctime), unnest($keys)", {
                                         "path": [_db(f.path) for f in indexed], "size": [f.size for f in indexed],
                                         "mtime": [f.mtime_ns for f in indexed], "ctime": [f.ctime_ns for f in indexed],
                                         "keys": [result.index[f.path] for f in indexed]})
                insert = "INSERT INTO key_records SELECT $k, * FROM "
                if result.documents:
                    docs = "(SELECT unnest($docs)::JSON AS json, unnest($paths) AS filename)"
                    self.con.execute(insert + "(" + records_sql(docs, keep="filename") + ")",
                                     {"k": key, "docs": [d for _, d in result.documents],
                                      "paths": [_db(p) for p, _ in result.documents]})
                if result.whole_files:
                    self.con.execute(insert + "(" + records_sql(
                        source([f.path for f in result.whole_files], filename=True), keep="filename") + ")", {"k": key})

            self._transaction(work, ("key_files", key))
            self._covered("key_files", key, gone, scanned)
            self.unreadable = result.unreadable
        self._up_to_date("key_files", key, found, needed)
        only = self._only(("key_files", key), needed)
        return ("SELECT * EXCLUDE (key, filename) FROM key_records WHERE key = $k" + only, {"k": key},
                len(stale) - len(spared))

    def _spared(self, key: str, stale: list[LogFile]) -> set[str]:
        """The ``stale`` files the index says hold none of ``key``'s ids (unchanged since they were indexed):
        they need no reading. Only for key ids (a lineage's links are other strings)."""
        from .scan import key_like, needles

        if not stale or not key_like(key):
            return set()
        by_db = {_db(f.path): f.path for f in stale}
        self.con.execute("CREATE OR REPLACE TEMP TABLE tk_stale AS SELECT unnest($p) AS path, unnest($s) AS size, "
                         "unnest($m) AS mtime, unnest($c) AS ctime",
                         {"p": list(by_db), "s": [f.size for f in stale], "m": [f.mtime_ns for f in stale],
                          "c": [f.ctime_ns for f in stale]})
        # DuckDB tells which files hold none of the ids: the index's lists never travel to Python
        rows = self.con.execute("SELECT i.path FROM key_index AS i JOIN tk_stale AS s ON i.path = s.path "
                                "AND i.size = s.size AND i.mtime = s.mtime AND i.ctime = s.ctime "
                                "WHERE i.keys IS NOT NULL AND NOT list_has_any(i.keys, $w)",
                                {"w": needles(key)}).fetchall()
        return {by_db[p] for (p,) in rows}

    def records_source(self, needed: list[LogFile], found: Listing, find_unreadable,
                       parsed: dict | None = None, prepare=None) -> tuple[str, int]:
        """SELECT of every record of ``needed`` (Athena columns), refreshed first. ``find_unreadable(files)``
        names the files DuckDB cannot read, after putting what can be read of them in ``parsed``; ``prepare(files)``
        reads in Python those DuckDB is not to read (exports) into ``parsed``, and names those nobody can."""
        self._parsed = parsed if parsed is not None else {}
        gone, stale = self._stale("rec_files", None, needed, found)
        self.unreadable = list(prepare(stale)) if prepare else []
        refused = {p for p, _ in self.unreadable}
        todo = [f for f in stale if f.path not in refused]
        while gone or todo:
            try:
                self._transaction(lambda files=todo: self._write_records(gone + [f.path for f in stale], files),
                                  ("rec_files", None))
            except Exception:
                before = len(self._parsed)
                bad = find_unreadable(todo)
                if not bad and len(self._parsed) == before:  # not a file's fault
                    raise
                self.unreadable += bad
                names = {p for p, _ in bad}
                todo = [f for f in todo if f.path not in names]
                continue
            self._covered("rec_files", None, gone, todo)
            break
        self._up_to_date("rec_files", None, found, needed)
        only = self._only(("rec_files", None), needed)
        if not only:
            return "SELECT * EXCLUDE (filename) FROM records", len(stale)
        # a window's files of a larger cache: taken once, so the question and what is counted of it read them once
        self.con.execute("CREATE OR REPLACE TEMP TABLE tk_view AS SELECT * EXCLUDE (filename) FROM records WHERE TRUE"
                         + only)
        return "SELECT * FROM tk_view", len(stale)

    def _only(self, entry: tuple, needed: list[LogFile]) -> str:
        """A condition keeping only the records of ``needed``: an entry also holds files that earlier questions
        read (other days), and an answer must be the same as a cold read's, whatever was asked before."""
        bad = {p for p, _ in self.unreadable}
        paths = [_db(f.path) for f in needed if f.path not in bad]
        known = self._known.get(entry)
        if known is not None and len(known) <= len(paths):  # the entry holds nothing else
            return ""
        self.con.execute("CREATE OR REPLACE TEMP TABLE tk_needed AS SELECT unnest($p::VARCHAR[]) AS path",
                         {"p": paths})
        return " AND filename IN (SELECT path FROM tk_needed)"

    def _write_records(self, forget: list[str], files: list[LogFile]) -> None:
        self._forget({"records": "filename", "rec_files": "path"}, None, forget)
        whole = [f.path for f in files if f.path not in self._parsed]
        if whole:
            self.con.execute("INSERT INTO records " + records_sql(source(whole, filename=True), keep="filename"))
        parts = [(f.path, d) for f in files for d in self._parsed.get(f.path, ())]
        if parts:
            self.con.execute("INSERT INTO records " + records_sql(
                "(SELECT unnest($docs)::JSON AS json, unnest($paths) AS filename)", keep="filename"),
                {"docs": [d for _, d in parts], "paths": [_db(p) for p, _ in parts]})
        if files:
            self._add_files("rec_files", None, files)

    # -- showing and clearing

    def summary(self) -> dict:
        keys = self.con.execute("SELECT key, count(*) FROM key_files GROUP BY key ORDER BY key").fetchall()
        files = self.con.execute("SELECT count(*) FROM rec_files").fetchone()[0]
        records = self.con.execute("SELECT count(*) FROM records").fetchone()[0]
        size = sum(p.stat().st_size for p in _files_of(self.path))
        return {"path": str(self.path), "bytes": size, "keys": dict(keys), "record_files": files, "records": records}


def clear(root: str | os.PathLike | None = None, directory: str | os.PathLike | None = None) -> list[Path]:
    """Delete the cache of ``root``, or every trailkit cache when ``root`` is None. Returns what was removed."""
    if root is not None:
        targets = _files_of(cache_path(root, directory))
    else:  # only the files trailkit names: a cache of a folder and its log, the store of transpiled SQL
        d = Path(directory or cache_dir())
        targets = [p for p in d.iterdir() if _OURS.fullmatch(p.name) and p.is_file()] if d.is_dir() else []
    for p in targets:
        p.unlink()
    return targets
