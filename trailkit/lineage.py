"""Follow a key: its lineage both ways and its life, walked over two questions' few rows.

``links`` (``queries/links.sql``) returns every call that produced a key (``link``: STS credentials, IAM
``CreateAccessKey``) and every call on a key's life (``life``: ``UpdateAccessKey``, ``DeleteAccessKey``, AWS's
quarantine policy attached to a user); ``figures`` counts the events of the keys the walk found. The walk is
here, in plain Python, on those few rows: whatever the lineage's size or depth, the logs are read for the links
once and for the lineage's keys once (on the local engine, each only where the files hold those strings).

How keys are tied:
- a key's *parent* is the key whose call produced it (``userIdentity.accessKeyId`` of the event whose
  ``responseElements.credentials.accessKeyId`` or ``responseElements.accessKey.accessKeyId`` is the key);
  a key produced for a service or a principal without a key (an EC2 instance profile, a SAML or web identity
  user) has no parent, and ``via_principal`` says who called;
- a federated user's console session: ``GetFederationToken`` returns a federated user ARN; the keys that user's
  events carry afterwards (a console session signs its calls with keys of its own, never returned by any call
  in the logs) are children of the federation token's key, ``via`` ``ConsoleLogin``;
- each key appears once, at its first place in the walk (a cycle or a key reached twice is not followed again).
"""
from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from .contract import Contract

if TYPE_CHECKING:
    import pandas as pd

LINEAGE = Contract.of({
    "accesskeyid": "string", "parent": "string", "via": "string", "via_time": "time", "via_eventid": "string",
    "via_principal": "string", "depth": "int", "principalarn": "string", "username": "string",
    "expiration": "time", "events": "int", "first_seen": "time", "last_seen": "time", "sourceips": "string",
})
LIFECYCLE = Contract.of({
    "accesskeyid": "string", "eventtime": "time", "eventname": "string", "detail": "string", "by": "string",
    "bykey": "string", "sourceipaddress": "string", "errorcode": "string", "eventid": "string",
})
QUARANTINE = "AWSCompromisedKeyQuarantine"
FEDERATED_CONSOLE = "ConsoleLogin"


def _records(frame) -> list[dict]:
    """The rows as dicts, missing values as None (column by column: tens of thousands of links stay cheap); a list
    of dicts (``Trail.records``: no pandas) as it is."""
    if isinstance(frame, list):
        return frame
    columns = {name: frame[name].astype(object).where(frame[name].notna(), None).tolist() for name in frame.columns}
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


