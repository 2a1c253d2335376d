"""The fast path for a question about one key: inflate, look for the key's bytes, parse only what matches.

An access key id is a literal 20-byte string. A file whose inflated bytes do not contain it holds none of the
key's events and needs no JSON parsing at all; in a file that does, only the records around each occurrence are
cut out (CloudTrail writes each record starting with ``{"eventVersion"``; JSON-lines files hold one per line)
and checked to parse. Anything unusual falls back to handing the whole file to DuckDB, so the answer never
depends on the shortcut. Inflating runs on worker threads with a decompressor that releases the GIL.
"""
from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .layout import LogFile

_RECORD = b'{"eventVersion"'
# an escaped capital letter or digit: the only characters of a key id
_ESCAPED = re.compile(rb"\\u00(?:3[0-9]|4[1-9a-fA-F]|5[0-9aA])")


class CorruptGzip(ValueError):
    """Bytes that do not inflate as gzip (damaged, cut short, or not gzip at all)."""


class DecompressionBomb(CorruptGzip):
    """A file that inflates to far more than any log file does: named and skipped, never held in memory."""


# A CloudTrail file inflates ~10-30 times; past 100 times (and 64 MiB) it is not a log, and 1 GiB is the most
# any file may take. Memory stays within these whatever a file claims in its gzip trailer.
MAX_RATIO, MIN_LIMIT, MAX_LIMIT = 100, 64 << 20, 1 << 30


def inflate_limit(compressed: int) -> int:
    return min(MAX_LIMIT, max(MIN_LIMIT, MAX_RATIO * compressed))


def oversized(path: str) -> str | None:
    """Why DuckDB must not be handed this gzip file (its trailer says it inflates past ``inflate_limit``), or
    None. DuckDB inflates what it reads in memory; a bomb is named before it gets there. (A trailer holds the
    size modulo 4 GiB of the last member only: a crafted file can still lie, and then meets DuckDB's own 1 GiB
    object limit.)"""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError:
        return None  # named by whoever reads it
    try:
        size = os.fstat(fd).st_size
        if size < 18 or os.pread(fd, 2, 0) != b"\x1f\x8b":
            return None
        claimed = int.from_bytes(os.pread(fd, 4, size - 4), "little")
    finally:
        os.close(fd)
    limit = inflate_limit(size)
    if claimed > limit:
        return (f"its gzip trailer claims {claimed >> 20} MiB from {size:,} bytes, more than {limit >> 20} MiB: "
                "a decompression bomb or a damaged file, not read")
    return None


def _inflater():
    """gunzip(raw) -> bytes with the fastest inflate at hand: libdeflate, then ISA-L, zlib-ng, zlib.

    All of them release the GIL while inflating. libdeflate inflates a whole buffer ~20% faster than ISA-L on
    CloudTrail files (it sizes its output from the gzip trailer and checks the CRC), and is used when the
    trailer's size is within ``inflate_limit``; anything else (several gzip members, as Firehose writes them;
    a trailer that lies; no libdeflate) is inflated member by member, in a stream that stops at the limit.
    """
    try:
        from deflate import DeflateError, gzip_decompress
    except ImportError:
        gzip_decompress, DeflateError = None, ValueError
    for module in ("isal.isal_zlib", "zlib_ng.zlib_ng", "zlib"):
        try:
            stream = __import__(module, fromlist=["decompressobj"]).decompressobj
            break
        except ImportError:
            continue

    def gunzip(raw: bytes) -> bytes:
        try:
            return inflate(raw)
        except (MemoryError, DecompressionBomb):
            raise
        except Exception as e:  # each inflater has its own error types: one name for all of them
            raise CorruptGzip(f"not a readable gzip file ({type(e).__name__}: {e})") from e

    def inflate(raw: bytes) -> bytes:
        limit = inflate_limit(len(raw))
        size = int.from_bytes(raw[-4:], "little") if len(raw) >= 18 else None
        if gzip_decompress is not None and size is not None and size <= limit:
            try:
                data = gzip_decompress(raw)
                if len(data) == size:
                    return data
            except (DeflateError, ValueError, MemoryError):  # not one plain gzip member: streamed below,
                pass                                          # which reads it or says what is wrong
        return members(raw, limit)

    def members(raw: bytes, limit: int) -> bytes:
        out, total, rest = [], 0, raw
        while rest:
            d = stream(47)
            chunk = d.decompress(rest, limit - total + 1)
            total += len(chunk)
            out.append(chunk)
            if total > limit:
                raise DecompressionBomb(f"inflates to more than {limit >> 20} MiB from {len(raw):,} bytes; "
                                        "a decompression bomb, not a log file")
            if not d.eof:
                raise ValueError("the gzip stream is cut short")
            rest = d.unused_data
        return b"".join(out)

    return gunzip


