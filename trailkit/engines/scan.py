"""The fast path for a question about one key: inflate, look for the key's bytes, parse only what matches.

An access key id is a literal 20-byte string. The same path serves questions about a few keys, or about records
that must contain one of a few literal strings (a lineage's links: ``"credentials"``, ``"accessKey"``, ...):
the "key" is then the strings joined by ``|`` (which no key id or JSON key holds), any of them matching. A file
whose inflated bytes do not contain it needs no JSON parsing at all; in a file that does, only the records around
each occurrence are cut out (CloudTrail writes each record starting with ``{"eventVersion"``; JSON-lines files
hold one per line) and checked to parse. Anything unusual falls back to handing the whole file to DuckDB, so the
answer never depends on the shortcut. Inflating runs on worker threads with a decompressor that releases the GIL.
"""
from __future__ import annotations

import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import exports, inflate
from .layout import LogFile

_RECORD = b'{"eventVersion"'
# an escaped capital letter or digit: the only characters of a key id
_ESCAPED = re.compile(rb"\\u00(?:3[0-9]|4[1-9a-fA-F]|5[0-9aA])")


def _finder():
    """contains(data, needle) -> bool, as fast as the machine allows.

    StringZilla's SIMD search runs at ~70 GB/s on just-inflated bytes (in cache), several times libc's memmem, so
    it costs a few µs a file even holding the GIL. Without it: libc's memmem through ctypes (which releases the
    GIL for the call), else Python's ``in``."""
    try:
        from stringzilla import contains

        return contains
    except ImportError:
        pass
    try:
        import ctypes
        import ctypes.util

        memmem = ctypes.CDLL(ctypes.util.find_library("c") or None).memmem
        memmem.restype = ctypes.c_void_p
        memmem.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    except (OSError, AttributeError):  # pragma: no cover - no libc memmem (not glibc/musl)
        return lambda data, needle: needle in data
    return lambda data, needle: memmem(data, len(data), needle, len(needle)) is not None


@dataclass
class ScanResult:
    documents: list = field(default_factory=list)   # (path, JSON text of one record)
    whole_files: list = field(default_factory=list)  # files to read the ordinary way (odd layouts)
    unreadable: list = field(default_factory=list)   # (path, reason)
    notes: list = field(default_factory=list)        # (path, how its records were found): exports
    index: dict = field(default_factory=dict)        # path -> the key ids its records use, or None (see key_ids)


# the caller's key of a record, as CloudTrail writes it (``userIdentity.accessKeyId``, compact JSON)
_KEY_FIELD = re.compile(rb'"accessKeyId":"([^"\\]*)"')


def key_ids(data: bytes) -> tuple[str, ...] | None:
    """Every ``accessKeyId`` value in a delivered file (``{"Records":[...]}``): the index that lets a question
    about another key skip the files that do not use it. None when the file cannot be vouched for: another
    layout, JSON escapes that could hide a key, or any ``accessKeyId`` written otherwise than compact
    ``"accessKeyId":"..."`` (spaces or tabs, a record kept as escaped text inside another): such a file is
    always read."""
    if not data[:64].lstrip().startswith(b'{"Records":') or b"\\u00" in data:
        return None
    found, matched, total = _key_fields(data)
    if matched != total:
        return None
    return tuple(sorted(m.decode("utf-8", "replace") for m in found))


def _key_fields(data: bytes) -> tuple[set, int, int]:
    """The distinct values written ``"accessKeyId":"..."`` in ``data``, how many were found so, and how many
    times ``accessKeyId`` appears at all. StringZilla's SIMD search makes this ~4x faster than a regular
    expression (it holds the GIL the scan's threads need between files, so it is what indexing costs)."""
    try:
        from stringzilla import Str
    except ImportError:
        found = _KEY_FIELD.findall(data)
        return set(found), len(found), data.count(b"accessKeyId")
    text, found, count = Str(data), set(), 0
    pos = text.find('"accessKeyId":"')
    while pos != -1:
        end = text.find('"', pos + 15)
        if end == -1:
            break
        found.add(bytes(data[pos + 15:end]))
        count += 1
        pos = text.find('"accessKeyId":"', end)
    if any(b"\\" in v for v in found):  # an escape inside a value: not vouched for
        return found, -1, count
    return found, count, text.count("accessKeyId")


