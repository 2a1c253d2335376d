"""The embedded engine: DuckDB, in-process, over CloudTrail files in a folder.

Which files are read is ``layout``'s business (pruned by the window's delivery days); how records become the
Athena table's columns and how Athena SQL becomes DuckDB's is ``duck``'s. A question about one whole key is
answered from ``scan``'s records (the files holding the key's bytes) or from the folder's ``cache``; any other
question from the window's files. The records are exposed as a view named ``cloudtrail`` with the Athena
table's columns and struct shapes, so the authored SQL, transpiled, runs unchanged.
"""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import QueryFailed, ReadAs, SkippedFile
from ..inputs import Window
from . import duck
from .base import Engine, QueryStats
from .inflate import refused
from .layout import Listing, LogFile, listing, prune, require_log_files

if TYPE_CHECKING:
    import pyarrow as pa

    from ..questions import Request, ScanHints


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
        self._prefetched = None  # a ForkedScan started by prepare()
        self._followed = None  # a follow.Followed: what one pass found for a lineage, answering its questions
        self._hits = None  # what the table tk_hits holds: (as records?, the documents)
        self.parsed: dict[str, list[str]] = {}  # path -> records read in Python (exports, damaged files), per question
        self._log: dict = {"skipped": [], "notes": [], "covered": 0, "uncounted": False}  # what the question met
        self._counting = True  # whether the question is one of trailkit's (free SQL's copies are not counted)
        require_log_files(self.path)

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
                except OSError as e:  # TRAILKIT_CACHE names a file, or a folder that cannot be written
                    warnings.warn(f"cache folder {cache.path.parent} cannot be used ({e.strerror or e}); answering "
                                  "without it (set TRAILKIT_CACHE to a writable folder)", SkippedFile, stacklevel=3)
                    self._use_cache = False
            if self._con is None:
                self._con = duckdb.connect()
            # date_trunc and casts on TIMESTAMPTZ follow the session zone: investigations are in UTC, always.
            self._con.execute("SET TimeZone = 'UTC'")
            if self.threads:
                self._con.execute(f"SET threads = {int(self.threads)}")
        return self._con

    def generation(self) -> object | None:
        """The kept listing while the folder's watch reports no change (a new one after any change)."""
        found = self._listing(None) if self._watching else None
        return found if found is not None and found is self._memo else None

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
        window, held = hints.window if hints else None, self._snapshot if self._snapshot is not None else {}
        if window not in held:  # within ``snapshot()``, one listing per window
            held[window] = listing(self.path, window, stat=self._use_cache)
        return held[window]

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
            if (path, reason) not in self._log["skipped"]:
                self._log["skipped"].append((path, reason))
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
        self._log["covered"] = len(prune(found.files, hints.window if hints else Window()))  # skipped ones too
        key = hints.scan_key if hints and self.fast_scan else None
        cache = self.cache
        if cache is not None and key:
            select, params, read = cache.key_source(key, needed, found,
                                                    lambda fs: self._checked(self._scan(fs, key, index=True), key))
            self._skip(cache.unreadable)
            # A view cannot take parameters: the key's rows go to a temporary table first (a few thousand rows).
            self.con.execute("CREATE OR REPLACE TEMP TABLE tk_rows AS " + select, params)
            view = "SELECT * FROM tk_rows"
        elif cache is not None:
            view, read = cache.records_source(needed, found, self._unreadable, self.parsed, self._prepare)
            self._skip(cache.unreadable)
        elif key:
            served = self._followed.serve(needed, key) if self._followed is not None else None  # a lineage's pass
            result = served if served is not None else self._scan(needed, key)
            view, read = self._scan_view(self._checked(result, key)), len(needed)
        else:
            self._skip(self._prepare(needed))
            needed = self._needed(found.files, hints)
            # A view cannot take parameters, so the path list goes in as a literal quoted by sqlglot.
            whole = [f.path for f in needed if f.path not in self.parsed]
            view, read = duck.records_sql(duck.source(whole) if whole else duck.EMPTY), len(needed)
            parts = [d for f in needed for d in self.parsed.get(f.path, ())]
            if parts:
                self.con.execute("CREATE OR REPLACE TEMP TABLE tk_parsed AS SELECT unnest($docs)::JSON AS json",
                                 {"docs": parts})
                view += "\nUNION ALL\n" + duck.records_sql("(SELECT json FROM tk_parsed)")
            self._log["uncounted"] = True  # counting copies would read every file a second time: not done
        self.con.execute("CREATE OR REPLACE TEMP VIEW cloudtrail AS " + view)
        return read

    def prepare(self, request: Request) -> None:
        """Start the key scan ``request`` will need in a child process now (``scan.ForkedScan``), when nothing
        cached can spare it: the command line then imports DuckDB and opens the cache while the child inflates."""
        hints = request.hints
        key = hints.scan_key if self.fast_scan else None
        if not key or self._prefetched is not None:
            return
        if self._use_cache:
            from .cache import cache_path

            if cache_path(self.path, self._cache_dir).exists():  # perhaps warm: do not compete with it
                return
        from .scan import ForkedScan

        self._prefetched = ForkedScan.start(os.fspath(self.path), hints.window, key, self.threads,
                                            self._scan_progress(), index=self._use_cache)

    def lineage_keys(self, key: str, links: Request) -> frozenset | None:
        """One pass for the links and ``key``'s lineage without a cache (``engines.follow``): what it found then
        answers the questions about the links and those keys."""
        if not self.fast_scan or self._use_cache and self.cache is not None:
            return None
        from .follow import followed

        self._followed = followed(self, key, links.hints)
        return self._followed.keys if self._followed is not None else None

    def _scan(self, files: list[LogFile], key: str, index: bool = False):
        """The fast scan of ``files`` for ``key`` (with ``index``, noting each file's key ids for the cache)."""
        from .scan import scan

        pending, self._prefetched = self._prefetched, None
        result = pending.result(files, key, self.threads, index) if pending is not None else None
        return result if result is not None else scan(files, key, self.threads, self._scan_progress(), index)

    def _scan_progress(self):
        from .base import progress_line

        return progress_line(self.on_progress)

    def _checked(self, result, key: str):
        """Files the scan handed back whole are read by DuckDB: make sure it can, or read what can be read of
        them, or name them."""
        for path, how in result.notes:  # exports the scan found, on every path (cold, forked, into the cache)
            self._note(path, how)
        result.notes = []
        if result.whole_files:
            bad = refused(result.whole_files)
            vetted = {p for p, _ in bad}
            bad += self._unreadable([f for f in result.whole_files if f.path not in vetted])
            result.unreadable += bad
            from .scan import needles

            names, wanted = {p for p, _ in bad}, needles(key)
            for f in result.whole_files:
                result.documents += [(f.path, d) for d in self.parsed.get(f.path, ()) if any(n in d for n in wanted)]
            result.whole_files = [f for f in result.whole_files if f.path not in names and f.path not in self.parsed]
        return result

    def _scan_view(self, result) -> str:
        self._skip(result.unreadable)
        small = len(result.documents) <= 20_000  # a few thousand records are read once, as columns, for the question
        hits = (small, [d for _, d in result.documents])  # and its count of copies; more, each reads what it needs
        if hits != self._hits:  # not the same records as the last question's (a lineage's links, then figures)
            duck.records_table(self.con, "tk_hits", hits[1], as_json=not small)
        self._hits = hits if small else None
        parts = ["SELECT * FROM tk_hits" if small else duck.records_sql("(SELECT json FROM tk_hits)")]
        if result.whole_files:
            parts.append(duck.records_sql(duck.source([f.path for f in result.whole_files])))
        return "\nUNION ALL\n".join(parts)

    def statement(self, request: Request) -> str:
        sql, params = self.render(request)
        duck_sql = duck.transpile(sql)
        try:
            return duck.with_values(duck_sql, params) + ";\n"
        except Exception:  # sqlglot cannot read back all of DuckDB's syntax: the SQL, and its values apart
            return duck_sql.rstrip().rstrip(";") + ";\n" + "".join(f"-- ${k} = {v!r}\n" for k, v in params.items())

    def explain(self, request: Request) -> str:
        return (f"-- DuckDB over {len(self.files(request.hints))} file(s) under {self.path} (view cloudtrail: the "
                f"Athena table's columns)\n" + self.statement(request))

    def run(self, sql: str, params: dict, hints: ScanHints | None = None) -> pa.Table:
        return self._execute(sql, params, hints, duck.arrow)

    def table(self, request: Request) -> pa.Table:
        self._counting = not request.contract.free
        return super().table(request)

    def rows(self, request: Request, spreadsheet_safe: bool = False) -> tuple[list[str], list[tuple]]:
        """As ``Engine.rows``, with the contract applied by DuckDB (``Contract.duckdb_sql``) and its rows
        fetched as they are: no pyarrow import, and no Python work per value however many rows there are."""
        contract = request.contract
        self._counting = not contract.free
        if contract.free:  # any column type, so through Arrow's general conversions
            return super().rows(request, spreadsheet_safe)
        sql, params = self.render(request)
        return contract.names, self._execute(sql, params, request.hints, lambda result: result.fetchall(),
                                             wrap=lambda duck_sql: contract.duckdb_sql(duck_sql, spreadsheet_safe))

    def _execute(self, sql: str, params: dict, hints: ScanHints | None, fetch, wrap=None):
        """Run ``sql`` (transpiled, then passed through ``wrap``) over the view of what the question needs;
        ``fetch(result)`` collects the rows."""
        started = time.perf_counter()
        self.parsed = {}  # files may have changed since the last question: read again when needed
        self._log = {"skipped": [], "notes": [], "covered": 0, "uncounted": not self._counting}
        duck_sql = duck.transpile(sql)
        if wrap is not None:
            duck_sql = wrap(duck_sql)
        def work():
            answer = self._answer(duck_sql, params, hints, fetch)
            return answer, ((None, None) if self._log["uncounted"] else duck.counted(self.con, sql, params))

        (out, read), (copies, untimed) = duck.interruptibly(lambda: self._con, work)
        self._record(QueryStats(self.name, duck_sql, dict(params), time.perf_counter() - started, len(out),
                                files=read, covered=self._log["covered"], duplicates=copies, untimed=untimed,
                                skipped=self._log["skipped"], notes=self._log["notes"]))
        return out

    def _answer(self, duck_sql: str, params: dict, hints: ScanHints | None, fetch):
        while True:
            try:
                read = self._bind_view(hints)
                return fetch(self.con.execute(duck_sql, params)), read
            except Exception as e:  # duckdb.Error; the module is imported lazily
                if not type(e).__module__.lstrip("_").startswith("duckdb") or type(e).__name__ == "InterruptException":
                    raise
                direct = self.cache is None and not (hints and hints.scan_key and self.fast_scan)
                before = len(self.parsed)
                bad = self._unreadable(self.files(hints)) if direct else []
                if not bad and len(self.parsed) == before:  # not a file's fault: the query's
                    raise QueryFailed(f"local query failed: {str(e).splitlines()[0]}", engine=self.name,
                                      sql=duck_sql) from e
                self._skip(bad)

    def _prepare(self, files: list[LogFile]) -> list[tuple[str, str]]:
        """Before DuckDB reads ``files``: name those it must not be given, and read in Python (into ``parsed``)
        those outside the delivered layout, which may be a log pipeline's export (see ``exports``), or whose
        names DuckDB cannot take. Returns the files nobody can read, with why."""
        from .exports import read_records

        bad = refused(files)
        named = {p for p, _ in bad}
        for f in files:
            if f.path in named or f.path in self.parsed or \
                    (f.day is not None and duck.plain_name(f.path) and not f.path.lower().endswith(".zip")):
                continue
            try:
                docs, how = read_records(f.path)
            except Exception:  # DuckDB reads it (records nested past Python's limit), or names it
                continue
            self.parsed[f.path] = docs
            if docs:
                self._note(f.path, how)
            else:
                self._log["skipped"].append((f.path, f"it holds no CloudTrail record ({how or 'empty'})"))
                warnings.warn(f"skipped {f.path}: it holds no CloudTrail record ({how or 'empty'})", SkippedFile,
                              stacklevel=4)
        return bad

    def _note(self, path: str, how: str) -> None:
        if how:
            self._log["notes"].append((path, how))
            warnings.warn(f"read {path}: {how}", ReadAs, stacklevel=5)

    def _unreadable(self, files: list[LogFile]) -> list[tuple[str, str]]:
        """Find the files DuckDB cannot read, one at a time (only after a query over all of them failed), and
        read what can be read of them (``exports.read_records``): those are kept in ``parsed``, the rest returned."""
        from .exports import read_records

        bad = []
        for f in files:
            if f.path in self.parsed:
                continue
            try:
                self.con.execute(f"SELECT count(*) FROM ({duck.records_sql(duck.source([f.path]))})").fetchall()
                continue
            except Exception as e:
                reason = str(e).splitlines()[0]
            try:
                self.parsed[f.path], how = read_records(f.path)
                if not self.parsed[f.path]:
                    raise ValueError(f"no CloudTrail record in it ({how or 'empty'})")
            except Exception as e:  # nothing of it can be read: named, and left out
                self.parsed.pop(f.path, None)
                bad.append((f.path, f"{reason} ({type(e).__name__}: {e})" if str(e) else reason))
                continue
            self._note(f.path, f"in part, {how}" if how else "in part")
        return bad

    def close(self) -> None:
        if self._prefetched is not None:
            self._prefetched.cancel()
            self._prefetched = None
        if self._watch:
            self._watch.close()
            self._watch, self._memo = None, None
        if self._con is not None:
            from . import left_open, process_ends

            try:  # in memory only, nothing spilled to disk (DuckDB removes that on closing): left to the process's end
                if process_ends and self._cache is None and not self._con.execute(
                        "SELECT count(*) FROM duckdb_temporary_files()").fetchone()[0]:
                    left_open.append(self._con)
                else:
                    self._con.close()
            except Exception:  # still busy with a question cut short by Ctrl-C: the process's end closes it
                pass
            self._con, self._hits = None, None

