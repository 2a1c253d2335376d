"""What a lineage's pass looks for, as its records add it (``Growing``), what each file was searched for
(``Seen``), and which files must be read again after the pass (``Looked``).

The pass runs on forked workers or on threads (``engines.forked``). Threads share one ``Growing``; each worker has
its own and tells the others what its records added (``Growing.learn`` takes it in), so each file is searched for
what the worker reading it knew when it began it. After the pass, ``Looked`` holds every worker's ``Seen``.
"""
from __future__ import annotations

import threading
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass

from .scan import _KEY_ID
from .walk import FEDERATED_USER, Producers, _federated, _instant, _link, _minute, _parsed


@dataclass
class Seen:
    """Which strings one worker searched its files for: file ``i`` (its place in the pass's order) for
    ``order[:versions[i]]`` (and the key and the kept strings) and ``extra[i]``; ``added_at[s]``: the last file it
    had begun when it learnt ``s``; ``highest``: the last file it began."""

    order: list
    versions: dict
    extra: dict
    added_at: dict
    highest: int


class Growing:
    """The strings the pass looks for besides the key, as the lineage's records add them (shared by threads; a
    forked worker has its own, and mail).

    Each record met that holds a lineage string and produced a key is read (``walk._link``): the key it produced
    is added when its caller is the key or a key added below it, unless a call noted earlier produced it (the
    first maker's, see ``Producers``); its caller is added when the key it produced is the key or one of its
    ancestors; a federated user it made (``GetFederationToken``), by its ARN. What is added only decides what the
    pass looks for: ``walk.closure`` decides the lineage, from the records themselves."""

    def __init__(self, key: str, producers: Producers, stamped: list):
        self.below = {key}  # the key and what it (and they) produced
        self.above = {key}  # the key and its ancestors
        self.order: list[str] = []  # strings added, in order: a file is searched for the first n of them
        self.position: dict[str, int] = {}
        self.versions: dict[int, int] = {}  # file (its index) -> n, for the files begun
        self.extra: dict[int, set] = defaultdict(set)  # file -> strings looked for there again
        self.producers = producers
        self.mail = None  # a forked worker's (``forked.Mail``): what is added is told to the others
        self._files = [f for f, _ in stamped]
        self.stamps = [s for _, s in stamped]
        self.index = {f.path: i for i, f in enumerate(self._files)}
        self._highest = -1
        self.added_at: dict[str, int] = {}  # string -> the last file (in ``stamped``) begun when it was added
        self._lock = threading.Lock()

    def start(self, path: str) -> int:
        """How many strings were added so far: the file at ``path`` is searched for the first so many (noted)."""
        with self._lock:
            i = self.index[path]
            self.versions[i] = n = len(self.order)
            self._highest = max(self._highest, i)
            return n

    def seen(self) -> Seen:
        return Seen(self.order, self.versions, self.extra, self.added_at, self._highest)

    def unsearched(self, string: str, since: str | None) -> list:
        """The files begun, delivered from ``since`` (``YYYYMMDDTHHMM``) on, not searched for ``string``; noted as
        searched (the caller does). None ``since``: left to the look after the pass."""
        if since is None:
            return []
        with self._lock:
            at, out = self.position[string], []
            for i in range(bisect_left(self.stamps, since), self._highest + 1):
                if self.versions.get(i, len(self.order)) <= at and string not in self.extra[i]:
                    self.extra[i].add(string)
                    out.append(self._files[i])
            return out

    def met(self, pieces: list[bytes]) -> list[tuple[str, str | None]]:
        """What the records among ``pieces`` that can tie a key to the lineage add (see ``meet``)."""
        return [new for piece in pieces if linking(piece) or FEDERATED_USER.encode() in piece
                for new in self.meet(piece)]

    def meet(self, piece: bytes) -> list[tuple[str, str | None]]:
        """What a record holding a lineage string adds: (string, the minute its making was, less an hour, or None
        for a caller, whose making is not known here)."""
        record = _parsed(piece)
        if record is None or record.get("errorCode"):
            return []
        caller, produced, when = _link(record)
        ident = record.get("userIdentity")
        signed = ident.get("arn") if isinstance(ident, dict) else None  # a console session signs as its user
        if produced is None:  # a console session of the lineage: its user, whose token came before
            with self._lock:
                return self._add(signed, None, "user") if (caller in self.below or caller in self.above) \
                    and FEDERATED_USER in str(signed) else []
        with self._lock:
            if (caller in self.below or signed in self.position) and produced not in self.below and \
                    not self.producers.before(produced, when or ""):
                user = _federated(record)
                since = _minute(when)
                return self._add(produced, since, "below") + (self._add(user, since, "user") if user else [])
            if produced in self.above and caller and caller not in self.above and caller not in self.below:
                return self._add(caller, None, "above")
        return []

    def learn(self, text: str, since: str | None, kind: str) -> list[tuple[str, str | None]]:
        """What another worker's records added (its mail): looked for here too, and not told again."""
        with self._lock:
            return self._add(text, since, kind, tell=False)

    def _add(self, text: str, since: str | None, kind: str, tell: bool = True) -> list:
        (self.below if kind == "below" else self.above if kind == "above" else set()).add(text)
        if text in self.position or (kind != "user" and not _KEY_ID.match(text)):
            return []
        self.position[text] = len(self.order)
        self.added_at[text] = self._highest
        self.order.append(text)
        if tell and self.mail is not None:
            self.mail.send((text, since, kind))
        return [(text, since)]


