"""Knowing that a log folder has not changed, without stat()ing every file again (Linux, local disks).

A notebook asks many questions of one folder, and each must see new, changed and removed files; a month of
logs is ~10,000 files, ~60 ms of stat() per question. An inotify watch on each listed directory is told of
every change to its entries (created, written, truncated, touched, renamed, deleted) as it happens, so while
no event is pending the previous listing is still exact and need not be made again.

Only where inotify sees every change: on Linux, on local filesystems. On network and FUSE filesystems another
machine may write without any event here, so there is no watch and every question lists (and stats) again;
likewise when inotify_simple is missing or the kernel's watch limit is reached.
"""
from __future__ import annotations

import os
import sys

# Filesystems whose every change goes through this kernel, so inotify reports it.
LOCAL_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "ramfs", "overlay", "zfs", "f2fs",
                               "jfs", "reiserfs", "bcachefs"})


def filesystem_type(path: str) -> str | None:
    """The type of the filesystem holding ``path`` (``ext4``, ``nfs4``, ``fuse.s3fs``...), None if unknown."""
    try:
        import psutil

        mounts = {p.mountpoint: p.fstype for p in psutil.disk_partitions(all=True)}
    except Exception:  # no psutil, or no mount table to read
        return None
    real = os.path.realpath(path)
    while True:
        if real in mounts:
            return mounts[real]
        parent = os.path.dirname(real)
        if parent == real:
            return None
        real = parent


class FolderWatch:
    """inotify watches on the directories of one listing; ``changed()`` says whether anything moved since."""

    def __init__(self, inotify, mask: int):
        self._inotify = inotify
        self._mask = mask
        self.broken = False  # a directory could not be watched: changes may go unseen, so always "changed"

    @classmethod
    def open(cls, root: str | os.PathLike) -> FolderWatch | None:
        """A watch for the folder ``root``, or None where changes could go unseen (see the module docstring)."""
        if not sys.platform.startswith("linux") or filesystem_type(os.fspath(root)) not in LOCAL_FILESYSTEMS:
            return None
        try:
            from inotify_simple import INotify, flags
        except ImportError:
            return None
        mask = (flags.CREATE | flags.DELETE | flags.MODIFY | flags.ATTRIB | flags.CLOSE_WRITE | flags.MOVED_FROM
                | flags.MOVED_TO | flags.DELETE_SELF | flags.MOVE_SELF)
        try:
            return cls(INotify(nonblocking=True), mask)
        except OSError:  # out of inotify instances
            return None

    def add(self, directory: str) -> None:
        """Watch ``directory``: call before reading it, so that no change can fall between reading and watching."""
        if self.broken:
            return
        try:
            self._inotify.add_watch(directory, self._mask)
        except OSError:  # the kernel's limit on watches, or the directory just vanished
            self.broken = True

    def changed(self) -> bool:
        """Whether any watched directory or file changed (or may have) since the watches were set."""
        try:
            events = self._inotify.read(timeout=0)
        except OSError:
            return True
        return bool(events) or self.broken

    def close(self) -> None:
        self._inotify.close()
