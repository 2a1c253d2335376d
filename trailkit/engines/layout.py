"""Which files hold CloudTrail events, and which delivery days a window needs: the log folder's layout.

The delivered S3 layout is ``AWSLogs/[o-id/]<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz``; exports are
any ``.json``/``.jsonl``/``.ndjson`` file, gzipped or not, whatever the case of the suffix. Digests
(``CloudTrail-Digest``) hold no events. Symbolic links are followed once: a folder or file reached twice (a
link beside its target, a loop) is listed once. FIFOs, devices and sockets are never opened, and folders that
cannot be read are named in a warning (``SkippedFile``) rather than ending the listing. The folder's date is the *delivery* date, so ``delivery_days`` pads a window by the day after
its last one; the local engine prunes folders with it and the Athena engine bounds its date partition with it.
This module knows nothing of DuckDB, caches or scans: they all import it.
"""
from __future__ import annotations

import os
import re
import warnings
from datetime import date, timedelta
from typing import NamedTuple

from ..errors import InvalidInput, SkippedFile
from ..inputs import Window

LOG_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".zip")
_DAY_DIR_RE = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})$")


class LogFile(NamedTuple):
    path: str
    day: date | None  # delivery date from the path, None outside the delivered layout
    size: int | None  # size and modification time: None when listed without them (no cache to key)
    mtime_ns: int | None
    # the inode's change time: a rewrite that keeps size and modification time (``touch -r``, ``cp -p``) still
    # moves it, and it comes with the same stat() (``os.utime`` cannot set it)
    ctime_ns: int | None = None


class Listing(NamedTuple):
    """The log files found, and the dated folders deliberately not listed (outside a window)."""

    files: list[LogFile]
    unlisted: set[str]
    seen: set = set()  # (device, inode) of every folder and file listed: each is listed once

    @classmethod
    def new(cls) -> "Listing":
        return cls([], set(), set())

    def covers(self, path: str) -> bool:
        """Whether ``path`` would have been listed if it existed (so its absence means it is gone)."""
        return os.path.dirname(path) not in self.unlisted


def delivery_days(window: Window) -> tuple[date | None, date | None]:
    """The delivery days that can hold events inside ``window``: the one padding rule of both engines.

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
    first, last = delivery_days(window)
    if first is None and last is None:  # every day (a question over all the logs)
        return list(files)
    return [f for f in files if f.day is None or _in_range(f.day, first, last)]


def _log_root(root: str | os.PathLike) -> str:
    """``root`` as a path, if it can be a log folder (or file): it exists, and is neither the whole machine nor
    one of the kernel's trees."""
    root = os.fspath(root)
    if not os.path.exists(root) or _pseudo(root) or os.path.realpath(root) == os.path.realpath(os.sep):
        raise _missing(root)
    return root


def _missing(root: str) -> InvalidInput:
    if os.path.realpath(root) == os.path.realpath(os.sep):
        return InvalidInput(f"{root!r} is the whole machine: every JSON file on it would be read; pass --logs DIR, "
                            "the folder holding AWSLogs/ or your exported logs")
    if _pseudo(root):
        return InvalidInput(f"{root!r} is one of the kernel's own folders ({', '.join(_PSEUDO)}), never logs; "
                            "pass --logs DIR")
    return InvalidInput(f"log folder {root!r} does not exist; pass --logs DIR or set TRAILKIT_LOGS")


def listing(root: str | os.PathLike, window: Window | None = None, stat: bool = True, watch=None) -> Listing:
    """The event files under ``root``. With a ``window``, dated folders outside it (see ``delivery_days``) are
    not listed at all: a one-day question over a month of logs looks at two days of files. ``stat=False``
    leaves out each file's size and modification time (only the cache needs them: ~5 µs a file). ``watch``
    (a ``FolderWatch``) is given each directory before it is read."""
    root = _log_root(root)
    if os.path.isfile(root):
        st = os.stat(root)
        return Listing([LogFile(root, None, st.st_size, st.st_mtime_ns, st.st_ctime_ns)], set(), set())
    out = Listing.new()
    _walk(root, "", out, *delivery_days(window or Window()), stat, watch)
    return out


