"""``Trail``: the questions an investigator asks about an access key, as methods returning DataFrames.

Each method parses its inputs once (``trailkit.inputs``), builds a ``Request`` (``trailkit.questions``) and asks
the engine, so the CLI's ``--dry-run``, the notebook and the report all show exactly the SQL that runs. The
methods are named after the questions (``usage``, ``window``, ``ips``, ``owner``, ``minted``, ``sql``: the CLI's
commands); the names of the first release (``key_usage``, ``time_window``, ``distinct_ips``, ``key_owner``,
``minted_keys``) are kept as aliases.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from . import questions
from .contract import to_frame
from .engines.base import Engine, QueryStats
from .inputs import Allowlist, KeyMatch, Scope, Window, levels
from .questions import Request, classify_ips, narrowed
from .settings import EngineSettings

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from .lineage import Graph


class Trail:
    """Ask the access-key questions of one engine.

    Example:
        >>> trail = Trail.local("data/sample")
        >>> trail.ips("AKIA3PARTNERSYNC0001", allowed="203.0.113.0/24")  # doctest: +SKIP
    """

    def __init__(self, engine: Engine, scope: Scope = Scope()):
        self.engine = engine
        self.scope = scope  # every question kept to these accounts and regions
        self._kept = None  # (window and scope, engine generation, Graph): the links read last
        self.sigma_skipped = None  # the Sigma rules of the last findings that could not be run, and why
        self._answers: dict = {}  # answers kept while the engine vouches nothing changed (see _kept_answer)

    @classmethod
    def open(cls, settings: EngineSettings | None = None, **given) -> "Trail":
        """The engine ``settings`` name, or one made from keyword arguments as ``EngineSettings`` takes them
        (``engine="local"|"athena"``, ``logs``, ``cache``, ``watch``, ``athena={...}``)."""
        settings = settings or EngineSettings(**given)
        return cls(settings.open(), settings.scope)

    @classmethod
    def local(cls, path: str | os.PathLike | None = None, *, cache: bool = True, watch: bool = True) -> "Trail":
        """The embedded engine over a folder (default ``TRAILKIT_LOGS`` or ``data/sample``).

        ``cache=False`` reads the log files for every question instead of keeping what it read in the
        folder's cache (see ``trailkit cache``). ``watch=False`` lists the folder again for every question
        instead of keeping the listing while inotify reports no change (for a single question).
        """
        return cls.open(EngineSettings(logs=path, cache=cache, watch=watch))

    @classmethod
    def athena(cls, **config) -> "Trail":
        """Athena; keyword arguments as ``AthenaConfig`` (database, table, workgroup, output_location, region,
        profile, partition_column, all_time, max_scan, timeout, reuse_minutes), falling back to ``TRAILKIT_*``
        variables and the AWS config chain."""
        return cls.open(EngineSettings(engine="athena", athena=config))

    # -- running

    def ask(self, request: Request) -> pd.DataFrame:
        """Run a request; its rows as a DataFrame with the question's column contract."""
        return to_frame(self.engine.table(narrowed(request, self.scope)))

    def ask_table(self, request: Request) -> pa.Table:
        """Run a request; its rows as an Arrow table with the question's column contract (no pandas needed)."""
        return self.engine.table(narrowed(request, self.scope))

    def ask_rows(self, request: Request, spreadsheet_safe: bool = False) -> tuple[list[str], list[tuple]]:
        """Run a request; column names and printable rows (times as ISO 8601 text with Z), the contract applied:
        what the command line prints, without importing pyarrow or pandas. ``spreadsheet_safe``: text that a
        spreadsheet would run as a formula begins with an apostrophe (for CSV)."""
        return self.engine.rows(narrowed(request, self.scope), spreadsheet_safe)

    def records(self, request: Request) -> list[dict]:
        """Run a request; its rows as dicts, times as UTC datetimes (whole seconds), missing values None: what the
        lineage's walk reads, without importing pyarrow or pandas."""
        from datetime import datetime

        names, rows = self.ask_rows(request)
        times = [i for i, (_, kind) in enumerate(request.contract.columns) if kind == "time"]
        out = []
        for row in rows:
            row = list(row)
            for i in times:
                row[i] = datetime.fromisoformat(row[i].replace("Z", "+00:00")) if row[i] else None
            out.append(dict(zip(names, row)))
        return out

    def explain(self, request: Request) -> str:
        """The exact SQL the engine would run for ``request``, values in place; runs nothing."""
        return self.engine.explain(narrowed(request, self.scope))

    @property
    def last(self) -> QueryStats | None:
        """What the last query did: SQL, rows, seconds, and on Athena query id, data scanned and cost."""
        return self.engine.last

    @property
    def last_sql(self) -> str | None:
        return self.engine.last.sql if self.engine.last else None

    def close(self) -> None:
        self.engine.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the questions

    def usage(self, key: str, start=None, end=None, limit: int | None = None, fragment: bool = False) -> pd.DataFrame:
        """The key's events, newest first.

        Args:
            key: an access key id (exact match), or with ``fragment=True`` any part of one.
            start, end: optional window: ISO 8601, a date, or a span before now (``24h``, ``7d``); UTC.
            limit: at most this many events.

        Returns:
            One row per event; columns as in ``queries/usage.sql`` (``eventtime`` UTC-aware).

        Example:
            >>> trail.usage("AKIATFQR7NSC8Q4X20BJ", start="2023-07-10", limit=10)  # doctest: +SKIP
        """
        return self.ask(questions.usage(KeyMatch.parse(key, fragment), Window.parse(start, end), limit))

    def window(self, start, end, key: str | None = None, limit: int | None = None,
               fragment: bool = False) -> pd.DataFrame:
        """Every event in [start, end), oldest first, optionally only one key's.

        Example:
            >>> trail.window("2023-07-10T12:00:00Z", "2023-07-10T12:05:00Z")  # doctest: +SKIP
        """
        match = KeyMatch.parse(key, fragment) if key not in (None, "") else None
        return self.ask(questions.window(Window.parse(start, end), match, limit))

    def ips(self, key: str, start=None, end=None, fragment: bool = False, allowed=None) -> pd.DataFrame:
        """Per source IP of the key: events, first_seen, last_seen, distinct APIs, errors; latest first.

        With ``allowed`` (CIDRs), a ``category`` column tells allowed, unexpected and AWS-service callers apart.

        Example:
            >>> trail.ips("AKIATFQR7NSC8Q4X20BJ", allowed="192.168.10.0/24")  # doctest: +SKIP
        """
        allowlist = Allowlist.parse(allowed) if allowed is not None else None  # checked before any query
        answer = self.ask(questions.ips(KeyMatch.parse(key, fragment), Window.parse(start, end)))
        return classify_ips(answer, allowlist) if allowlist is not None else answer

    def owner(self, key: str, start=None, end=None, fragment: bool = False) -> pd.DataFrame:
        """Who used the key: identity type, principal ARN, user, account and issuer, with event counts."""
        return self.ask(questions.owner(KeyMatch.parse(key, fragment), Window.parse(start, end)))

    def minted(self, key: str, start=None, end=None, fragment: bool = False) -> pd.DataFrame:
        """Temporary keys obtained from STS with this key (AssumeRole, GetSessionToken, ...)."""
        return self.ask(questions.minted(KeyMatch.parse(key, fragment), Window.parse(start, end)))

    def sql(self, text: str, params: dict | None = None) -> pd.DataFrame:
        """Any Athena SQL against the table ``cloudtrail``, ``:name`` placeholders bound from ``params``.

        Example:
            >>> trail.sql("SELECT eventname, count(*) AS n FROM cloudtrail WHERE awsregion = :r GROUP BY 1",
            ...           {"r": "us-east-1"})  # doctest: +SKIP
        """
        return self.ask(questions.sql(text, params))

    def _kept_answer(self, request: Request) -> pd.DataFrame:
        """``ask(request)``, kept while the engine vouches that nothing changed (a watched, unchanged folder): an
        investigation re-run in a notebook asks for its findings and data touched once. Never kept otherwise."""
        generation = self.engine.generation()
        if generation is None:
            return self.ask(request)
        token = (request.name, request.query.text, repr(sorted(request.params.items())), self.scope)
        kept = self._answers.get(token)
        if kept is None or kept[0] is not generation:
            self._answers = {k: v for k, v in self._answers.items() if v[0] is generation}
            kept = self._answers[token] = (generation, self.ask(request))
        return kept[1].copy()

    # -- following the key (two questions, ``links`` then ``figures``, walked in ``trailkit.lineage``)

    def _followed(self, key: str, within: Window, depth: int | None, life: bool = True) -> Graph:
        """The links in ``within`` with the figures of every key of ``key``'s lineage (one ``figures`` query per
        round of new keys: one, unless a federated console session leads further); with ``life``, AWS's quarantine
        policy on their users too (the lifecycle's: ``trailkit chain`` alone goes without). Asked afresh unless
        the engine vouches that nothing changed since (a watched, unchanged folder), so evidence that arrived is in
        it."""
        from .lineage import Graph

        generation = self.engine.generation()
        known = (within.start, within.end, self.scope)
        if generation is not None and self._kept is not None and self._kept[0] in (known, (*known, key)) \
                and self._kept[1] is generation and (self._kept[3] or not life):
            graph = self._kept[2]  # the folder is watched and has not changed: the links (and figures) still hold
            return self._counted(graph, key, within, depth)
        with self.engine.snapshot():  # one listing of the files for the lineage's questions
            # the local engine without a cache reads the files once for the links and the lineage's keys, then
            # the links that matter to them (the graph then holds this lineage only: kept for this key alone)
            lineage = self.engine.lineage_keys(key, questions.links(within, life=life))
            if lineage is not None:
                known = (*known, key)
            graph = Graph(self.records(questions.links(within, lineage, life)), lineage)
            self._kept = (known, generation, graph, life) if generation is not None else None
            return self._counted(graph, key, within, depth)

    def _counted(self, graph: Graph, key: str, within: Window, depth: int | None) -> Graph:
        """``graph`` with the figures of every key of ``key``'s lineage (and the federated users it made)."""
        while True:
            keys, users = graph.uncounted(key, depth)
            if not keys and not users:
                return graph
            graph.add_figures(self.records(questions.figures(keys, users, within)), [*keys, *users])

    def follow(self, key: str, start=None, end=None, depth: int | None = None) -> dict:
        """``lineage``, ``lifecycle`` and ``timeline`` of ``key`` from one reading of the links (what the notebook
        and the report show)."""
        key, within, depth = KeyMatch.parse(key).value, Window.parse(start, end), levels(depth)
        graph = self._followed(key, within, depth)
        lineage = graph.lineage(key, depth)
        return {"lineage": lineage, "lifecycle": graph.lifecycle(key), "timeline": self._events(lineage, within)}

    def lineage(self, key: str, start=None, end=None, depth: int | None = None) -> pd.DataFrame:
        """Every key in the lineage of ``key``: its ancestors (depth -1, -2, ...: the key whose call produced it,
        back as far as the logs go), the key (0) and its descendants (1, 2, ...: keys minted or created by it,
        recursively, to ``depth``; 0 for none). Columns: ``accesskeyid, parent, via, via_time, via_eventid,
        via_principal, depth, principalarn, username, expiration, events, first_seen, last_seen, sourceips``.

        Example:
            >>> trail.lineage("AKIATFQR7NSC8Q4X20BJ")  # doctest: +SKIP
        """
        key, within, depth = KeyMatch.parse(key).value, Window.parse(start, end), levels(depth)
        return self._followed(key, within, depth).lineage(key, depth)

    def lineage_records(self, key: str, start=None, end=None, depth: int | None = None) -> list[dict]:
        """``lineage`` as dicts, times as UTC datetimes: what ``trailkit chain`` prints, without pandas."""
        key, within, depth = KeyMatch.parse(key).value, Window.parse(start, end), levels(depth)
        return self._followed(key, within, depth, life=False).lineage_rows(key, depth)

    def lifecycle(self, key: str, start=None, end=None) -> pd.DataFrame:
        """The key's birth and death, oldest first: the CreateAccessKey (or STS call, with the expiration it
        granted) that made it, UpdateAccessKey, DeleteAccessKey, and AWS's quarantine policy on its user."""
        key = KeyMatch.parse(key).value
        return self._followed(key, Window.parse(start, end), 0).lifecycle(key)

    def timeline(self, key: str, start=None, end=None, depth: int | None = None) -> pd.DataFrame:
        """Every event of every key in the lineage of ``key``, oldest first: the ``usage`` columns, ``depth``, and
        the event's ATT&CK ``tactics`` and ``techniques`` where TrailDiscover maps it (see ``trailkit.attack``);
        each event counted once, whichever key and delivery it was met through."""
        within = Window.parse(start, end)
        return self._events(self.lineage(key, within.start, within.end, depth), within)

    def _events(self, lineage: pd.DataFrame, within: Window) -> pd.DataFrame:
        import pandas as pd

        events = self.ask(questions.events_of(list(lineage["accesskeyid"]), within))
        depth_of = dict(zip(lineage["accesskeyid"], lineage["depth"]))
        events["depth"] = pd.array([depth_of.get(k) for k in events["accesskeyid"]], dtype="Int64")
        from .attack import annotate

        annotate(events)  # each event's ATT&CK tactics and techniques (trailkit.attack)
        return events.sort_values(["eventtime", "eventid"], na_position="last", kind="stable").reset_index(drop=True)

    # -- what the key did (``trailkit.findings``: the lineage's events aggregated by the engine, then judged)

    def _keys(self, key: str, within: Window, follow: bool, depth: int | None) -> list[str]:
        return list(self.lineage(key, within.start, within.end, depth)["accesskeyid"]) if follow else [key]

    def findings(self, key: str, start=None, end=None, allowed=None, follow: bool = True, sigma=None,
                 depth: int | None = None) -> pd.DataFrame:
        """What the key's lineage (the key alone with ``follow=False``) did that a responder acts on, most severe
        first: one row per finding, columns ``kind, severity, accesskeyid, first_seen, last_seen, events,
        technique, summary, eventids, rule`` (see README "Findings" for every rule). ``frame.attrs["events"]``
        is how many events were judged (0: the key and its lineage have no events in these logs and window).

        Args:
            allowed: expected networks (CIDRs): addresses outside them are ``unexpected-ip`` findings.
            sigma: a folder of Sigma rules (``logsource: product: aws, service: cloudtrail``); each match is a
                ``sigma`` finding. Rules that cannot be converted are in ``trail.sigma_skipped``.

        Example:
            >>> trail.findings("AKIATFQR7NSC8Q4X20BJ", allowed="192.168.10.0/24")  # doctest: +SKIP
        """
        key, within, depth = KeyMatch.parse(key).value, Window.parse(start, end), levels(depth)
        allowlist = Allowlist.parse(allowed)
        ruleset = self._sigma_rules(sigma)  # read (and its errors said) before any query runs
        return self.judge(self._keys(key, within, follow, depth), within, allowlist, ruleset)

    def judge(self, keys: list[str], within: Window, allowlist: Allowlist = Allowlist(), ruleset=None) -> pd.DataFrame:
        """The findings of ``keys`` (a lineage's, or one key) in ``within``: ``findings.sql`` aggregated by the
        engine, judged by ``trailkit.findings``; a ``sigma.RuleSet``'s matches added."""
        from . import findings
        from . import network

        rows = self._kept_answer(questions.findings(keys, within))
        addresses = rows.loc[rows["rule"] == "ip", "detail"].dropna().tolist()
        found = findings.judge(rows, allowlist, network.context(addresses) if allowlist else None)
        # how many events were judged (every event has an address row): "no findings" of no events is said apart
        found.attrs["events"] = int(rows.loc[rows["rule"] == "ip", "events"].sum())
        if ruleset is not None and ruleset.rules:
            from . import sigma

            found = findings.merged(found, *(sigma.judge(chunk, self._kept_answer(request))
                                          for chunk, request in sigma.requests(ruleset, keys, within)))
        return found

    def objects(self, key: str, start=None, end=None, follow: bool = True, depth: int | None = None) -> pd.DataFrame:
        """Per resource the key's lineage read, wrote, shared or deleted: ``accesskeyid, eventsource, eventname,
        resource, events, errors, first_seen, last_seen, bytes, detail`` (``resource`` as ``s3://bucket/key``,
        a secret's or parameter's name or ARN, a snapshot or image id; ``detail``: with whom it was shared).

        ``frame.attrs["s3_data_events"]`` says whether the logs hold any S3 data events at all; when they hold
        none, a note says so (an empty answer is then not "nothing was read")."""
        key, within, depth = KeyMatch.parse(key).value, Window.parse(start, end), levels(depth)
        return self.touched(self._keys(key, within, follow, depth), within)

    def touched(self, keys: list[str], within: Window) -> pd.DataFrame:
        """``objects`` of ``keys`` (a lineage's, or one key) in ``within``."""
        import warnings

        from .errors import Notice

        found = _one_per_resource(self._kept_answer(questions.objects(keys, within)))
        data = len(self._kept_answer(questions.data_events(within))) > 0
        found.attrs["s3_data_events"] = data
        if not data:
            warnings.warn(Notice(NO_DATA_EVENTS))
        return found

    def _sigma_rules(self, folder):
        from . import sigma

        if folder is None:
            self.sigma_skipped = None
            return None
        ruleset = folder if isinstance(folder, sigma.RuleSet) else sigma.load(folder)
        self.sigma_skipped = ruleset.skipped_frame()
        return ruleset

    # the names of the first release
    key_usage = usage
    time_window = window
    distinct_ips = ips
    key_owner = owner
    minted_keys = minted


