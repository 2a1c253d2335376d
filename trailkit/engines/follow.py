"""A key's lineage in one pass over the files: what the local engine reads for ``trailkit chain`` without a cache.

A lineage is known only once its links are read: the keys a key produced, and the key behind the call that
produced it, are in the records the link strings find (``questions.LINK_NEEDLES``). Rather than reading every
file twice (the links, then the lineage's keys), one pass looks for the link strings and the key together, and
each link it meets that ties another key to the lineage (a key produced by one of the lineage's keys; the key
behind a call that produced one of them) adds that key to what the rest of the pass looks for. Files are read
oldest first (by the time in CloudTrail's file names, else their delivery day), so a key is mostly looked for
before its first use.

After the pass the lineage is walked again over every link met (``walk.closure``), and each of its keys is looked
for in the files read before it was added (``_second_look``), save those delivered more than an hour before the
call that produced it: a file holds events from before its delivery only (the rule ``layout.delivery_days``
already prunes windows by). Everything found is kept (``Followed``): the links, the lineage's events, and any
other question about those keys, are answered from it without reading the files again.

The walk here only decides which keys to look for (a superset of the lineage: depth limits, errors and
federated users are left to ``trailkit.lineage``, which walks the SQL's answer). A record it cannot read (a
cut that does not parse) makes it give up: the engine then asks the ordinary way.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from bisect import bisect_right
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import inflate
from .layout import LogFile
from .scan import _KEY_ID, ScanResult, _escapes, _finder, _searchable, scan, scan_data
from .walk import closure

# a CloudTrail file's name carries its delivery time: ACCOUNT_CloudTrail_REGION_20260915T1205Z_UNIQUE.json.gz
_STAMP = re.compile(r"_(\d{8}T\d{4})Z_[^/\\]*$")
_NEVER = "99999999T9999"  # files with no time in their name or path: read last, and always looked at again


def stamp(f: LogFile) -> str:
    """When ``f`` was delivered, as ``YYYYMMDDTHHMM`` text (sorts as time): from CloudTrail's file name, else the
    end of its delivery day, else ``_NEVER``."""
    m = _STAMP.search(f.path)
    if m:
        return m.group(1)
    return f"{f.day:%Y%m%d}T2359" if f.day is not None else _NEVER


@dataclass
class Followed:
    """What one pass found for a key's lineage: every record holding a link string or one of ``keys``."""

    key: str
    paths: tuple                                   # the files read, in the listing's order (what the answer covers)
    keys: frozenset = frozenset()                  # the lineage's keys (a superset: see the module docstring)
    covered: frozenset = frozenset()               # the strings every record of which is in ``docs``
    docs: list = field(default_factory=list)       # (path, record bytes)
    whole_files: list = field(default_factory=list)
    unreadable: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    reread: int = 0                                # files looked at a second time, for keys added late
    _blob: bytes | None = None
    _starts: list = field(default_factory=list)
    _parsed: dict = field(default_factory=dict)

    def answers(self, key: str | None, files: list[LogFile]) -> bool:
        """Whether this pass was over ``files`` (and, given ``key``, for it)."""
        return (key is None or key == self.key) and self.paths == tuple(f.path for f in files)

    def covers(self, strings) -> bool:
        return bool(strings) and set(strings) <= self.covered

    def serve(self, files: list[LogFile], key: str) -> ScanResult | None:
        """The scan of ``files`` for ``key`` (``A|B``: any of them) from what was found, if it covers that (same
        files, every string looked for in all of them); else None, and the caller reads the files."""
        from .scan import needles

        wanted = needles(key)
        return self.result(wanted) if self.answers(None, files) and self.covers(wanted) else None

    def result(self, strings) -> ScanResult:
        """The scan's answer for records holding any of ``strings`` (all covered), as ``scan.scan`` gives it. A
        file any of whose records does not parse is handed back whole (DuckDB reads it; see ``scan``)."""
        found = sorted({i for s in strings for i in self._holding(s.encode())})
        whole = {f.path: f for f in self.whole_files}
        broken = {self.docs[i][0] for i in found if self.record(i) is None} - set(whole)
        for f in self._files(broken):
            whole[f.path] = f
        return ScanResult(
            documents=[(p, d.decode("utf-8", "replace")) for p, d in (self.docs[i] for i in found) if p not in whole],
            whole_files=list(whole.values()), unreadable=list(self.unreadable), notes=list(self.notes))

    def _files(self, paths: set) -> list[LogFile]:
        return [LogFile(p, None, None, None) for p in sorted(paths)]

    def _holding(self, needle: bytes) -> list[int]:
        """The records holding ``needle``: one SIMD search over all of them joined, not one per record."""
        if self._blob is None:
            self._starts, at = [], 0
            for _, d in self.docs:
                self._starts.append(at)
                at += len(d) + 1
            self._blob = b"\0".join(d for _, d in self.docs)
        blob = _searchable(self._blob)
        out, pos = [], blob.find(needle, 0)
        while pos != -1:
            i = bisect_right(self._starts, pos) - 1
            if not out or out[-1] != i:
                out.append(i)
            nxt = self._starts[i + 1] if i + 1 < len(self._starts) else len(self._blob)
            pos = blob.find(needle, max(pos + 1, nxt))
        return out

    def linking(self, i: int) -> bool:
        """Whether record ``i`` can have produced a key: its text holds a ``credentials`` or ``accessKey`` name
        (plainly, or escaped inside a text field)."""
        text = self.docs[i][1]
        return b'"credentials' in text or b'ccessKey"' in text or b'ccessKey\\"' in text

    def record(self, i: int) -> dict | None:
        """Record ``i``, parsed (once), or None if it does not parse to an object."""
        if i not in self._parsed:
            try:
                record = json.loads(self.docs[i][1])
            except (ValueError, RecursionError):
                record = None
            self._parsed[i] = record if isinstance(record, dict) else None
        return self._parsed[i]