def _hits(data: bytes, key: list[bytes], contains) -> list[bytes]:
    """The strings of ``key`` that ``data`` holds. Many key ids (a wide lineage) are matched against the file's
    own key ids, in one pass, rather than searched one by one."""
    if len(key) > 16 and all(_KEY_ID.match(k.decode("ascii", "replace")) for k in key):
        ids = key_ids(data)
        if ids is not None:
            wanted = set(key)
            return [k for k in (i.encode() for i in ids) if k in wanted]
    return [k for k in key if contains(data, k)]


_KEY_ID = re.compile(r"^[A-Z0-9]{16,128}$")


def needles(key: str) -> list[str]:
    """The literal strings a scan for ``key`` looks for (``A|B``: any of them)."""
    return [n for n in key.split("|") if n]


def key_like(key: str) -> bool:
    """Whether every string of ``key`` is a key id (what the key index can answer for)."""
    return all(_KEY_ID.match(n) for n in needles(key))


def _escapes(found: list[bytes]) -> re.Pattern:
    """JSON escapes (``\\u00XX``) of any character of the strings looked for: a file with one is parsed whole."""
    chars = sorted({c for n in found for c in n})
    if all(chr(c).isupper() or chr(c).isdigit() for c in chars):
        return _ESCAPED
    return re.compile(rb"\\u00(?:" + b"|".join(f"{c:02x}".encode() for c in chars) + rb")", re.I)


def _records_around(data: bytes, keys: list[bytes]) -> list[bytes] | None:
    """The records of a ``{"Records":[...]}`` document that contain one of ``keys`` (each record once), or None
    if the layout is unusual."""
    out, seen = [], set()
    text = _searchable(data)
    end_of_array = text.rfind(b"]")
    boundary = b"," + _RECORD
    for key in keys:
        pos = text.find(key)
        while pos != -1:
            start = text.rfind(_RECORD, 0, pos)
            if start == -1:
                return None
            if start not in seen:
                seen.add(start)
                nxt = text.find(boundary, pos)
                end = nxt if nxt != -1 else end_of_array
                if end <= pos:
                    return None
                out.append(data[start:end])
            pos = text.find(key, pos + len(key))
    return out


def _searchable(data: bytes):
    """``data`` with SIMD ``find``/``rfind`` (StringZilla, several times Python's on the ~5 KB between a hit and
    its record's edges), or as it is."""
    try:
        from stringzilla import Str
    except ImportError:  # pragma: no cover - StringZilla is a dependency; Python's own find is the fallback
        return data
    return Str(data)


def _lines_around(data: bytes, keys: list[bytes]) -> list[bytes]:
    """The lines of a JSON-lines document that contain one of ``keys`` (each line once)."""
    out, seen = [], set()
    text = _searchable(data)
    for key in keys:
        pos = text.find(key)
        while pos != -1:
            start = text.rfind(b"\n", 0, pos) + 1
            if start not in seen:
                seen.add(start)
                end = text.find(b"\n", pos)
                out.append(data[start:end if end != -1 else len(data)])
            pos = text.find(key, pos + len(key))
    return out


def _valid(pieces: list[bytes]) -> bool:
    try:
        return all(isinstance(json.loads(p), dict) for p in pieces)
    except (ValueError, RecursionError):  # nested past Python's limit: DuckDB reads the file instead
        return False


def _scan_one(f: LogFile, key: list[bytes], gunzip, contains, escaped, index: dict | None = None):
    """(status, payload) for one file; status is skip, docs, whole or bad. With ``index``, the file's key ids are
    noted in it (see ``key_ids``)."""
    status, payload, data = scan_data(f, key, gunzip, contains, escaped)
    if index is not None and status != "bad":
        try:
            index[f.path] = key_ids(data) if data is not None else None
        except Exception:  # an index is an optimisation: a file it cannot describe is simply always read
            index[f.path] = None
    return status, payload