def has_log_files(root: str | os.PathLike) -> bool:
    """Whether there is at least one event file under ``root`` (stops at the first; raises if it is missing)."""
    root = _log_root(root)
    if os.path.isfile(root):
        return True
    for path, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if _is_log_dir(d) and not _pseudo(os.path.join(path, d)))
        if any(map(_is_log_file, names)):
            return True
    return False


def require_log_files(root: str | os.PathLike) -> None:
    """Raise InvalidInput unless ``root`` exists and holds at least one event file (stops at the first)."""
    if not has_log_files(root):
        raise InvalidInput(f"no CloudTrail files (.json, .json.gz, .jsonl) under {os.fspath(root)!r}; "
                           "point --logs at the folder holding AWSLogs/ or your exported logs")


# The kernel's own trees: never evidence, reading /proc's files can block, and /proc/<pid>/root leads to "/".
_PSEUDO = ("/proc", "/sys", "/dev", "/run")


def _pseudo(path: str) -> bool:
    real = os.path.realpath(path)
    return any(real == p or real.startswith(p + "/") for p in _PSEUDO)


def _is_log_dir(name: str) -> bool:
    """Whether a folder can hold event files (digests cannot)."""
    return name != "CloudTrail-Digest"


def _is_log_file(name: str) -> bool:
    return name.lower().endswith(LOG_SUFFIXES) and "CloudTrail-Digest" not in name


def _skip(path: str, why: str) -> None:
    warnings.warn(f"skipped {path}: {why}", SkippedFile, stacklevel=3)


def _walk(path: str, rel: str, out: Listing, first: date | None, last: date | None, stat: bool, watch,
          linked: bool = False) -> None:
    # One scandir per folder and the folder's date parsed once: a month of logs is ~10,000 files. Only a link
    # leads out of the folder (into the kernel's trees, say): below one (``linked``), every folder is resolved.
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
    try:
        here = os.stat(path)
        if (here.st_dev, here.st_ino) in out.seen:  # reached again through a link: already listed
            return
        out.seen.add((here.st_dev, here.st_ino))
        if watch is not None:
            watch.add(path)
        with os.scandir(path) as it:
            entries = list(it)  # listing order: answers never depend on the order files are read in
    except OSError as e:
        _skip(path, f"the folder cannot be read ({e.strerror or e})")
        return
    for entry in entries:
        try:
            link = entry.is_symlink()
            if link and watch is not None:  # its target lies where the watch may not see it change
                watch.broken = True
            if entry.is_dir():  # follows links: the loop and twice-listed cases are caught above
                if _is_log_dir(entry.name) and not ((link or linked) and _pseudo(entry.path)):
                    _walk(entry.path, f"{rel}/{entry.name}" if rel else entry.name, out, first, last, stat, watch,
                          link or linked)
                continue
            if not _is_log_file(entry.name):
                continue
            if not entry.is_file():
                _skip(entry.path, "a link to nothing" if link and not os.path.exists(entry.path) else
                      "not a regular file (a FIFO, device or socket is never opened)")
                continue
            # a link's identity is its target's; a plain file's comes free with the listing
            st = entry.stat() if (stat or link) else None
            ident = (st.st_dev, st.st_ino) if st else (here.st_dev, entry.inode())
        except OSError as e:
            _skip(entry.path, f"it cannot be read ({e.strerror or e})")
            continue
        if ident in out.seen:
            continue
        out.seen.add(ident)
        out.files.append(LogFile(entry.path, day, st.st_size, st.st_mtime_ns, st.st_ctime_ns) if stat else
                         LogFile(entry.path, day, None, None))