class Graph:
    """The ``links`` answer, indexed: who produced each key, what each key produced; the keys' figures as they
    are added (``add_figures``)."""

    def __init__(self, links: "list[dict] | pd.DataFrame", keys=None):
        """``keys``: when ``links`` holds only the records of one lineage's keys (``LocalEngine.lineage_keys``),
        those keys: a key produced by one of them but not among them was first produced by a call the links do
        not hold, and is left out."""
        rows = _records(links)
        ordered = sorted((r for r in rows if r["kind"] == "link"), key=lambda r: (
            r["via_time"] is None, r["via_time"] or 0, r["via_eventid"] is None, r["via_eventid"] or ""))
        self.calls: dict[str, dict] = {}  # key -> the (first) call that produced it
        for row in ordered:
            if row["accesskeyid"] and row["errorcode"] is None and (keys is None or row["accesskeyid"] in keys):
                self.calls.setdefault(row["accesskeyid"], row)
        self.life = [r for r in rows if r["kind"] == "life"]
        self.keys: dict[str, dict] = {}  # key -> its figures
        self.counted: set[str] = set()  # keys and federated users whose figures were asked
        self._index()

    def _index(self) -> None:
        self.made = dict(self.calls)
        self._federated()
        self.children: dict[str, list[str]] = defaultdict(list)
        for key, row in sorted(self.made.items(), key=lambda kv: (str(kv[1]["via_time"]), kv[0])):
            if row["parent"]:
                self.children[row["parent"]].append(key)

    def add_figures(self, figures: "list[dict] | pd.DataFrame", asked) -> None:
        """The figures of the keys (and federated users) ``asked``, as ``figures.sql`` counted them."""
        self.keys.update({row["accesskeyid"]: row for row in _records(figures)})
        self.counted.update(asked)
        self._index()

    def federated_users(self, keys) -> list[str]:
        """The federated users made by GetFederationToken calls of ``keys`` (their console sessions' keys are
        found by these ARNs)."""
        return sorted({row["principalarn"] for k, row in self.calls.items() if row["parent"] in keys
                       and row["via"] == "GetFederationToken" and row["principalarn"]})

    def uncounted(self, key: str, depth: int | None = None) -> tuple[list[str], list[str]]:
        """The keys of ``key``'s lineage, and the federated users it made, whose figures are not asked yet."""
        keys = [key, *self.ancestors(key), *(k for k, _ in self.descendants(key, depth))]
        return ([k for k in keys if k not in self.counted],
                [u for u in self.federated_users(keys) if u not in self.counted])

    def _federated(self) -> None:
        """Console sessions of a federated user, tied to the GetFederationToken call that made the user: the
        latest one issued before the session's first event and not expired by then (two tokens for one name,
        from two keys, are told apart by time)."""
        tokens: dict[str, list] = defaultdict(list)
        for key, row in self.calls.items():
            if row["via"] == "GetFederationToken" and row["principalarn"]:
                tokens[row["principalarn"]].append((key, row))
        for key, stats in self.keys.items():
            if key in self.made or stats["first_seen"] is None:
                continue
            first = stats["first_seen"]
            fits = [(token, row) for token, row in tokens.get(stats["principalarn"], ())
                    if token != key and row["via_time"] is not None and row["via_time"] <= first
                    and (row["expiration"] is None or first <= row["expiration"])]
            if not fits:
                continue
            token, row = max(fits, key=lambda tr: tr[1]["via_time"])
            self.made[key] = {**row, "accesskeyid": key, "parent": token, "via": FEDERATED_CONSOLE,
                              "via_time": first, "via_principal": stats["principalarn"], "expiration": None}

    def ancestors(self, key: str) -> list[str]:
        """The keys behind ``key``, nearest first, back as far as the logs go (a cycle stops the walk)."""
        out, seen = [], {key}
        row = self.made.get(key)
        while row is not None and row["parent"] and row["parent"] not in seen:
            out.append(row["parent"])
            seen.add(row["parent"])
            row = self.made.get(row["parent"])
        return out

    def descendants(self, key: str, depth: int | None = None) -> list[tuple[str, int]]:
        """Every key produced from ``key``, breadth first, with its depth (1 = produced by ``key``)."""
        out, seen, level = [], {key}, [key]
        d = 0
        while level and (depth is None or d < depth):
            d += 1
            nxt = []
            for parent in level:
                for child in self.children.get(parent, ()):
                    if child not in seen:
                        seen.add(child)
                        out.append((child, d))
                        nxt.append(child)
            level = nxt
        return out

    def row(self, key: str, depth: int) -> dict:
        made = self.made.get(key) or {}
        stats = self.keys.get(key) or {}
        return {
            "accesskeyid": key, "parent": made.get("parent"), "via": made.get("via"),
            "via_time": made.get("via_time"), "via_eventid": made.get("via_eventid"),
            "via_principal": made.get("via_principal"), "depth": depth,
            "principalarn": stats.get("principalarn") or made.get("principalarn"),
            "username": stats.get("username") or made.get("username"), "expiration": made.get("expiration"),
            "events": stats.get("events") or 0, "first_seen": stats.get("first_seen"),
            "last_seen": stats.get("last_seen"), "sourceips": stats.get("sourceips"),
        }

    def lineage(self, key: str, depth: int | None = None) -> "pd.DataFrame":
        """One row per key of ``key``'s lineage: ancestors (depth -1, -2, ...), the key (0), descendants."""
        return _frame(self.lineage_rows(key, depth), LINEAGE)

    def lineage_rows(self, key: str, depth: int | None = None) -> list[dict]:
        """``lineage`` as dicts (what the command line prints, without pandas)."""
        above = self.ancestors(key)
        rows = [self.row(k, -(i + 1)) for i, k in reversed(list(enumerate(above)))]
        rows.append(self.row(key, 0))
        seen = {key, *above}
        return rows + [self.row(k, d) for k, d in self.descendants(key, depth) if k not in seen]

    def lifecycle(self, key: str) -> "pd.DataFrame":
        """The key's birth and death: the call that created or minted it, status changes, deletion, and AWS's
        quarantine policy attached to its user; oldest first."""
        rows = []
        made = self.made.get(key)
        if made is not None and made["via"] != FEDERATED_CONSOLE:
            detail = f"expires {made['expiration']:%Y-%m-%dT%H:%M:%SZ}" if made.get("expiration") is not None else \
                (f"status {made['detail']}" if made.get("detail") else None)
            rows.append(_life(key, made, detail))
        user = (self.keys.get(key) or {}).get("username") or (made or {}).get("username")
        account = (self.keys.get(key) or {}).get("account") or (made or {}).get("account")
        for row in self.life:
            if row["accesskeyid"] == key:
                rows.append(_life(key, row, f"status {row['detail']}" if row["via"] == "UpdateAccessKey" and
                                  row["detail"] else row["detail"]))
            elif QUARANTINE in (row["detail"] or "") and user and row["username"] == user and \
                    (account is None or row["account"] is None or row["account"] == account):
                rows.append(_life(key, row, f"{row['detail']} attached to user {user}"))
        rows.sort(key=lambda r: (r["eventtime"] is None, str(r["eventtime"]), r["eventid"] or ""))
        return _frame(rows, LIFECYCLE)


