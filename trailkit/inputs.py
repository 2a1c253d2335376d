"""Every user value is checked here, once, before it goes near SQL.

Keys, instants, windows, identifiers and CIDR allowlists: each parser either returns a clean value or raises
InvalidInput with a one-line message that says what to do instead. Callers parse once and pass the parsed
value on (``KeyMatch``, ``Window``, ``Allowlist``): a window parsed once has one "now".
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from .errors import InvalidInput

# Prefixes AWS documents for unique ids; access keys are AKIA (long-term) and ASIA (temporary),
# the others appear in ids users paste by mistake and still deserve the same exact-match treatment.
KEY_PREFIXES = ("AKIA", "ASIA", "ABIA", "ACCA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "APKA", "AGPA", "ASCA")
_KEY_RE = re.compile(r"^[A-Z0-9]{20}$")
_FRAGMENT_RE = re.compile(r"^[A-Za-z0-9]{1,20}$")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_SPAN_RE = re.compile(r"^(\d+)\s*([smhdw])$")
_SPAN_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def access_key(value: str) -> str:
    """Return ``value`` if it is a whole access key id, else raise InvalidInput.

    >>> access_key("AKIATFQR7NSC8Q4X20BJ")
    'AKIATFQR7NSC8Q4X20BJ'
    """
    key = (value or "").strip()
    if not _KEY_RE.match(key) or not key.startswith(KEY_PREFIXES):
        raise InvalidInput(
            f"{value!r} is not an access key id (20 characters, A-Z and 0-9, starting AKIA or ASIA); "
            "pass --fragment to search for part of a key"
        )
    return key


def key_fragment(value: str) -> str:
    """Return a LIKE pattern matching keys that contain ``value``, wildcards in the input escaped."""
    text = (value or "").strip()
    if not _FRAGMENT_RE.match(text):
        raise InvalidInput(
            f"{value!r} is not part of an access key id (1 to 20 letters and digits); "
            "give a piece of the key such as 8Q4X20BJ"
        )
    return "%" + like_escape(text.upper()) + "%"


@dataclass(frozen=True)
class KeyMatch:
    """A validated key to ask about: an exact access key id, or (``fragment``) a LIKE pattern for part of one."""

    value: str
    fragment: bool = False

    @classmethod
    def parse(cls, value, fragment: bool = False) -> "KeyMatch":
        if isinstance(value, KeyMatch):
            return value
        if value is None or not str(value).strip():
            raise InvalidInput("no access key given; enter one such as AKIAIOSFODNN7EXAMPLE")
        if not isinstance(value, str):
            raise InvalidInput(f"an access key id is text such as AKIAIOSFODNN7EXAMPLE, not {type(value).__name__}")
        return cls(key_fragment(value), True) if fragment else cls(access_key(value))

    @property
    def exact(self) -> str | None:
        """The key id when it is whole (engines can then search files for its bytes), else None."""
        return None if self.fragment else self.value

    @property
    def params(self) -> dict:
        return {"key_pattern": self.value} if self.fragment else {"key": self.value}


def like_escape(text: str) -> str:
    r"""Escape LIKE wildcards so user text matches literally (used with ``ESCAPE '\'``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def identifier(value: str, what: str = "name") -> str:
    """Return ``value`` if it is a plain SQL identifier (letters, digits, underscore)."""
    if not isinstance(value, str) or not _IDENT_RE.match(value):
        raise InvalidInput(
            f"{value!r} is not a valid {what} (letters, digits and _ only, not starting with a digit)"
        )
    return value


def quote_identifier(value: str, what: str = "name") -> str:
    """Validated identifier in double quotes, as Athena (Trino) and DuckDB both accept."""
    return '"' + identifier(value, what) + '"'


# Instants outside these years are mistakes (CloudTrail began in 2013); checking here keeps every later date
# computation (the day after a window, a span before now) far from datetime's limits.
FIRST_YEAR, LAST_YEAR = 1970, 8999


def instant(value, *, what: str = "time", end: bool = False, now: datetime | None = None) -> datetime:
    """Parse an ISO 8601 instant, a date, ``now``, or a relative span (``24h``, ``7d``: that long ago).

    Naive times are UTC. A bare date means its start, or for ``end=True`` the end of that day (the next
    midnight, exclusive), so ``--start 2023-08-26 --end 2023-08-26`` is the whole of that day.
    """
    try:
        moment = _instant(value, what=what, end=end, now=now)
    except (OverflowError, OSError):
        moment = None
    if moment is None or not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise InvalidInput(f"{what} {value!r} is out of range; give a time between {FIRST_YEAR} and "
                           f"{LAST_YEAR}, or leave it out for no bound")
    return moment


def _instant(value, *, what: str, end: bool, now: datetime | None) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
        return moment + timedelta(days=1) if end else moment
    text = str(value or "").strip()
    now = now or datetime.now(timezone.utc)
    if text.lower() == "now":
        return now
    span = _SPAN_RE.match(text.lower())
    if span:
        return now - timedelta(**{_SPAN_UNITS[span.group(2)]: int(span.group(1))})
    try:
        if re.match(r"^\d{4}-\d{2}-\d{2}$", text):
            return _instant(date.fromisoformat(text), what=what, end=end, now=now)
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise InvalidInput(
            f"{what} {value!r} is not a time; use ISO 8601 (2023-08-26T20:50:00Z or 2023-08-26) "
            "or a span before now such as 24h or 7d"
        ) from None
    return _instant(moment, what=what, end=end, now=now)


@dataclass(frozen=True)
class Window:
    """A half-open UTC interval [start, end). Either side may be open (None)."""

    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self):
        if self.start and self.end and self.start >= self.end:
            raise InvalidInput(
                f"start {iso(self.start)} is not before end {iso(self.end)}; swap them or widen the window"
            )

    @classmethod
    def parse(cls, start=None, end=None, *, now: datetime | None = None) -> "Window":
        now = now or datetime.now(timezone.utc)
        return cls(
            instant(start, what="start", now=now) if start not in (None, "") else None,
            instant(end, what="end", end=True, now=now) if end not in (None, "") else None,
        )

    @property
    def bounded(self) -> bool:
        return self.start is not None or self.end is not None

    def describe(self) -> str:
        return f"{iso(self.start) if self.start else 'the beginning'} to {iso(self.end) if self.end else 'now'}"