def scan_data(f: LogFile, key: list[bytes], gunzip, contains, escaped, validate: bool = True, in_records=None):
    """(status, payload, the file's inflated bytes) for one file; see ``_scan_one``. ``validate=False`` leaves checking
    that each record cut out of a compact file parses to the caller (who may need only a few of them); ``in_records``:
    the strings of ``key`` looked for in a ``{"Records":[...]}`` file (the caller reads the others from its bytes)."""
    data = None
    try:
        raw = inflate.read(f.path)
        if raw[:4] == inflate.ZIP:  # an archive: every log file in it, parsed
            docs, how = exports.records_of(raw, f.path)
            wanted = [k.decode() for k in key]
            return "docs", ([d.encode() for d in docs if any(n in d for n in wanted)], how), None
        data = gunzip(raw) if inflate.gzipped(raw, f.path) else raw
    except inflate.CorruptGzip as e:  # unreadable (or a bomb): named by the caller
        return "bad", str(e), None
    except Exception as e:
        return "bad", f"{type(e).__name__}: {e}", None
    # JSON may write any character as \uXXXX (and "/" as \/): a file with escapes that could hide one of the
    # strings looked for is parsed whole, not searched, whether or not another of them was found
    if contains(data, b"\\u00") and escaped.search(data) or b"/" in b"".join(key) and contains(data, b"\\/"):
        pieces, how = _parsed_around(data, key)
        return (("docs", (pieces, how)) if pieces else ("skip", None) if pieces is not None else ("whole", None)) + \
            (data,)
    head = data[:64].lstrip()
    hits = _hits(data, in_records if in_records is not None and head.startswith(b'{"Records"') else key, contains)
    if not hits:
        return "skip", None, data
    # records are cut at ``,{"eventVersion"``: exact in compact JSON (as CloudTrail writes it), where that text
    # cannot be inside a string; a file written with spaces is checked whatever the caller said
    validate = validate or b'": ' in data[:256]
    if head.startswith(b'{"Records"'):
        pieces = _records_around(data, hits)
    elif head.startswith(b"{") and b"\n" in data.rstrip():
        pieces = _lines_around(data, hits)
    else:
        pieces = None
    # CloudTrail's own records, cut out around the key; anything else (an export, odd layouts) is parsed whole
    if pieces is not None and all(p.lstrip().startswith(_RECORD) for p in pieces) and (not validate or _valid(pieces)):
        return "docs", (pieces, ""), data
    pieces, how = _parsed_around(data, key)
    if pieces is None:
        return "whole", None, data
    return "docs", (pieces, how), data