def _life(key: str, row: dict, detail) -> dict:
    return {"accesskeyid": key, "eventtime": row["via_time"], "eventname": row["via"], "detail": detail,
            "by": row["via_principal"], "bykey": row["parent"], "sourceipaddress": row["sourceipaddress"],
            "errorcode": row["errorcode"], "eventid": row["via_eventid"]}


def _frame(rows: list[dict], contract: Contract) -> "pd.DataFrame":
    import pyarrow as pa

    from .contract import to_frame

    names = contract.names
    table = pa.Table.from_pylist([{n: r.get(n) for n in names} for r in rows],
                                 schema=pa.schema([(n, _arrow_type(contract, n)) for n in names]))
    return to_frame(contract.conform(table))


def _arrow_type(contract: Contract, name: str):
    import pyarrow as pa

    kind = dict(contract.columns)[name]
    return {"time": pa.timestamp("us", tz="UTC"), "int": pa.int64()}.get(kind, pa.string())


def printable(frame: "pd.DataFrame", spreadsheet_safe: bool = False):
    """A lineage, lifecycle or timeline frame as the command line prints it (see ``Contract.printable``)."""
    import pyarrow as pa

    contract = Contract.of({name: _kind(frame[name]) for name in frame.columns})
    return contract.printable(pa.Table.from_pandas(frame, preserve_index=False), spreadsheet_safe)


def _kind(column) -> str:
    import pandas as pd

    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(column):
        return "time"
    if pd.api.types.is_integer_dtype(column):
        return "int"
    return "string"


def unused_words(windowed: bool) -> str:
    """How a key with no events is said: inside a window, its events may lie outside it."""
    return "no events in the window" if windowed else "never used"


def tree_text(lineage: "pd.DataFrame", windowed: bool = False) -> str:
    """The lineage as an indented tree for people: how each key was obtained, by whom, what it did. It starts
    from the oldest ancestor; keys a cycle or a self-minting call would leave out are shown as roots too."""
    rows = _records(lineage)
    by_parent: dict = defaultdict(list)
    for row in rows:
        by_parent[row["parent"]].append(row)
    lines: list[str] = []

    def walk(row, prefix: str, last: bool, seen: set):
        how = f"{row['via']} by {row['via_principal'] or '?'}" if row["via"] else "obtained outside these logs"
        when = f" {row['via_time']:%Y-%m-%dT%H:%M:%SZ}" if row["via_time"] is not None else ""
        used = f"{row['events']} event{'s' if row['events'] != 1 else ''}" + (
            f" from {row['sourceips']}" if row["sourceips"] else "") if row["events"] else unused_words(windowed)
        mark = " <= asked" if row["depth"] == 0 else ""
        lines.append(f"{prefix}{'└─ ' if last else '├─ '}{row['accesskeyid']} ({how}{when}; {used}){mark}")
        seen.add(row["accesskeyid"])
        kids = [k for k in by_parent.get(row["accesskeyid"], []) if k["accesskeyid"] not in seen]
        for i, kid in enumerate(kids):
            if kid["accesskeyid"] not in seen:
                walk(kid, prefix + ("   " if last else "│  "), i == len(kids) - 1, seen)

    seen: set = set()
    for row in sorted(rows, key=lambda r: r["depth"]):  # the oldest ancestor first, then what was left out
        if row["accesskeyid"] not in seen:
            walk(row, "", True, seen)
    from .contract import visible

    return "".join(visible(line) + "\n" for line in lines) + "\n"


def nearest(lineage: "pd.DataFrame", count: int) -> "pd.DataFrame":
    """At most ``count`` keys of the lineage, the nearest to the key asked first (it, its parent, its children,
    ...), in the lineage's order: what a chart or a row of buttons shows when the lineage is larger."""
    order = lineage["depth"].abs().sort_values(kind="stable").index[:count]
    return lineage.loc[sorted(order)]


def timesketch_events(timeline: "pd.DataFrame"):
    """The objects Timesketch imports, one per event (written as JSON lines): ``message``, ``datetime`` (ISO
    8601), ``timestamp_desc`` and the event's fields (times as ISO 8601 text)."""
    untimed = 0
    for row in _records(timeline):
        when = row["eventtime"]
        if when is None:  # Timesketch needs a time: such events are counted and said, not written
            untimed += 1
            continue
        fields = {k: (f"{v:%Y-%m-%dT%H:%M:%SZ}" if hasattr(v, "strftime") else v) for k, v in row.items()}
        message = (f"{row['eventsource'] or '?'}:{row['eventname'] or '?'} by {row['principalarn'] or '?'} with "
                   f"{row['accesskeyid'] or '?'} from {row['sourceipaddress'] or '?'}"
                   + (f" ({row['errorcode']})" if row.get("errorcode") else ""))
        yield {"message": message, "datetime": f"{when:%Y-%m-%dT%H:%M:%S+00:00}", "timestamp_desc": "Event Time",
               **fields}
    if untimed:
        import warnings

        from .errors import Notice

        warnings.warn(f"{untimed} event(s) without a usable time were left out of the Timesketch lines (they are "
                      "in --format json)", Notice, stacklevel=2)
