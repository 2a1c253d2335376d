"""A file's bytes, read and inflated within bounds: the one place trailkit opens a log file itself.

``read`` takes a whole file in three system calls; ``gunzip`` (from ``inflater()``) inflates with the fastest
library at hand, member by member, never past ``inflate_limit`` of the compressed size, so a decompression bomb
is named instead of filling memory; ``oversized`` says, from a gzip trailer, which files DuckDB must not be
handed; ``unzipped`` opens zip archives of log files under the same bounds.
"""
from __future__ import annotations

import os

ZIP = b"PK\x03\x04"
_READ = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # how a log file is opened


class CorruptGzip(ValueError):
    """Bytes that do not inflate as gzip (damaged, cut short, or not gzip at all)."""


class DecompressionBomb(CorruptGzip):
    """A file that inflates to far more than any log file does: named and skipped, never held in memory."""


# A CloudTrail file inflates ~10-30 times; past 100 times (and 64 MiB) it is not a log, and 1 GiB is the most
# any file may take. Memory stays within these whatever a file claims in its gzip trailer.
MAX_RATIO, MIN_LIMIT, MAX_LIMIT = 100, 64 << 20, 1 << 30


def gzipped(raw: bytes, name: str = "") -> bool:
    """Whether to inflate: gzip by its bytes, whatever the name, or by a ``.gz`` name (then bytes that are not
    gzip are named as unreadable rather than read as text)."""
    return raw[:2] == b"\x1f\x8b" or name[-3:].lower() == ".gz"


def refused(files) -> list[tuple[str, str]]:
    """The log files (``LogFile``s) DuckDB must not be given, and why (see ``oversized``)."""
    return [(f.path, why) for f in files if (why := oversized(f.path))]


def inflate_limit(compressed: int) -> int:
    return min(MAX_LIMIT, max(MIN_LIMIT, MAX_RATIO * compressed))


def oversized(path: str) -> str | None:
    """Why DuckDB must not be handed this gzip file (its trailer says it inflates past ``inflate_limit``), or
    None. DuckDB inflates what it reads in memory; a bomb is named before it gets there. (A trailer holds the
    size modulo 4 GiB of the last member only: a crafted file can still lie, and then meets DuckDB's own 1 GiB
    object limit.)"""
    try:
        fd = os.open(path, _READ)
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


def inflater():
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
    try:  # SIMD search: ~1 µs over a 30 KB file, where bytes.find takes 17
        from stringzilla import find
    except ImportError:
        def find(data, needle, start):
            return data.find(needle, start)
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
                # libdeflate stops after the first member; the trailer is the last one's, and equal sizes would
                # hide a second member: one more gzip header after the first one means several members
                if len(data) == size and find(raw, b"\x1f\x8b\x08", 10) == -1:
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



def read(path: str) -> bytes:
    """A whole file, without the buffered file object ``open()`` builds (over a quarter less time a file)."""
    fd = os.open(path, _READ)
    try:
        size = os.fstat(fd).st_size
        chunks = []
        while True:  # to the end, however the file changed since fstat
            chunk = os.read(fd, size + 1)
            if not chunk:
                break
            chunks.append(chunk)
            if len(chunk) == size:  # the size fstat gave, of size + 1 asked: the end, without a read more
                break                # to be told so
    finally:
        os.close(fd)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)



def unzipped(raw: bytes) -> list[tuple[str, bytes]]:
    """The log files of a zip archive (by their names' suffixes, gzip inside included), each inflated within
    ``inflate_limit`` of its compressed size."""
    import io
    import zipfile

    from .layout import LOG_SUFFIXES

    out, seen, budget = [], set(), inflate_limit(len(raw))  # one budget for the whole archive
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        for info in archive.infolist():
            name = info.filename.lower()
            if info.is_dir() or not name.endswith(LOG_SUFFIXES) or name.endswith(".zip") or \
                    info.header_offset in seen:  # entries sharing one member: read once
                continue
            seen.add(info.header_offset)
            with archive.open(info) as member:
                data = member.read(budget + 1)
            budget -= len(data)
            if budget < 0:
                raise DecompressionBomb(f"the archive inflates to more than {inflate_limit(len(raw)) >> 20} MiB from "
                                        f"{len(raw):,} bytes (at {info.filename}); a decompression bomb")
            out.append((info.filename, inflater()(data) if gzipped(data) else data))
    return out