def _parsed_around(data: bytes, key: list[bytes]) -> tuple[list[bytes] | None, str]:
    """The records that contain ``key`` (any of its strings), found by parsing the whole document (pretty-printed
    files, records in another key order, top-level arrays, exports, gzip under a plain name), and how they were
    found; None if it does not parse whole (the whole-file path then says which file lost what)."""
    try:
        records, how, bad = exports.read_text(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return None, ""
    if bad:
        return None, ""
    wanted = [k.decode() for k in key]
    out = [json.dumps(r) for r in records]
    return [r.encode() for r in out if any(n in r for n in wanted)], exports.describe(how)


def scan(files: list[LogFile], key: str, threads: int | None = None, progress=None, index: bool = False) -> ScanResult:
    """Find every record that contains ``key`` (``A|B``: any of them) in ``files``; see the module docstring.

    ``progress(files_done, files, seconds)`` is called after each batch of files (from this thread). With
    ``index``, the result also holds each file's key ids (``ScanResult.index``) for the cache."""
    needle = [n.encode() for n in needles(key)]
    escaped = _escapes(needle)
    gunzip, contains = inflate.inflater(), _finder()
    result = ScanResult()
    if not files:
        return result
    workers = threads or min(8, os.cpu_count() or 2)
    # Batches keep the pool's per-task cost small against ~10,000 files of a few KB; results hold only the
    # matching records, so memory stays flat however large the corpus.
    batches = [files[i:i + 32] for i in range(0, len(files), 32)]

    def run(batch):
        return [(f, *_scan_one(f, needle, gunzip, contains, escaped, result.index if index else None))
                for f in batch]

    began, finished = time.monotonic(), 0
    with ThreadPoolExecutor(workers) as pool:  # (its threads start with a second batch: a lineage's looks again
        for done in pool.map(run, batches) if len(batches) > 1 else [run(batches[0])]:  # are a few files)
            finished += len(done)
            if progress is not None:
                progress(finished, len(files), time.monotonic() - began)
            for f, status, payload in done:
                if status == "skip":
                    continue
                if status == "bad":
                    result.unreadable.append((f.path, payload))
                    continue
                if status == "whole":
                    result.whole_files.append(f)
                else:
                    pieces, how = payload
                    result.documents.extend((f.path, p.decode("utf-8", "replace")) for p in pieces)
                    if how:
                        result.notes.append((f.path, how))
    return result


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this (child) process when its parent (pid ``parent``) dies: a killed trailkit leaves no
    scan behind."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not glibc/musl Linux
        pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(0)


class ForkedScan:
    """A scan started in a child process before the slow part of start-up, so that the two overlap.

    A command-line question spends ~0.2 s importing DuckDB, connecting and opening the cache before it can
    scan; threads cannot overlap that (imports hold the GIL the scan's threads need between files), a child
    process can. The child lists the folder and scans the window's files for the key, and hands back the paths
    it scanned and the ``ScanResult``. ``result()`` reconciles that with the files the engine itself decided
    to read: files the child did not scan are scanned then, and records of files not wanted are dropped, so
    the answer is the same as from ``scan()``. Only on Linux, and only while the process has one thread
    (forking a threaded process is unsafe); anything amiss in the child and the engine simply scans itself.
    """

    def __init__(self, pid: int, fd: int, key: str):
        self.pid, self.fd, self.key = pid, fd, key

    @classmethod
    def start(cls, root: str, window, key: str, threads: int | None = None, progress=None,
              index: bool = False) -> ForkedScan | None:
        import sys
        import threading

        if not sys.platform.startswith("linux") or not hasattr(os, "fork") or threading.active_count() > 1:
            return None
        read_end, write_end = os.pipe()
        parent, pid = os.getpid(), os.fork()
        if pid == 0:  # the child: never returns
            try:
                _die_with_parent(parent)
                os.close(read_end)
                from .layout import listing, prune

                files = prune(listing(root, window, stat=False).files, window)
                payload = ("ok", [f.path for f in files], scan(files, key, threads, progress, index))
            except BaseException as e:  # noqa: B036 - whatever happens is reported, then the child exits
                payload = ("error", f"{type(e).__name__}: {e}", None)
            try:
                import pickle

                with os.fdopen(write_end, "wb") as out:
                    pickle.dump(payload, out, protocol=pickle.HIGHEST_PROTOCOL)
            finally:
                os._exit(0)  # no atexit handlers, no flushing of the parent's buffers
        os.close(write_end)
        return cls(pid, read_end, key)

    def result(self, files: list[LogFile], key: str, threads: int | None = None,
               index: bool = False) -> ScanResult | None:
        """The scan of ``files`` for ``key``, or None if the child failed (the caller then scans)."""
        import pickle

        fd, self.fd = self.fd, None  # the file object owns it from here, and closes it
        try:
            with os.fdopen(fd, "rb") as src:
                status, scanned, found = pickle.load(src)
            os.waitpid(self.pid, 0)
        except BaseException as e:  # a torn answer, or Ctrl-C: the child may still be running, stop it first
            self.cancel()
            if not isinstance(e, Exception):
                raise
            status = "error"
        if status != "ok" or key != self.key:
            return None
        wanted = {f.path for f in files}
        done = set(scanned)
        extra = scan([f for f in files if f.path not in done], key, threads, index=index)
        return ScanResult(
            documents=[d for d in found.documents if d[0] in wanted] + extra.documents,
            whole_files=[f for f in found.whole_files if f.path in wanted] + extra.whole_files,
            unreadable=[u for u in found.unreadable if u[0] in wanted] + extra.unreadable,
            notes=[n for n in found.notes if n[0] in wanted] + extra.notes,
            index={**{p: k for p, k in found.index.items() if p in wanted}, **extra.index})

    def cancel(self) -> None:
        import signal

        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