LINK_NAMES = (b'"credentials', b'ccessKey"', b'ccessKey\\"')  # in a record that can have produced a key


def linking(text: bytes) -> bool:
    """Whether a record's text can have produced a key: it holds a ``credentials`` or ``accessKey`` name."""
    return any(name in text for name in LINK_NAMES)


class Looked:
    """Which strings each file was searched for (every worker's ``Seen``, the key and the kept strings ``base``),
    and what it must be searched for after the pass (``needed``). Files are known by their place in the pass's
    order (``index``: path -> it)."""

    def __init__(self, seen: list[Seen], stamps: list, done: set, base: list, index: dict):
        self.stamps, self.index = stamps, index
        self.done = {index[p] for p in done if p in index}
        self.alias: dict[str, str] = {}  # a console session's key -> its federated user
        self.workers: list[tuple] = []  # (a worker's string positions, how many it searched each file for)
        self.extra: dict[int, set] = defaultdict(set)
        self.added_at: dict[str, int] = {}
        for one in seen:
            position = {s: i for i, s in enumerate(one.order)}
            position.update({s.decode(): -1 for s in base})
            self.workers.append((position, one.versions))
            for i, strings in one.extra.items():
                self.extra[i] |= strings
        for s in {s for one in seen for s in one.order}:  # a worker that never learnt s: none of its files
            self.added_at[s] = max(one.added_at.get(s, one.highest) for one in seen)

    def searched(self, path: str, s: str) -> bool:
        """Whether ``path`` was searched for ``s`` (or cannot be: unreadable, or read whole by DuckDB)."""
        return self._searched(self.index.get(path), s)

    def _searched(self, i: int | None, s: str) -> bool:
        user = self.alias.get(s, s)
        if i is None or i in self.done or s in self.extra[i] or user in self.extra[i]:
            return True
        for position, versions in self.workers:  # the worker that began file i
            if (n := versions.get(i)) is not None:
                return position.get(user, n) < n
        return True  # never begun: not among the files read

    def needed(self, ordered: list, producers: Producers, made: dict, makers: dict, keys: set, key: str) -> dict:
        """path -> the strings to look for there (see ``follow``'s docstring), marked as searched."""
        out: dict = defaultdict(set)
        for k, maker in makers.items():  # the earliest call producing k, if before the maker the walk knows of
            for path in producers.unsure:
                if not self.searched(path, k):
                    out[path].add(k)
            first = producers.earliest(k, lambda p, k=k: self.searched(p, k))
            if first is not None and (maker is None or first[0] <= _instant(maker[1])):
                out[first[1]].add(k)
        # the makers first: until they are read, the walk's keys may hold keys that are others'
        for k in ([k for k in keys if k != key] if not out else []):
            # each lineage key's events in the files begun before it was added, delivered since its making
            lo = bisect_left(self.stamps, made[k]) if made.get(k) is not None else 0
            for i in range(lo, self.added_at.get(k, len(ordered) - 1) + 1):
                if not self._searched(i, k):
                    out[ordered[i].path].add(k)
        out = {p: s for p, s in out.items() if s}
        for p, strings in out.items():
            self.extra[self.index[p]] |= strings
        return out