def _finder():
    """contains(data, needle) -> bool, as fast as the machine allows.

    StringZilla's SIMD search runs at ~20 GB/s on just-inflated bytes (four times libc's memmem here), so it
    costs ~10 µs a file even holding the GIL. Without it: libc's memmem through ctypes (which releases the
    GIL for the call), else Python's ``in``.
    """
    try:
        from stringzilla import find

        return lambda data, needle: find(data, needle) != -1
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


def _records_around(data: bytes, key: bytes) -> list[bytes] | None:
    """The records of a ``{"Records":[...]}`` document that contain ``key``, or None if the layout is unusual."""
    out, seen = [], set()
    end_of_array = data.rfind(b"]")
    pos = data.find(key)
    while pos != -1:
        start = data.rfind(_RECORD, 0, pos)
        if start == -1:
            return None
        if start not in seen:
            seen.add(start)
            nxt = data.find(b"," + _RECORD, pos)
            end = nxt if nxt != -1 else end_of_array
            if end <= pos:
                return None
            out.append(data[start:end])
        pos = data.find(key, pos + len(key))
    return out


def _lines_around(data: bytes, key: bytes) -> list[bytes]:
    out, seen = [], set()
    pos = data.find(key)
    while pos != -1:
        start = data.rfind(b"\n", 0, pos) + 1
        if start not in seen:
            seen.add(start)
            end = data.find(b"\n", pos)
            out.append(data[start:end if end != -1 else len(data)])
        pos = data.find(key, pos + len(key))
    return out


def _valid(pieces: list[bytes]) -> bool:
    try:
        return all(isinstance(json.loads(p), dict) for p in pieces)
    except (ValueError, RecursionError):  # nested past Python's limit: DuckDB reads the file instead
        return False


