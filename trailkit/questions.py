"""The questions, named once, and the requests that ask them.

One vocabulary: a question's name is its CLI command, its ``Trail`` method, its SQL file in ``queries/`` and
its heading in reports (``usage``, ``window``, ``ips``, ``owner``, ``minted``, ``sql``). A ``Request`` is one
question ready to run: the query, its bound parameters, and what an engine may use to skip data. Builders take
values already parsed (``KeyMatch``, ``Window``: see ``trailkit.inputs``), so an investigation's questions
share one key, one window and one "now".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import queries
from .contract import Contract
from .errors import InvalidInput
from .inputs import Allowlist, KeyMatch, Scope, Window, identifier, iso_param, positive_int
from .lineage import QUARANTINE

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Question:
    name: str  # the CLI command, the Trail method, the .sql file
    title: str  # its heading in a report
    help: str  # one line: what it answers


QUESTIONS = {q.name: q for q in (
    Question("usage", "Usage", "the key's events, newest first"),
    Question("window", "Window", "every event in a time window, oldest first"),
    Question("ips", "Source IPs", "the key's distinct source IPs: events, first and last seen, APIs, errors"),
    Question("owner", "Owner", "who the key belongs to, as CloudTrail recorded its caller"),
    Question("minted", "Minted keys", "temporary keys obtained from STS with the key"),
    Question("chain", "Lineage", "every key the key came from and led to: temporary keys, role chains, keys it created"),
    Question("timeline", "Timeline", "every event of every key in the key's lineage, oldest first"),
    Question("lifecycle", "Lifecycle", "the key's birth and death: created or minted, deactivated, deleted, quarantined"),
    Question("findings", "Findings", "what the key's lineage did that a responder acts on, most severe first"),
    Question("objects", "Data touched", "per resource the key's lineage read, wrote, shared or deleted"),
    Question("sql", "SQL", "any Athena SQL against the table cloudtrail, on either engine"),
)}


@dataclass(frozen=True)
class ScanHints:
    """What the question is about, for engines that can skip data: the window, the key if it is whole, and the
    accounts and regions it is narrowed to."""

    window: Window = field(default_factory=Window)
    key: str | None = None
    scope: Scope = field(default_factory=Scope)
    #: literal strings every record the question needs contains one of (several keys, a lineage's links)
    needles: tuple[str, ...] = ()

    @property
    def scan_key(self) -> str | None:
        """What the local engine's fast scan looks for: the key, or the needles joined by ``|`` (any of them)."""
        return self.key or ("|".join(self.needles) if self.needles else None)


@dataclass(frozen=True)
class Request:
    """One question, ready to run: the query, its parameters, and what an engine may use to skip data."""

    query: queries.Query
    params: dict = field(default_factory=dict)
    hints: ScanHints = field(default_factory=ScanHints)

    @property
    def name(self) -> str:
        return self.query.name

    @property
    def contract(self) -> Contract:
        return self.query.contract


def window_params(within: Window) -> dict:
    return {"start": iso_param(within.start) if within.start else None,
            "end": iso_param(within.end) if within.end else None}


def _limit(limit) -> dict:
    return {"limit": positive_int(limit) if limit is not None else None}


def _about_key(name: str, key: KeyMatch, within: Window, **extra) -> Request:
    params = {**key.params, **window_params(within), **extra}
    return Request(queries.get(name), params, ScanHints(within, key.exact))


def usage(key: KeyMatch, within: Window = Window(), limit: int | None = None) -> Request:
    """The key's events, newest first (at most ``limit``)."""
    return _about_key("usage", key, within, **_limit(limit))


def window(within: Window, key: KeyMatch | None = None, limit: int | None = None) -> Request:
    """Every event in ``within`` (both ends needed), oldest first; ``key`` narrows it to one key."""
    if within.start is None or within.end is None:
        raise InvalidInput("a time window needs both --start and --end (ISO 8601 such as 2023-08-26T20:50:00Z, or 24h)")
    if key is None:
        return Request(queries.get("window"), {**window_params(within), **_limit(limit)}, ScanHints(within))
    return _about_key("window", key, within, **_limit(limit))


def ips(key: KeyMatch, within: Window = Window()) -> Request:
    return _about_key("ips", key, within)


def owner(key: KeyMatch, within: Window = Window()) -> Request:
    return _about_key("owner", key, within)


def minted(key: KeyMatch, within: Window = Window()) -> Request:
    return _about_key("minted", key, within)


def narrowed(request: Request, scope: Scope) -> Request:
    """``request`` kept to the accounts and regions of ``scope`` (free SQL is left as written)."""
    from dataclasses import replace

    if not scope:
        return request
    if request.contract.free:
        raise InvalidInput("--accounts/--regions narrow trailkit's questions, not free SQL: write the condition in "
                           "the SQL (WHERE recipientaccountid IN (...) AND awsregion IN (...))")
    return replace(request, params={**request.params, **scope.params}, hints=replace(request.hints, scope=scope))


