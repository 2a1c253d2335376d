"""A key's lineage in one pass over the files: what the local engine reads for ``trailkit chain`` without a cache.

Every record that ties a key to the lineage holds a key of the lineage: the call a lineage key made (its caller's
key), or the call that produced a lineage key (the key, in its answer). So one pass looks for the key and, as
they are met, for the keys the lineage's records tie to it (a key one of them produced; the key behind the call
that produced one of them; a federated user one of them made): each is added to what the rest of the pass looks
for. Files are read oldest first (by the time in CloudTrail's file names; other files last), so a key is mostly
looked for before its first use. They are read by forked workers (``engines.forked``: on threads where forking is
unsafe), each taking the next batch of files as it goes and telling the others what its records added
(``growing.Growing``), so the keys one worker meets are looked for in the files the others read next.

A key belongs to the first successful call that produced it (``trailkit.lineage``), and that call need not hold
a lineage key. So the pass also notes, in every file, the keys the calls there produced and when (``Producers``,
read from the bytes around each ``"credentials"`` or ``"accessKey"`` object, without cutting the records out):
a key one of the lineage's calls produced is not followed when another call produced it earlier.

After the pass the lineage is walked over the records found (``walk.closure``), and files are read again where
the walk needs them: the earliest call noted to produce a key the walk asked about, if it came before the one
the walk knows of (the first maker is then read, not guessed); and for each lineage key, the files read before it
was added and delivered after the call that produced it, less an hour (a file holds events from before its
delivery only: the rule ``layout.delivery_days`` already prunes windows by). Then the walk again, until nothing
is left to read. Everything found is kept (``Followed``): the links of the lineage, its events, and any other
question about those keys, are answered from it without reading the files again.

The walk here only decides which keys to look for (a superset of the lineage: depth limits, errors and windows
are left to ``trailkit.lineage``, which walks the SQL's answer). A record it cannot read (a cut that does not
parse) makes it give up: the engine then asks the ordinary way.
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

from . import forked, inflate
from .growing import LINK_NAMES, Growing, Looked, linking
from .layout import LogFile
from .scan import ScanResult, _escapes, _finder, _searchable, scan, scan_data
from .walk import FEDERATED_USER, Producers, _parsed, closure

# a CloudTrail file's name carries its delivery time: ACCOUNT_CloudTrail_REGION_20260915T1205Z_UNIQUE.json.gz
_STAMP = re.compile(r"_(\d{8}T\d{4})Z_[^/\\]*$")
_NEVER = "99999999T9999"  # files with no time in their name or path: read last, and always looked at again


def stamp(f: LogFile) -> str:
    """When ``f`` was delivered, as ``YYYYMMDDTHHMM`` text (sorts as time): from CloudTrail's file name, else
    ``_NEVER`` (an export or a file renamed may hold anything: read last, and looked at again for every key)."""
    m = _STAMP.search(f.path)
    return m.group(1) if m else _NEVER


@dataclass
class Followed:
    """What one pass found for a key's lineage: every record holding one of ``covered``."""

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
    _held: dict = field(default_factory=dict)  # needle -> the records holding it (``_holding``)
    _links: set | None = None  # the records that can have produced a key (``linking``)

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
        """The scan's answer for records holding any of ``strings`` (all covered), as ``scan.scan`` gives it (each
        record kept was checked to parse when it was cut out: a file where one did not is read whole)."""
        found = sorted({i for s in strings for i in self._holding(s.encode())})
        whole = {f.path for f in self.whole_files}
        return ScanResult(
            documents=[(p, d.decode("utf-8", "replace")) for p, d in (self.docs[i] for i in found) if p not in whole],
            whole_files=list(self.whole_files), unreadable=list(self.unreadable), notes=list(self.notes))

    def _holding(self, needle: bytes) -> list[int]:
        """The records holding ``needle``: one SIMD search over all of them joined, not one per record (and
        once: the walk asks again after each reading)."""
        if self._blob is None:
            self._starts, at = [], 0
            for _, d in self.docs:
                self._starts.append(at)
                at += len(d) + 1
            self._blob, self._held = b"\0".join(d for _, d in self.docs), {}
        if needle in self._held:
            return self._held[needle]
        blob = _searchable(self._blob)
        out, pos = [], blob.find(needle, 0)
        while pos != -1:
            i = bisect_right(self._starts, pos) - 1
            if not out or out[-1] != i:
                out.append(i)
            nxt = self._starts[i + 1] if i + 1 < len(self._starts) else len(self._blob)
            pos = blob.find(needle, max(pos + 1, nxt))
        self._held[needle] = out
        return out

    def linking(self, i: int) -> bool:
        """Whether record ``i`` can have produced a key: it holds a ``credentials`` or ``accessKey`` name."""
        if self._links is None:  # (reset with the records: ``add``)
            self._links = {j for name in LINK_NAMES for j in self._holding(name)}
        return i in self._links

    def record(self, i: int) -> dict | None:
        """Record ``i``, parsed (once), or None if it does not parse to an object."""
        if i not in self._parsed:
            self._parsed[i] = _parsed(self.docs[i][1])
        return self._parsed[i]

    def add(self, extra: ScanResult) -> None:
        """What a second look found, each record once."""
        paths = {p for p, _ in extra.documents}
        known = {(p, _canonical(d)) for p, d in self.docs if p in paths}
        for p, d in extra.documents:
            if (p, same := _canonical(d)) not in known:
                known.add((p, same))
                self.docs.append((p, d.encode()))
        already = {w.path for w in self.whole_files}
        self.whole_files += [f for f in extra.whole_files if f.path not in already and not already.add(f.path)]
        self.unreadable += [u for u in extra.unreadable if u not in self.unreadable]
        self.notes += [n for n in extra.notes if n not in self.notes]
        self._blob, self._links = None, None


