"""Which keys make a lineage, walked over the records one pass found (``follow.Followed``); and which keys the
calls in each file produced, noted from its bytes as the pass reads it (``Producers``).

The walk is ``trailkit.lineage``'s, on the records themselves rather than on the SQL's answer: a key belongs to
the first successful call that produced it (by eventTime, then eventID); the lineage is the key, what it
produced (recursively), the keys behind the calls that produced it (back as far as the logs go), and the other
tokens of a federated user one of its keys made, and the keys its console sessions sign with (a session is tied
to the latest token before it). It only decides which keys the pass's records must be complete for (a
superset); windows, depth limits and which token a console session belongs to are left to ``trailkit.lineage``,
which walks the SQL's answer over those records.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime, timedelta, timezone

from .scan import _searchable

# a key's events are looked for in files delivered from an hour before the call that produced it (clock skew)
SLACK = timedelta(hours=1)
FEDERATED_USER = ":federated-user/"  # in the ARN a federated user (and its console sessions) signs as


def _link(record: dict) -> tuple[str | None, str | None, str | None]:
    """(the caller's key, the key the call produced, its eventTime) of a record; None where there is none."""
    ident = record.get("userIdentity")
    caller = ident.get("accessKeyId") if isinstance(ident, dict) else None
    response = record.get("responseElements")  # as links.sql reads it: an object (text holds no link there)
    produced = None
    if isinstance(response, dict):
        for holder in ("credentials", "accessKey"):
            inner = response.get(holder)
            if isinstance(inner, dict) and isinstance(inner.get("accessKeyId"), str):
                produced = inner["accessKeyId"]
                break
    when = record.get("eventTime")
    return (caller if isinstance(caller, str) and caller else None), (produced or None), \
        (when if isinstance(when, str) else None)


def closure(found, key: str) -> tuple[dict, set, dict, set, dict] | None:
    """The lineage's keys over every record met, as ``trailkit.lineage`` walks them (a key belongs to the first
    successful call that produced it, by eventTime then eventID): when each key (and federated user) was first
    produced (``YYYYMMDDTHHMM`` less ``SLACK``, or absent), the keys, the first maker (caller, eventTime) found
    for every key the walk asked about (None: none found), the federated users the lineage made, and the keys
    their console sessions signed with (key -> user: found by the user, ``trailkit.lineage`` ties them); None if a
    record holding one of them does not parse. Windows, depth limits and federated console sessions are left to
    that walk, which checks the keys it finds are here (``Trail._followed``)."""
    makers: dict[str, tuple | None] = {}
    calls: dict[str, list] = {}

    def calls_of(k: str) -> list | None:
        """(caller, produced, eventTime) of the successful calls of records holding ``k``."""
        if k not in calls:
            out = []
            for i in found._holding(k.encode()):
                if not found.linking(i):
                    continue
                record = found.record(i)
                if record is None:
                    return None
                caller, produced, when = _link(record)
                if produced and not record.get("errorCode"):
                    out.append((caller, produced, when, record.get("eventID") or "", _federated(record)))
            calls[k] = out
        return calls[k]

    def maker(k: str):
        """(caller, eventTime) of the first successful call that produced ``k``; None if none is in the logs."""
        if k not in makers:
            mine = calls_of(k)
            if mine is None:
                raise ValueError(k)
            # as ``lineage.Graph`` orders the SQL's answer: whole seconds, then eventID (a missing one last)
            made = sorted((_instant(when).replace(microsecond=0), not eid, eid, caller, when)
                          for caller, produced, when, eid, _ in mine if produced == k)
            makers[k] = (made[0][3], made[0][4]) if made else None
        return makers[k]

    try:
        descendants, frontier, users, sessions = {key}, [key], {}, {}
        while frontier:
            while frontier:
                k = frontier.pop()
                mine = calls_of(k)
                if mine is None:
                    return None
                for caller, produced, when, _, user in mine:
                    if caller == k and produced not in descendants and (maker(produced) or (None,))[0] == k:
                        descendants.add(produced)
                        frontier.append(produced)
                    # the token a GetFederationToken made: its user's console sessions are the token's children
                    if user and produced == k and (user not in users or _instant(when) < _instant(users[user])):
                        users[user] = when
            # a federated user's console sessions sign with keys of their own: what those keys did leads on
            for session, user in _sessions(found, set(users)).items():
                if session not in descendants:
                    descendants.add(session)
                    frontier.append(session)
                    sessions[session] = user
        lineage, up, signed = set(descendants), [key], set()
        while up:  # the keys behind the key; a console session's, through every token of its federated user
            k = up.pop()
            made = maker(k)
            signed |= (mine := _signed(found, k)) if made is None else set()
            above = {made[0]} if made is not None and made[0] else _namesakes(found, mine)
            for parent in above - lineage:
                lineage.add(parent)
                up.append(parent)
        lineage |= _namesakes(found, set(users))
        times = {k: _minute(m[1]) for k in lineage if (m := maker(k)) is not None}
        times.update({user: _minute(when) for user, when in users.items()})
        times.update({session: times.get(user) for session, user in sessions.items() if session not in times})
    except ValueError:
        return None
    return {k: t for k, t in times.items() if t is not None}, lineage, dict(makers), set(users) | signed, sessions


def _federated(record: dict) -> str | None:
    """The federated user a GetFederationToken call made (``responseElements.federatedUser.arn``), or None."""
    response = record.get("responseElements")
    user = response.get("federatedUser") if isinstance(response, dict) else None
    arn = user.get("arn") if isinstance(user, dict) else None
    return arn if isinstance(arn, str) and arn else None


def _holding_user(found, user: str) -> set:
    """The records met that hold the ARN ``user`` (as written, or with JSON's escaped slashes)."""
    return {i for text in (user, user.replace("/", "\\/")) for i in found._holding(text.encode())}


def _sessions(found, users: set) -> dict:
    """key -> federated user, for the keys the records met sign as one of ``users`` (a console session's)."""
    out = {}
    for user in users:
        for i in _holding_user(found, user):
            ident = (found.record(i) or {}).get("userIdentity")
            key = ident.get("accessKeyId") if isinstance(ident, dict) and ident.get("arn") == user else None
            if isinstance(key, str) and key:
                out[key] = user
    return out


def _signed(found, key: str) -> set:
    """The federated users ``key``'s records sign as (a console session's key): none for any other key."""
    out = set()
    # a record that cannot name a federated user, plainly or escaped, is not parsed
    maybe = set(found._holding(b"federated-user")) | set(found._holding(b"\\u"))
    for i in found._holding(key.encode()):
        ident = (found.record(i) or {}).get("userIdentity") if i in maybe else None
        if isinstance(ident, dict) and ident.get("accessKeyId") == key and FEDERATED_USER in str(ident.get("arn")):
            out.add(ident["arn"])
    return out


def _namesakes(found, users: set) -> set:
    """Every key a GetFederationToken call produced for one of ``users``: a console session of that name is
    tied to the latest token before it (``trailkit.lineage``), whichever key asked for that token."""
    out = set()
    for user in users:
        for i in _holding_user(found, user):
            record = found.record(i) if found.linking(i) else None
            if record is not None and _federated(record) == user and not record.get("errorCode"):
                out.add(_link(record)[1])
    return out - {None}


def _instant(when: str | None) -> datetime:
    try:
        t = datetime.fromisoformat((when or "").replace("Z", "+00:00"))
    except ValueError:
        return datetime.max.replace(tzinfo=timezone.utc)
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def _minute(when: str | None) -> str | None:
    """An eventTime as ``YYYYMMDDTHHMM`` in UTC, less ``SLACK``; None if it does not parse."""
    t = _instant(when)
    if t.year == datetime.max.year:
        return None
    return f"{(t - SLACK).astimezone(timezone.utc):%Y%m%dT%H%M}"


class Producers:
    """Which keys the calls in each file produced, and when: read from the bytes around each ``"credentials"``
    or ``"accessKey"`` object of a ``{"Records":[...]}`` file (the key: the first ``accessKeyId`` value after it;
    the time: the ``eventTime`` between the record's start and it, where CloudTrail writes it). A time that cannot
    be read that way is unknown, and counts as earlier than any (the file is read). A file where such an object
    has no key near it is noted as unsure: it is read again for any key asked about."""

    _VALUE = re.compile(rb'ccessKeyId\\{0,3}"\s*:\s*\\{0,3}"([A-Z0-9]{16,128})\\{0,3}"')
    _TIME = re.compile(rb'"eventTime"\s*:\s*"([^"]{0,40})"')
    # the names, whole (not ``credentialsIssuedTo``, ``secretAccessKey``); an object written as text inside a field
    # (``\"credentials\"``) is no link (links.sql reads ``responseElements`` as an object)
    _HEADS = ((b'"credentials', 0, (b'"',)), (b'ccessKey"', 2, (b'"a',)))

    def __init__(self):
        self.made: dict[str, list] = defaultdict(list)  # key -> [(eventTime text, path)]
        self.unsure: set = set()
        self.first: dict[str, str] = {}  # key -> the earliest known eventTime text noted (a guide for the pass)
        self.fresh: list = []  # (key, when, path) noted since ``taken``
        self._told: set = set()
        self._ordered: dict[str, list] = {}  # key -> its calls, earliest first (see ``earliest``)

    def note(self, path: str, data: bytes) -> None:
        """What the calls in ``data`` (the file at ``path``) produced; kept in ``fresh`` until ``taken`` (a few
        hundred thousand objects in a month of a busy account: names bound once, not looked up each time)."""
        text = _searchable(data)
        find, rfind, value, timed, fresh, first = text.find, text.rfind, self._VALUE.search, self._TIME.match, \
            self.fresh, self.first  # (``made`` is filled by ``merge``: the pass hands over what it noted)
        for head, back, edges in self._HEADS:
            after = len(head)
            pos = find(head)
            while pos != -1:
                if (data[pos + after:pos + after + 1] if not back else data[pos - back:pos]) in edges:
                    # CloudTrail's own form first (``"accessKeyId":"KEY"``, ``"eventTime":"TIME"``, no spaces),
                    # read by slicing; anything else by the patterns, which read every form
                    at = find(b'ccessKeyId', pos, pos + 4096)
                    end = find(b'"', at + 13, min(at + 142, pos + 4096)) \
                        if at != -1 and data[at + 10:at + 13] == b'":"' else -1
                    key = data[at + 13:end] if end != -1 else b""
                    if not (16 <= len(key) <= 128 and key.isalnum() and key.isupper()):
                        m = value(data, pos, pos + 4096)
                        key = m.group(1) if m is not None else None
                    if key is None:
                        if b"{" in data[pos + after:pos + after + 8]:  # an object, its key not read
                            self.unsure.add(path)
                    else:
                        start = rfind(b'{"eventVersion"', max(0, pos - 65536), pos)
                        at = rfind(b'"eventTime"', start, pos) if start != -1 else -1
                        end = find(b'"', at + 13, at + 54) if at != -1 and data[at + 11:at + 13] == b':"' else -1
                        if end != -1:
                            when = data[at + 13:end].decode("ascii", "replace")
                        else:
                            t = timed(data, at) if at != -1 else None
                            when = t.group(1).decode("ascii", "replace") if t else ""
                        key = key.decode("ascii")
                        fresh.append((key, when, path))
                        _sooner(first, key, when)
                pos = find(head, pos + after)

    def taken(self) -> tuple[list, set]:
        """What was noted since the last call (a forked worker hands it on as it goes): ``(key, when, path)``s,
        and files unsure."""
        fresh, self.fresh = self.fresh, []
        unsure, self._told = self.unsure - self._told, set(self.unsure)
        return fresh, unsure

    def merge(self, noted: tuple[list, set]) -> None:
        """What another worker noted (``taken``), added to this."""
        made, first = self.made, self.first  # (tens of thousands a pass: names bound once)
        for key, when, path in noted[0]:
            made[key].append((when, path))
            _sooner(first, key, when)
        self.unsure |= noted[1]

    def before(self, key: str, when: str) -> bool:
        """Whether a call noted so far produced ``key`` before ``when`` (eventTime text)."""
        first = self.first.get(key)
        return first is not None and first < when

    def earliest(self, key: str, skip) -> tuple | None:
        """(when, path) of the earliest call noted to produce ``key`` in a file ``skip`` does not exclude (an
        unknown time first); None when there is none. (A key's calls are put in order once: a busy role's key
        may have been produced thousands of times, and the walk asks again after each reading.)"""
        entries = self.made.get(key, ())
        ordered = self._ordered.get(key)
        if ordered is None or len(ordered) != len(entries):
            if all(len(w) == 20 and w[-1] == "Z" for w, _ in entries):  # CloudTrail's own form: text order is
                ordered = sorted(entries)                                  # time order
            else:
                ordered = sorted(entries, key=lambda e: (noted(e[0]), e[1]))
            self._ordered[key] = ordered
        return next(((noted(w), p) for w, p in ordered if not skip(p)), None)


def _sooner(first: dict, key: str, when: str) -> None:
    """``first[key]``: the earliest eventTime text noted for ``key`` (an unknown one is no guide)."""
    if when and (key not in first or when < first[key]):
        first[key] = when


def noted(when: str) -> datetime:
    """A noted eventTime as an instant; one that is missing or does not parse as the earliest there is."""
    t = _instant(when)
    return datetime.min.replace(tzinfo=timezone.utc) if t.year == datetime.max.year else t


def _parsed(text: bytes) -> dict | None:
    """A record's text, parsed; None if it is not a JSON object."""
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None