def follow(files: list[LogFile], key: str, link_strings: tuple, threads: int | None = None,
           progress=None) -> Followed | None:
    """Read ``files`` once for ``key``'s lineage (see the module docstring); None when the walk cannot vouch for
    its answer (a record met that does not parse), and the caller asks the ordinary way."""
    order = sorted(range(len(files)), key=lambda i: (stamp(files[i]), files[i].path))
    ordered = [files[i] for i in order]
    grown = _Growing(key)
    base = [s.encode() for s in link_strings] + [key.encode()]
    gunzip, contains = inflate.inflater(), _finder()
    versions: dict[str, int] = {}  # path -> how many added keys it was searched for
    docs, whole, unreadable, notes = [], [], [], []

    def visit(f: LogFile):
        added = grown.added()
        strings = base + [k.encode() for k in added]
        status, payload, _, hits = scan_data(f, strings, gunzip, contains, grown.escaped(strings), validate=False)
        if status == "docs":
            for piece in payload[0]:
                produced = _produced_in(piece)
                if produced is not None:
                    grown.meet(_caller_in(piece, produced), produced)
        return f, len(added), status, payload

    workers = threads or min(8, os.cpu_count() or 2)
    batches = [ordered[i:i + 32] for i in range(0, len(ordered), 32)]
    began, finished = time.monotonic(), 0
    with ThreadPoolExecutor(workers) as pool:
        for done in pool.map(lambda batch: [visit(f) for f in batch], batches):
            finished += len(done)
            if progress is not None:
                progress(finished, len(files), time.monotonic() - began)
            for f, version, status, payload in done:
                versions[f.path] = version
                if status == "bad":
                    unreadable.append((f.path, payload))
                elif status == "whole":
                    whole.append(f)
                elif status == "docs":
                    pieces, how = payload
                    docs.extend((f.path, p) for p in pieces)
                    if how:
                        notes.append((f.path, how))
    found = Followed(key, tuple(f.path for f in files), docs=docs, whole_files=whole, unreadable=unreadable,
                     notes=notes)
    lineage = closure(found, key)
    if lineage is None:
        return None
    made, keys = lineage
    again = _second_look(ordered, versions, grown.order, made, keys, key,
                         {p for p, _ in unreadable} | {f.path for f in whole})
    if again:
        extra = scan(list(again), "|".join(sorted({k for ks in again.values() for k in ks})), threads)
        paths = {f.path for f in again}
        known = {(p, d.decode("utf-8", "replace")) for p, d in docs if p in paths}
        found.docs += [(p, d.encode()) for p, d in extra.documents if (p, d) not in known]
        already = {w.path for w in found.whole_files}
        found.whole_files += [f for f in extra.whole_files if f.path not in already]
        found.unreadable += [u for u in extra.unreadable if u not in found.unreadable]
        found.notes += extra.notes
        found.reread = len(again)
        found._blob = None
    found.keys = frozenset(keys)
    found.covered = frozenset(link_strings) | found.keys
    return found


