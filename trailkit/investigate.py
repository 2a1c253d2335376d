"""The questions an investigator asks about an access key, as explicit functions returning DataFrames.

Each question is built as a ``Request`` (validated inputs + the authored SQL + bound parameters) and then asked
of an engine, so the CLI's ``--dry-run``, the notebook and the report all show exactly the SQL that runs.
"""
from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import queries
from .engines.base import Engine, QueryStats, ScanHints
from .errors import InvalidInput
from .inputs import Window, access_key, identifier, iso_param, key_fragment, networks, positive_int

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


DEFAULT_LOGS = "data/sample"


@dataclass(frozen=True)
class Request:
    """One question, ready to run: the query, its parameters, and what an engine may use to skip data."""

    query: queries.Query
    params: dict = field(default_factory=dict)
    hints: ScanHints = field(default_factory=ScanHints)

    @property
    def name(self) -> str:
        return self.query.name


def _key_params(key: str | None, fragment: bool, required: bool = True) -> tuple[dict, str | None]:
    if key is None or not str(key).strip():
        if required:
            raise InvalidInput("no access key given; enter one such as AKIAIOSFODNN7EXAMPLE")
        return {}, None
    if fragment:
        return {"key_pattern": key_fragment(key)}, None
    exact = access_key(key)
    return {"key": exact}, exact


def _window_params(window: Window) -> dict:
    return {
        "start": iso_param(window.start) if window.start else None,
        "end": iso_param(window.end) if window.end else None,
    }


def _request(name: str, key, fragment: bool, window: Window, key_required: bool = True, **extra) -> Request:
    key_params, exact = _key_params(key, fragment, key_required)
    params = {**key_params, **_window_params(window), **extra}
    return Request(queries.get(name), params, ScanHints(window, exact))


def key_usage_request(key: str, start=None, end=None, limit: int | None = None, fragment: bool = False) -> Request:
    return _request("key_usage", key, fragment, Window.parse(start, end),
                    limit=positive_int(limit) if limit is not None else None)


def time_window_request(start, end, key: str | None = None, limit: int | None = None,
                        fragment: bool = False) -> Request:
    if start in (None, "") or end in (None, ""):
        raise InvalidInput("a time window needs both --start and --end (ISO 8601 such as 2023-08-26T20:50:00Z, or 24h)")
    return _request("time_window", key, fragment, Window.parse(start, end), key_required=False,
                    limit=positive_int(limit) if limit is not None else None)


def key_question_request(name: str, key: str, start=None, end=None, fragment: bool = False) -> Request:
    """distinct_ips, key_owner or minted_keys for one key (or fragment)."""
    return _request(name, key, fragment, Window.parse(start, end))


_PARAM_VALUE_TYPES = (str, int, float, bool, type(None))


def sql_request(text: str, params: dict | None = None) -> Request:
    """Any Athena SQL against the ``cloudtrail`` table, with ``:name`` placeholders bound from ``params``."""
    if not text or not text.strip():
        raise InvalidInput("no SQL given; write a query against the table cloudtrail, e.g. SELECT count(*) FROM cloudtrail")
    params = dict(params or {})
    for name, value in params.items():
        identifier(name, "parameter name")
        if not isinstance(value, _PARAM_VALUE_TYPES):
            raise InvalidInput(f"parameter {name!r} must be text or a number, not {type(value).__name__}")
    missing = sorted(set(re.findall(r"(?<![:\w]):([A-Za-z_]\w*)", _strip_literals(text))) - set(params))
    if missing:
        raise InvalidInput(f"no value for placeholder(s) {', '.join(':' + m for m in missing)}; pass --param NAME=VALUE")
    query = queries.Query("sql", text.strip().rstrip(";") + "\n", {})
    return Request(query, params, ScanHints())


def _strip_literals(sql: str) -> str:
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def ip_categories(addresses, allowed=None) -> list[str]:
    """For each source address: ``allowed`` (inside the allowlist), ``aws service`` (a service name or
    ``AWS Internal`` instead of an address), or ``unexpected``; with no allowlist at all, addresses are
    ``unchecked`` rather than called unexpected."""
    nets = networks(allowed)

    def category(value) -> str:
        try:
            address = ipaddress.ip_address(str(value))
        except ValueError:
            return "aws service"
        if not nets:
            return "unchecked"
        return "allowed" if any(address in net for net in nets) else "unexpected"

    return [category(v) for v in addresses]


def classify_ips(ips: pd.DataFrame, allowed=None) -> pd.DataFrame:
    """A distinct-IP frame with a ``category`` column (see ``ip_categories``)."""
    import pandas as pd

    out = ips.copy()
    out["category"] = pd.array(ip_categories(out["sourceipaddress"], allowed), dtype="string")
    return out