def _read(path: str) -> bytes:
    """A whole file, without the buffered file object ``open()`` builds (over a quarter less time a file)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        size = os.fstat(fd).st_size
        chunks = []
        while True:  # to the end, however the file changed since fstat
            chunk = os.read(fd, size + 1)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _scan_one(f: LogFile, key: bytes, inflate, contains):
    """(status, payload) for one file; status is skip, docs, whole or bad."""
    try:
        raw = _read(f.path)
        # gzip by its name (then bytes that are not gzip are named as unreadable) or by its bytes
        data = inflate(raw) if raw[:2] == b"\x1f\x8b" or f.path[-3:].lower() == ".gz" else raw
    except CorruptGzip as e:  # unreadable (or a bomb): named by the caller
        return "bad", str(e)
    except Exception as e:
        return "bad", f"{type(e).__name__}: {e}"
    if not contains(data, key):
        # JSON may write any character as \uXXXX: a file with such escapes is parsed, not searched
        if not (contains(data, b"\\u00") and _ESCAPED.search(data)):
            return "skip", None
        pieces = _parsed_around(data, key)
        return ("docs", pieces) if pieces else ("skip", None) if pieces is not None else ("whole", None)
    head = data[:64].lstrip()
    if head.startswith(b'{"Records"'):
        pieces = _records_around(data, key)
    elif head.startswith(b"{") and b"\n" in data.rstrip():
        pieces = _lines_around(data, key)
    else:
        pieces = None
    if pieces is None or not _valid(pieces):
        pieces = _parsed_around(data, key)
    if pieces is None:
        return "whole", None
    return "docs", pieces


def _records_of(text: str) -> tuple[list, int]:
    """The records of a document or of JSON lines, and how many lines were not JSON (0 for a whole document)."""
    try:
        doc = json.loads(text)
    except ValueError:  # JSON lines: a line that is not JSON costs that line
        records, bad = [], 0
        for line in text.splitlines():
            if line.strip():
                try:
                    records.append(json.loads(line))
                except ValueError:
                    bad += 1
        return records, bad
    if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
        return doc["Records"], 0
    return (doc if isinstance(doc, list) else [doc]), 0


def salvage(path: str) -> tuple[list[str], str]:
    """What can be read of a file DuckDB could not read: its records (as JSON text), and what was lost, said in
    words ('' when nothing was). A byte that is not UTF-8 costs that character; a line that is not JSON costs
    that line. Raises when nothing of it can be read (not gzip where it should be, not JSON at all)."""
    raw = _read(path)
    data = _inflater()(raw) if raw[:2] == b"\x1f\x8b" or path[-3:].lower() == ".gz" else raw
    text = data.decode("utf-8", errors="replace")
    lost = []
    if "\ufffd" in text and "\ufffd" not in data.decode("utf-8", errors="ignore"):
        lost.append(f"{text.count(chr(0xFFFD))} byte(s) that are not UTF-8 replaced")
    try:
        records, bad = _records_of(text)
    except RecursionError:
        raise ValueError("records nested too deeply to read") from None
    records = [r for r in records if isinstance(r, dict)]
    if bad:
        lost.append(f"{bad} line(s) that are not JSON skipped")
    if not records:
        raise ValueError("no JSON record could be read")
    return [json.dumps(r) for r in records], "; ".join(lost)


def _parsed_around(data: bytes, key: bytes) -> list[bytes] | None:
    """The records that contain ``key``, found by parsing the whole document (pretty-printed files, records in
    another key order, top-level arrays, gzip under a plain name); None if it does not parse."""
    try:
        records, bad = _records_of(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    if bad:  # a line that is not JSON: the whole-file path says which file lost what
        return None
    needle = key.decode()
    out = [json.dumps(r).encode() for r in records if isinstance(r, dict)]
    return [r for r in out if needle in r.decode()]


def scan(files: list[LogFile], key: str, threads: int | None = None) -> ScanResult:
    """Find every record that contains ``key`` in ``files``; see the module docstring."""
    needle = key.encode()
    inflate, contains = _inflater(), _finder()
    result = ScanResult()
    if not files:
        return result
    workers = threads or min(8, os.cpu_count() or 2)
    # Batches keep the pool's per-task cost small against ~10,000 files of a few KB; results hold only the
    # matching records, so memory stays flat however large the corpus.
    batches = [files[i:i + 32] for i in range(0, len(files), 32)]

    def run(batch):
        return [(f, *_scan_one(f, needle, inflate, contains)) for f in batch]

    with ThreadPoolExecutor(workers) as pool:
        for done in pool.map(run, batches):
            for f, status, payload in done:
                if status == "skip":
                    continue
                if status == "bad":
                    result.unreadable.append((f.path, payload))
                    continue
                if status == "whole":
                    result.whole_files.append(f)
                else:
                    result.documents.extend((f.path, p.decode("utf-8", "replace")) for p in payload)
    return result


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
    def start(cls, root: str, window, key: str, threads: int | None = None) -> ForkedScan | None:
        import sys
        import threading

        if not sys.platform.startswith("linux") or not hasattr(os, "fork") or threading.active_count() > 1:
            return None
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            try:
                os.close(read_end)
                from .layout import listing, prune

                files = prune(listing(root, window, stat=False).files, window)
                payload = ("ok", [f.path for f in files], scan(files, key, threads))
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

    def result(self, files: list[LogFile], key: str, threads: int | None = None) -> ScanResult | None:
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
        extra = scan([f for f in files if f.path not in done], key, threads)
        return ScanResult(
            documents=[d for d in found.documents if d[0] in wanted] + extra.documents,
            whole_files=[f for f in found.whole_files if f.path in wanted] + extra.whole_files,
            unreadable=[u for u in found.unreadable if u[0] in wanted] + extra.unreadable)

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