class _Growing:
    """The keys the pass looks for besides the first, as links add them (shared by the pass's threads).

    Each link met is read quickly (``_produced_in``, ``_caller_in``): a key belongs to the first call met that
    produced it (as in ``trailkit.lineage``, a key produced twice is its first maker's; files are read roughly
    oldest first), and is added when that call's key is the first key or one it produced, or when it produced
    the first key or one of its ancestors. What is added only decides what the pass looks for: ``_closure``
    decides the lineage, from the records themselves (``walk``)."""

    def __init__(self, key: str):
        self.below = {key.encode()}  # the key and what it (and they) produced
        self.above = {key.encode()}  # the key and its ancestors
        self.order: list[str] = []  # keys added, in order: a file is searched for the first n of them
        self._maker: dict[bytes, bytes | None] = {}  # key -> the key of the first call met that produced it
        self._made: dict[bytes, list] = {}  # key -> the keys it was the first to produce
        self._lock = threading.Lock()
        self._patterns: dict[int, object] = {}

    def added(self) -> list[str]:
        return self.order[:]

    def escaped(self, strings: list[bytes]):
        n = len(strings)
        if n not in self._patterns:
            self._patterns[n] = _escapes(strings)
        return self._patterns[n]

    def meet(self, caller: bytes | None, produced: bytes) -> None:
        with self._lock:
            if produced in self._maker:
                return
            self._maker[produced] = caller
            self._made.setdefault(caller, []).append(produced)
            if caller in self.below:
                self._descend(produced)
            elif produced in self.above and caller:
                self._ascend(caller)

    def _descend(self, key: bytes) -> None:
        todo = [key]
        while todo:
            k = todo.pop()
            if k in self.below:
                continue
            self.below.add(k)
            self._add(k)
            todo += self._made.get(k, ())

    def _ascend(self, key: bytes) -> None:
        while key and key not in self.above and key not in self.below:
            self.above.add(key)
            self._add(key)
            key = self._maker.get(key)

    def _add(self, key: bytes) -> None:
        text = key.decode("ascii", "replace")
        if _KEY_ID.match(text):
            self.order.append(text)


_PRODUCING = (b'"credentials":{', b'"accessKey":{')
_CALLER = b'"accessKeyId":"'


def _produced_in(piece: bytes) -> bytes | None:
    """The key a record's call produced, read quickly from its text (the first ``accessKeyId`` after a
    ``"credentials"`` or ``"accessKey"`` object opens), or None: a guess that only steers the pass."""
    for head in _PRODUCING:
        at = piece.find(head)
        if at != -1:
            return _value_at(piece, piece.find(_CALLER, at))
    return None


def _caller_in(piece: bytes, produced: bytes) -> bytes | None:
    """The record's caller's key, read quickly: the first ``accessKeyId`` after ``userIdentity`` opens, unless
    that is the key produced (a caller without a key)."""
    at = piece.find(b'"userIdentity":{')
    caller = _value_at(piece, piece.find(_CALLER, at)) if at != -1 else None
    return caller if caller != produced else None


def _value_at(piece: bytes, at: int) -> bytes | None:
    if at == -1:
        return None
    end = piece.find(b'"', at + len(_CALLER))
    return bytes(piece[at + len(_CALLER):end]) if end != -1 else None


def _second_look(ordered: list[LogFile], versions: dict, order: list[str], made: dict, keys: set, key: str,
                 done: set) -> dict:
    """file -> the lineage's keys it was not searched for and may hold: those delivered after the call that
    produced the key (less ``SLACK``), or any file for a key whose making is not in the logs (an ancestor)."""
    position = {k: i for i, k in enumerate(order)}
    late = [k for k in keys if k != key]
    out: dict = {}
    for f in ordered:
        if f.path in done or f.path not in versions:
            continue
        when = stamp(f)
        missing = [k for k in late if position.get(k, len(order)) >= versions[f.path]
                   and (made.get(k) is None or when >= made[k])]
        if missing:
            out[f] = missing
    return out