#: every record links.sql keeps holds one of these: STS's response object ``"credentials"``, with its opening
#: quote (as a bare word it is in many parameters' names), which is also in the escaped ``\"credentials\"`` of an
#: export that keeps each record as text (event history's CloudTrailEvent, Splunk's _raw); ``ccessKey"`` and
#: ``ccessKey\"``, the end of IAM's response object ``"accessKey"`` and of the name of every IAM call on keys
#: (``"UpdateAccessKey"``, ``"DeleteAccessKey"``), plainly or escaped; and, where a key's life is asked, AWS's
#: quarantine policy. Each is one SIMD pass over every file; links.sql says which of the records they let through
#: are links.
LINK_NEEDLES = ('"credentials', 'ccessKey"', 'ccessKey\\"')


def links(within: Window = Window(), keys=None, life: bool = True) -> Request:
    """What connects keys: calls that produced keys, calls on keys' lives (see ``trailkit.lineage``). With
    ``keys`` (a lineage's keys, all of them), the local engine reads only records holding one of them or AWS's
    quarantine policy: the links that matter to that lineage (the SQL is the same). Without ``life``, not the
    quarantine policy's (a lineage does not need them; its lifecycle does)."""
    needles = (*(LINK_NEEDLES if keys is None else sorted(keys)), *((QUARANTINE,) if life else ()))
    return Request(queries.get("links"), window_params(within), ScanHints(within, needles=needles))


def figures(keys: list[str], federated: list[str] = (), within: Window = Window()) -> Request:
    """Each key's own figures (events, first and last seen, principal, source IPs), for ``keys`` and for the
    keys of the federated users ``federated`` (ARNs)."""
    params = {"keys": tuple(keys), "federated": tuple(federated), **window_params(within)}
    return Request(queries.get("figures"), params, ScanHints(within, needles=tuple(keys) + tuple(federated)))


def events_of(keys: list[str], within: Window = Window()) -> Request:
    """The events of several keys (``usage`` of each, in one query): a lineage's timeline."""
    params = {"keys": tuple(keys), **window_params(within)}
    return Request(queries.get("usage"), params, ScanHints(within, needles=tuple(keys)))


def findings(keys: list[str], within: Window = Window()) -> Request:
    """The aggregates ``trailkit.findings`` judges, for the keys of a lineage (see ``queries/findings.sql``)."""
    from . import findings
    from .rules import WATCHED

    params = {"keys": tuple(keys), "watched": WATCHED, "evidence": findings.EVIDENCE,
              "burst_apis": findings.BURST_APIS, "burst_denied": findings.BURST_DENIED,
              "burst_denied_apis": findings.BURST_DENIED_APIS,
              "suspect_agents": findings.SUSPECT_AGENTS, **window_params(within)}
    return Request(queries.get("findings"), params, ScanHints(within, needles=tuple(keys)))


def objects(keys: list[str], within: Window = Window()) -> Request:
    """Per resource the ``keys`` read, wrote, shared or deleted (see ``queries/objects.sql``)."""
    params = {"keys": tuple(keys), **window_params(within)}
    return Request(queries.get("objects"), params, ScanHints(within, needles=tuple(keys)))


#: every S3 data event's record holds one of these (its eventCategory, or an object API's name)
DATA_EVENT_NEEDLES = ('"Data"', '\\"Data\\"', "Object", "UploadPart")


def data_events(within: Window = Window()) -> Request:
    """One S3 data event of the logs, if they hold any (see ``queries/data_events.sql``)."""
    return Request(queries.get("data_events"), window_params(within), ScanHints(within, needles=DATA_EVENT_NEEDLES))


_PARAM_VALUE_TYPES = (str, int, float, bool, type(None))


def sql(text: str, params: dict | None = None) -> Request:
    """Any Athena SQL against the ``cloudtrail`` table, with ``:name`` placeholders bound from ``params``."""
    if not text or not text.strip():
        raise InvalidInput("no SQL given; write a query against the table cloudtrail, e.g. SELECT count(*) FROM cloudtrail")
    params = dict(params or {})
    for name, value in params.items():
        identifier(name, "parameter name")
        if not isinstance(value, _PARAM_VALUE_TYPES):
            raise InvalidInput(f"parameter {name!r} must be text or a number, not {type(value).__name__}")
    placeholders = set(re.findall(r"(?<![:\w]):([A-Za-z_]\w*)", _strip_literals(text)))
    missing = sorted(placeholders - set(params))
    if missing:
        raise InvalidInput(f"no value for placeholder(s) {', '.join(':' + m for m in missing)}; pass --param NAME=VALUE")
    unused = sorted(set(params) - placeholders)
    if unused:
        raise InvalidInput(f"parameter(s) {', '.join(unused)} not used in the SQL; write :NAME where each belongs")
    read_only(text)
    return Request(queries.Query.free(text), params, ScanHints())


