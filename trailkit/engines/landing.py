"""Copied evidence landing on local disk whole or not at all: what ``trailkit fetch`` writes, and how.

A copy is written under a temporary name beside its real one (``.trailkit-*.part``), checked (its size, and
its MD5 when one is known), flushed to disk and only then renamed, so a real name never holds part of a file,
whether the copy is stopped, fails or the machine dies. A stopped copy removes its temporary file; one left by
a killed process is removed by ``clear_parts``. Files are written 0600 and the folders made for them 0700,
whatever the umask: they are evidence.

The manifest (``.trailkit-fetch-manifest`` in the destination, a JSON list a line: path, ETag, size,
modification time in ns) remembers which object each file was copied from, so a file need not be read again
to know it is already there; it is believed while the file keeps that size and modification time. It is
appended to as each file lands (a copy cut short keeps what it finished; a line cut short by a kill is
ignored) and rewritten whole when the copy ends.

None of these names ends in a suffix the local engine reads (``layout.LOG_SUFFIXES``), so they are never taken
for logs nor warned about. This module knows nothing of S3.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from typing import Iterable

from ..errors import InvalidInput

MANIFEST = ".trailkit-fetch-manifest"
PART_PREFIX, PART_SUFFIX = ".trailkit-", ".part"
CHUNK = 1 << 20


class NotLanded(Exception):
    """A copy that did not reach its real name; the message says why."""


def land(path: str, chunks: Iterable[bytes], size: int, md5: str | None, stop: threading.Event) -> tuple[int, int]:
    """Write ``chunks`` to ``path`` whole or not at all; its modification and change times (ns).

    Raises NotLanded when fewer or more than ``size`` bytes arrive, when their MD5 is not ``md5`` (if given) or
    when ``stop`` is set between chunks; any error leaves ``path`` as it was.
    """
    folder = os.path.dirname(path)
    private_folders(folder)
    fd, part = tempfile.mkstemp(dir=folder, prefix=PART_PREFIX, suffix=PART_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)
            digest, got = hashlib.md5(usedforsecurity=False), 0
            for chunk in chunks:
                if stop.is_set():
                    raise NotLanded("the fetch was stopped while copying it")
                out.write(chunk)
                digest.update(chunk)
                got += len(chunk)
            out.flush()
            os.fsync(out.fileno())  # on disk before it has its name: a crash leaves no empty file under it
        if got != size:
            raise NotLanded(f"{got} of its {size} bytes arrived")
        if md5 is not None and digest.hexdigest() != md5:
            raise NotLanded("its bytes do not match its ETag (their MD5)")
        os.replace(part, path)
    except BaseException:
        _unlink(part)
        raise
    st = os.stat(path)
    return st.st_mtime_ns, st.st_ctime_ns


def md5_of(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def private_folders(folder: str) -> None:
    """Make ``folder`` and its missing parents owner-only (``os.makedirs`` gives only the last its mode)."""
    if os.path.isdir(folder):
        return
    private_folders(os.path.dirname(folder))
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:  # another worker made it
        return
    os.chmod(folder, 0o700)  # whatever the umask


def clear_parts(folders: Iterable[str]) -> None:
    """Remove the temporary files a killed copy left in ``folders`` (a stopped one removes its own)."""
    for folder in folders:
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            continue
        for name in names:
            if name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX):
                _unlink(os.path.join(folder, name))


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class Manifest:
    """Which object each file under ``dest`` was copied from: ``entries[path] = (etag, size, mtime_ns,
    ctime_ns)``. The inode's change time moves whenever the file is rewritten, even when its size and
    modification time are put back, so a copy altered in place is checked again.

    Read once; ``add`` is called from one thread (the one collecting finished copies); ``close`` compacts.
    """

    def __init__(self, dest: str):
        self.path = os.path.join(dest, MANIFEST)
        self.entries: dict[str, tuple[str, int, int, int]] = {}
        self._out = None
        try:
            with open(self.path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidInput(f"{self.path} cannot be read ({e}); remove it (files are then checked by their MD5 "
                               "or copied again)") from None
        for line in lines:
            try:
                rel, etag, length, mtime_ns, ctime_ns = json.loads(line)
                self.entries[str(rel)] = (str(etag), int(length), int(mtime_ns), int(ctime_ns))
            except (ValueError, TypeError):  # a line cut short by a kill: that file is checked again
                continue

    def add(self, rel: str, etag: str, size: int, stamp: tuple[int, int]) -> None:
        self.entries[rel] = (etag, size, *stamp)
        if self._out is None:
            self._out = os.fdopen(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a",
                                  encoding="utf-8")
            self._out.write("\n")  # whatever a killed copy left half-written ends here
        self._out.write(json.dumps([rel, etag, size, *stamp]) + "\n")
        self._out.flush()

    def close(self) -> None:
        if self._out is None:
            return
        self._out.close()
        part = self.path + PART_SUFFIX
        with os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
            out.writelines(json.dumps([rel, *entry]) + "\n" for rel, entry in sorted(self.entries.items()))
        os.replace(part, self.path)