def iso(moment: datetime) -> str:
    """UTC instant as CloudTrail writes it, to the second: 2023-07-10T11:54:33Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_param(moment: datetime) -> str:
    """UTC instant with milliseconds (Athena's precision), for bound parameters to from_iso8601_timestamp."""
    moment = moment.astimezone(timezone.utc)
    if moment.microsecond % 1000:  # [start, end) at millisecond precision: up, so nothing before start counts
        moment += timedelta(microseconds=1000 - moment.microsecond % 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Allowlist:
    """The networks a key is expected to be used from; empty when none was given (addresses are then
    ``unchecked``, never called unexpected)."""

    networks: tuple = ()
    text: str | None = None  # as given, for showing

    @classmethod
    def parse(cls, values) -> "Allowlist":
        if isinstance(values, Allowlist):
            return values
        nets = networks(values)
        shown = values if isinstance(values, str) else ", ".join(map(str, nets))
        return cls(nets, (shown or "").strip() or None)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def category(self, value) -> str:
        """``allowed`` (inside a network), ``unexpected`` (outside), ``aws service`` (a service name or ``AWS
        Internal`` where an address would be), or ``unchecked`` (no allowlist)."""
        try:
            address = ipaddress.ip_address(str(value))
        except ValueError:
            return "aws service"
        if not self.networks:
            return "unchecked"
        return "allowed" if any(address in net for net in self.networks) else "unexpected"


def networks(values) -> tuple:
    """Parse an allowlist of CIDRs or addresses (comma-separated string or iterable)."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = [v for v in re.split(r"[,\s]+", values) if v]
    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(str(v).strip(), strict=False))
        except ValueError:
            raise InvalidInput(f"{v!r} is not an IP address or CIDR block (such as 203.0.113.0/24)") from None
    return tuple(out)


@dataclass(frozen=True)
class Scope:
    """The accounts and regions a question is narrowed to (empty: all). Both engines filter on the events'
    ``recipientaccountid`` and ``awsregion``; Athena also bounds its account and region partitions."""

    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()

    @classmethod
    def parse(cls, accounts=None, regions=None) -> "Scope":
        from .engines import s3layout

        return cls(s3layout.accounts(accounts), s3layout.regions(regions))

    def __bool__(self) -> bool:
        return bool(self.accounts or self.regions)

    @property
    def params(self) -> dict:
        return {"accounts": self.accounts or None, "regions": self.regions or None}


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*$", re.I)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4, "p": 1024 ** 5}


def byte_size(value, what: str = "--max-scan") -> int:
    """``500MB``, ``5 GB``, ``1.5TB``, ``2GiB``, ``100b`` or a number of bytes, as bytes. Units are binary, as
    Athena counts (5GB is 5 GiB)."""
    m = _SIZE_RE.match(str(value))
    size = int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]) if m else 0
    if size < 1 or size >= 1 << 63:
        raise InvalidInput(f"{what}: {value!r} is not a size; write e.g. 500MB, 5GB or 1TB")
    return size


_SECONDS_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$", re.I)


def seconds(value, what: str = "--timeout") -> float:
    """``90``, ``90s``, ``5m`` or ``1h`` as seconds (more than zero)."""
    m = _SECONDS_RE.match(str(value))
    if not m or float(m.group(1)) <= 0:
        raise InvalidInput(f"{what}: {value!r} is not a duration; write seconds (90), or 90s, 5m, 1h")
    return float(m.group(1)) * {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[(m.group(2) or "").lower()]


def levels(depth, what: str = "--depth") -> int | None:
    """How many levels of descendants a lineage follows: None for all, 0 for the key and its ancestors only."""
    if depth is None:
        return None
    if isinstance(depth, bool) or not str(depth).isdigit():  # -1, 1.5 and words are no number of levels
        raise InvalidInput(f"{what} {depth!r} is not a whole number of levels (0 or more)")
    return int(depth)


def positive_int(value, what: str = "limit") -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number <= 0 or number >= 1 << 63:
        raise InvalidInput(f"{what} {value!r} is not a positive whole number (below 2**63)")
    return number


def output_file(path, what: str = "--out") -> "Path":
    """A file trailkit may write: not a folder, in a folder that exists (or can be made) and is writable."""
    import tempfile
    from pathlib import Path

    out = Path(path)
    if out.is_dir():
        raise InvalidInput(f"{what} {str(out)!r} is a folder; name the file to write, such as {str(out / 'report.html')!r}")
    try:  # proven by writing beside it (permissions say little to root, or on /proc)
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=".trailkit-", suffix=".probe"):
            pass
    except OSError as e:
        raise InvalidInput(f"{what} {str(out)!r} cannot be written ({e.strerror or e}); choose another place") from None
    return out


def output_folder(path, what: str = "--out") -> "Path":
    """A folder trailkit may write into: absent (it is made) or a writable folder, never a file."""
    import tempfile
    from pathlib import Path

    out = Path(path)
    existing = next((p for p in [out, *out.parents] if p.exists()), Path("."))
    if not existing.is_dir():
        raise InvalidInput(f"{what} {str(out)!r} cannot be a folder: {str(existing)!r} is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".trailkit-", suffix=".probe"):
            pass
    except OSError as e:
        raise InvalidInput(f"{what} {str(out)!r} cannot be written ({e.strerror or e}); choose another place") from None
    return out