def _canonical(text) -> str:
    """A record's text in one form (parsed, keys sorted): cut out of a file, or parsed and written again."""
    record = _parsed(text)
    if record is not None:
        return json.dumps(record, sort_keys=True)
    return text if isinstance(text, str) else bytes(text).decode("utf-8", "replace")


def followed(engine, key: str, hints) -> Followed | None:
    """What the local engine ``engine`` keeps for ``key``'s lineage: its last pass, if over the same files
    (``hints``: the links question's), else a new one, with DuckDB imported and connected meanwhile."""
    needed = engine.files(hints)
    if engine._followed is not None and engine._followed.answers(key, needed):
        return engine._followed
    return follow(needed, key, hints.needles, engine.threads, engine._scan_progress(), lambda: _connect(engine))


def _connect(engine) -> None:
    try:
        engine.con  # noqa: B018 - opens the connection (imports DuckDB)
    except Exception:  # said when the first question opens it
        pass


def follow(files: list[LogFile], key: str, link_strings: tuple, threads: int | None = None,
           progress=None, meanwhile=None) -> Followed | None:
    """Read ``files`` once for ``key``'s lineage (see the module docstring); None when the walk cannot vouch for
    its answer (a record met that does not parse), and the caller asks the ordinary way. ``link_strings``: the
    strings of the records that produce keys (noted, not kept) and of the other links kept whole (AWS's quarantine
    policy: any string that is not a ``credentials`` or ``accessKey`` name). ``meanwhile()`` runs during the pass
    (what the caller needs next)."""
    stamped = sorted(((f, stamp(f)) for f in files), key=lambda fs: (fs[1], fs[0].path))
    ordered = [f for f, _ in stamped]
    producing = [s.encode() for s in link_strings if linking(s.encode())]
    kept = [s for s in link_strings if not linking(s.encode())]
    producers = Producers()
    grown = Growing(key, producers, stamped)
    base = [s.encode() for s in (key, *kept)]
    gunzip, contains = inflate.inflater(), _finder()

    searching: dict[int, tuple] = {}  # n -> the strings a file begun after n were added is searched for

    def visit(f: LogFile, relooked: list, looks: list):
        if (n := grown.start(f.path)) not in searching:  # (the names of producing records are noted, in a
            strings = base + [k.encode() for k in grown.order[:n]]  # CloudTrail file: searched in the others)
            every = strings + producing
            searching[n] = every, _escapes(every), strings
        strings, escaped, in_records = searching[n]
        status, payload, data = scan_data(f, strings, gunzip, contains, escaped, in_records=in_records)
        if data is not None and data[:64].lstrip().startswith(b'{"Records"'):
            producers.note(f.path, data)
        if status == "docs":  # a compact file's records holding a lineage string; any other layout's links too
            relook(grown.met(payload[0]), relooked, looks)
        return f, status, payload

    def relook(fresh: list, relooked: list, looks: list) -> None:
        """Strings added by a file's records, looked for at once in the files already begun that may hold them
        (delivered since their making, less an hour): what they tie to the lineage is then met in the pass."""
        while fresh:
            string, since = fresh.pop()
            for g in grown.unsearched(string, since):
                looks.append(g.path)
                status, payload, _ = scan_data(g, [string.encode()], gunzip, contains, _escapes([string.encode()]))
                relooked.append((g, status, payload))
                if status == "docs":
                    fresh += grown.met(payload[0])

    workers = threads or min(8, os.cpu_count() or 2)
    size = forked.batch_size(len(ordered))
    batches = [ordered[i:i + size] for i in range(0, len(ordered), size)]

    def worker(next_batch, mail, post):
        """A forked worker's share of the pass: batches as it takes them (what each held, and what was noted in
        it, posted at once), what the others tell it between files."""
        grown.mail, relooked, looks = mail, [], []

        def told():
            for text, since, kind in mail.received():
                relook(grown.learn(text, since, kind), relooked, looks)

        while (b := next_batch()) is not None:
            done = []
            for f in batches[b]:
                told()
                if (visited := visit(f, relooked, looks))[1] != "skip":
                    done.append((index[f.path], *visited[1:]))
            post((done, producers.taken()))
        told()
        return [(index[f.path], *rest) for f, *rest in relooked], looks, producers.taken(), grown.seen()

    index = grown.index  # path -> its place in ``ordered``
    parts, noted, answers = [], Producers(), None

    def received(part):  # while the workers go on
        parts.append(part[0])
        noted.merge(part[1])

    if forked.usable(workers) and len(ordered) >= forked.SMALLEST:
        answers = forked.run(workers, len(batches), worker, meanwhile=meanwhile, received=received,
                             progress=progress and (lambda taken, seconds: progress(min(len(files), taken * size),
                                                                                     len(files), seconds)))
        meanwhile = None
    helper = threading.Thread(target=meanwhile, daemon=True) if meanwhile is not None else None
    try:
        if answers is not None:
            done = [(ordered[i], *rest) for i, *rest in sorted((d for part in parts for d in part), key=lambda d: d[0])]
            relooked = [(ordered[i], *rest) for a in answers for i, *rest in a[0]]
            looks = [p for a in answers for p in a[1]]
            seen, producers = [a[3] for a in answers], noted
            for _, _, last, _ in answers:
                producers.merge(last)
        else:
            if helper is not None:
                helper.start()
            done, relooked, looks = [], [], []
            began = time.monotonic()
            with ThreadPoolExecutor(workers) as pool:
                for batch in pool.map(lambda batch: [visit(f, relooked, looks) for f in batch], batches):
                    done += batch
                    if progress is not None:
                        progress(len(done), len(files), time.monotonic() - began)
            producers.merge(producers.taken())
            seen = [grown.seen()]
        return _after(files, ordered, grown, key, kept, base, done, relooked, looks, seen, producers, threads)
    finally:
        if helper is not None and helper.is_alive():
            helper.join()