NO_DATA_EVENTS = ("these logs hold no S3 data events (object reads and writes are logged only by trails that select "
                  "them): S3 objects read or written cannot be seen here")


def _shared_with(detail) -> str | None:
    """What ``objects.sql`` found of a snapshot's or image's sharing, in words: ``shared with 999988887777, all;
    unshared from 111122223333`` (see ``rules.shared_with``)."""
    from .rules import shared_with

    added, removed = shared_with(detail)
    parts = ([f"shared with {', '.join(added)}"] if added else []) + \
            ([f"unshared from {', '.join(removed)}"] if removed else [])
    return "; ".join(parts) or (detail if isinstance(detail, str) and detail else None)


def _one_per_resource(frame: "pd.DataFrame") -> "pd.DataFrame":
    """``objects`` rows whose resource is a JSON list (GetParameters, BatchGetSecretValue) as one row per name,
    and the sharing in ``detail`` said in words."""
    import json

    import pandas as pd

    frame["detail"] = pd.array([_shared_with(d) for d in frame["detail"]], dtype="string")
    listed = frame["resource"].fillna("").str.startswith("[")
    if not listed.any():
        return frame
    rows = []
    for row in frame[listed].to_dict("records"):
        try:
            names = [str(n) for n in json.loads(row["resource"]) if n is not None]
        except ValueError:
            names = [row["resource"]]
        rows += [{**row, "resource": name} for name in names]
    apart = pd.DataFrame(rows, columns=frame.columns)
    by = ["accesskeyid", "eventsource", "eventname", "resource"]
    joined = pd.concat([frame[~listed], apart], ignore_index=True)
    out = joined.groupby(by, dropna=False, sort=False).agg(
        events=("events", "sum"), errors=("errors", "sum"), first_seen=("first_seen", "min"),
        last_seen=("last_seen", "max"), bytes=("bytes", lambda b: b.sum(min_count=1)),
        detail=("detail", lambda d: " ".join(sorted(set(d.dropna()))) or None)).reset_index()
    out = out[list(frame.columns)].astype(frame.dtypes.to_dict())
    return out.sort_values(["first_seen", "accesskeyid", "eventsource", "eventname", "resource"],
                           na_position="last", kind="stable").reset_index(drop=True)