class Trail:
    """Ask the access-key questions of one engine.

    Example:
        >>> trail = Trail.local("data/sample")
        >>> trail.distinct_ips("AKIA4EXAMPLEPARTNER1")  # doctest: +SKIP
    """

    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def local(cls, path: str | os.PathLike | None = None, *, cache: bool = True, watch: bool = True) -> "Trail":
        """The embedded engine over a folder (default ``TRAILKIT_LOGS`` or ``data/sample``).

        ``cache=False`` reads the log files for every question instead of keeping what it read in the
        folder's cache (see ``trailkit cache``). ``watch=False`` lists the folder again for every question
        instead of keeping the listing while inotify reports no change (for a single question).
        """
        from .engines.local import LocalEngine

        return cls(LocalEngine(path or os.environ.get("TRAILKIT_LOGS") or DEFAULT_LOGS, cache=cache, watch=watch))

    @classmethod
    def athena(cls, **config) -> "Trail":
        """Athena; keyword arguments as ``AthenaConfig`` (database, table, workgroup, output_location, region,
        profile, partition_column), falling back to ``TRAILKIT_*`` variables and the AWS config chain."""
        from .engines.athena import AthenaConfig, AthenaEngine

        return cls(AthenaEngine(AthenaConfig.resolve(**config)))

    # -- running

    def ask(self, request: Request) -> pd.DataFrame:
        """Run a request; its rows as a DataFrame with the question's column contract."""
        return queries.to_frame(self.ask_table(request))

    def ask_table(self, request: Request) -> pa.Table:
        """Run a request; its rows as an Arrow table with the question's column contract (no pandas needed)."""
        sql, params = self._render(request)
        table = self.engine.run(sql, params, request.hints)
        return request.query.conform(table) if request.query.columns else table

    def ask_rows(self, request: Request) -> tuple[list[str], list[tuple]]:
        """Run a request; column names and printable rows (times as ISO 8601 text with Z), the contract applied:
        what the command line prints, without importing pyarrow or pandas."""
        sql, params = self._render(request)
        return self.engine.rows(sql, params, request.hints, request.query.columns)

    def explain(self, request: Request) -> str:
        """The exact SQL the engine would run for ``request``, values in place; runs nothing."""
        sql, params = self._render(request)
        return self.engine.explain(sql, params, request.hints)

    def _render(self, request: Request) -> tuple[str, dict]:
        if not request.query.columns:  # free SQL: sent as written
            return request.query.text, dict(request.params)
        params = {**request.params, **self.engine.partition_params(request.hints.window)}
        return request.query.render(params, self.engine.partition_column())

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

    def key_usage(self, key: str, start=None, end=None, limit: int | None = None,
                  fragment: bool = False) -> pd.DataFrame:
        """The key's events, newest first.

        Args:
            key: an access key id (exact match), or with ``fragment=True`` any part of one.
            start, end: optional window: ISO 8601, a date, or a span before now (``24h``, ``7d``); UTC.
            limit: at most this many events.

        Returns:
            One row per event; columns as in ``queries/key_usage.sql`` (``eventtime`` UTC-aware).

        Example:
            >>> trail.key_usage("AKIATFQR7NSC8Q4X20BJ", start="2023-07-10", limit=10)  # doctest: +SKIP
        """
        return self.ask(key_usage_request(key, start, end, limit, fragment))

    def time_window(self, start, end, key: str | None = None, limit: int | None = None,
                    fragment: bool = False) -> pd.DataFrame:
        """Every event in [start, end), oldest first, optionally only one key's.

        Example:
            >>> trail.time_window("2023-07-10T12:00:00Z", "2023-07-10T12:05:00Z")  # doctest: +SKIP
        """
        return self.ask(time_window_request(start, end, key, limit, fragment))

    def distinct_ips(self, key: str, start=None, end=None, fragment: bool = False,
                     allowed=None) -> pd.DataFrame:
        """Per source IP of the key: events, first_seen, last_seen, distinct APIs, errors; latest first.

        With ``allowed`` (CIDRs), a ``category`` column tells allowed, unexpected and AWS-service callers apart.

        Example:
            >>> trail.distinct_ips("AKIATFQR7NSC8Q4X20BJ", allowed="192.168.10.0/24")  # doctest: +SKIP
        """
        ips = self.ask(key_question_request("distinct_ips", key, start, end, fragment))
        return classify_ips(ips, allowed) if allowed is not None else ips

    def key_owner(self, key: str, start=None, end=None, fragment: bool = False) -> pd.DataFrame:
        """Who used the key: identity type, principal ARN, user, account and issuer, with event counts."""
        return self.ask(key_question_request("key_owner", key, start, end, fragment))

    def minted_keys(self, key: str, start=None, end=None, fragment: bool = False) -> pd.DataFrame:
        """Temporary keys obtained from STS with this key (AssumeRole, GetSessionToken, ...)."""
        return self.ask(key_question_request("minted_keys", key, start, end, fragment))

    def sql(self, text: str, params: dict | None = None) -> pd.DataFrame:
        """Any Athena SQL against the table ``cloudtrail``, ``:name`` placeholders bound from ``params``.

        Example:
            >>> trail.sql("SELECT eventname, count(*) AS n FROM cloudtrail WHERE awsregion = :r GROUP BY 1",
            ...           {"r": "us-east-1"})  # doctest: +SKIP
        """
        return self.ask(sql_request(text, params))