def _after(files, ordered, grown, key, kept, base, done, relooked, looks, seen, producers,
           threads) -> Followed | None:
    """The pass's findings as a ``Followed``, completed by reading again what the walk needs (module docstring)."""
    docs, whole, unreadable, notes = [], [], [], []
    for f, status, payload in done:
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
    found.add(_result(relooked))  # each record once: a file looked at again holds what its first look found
    looked = Looked(seen, grown.stamps, {p for p, _ in unreadable} | {f.path for f in whole}, base, grown.index)
    while True:
        lineage = closure(found, key)
        if lineage is None:
            return None
        made, keys, makers, users, sessions = lineage
        users |= {s for one in seen for s in one.order if FEDERATED_USER in s}  # a console session's user, met
        looked.alias.update(sessions)  # a console session's key is searched for wherever its user was
        again = looked.needed(ordered, producers, made, makers, keys | users, key)
        if not again:
            break
        for strings, paths in _grouped(again).items():
            found.add(scan([ordered[grown.index[p]] for p in paths], "|".join(strings), threads))
        looks += again
    found.keys, found.reread = frozenset(keys), len(set(looks))
    found.covered = frozenset(kept) | found.keys | users
    return found


def _result(looked: list) -> ScanResult:
    """(file, status, payload) of files looked at again, as a scan's answer."""
    out = ScanResult()
    for f, status, payload in looked:
        if status == "bad":
            out.unreadable.append((f.path, payload))
        elif status == "whole":
            out.whole_files.append(f)
        elif status == "docs":
            out.documents += [(f.path, bytes(p).decode("utf-8", "replace")) for p in payload[0]]
            out.notes += [(f.path, payload[1])] if payload[1] else []
    return out


def _grouped(again: dict) -> dict:
    """path -> strings, as strings -> paths: one scan per set of strings."""
    out: dict = {}
    for path, strings in again.items():
        out.setdefault(tuple(sorted(strings)), []).append(path)
    return out
