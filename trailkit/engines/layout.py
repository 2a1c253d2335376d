"""Which files hold CloudTrail events, and which delivery days a window needs: the log folder's layout.

The delivered S3 layout is ``AWSLogs/[o-id/]<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz``; exports are
any ``.json``/``.jsonl``/``.ndjson`` file, gzipped or not. Digests (``CloudTrail-Digest``) and hidden folders
hold no events. The folder's date is the *delivery* date, so ``delivery_days`` pads a window by the day after
its last one; the local engine prunes folders with it and the Athena engine bounds its date partition with it.
This module knows nothing of DuckDB, caches or scans: they all import it.
"""
from __future__ import annotations

import os
import re
from datetime import date, timedelta
from typing import NamedTuple

from ..errors import InvalidInput
from ..inputs import Window

LOG_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
_DAY_DIR_RE = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})$")


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
    return [f for f in files if f.day is None or _in_range(f.day, first, last)]


def _missing(root: str) -> InvalidInput:
    return InvalidInput(f"log folder {root!r} does not exist; pass --logs DIR or set TRAILKIT_LOGS")


def listing(root: str | os.PathLike, window: Window | None = None, stat: bool = True, watch=None) -> Listing:
    """The event files under ``root``. With a ``window``, dated folders outside it (see ``delivery_days``) are
    not listed at all: a one-day question over a month of logs looks at two days of files. ``stat=False``
    leaves out each file's size and modification time (only the cache needs them: ~5 µs a file). ``watch``
    (a ``FolderWatch``) is given each directory before it is read."""
    root = os.fspath(root)
    if not os.path.exists(root):
        raise _missing(root)
    if os.path.isfile(root):
        st = os.stat(root)
        return Listing([LogFile(root, None, st.st_size, st.st_mtime_ns)], set())
    out = Listing([], set())
    _walk(root, "", out, *delivery_days(window or Window()), stat, watch)
    return out


def has_log_files(root: str | os.PathLike) -> bool:
    """Whether there is at least one event file under ``root`` (stops at the first; raises if it is missing)."""
    root = os.fspath(root)
    if not os.path.exists(root):
        raise _missing(root)
    if os.path.isfile(root):
        return True
    for path, dirs, names in os.walk(root):
        dirs[:] = sorted(filter(_is_log_dir, dirs))
        if any(map(_is_log_file, names)):
            return True
    return False


def require_log_files(root: str | os.PathLike) -> None:
    """Raise InvalidInput unless ``root`` exists and holds at least one event file (stops at the first)."""
    if not has_log_files(root):
        raise InvalidInput(f"no CloudTrail files (.json, .json.gz, .jsonl) under {os.fspath(root)!r}; "
                           "point --logs at the folder holding AWSLogs/ or your exported logs")


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