def read_only(text: str) -> None:
    """Raise InvalidInput unless ``text`` is one query (SELECT, or WITH ... SELECT) that reads the table
    ``cloudtrail`` and nothing else: no other table, no table function (``read_csv('/etc/passwd')``), no
    writes, settings, extensions or second statement. Checked on the parsed SQL, before any engine sees it."""
    import logging

    import sqlglot
    from sqlglot import exp

    quiet = logging.getLogger("sqlglot")
    level, quiet.level = quiet.level, logging.ERROR  # its "falling back to a Command" notes are ours to word
    try:
        statements = [s for s in sqlglot.parse(text, read="athena") if s is not None]
    except sqlglot.errors.SqlglotError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InvalidInput(f"the SQL cannot be read ({first}); write one SELECT against the table cloudtrail") from None
    finally:
        quiet.level = level
    if len(statements) != 1:
        raise InvalidInput(f"{len(statements)} SQL statements given; trailkit sql runs exactly one SELECT")
    query = statements[0]
    if not isinstance(query, exp.Query):
        start = " ".join(text.split()[:2])
        raise InvalidInput(f"only a SELECT (or WITH ... SELECT) can run, not {start!r}; trailkit sql is read-only")
    if any(w.args.get("recursive") for w in query.find_all(exp.With)):
        raise InvalidInput("WITH RECURSIVE is not allowed; trailkit sql runs one plain SELECT")
    # a source that is not a table, a subquery, UNNEST or VALUES is a table function (LATERAL read_text(...))
    for node in query.find_all(exp.Lateral, exp.TableFromRows, exp.Pivot):
        if not isinstance(node.this, (exp.Subquery, exp.Unnest, exp.Values, exp.Select, type(None))) or \
                isinstance(node, exp.TableFromRows):
            raise InvalidInput(f"{node.sql(dialect='athena')!r} is not allowed; trailkit sql reads only the table cloudtrail")
    for fn in query.find_all(exp.Anonymous, exp.Func):
        name = (fn.name if isinstance(fn, exp.Anonymous) else fn.sql_name()).lower()
        if name.startswith(_FORBIDDEN_FUNCTIONS):
            raise InvalidInput(f"function {name}() is not allowed; trailkit sql reads only the table cloudtrail")
    from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
    from sqlglot.optimizer.scope import traverse_scope

    query = normalize_identifiers(query, dialect="athena")  # Recent and recent are one WITH name
    try:  # which names are tables, and which are WITH names in scope where they are used
        tables = {id(src) for scope in traverse_scope(query) for src in scope.sources.values()
                  if isinstance(src, exp.Table)}
    except Exception as e:  # sqlglot's scoping refuses what it cannot follow: so do we
        raise InvalidInput(f"the SQL's tables cannot be followed ({type(e).__name__}); write one SELECT against "
                           "the table cloudtrail") from None
    ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    for table in query.find_all(exp.Table):
        shown = table.sql(dialect="athena")
        if not isinstance(table.this, exp.Identifier):
            raise InvalidInput(f"{shown!r} is not a table; trailkit sql reads only the table cloudtrail")
        name = table.name.lower()
        # a name is the table cloudtrail, or a WITH name used where it is in scope (never inside its own WITH)
        known = name == "cloudtrail" if id(table) in tables else name in ctes
        if table.args.get("db") or table.args.get("catalog") or not known:
            raise InvalidInput(f"table {shown!r} is not known; trailkit sql reads only the table cloudtrail")
    for node in query.find_all(exp.Into, exp.Command, exp.Pragma):
        raise InvalidInput(f"{node.key.upper()} is not allowed; trailkit sql is read-only")


# DuckDB functions that reach outside the table: files, settings, the catalog, the environment
_FORBIDDEN_FUNCTIONS = ("read_", "glob", "current_setting", "getenv", "getvariable", "duckdb_", "pragma_",
                        "query", "sniff_csv", "parquet_", "iceberg_", "delta_", "load_", "install_", "which_secret",
                        "current_database", "current_schema", "sqlite_", "postgres_", "mysql_", "http")


def _strip_literals(text: str) -> str:
    """``text`` without string literals, quoted names and comments (a ':name' there is no placeholder)."""
    return re.sub(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", "''", text, flags=re.S)


def classify_ips(answer: "pd.DataFrame", allowed=None) -> "pd.DataFrame":
    """An ``ips`` answer with a ``category`` column: ``allowed``, ``unexpected``, ``aws service`` or
    ``unchecked`` (see ``Allowlist.category``); ``allowed`` is an ``Allowlist`` or CIDRs."""
    import pandas as pd

    allowlist = Allowlist.parse(allowed)
    out = answer.copy()
    out["category"] = pd.array([allowlist.category(a) for a in out["sourceipaddress"]], dtype="string")
    return out
