"""The CloudTrail table, defined once.

``COLUMNS`` follows the table AWS documents for Athena ("Create the table for CloudTrail logs in Athena using
partition projection"): lowercase names, ``useridentity`` with its nested ``sessioncontext``, ``resources`` as an
array of structs, the free-form parts (``requestparameters``, ``responseelements``, ``additionaleventdata``,
``serviceeventdetails``) as JSON text and ``eventtime`` as the ISO string. Both the Athena DDL and the local
DuckDB view are generated from it, so the same SQL sees the same shapes on both engines.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone

from .errors import InvalidInput
from .engines import s3layout
from .inputs import identifier


@dataclass(frozen=True)
class Column:
    """One column or struct field: Athena name, CloudTrail JSON key, and type.

    ``kind`` is ``string`` (scalar kept as text), ``json`` (any JSON value kept as its JSON text),
    ``map`` (object of strings), ``struct`` (``fields``) or ``array`` (of a struct with ``fields``).
    """

    name: str
    key: str
    kind: str = "string"
    fields: tuple["Column", ...] = ()


def _s(key: str) -> Column:
    return Column(key.lower(), key)


def _struct(key: str, *fields: Column, name: str | None = None) -> Column:
    return Column(name or key.lower(), key, "struct", fields)


SESSION_ISSUER = _struct("sessionIssuer", *map(_s, ("type", "principalId", "arn", "accountId", "userName")))
SESSION_CONTEXT = _struct(
    "sessionContext",
    _struct("attributes", _s("mfaAuthenticated"), _s("creationDate")),
    SESSION_ISSUER,
    _s("ec2RoleDelivery"),
    _struct("webIdFederationData", _s("federatedProvider"), Column("attributes", "attributes", "map")),
    _s("sourceIdentity"),
)
USER_IDENTITY = _struct(
    "userIdentity",
    *map(_s, ("type", "principalId", "arn", "accountId", "invokedBy", "accessKeyId", "userName")),
    _struct("onBehalfOf", _s("userId"), _s("identityStoreArn")),
    SESSION_CONTEXT,
)

COLUMNS: tuple[Column, ...] = (
    _s("eventVersion"),
    USER_IDENTITY,
    _s("eventTime"),
    _s("eventSource"),
    _s("eventName"),
    _s("awsRegion"),
    Column("sourceipaddress", "sourceIPAddress"),
    _s("userAgent"),
    _s("errorCode"),
    _s("errorMessage"),
    Column("requestparameters", "requestParameters", "json"),
    Column("responseelements", "responseElements", "json"),
    Column("additionaleventdata", "additionalEventData", "json"),
    Column("requestid", "requestID"),
    Column("eventid", "eventID"),
    _s("readOnly"),
    Column("resources", "resources", "array", (Column("arn", "ARN"), _s("accountId"), _s("type"))),
    _s("eventType"),
    _s("apiVersion"),
    _s("recipientAccountId"),
    Column("serviceeventdetails", "serviceEventDetails", "json"),
    Column("sharedeventid", "sharedEventID"),
    _s("vpcEndpointId"),
    _s("vpcEndpointAccountId"),
    _s("eventCategory"),
    _struct("addendum", _s("reason"), _s("updatedFields"), _s("originalRequestID"), _s("originalEventID")),
    _s("sessionCredentialFromConsole"),
    Column("edgedevicedetails", "edgeDeviceDetails", "json"),
    _struct("tlsDetails", _s("tlsVersion"), _s("cipherSuite"), _s("clientProvidedHostHeader")),
    _s("managementEvent"),
)

COLUMN_NAMES = tuple(c.name for c in COLUMNS)


# ---------------------------------------------------------------- Athena DDL

def _athena_type(col: Column) -> str:
    if col.kind in ("string", "json"):
        return "string"
    if col.kind == "map":
        return "map<string,string>"
    inner = "struct<" + ", ".join(f"{f.name}:{_athena_type(f)}" for f in col.fields) + ">"
    return f"array<{inner}>" if col.kind == "array" else inner


# CloudTrail was launched on 13 November 2013: no delivered day is older than the first of that month.
CLOUDTRAIL_LAUNCH = date(2013, 11, 1)
_DAY_RE = re.compile(r"^(\d{4})([-/])(\d{2})\2(\d{2})$")
_SERDE = (
    "ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'",
    "STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'",
    "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'",
)


def range_start(value=None) -> str:
    """The first day of a projected date range, as ``yyyy/MM/dd``, from ``YYYY-MM-DD``, ``YYYY/MM/DD`` or a date.

    Left out, it is CloudTrail's launch (2013/11/01). The range is a correctness bound, not a cost: a day
    before its start is invisible to every query, so a later start silently answers "never used" for older
    logs; and since trailkit sends no Athena question without a window, Athena only ever projects the days
    asked, however early the range begins.
    """
    if value in (None, ""):
        day = CLOUDTRAIL_LAUNCH
    elif isinstance(value, date):
        day = value.date() if isinstance(value, datetime) else value
    else:
        m = _DAY_RE.match(str(value).strip())
        try:
            day = date(int(m[1]), int(m[3]), int(m[4])) if m else None
        except ValueError:
            day = None
        if day is None:
            raise InvalidInput(f"--start {value!r} is not a date; write YYYY-MM-DD, e.g. 2023-08-26")
    today = datetime.now(timezone.utc).date()
    if day > today:
        raise InvalidInput(f"--start {day.isoformat()} is in the future; give a day up to today ({today.isoformat()}, "
                           "UTC), or leave it out for every day since CloudTrail began")
    if day < CLOUDTRAIL_LAUNCH:
        raise InvalidInput(f"--start {day.isoformat()} is before CloudTrail began; give {CLOUDTRAIL_LAUNCH.isoformat()} "
                           "or later, or leave it out")
    return day.strftime("%Y/%m/%d")


def _date_projection(column: str, start: str) -> list[tuple[str, str]]:
    return [(f"projection.{column}.format", "yyyy/MM/dd"), (f"projection.{column}.interval", "1"),
            (f"projection.{column}.interval.unit", "DAYS"), (f"projection.{column}.range", f"{start},NOW"),
            (f"projection.{column}.type", "date")]


def _create_table(database: str, table: str, location: str, partitions: tuple[str, ...] = (),
                  properties: list[tuple[str, str]] | None = None) -> str:
    """The statement both table forms share: columns, SerDe and formats from ``COLUMNS``, then their own
    partitions, location and properties (every value already checked: none can hold a quote)."""
    # Athena DDL quotes identifiers with backticks, not double quotes.
    name = f"`{identifier(database, 'database')}`.`{identifier(table, 'table')}`"
    lines = [f"CREATE EXTERNAL TABLE {name} (", ",\n".join(f"  {c.name} {_athena_type(c)}" for c in COLUMNS), ")"]
    if partitions:
        lines.append("PARTITIONED BY (" + ", ".join(f"`{p}` string" for p in partitions) + ")")
    lines += [*_SERDE, f"LOCATION '{location}'"]
    if properties:
        lines += ["TBLPROPERTIES (", ",\n".join(f"  '{k}'='{v}'" for k, v in properties), ")"]
    return "\n".join(lines) + "\n"


def athena_ddl(location: str, *, database: str = "default", table: str = "cloudtrail", partitioned: bool = True,
               start=None, projection_start: str | None = None) -> str:
    """CREATE EXTERNAL TABLE text for one trail region folder, ``s3://bucket[/prefix]/AWSLogs/[o-id/]ACCOUNT/
    CloudTrail/REGION``: AWS's documented one-region table. For many accounts or regions (or an organization
    trail) use ``athena_table_ddl``.

    Not ``partitioned``, the location may be any level at or above a region folder (the console's table points
    at ``AWSLogs/ACCOUNT/``); Athena then reads every file under it for every question.

    With ``partitioned`` (the default) the table uses partition projection on a ``timestamp`` column
    (``yyyy/MM/dd``) from ``start`` (see ``range_start``; ``projection_start=`` is its older name) to now,
    so trailkit's windowed questions scan only the days asked.

    >>> print(athena_ddl("s3://my-trail-bucket/AWSLogs/111122223333/CloudTrail/us-east-1").splitlines()[-2])
      'storage.location.template'='s3://my-trail-bucket/AWSLogs/111122223333/CloudTrail/us-east-1/${timestamp}'
    """
    first = range_start(start if start is not None else projection_start)
    if not partitioned:  # Athena reads every file under the location: any level at or above a region folder
        # the trailing slash: a prefix ".../CloudTrail" would also take in ".../CloudTrail-Digest"
        return _create_table(database, table, str(s3layout.unpartitioned(location)) + "/")
    layout, account, region = s3layout.one_region(location)
    location = layout.template(account, region, "")
    return _create_table(database, table, location, ("timestamp",), [
        ("projection.enabled", "true"), *_date_projection("timestamp", first),
        ("storage.location.template", f"{location}/${{timestamp}}")])


def athena_table_ddl(location: str, *, accounts=(), regions=(), org: str | None = None, injected: bool = False,
                     start=None, database: str = "default", table: str = "cloudtrail") -> str:
    """CREATE EXTERNAL TABLE text for a trail's logs as CloudTrail lays them out, every account and region in one
    table: partitions ``account``, ``region`` and ``date`` projected over ``storage.location.template``
    ``s3://bucket[/prefix]/AWSLogs/[o-id/]${account}/CloudTrail/${region}/${date}``.

    Args:
        location: where the trail writes, *above* ``AWSLogs`` (``s3://bucket`` or ``s3://bucket/prefix``).
        accounts: the accounts to project (``enum``), required unless ``injected``.
        regions: the regions to project (``enum``); by default every region where CloudTrail runs
            (``s3layout.known_regions()``), as a multi-region trail writes a folder for each.
        org: the organization id of an organization trail (its folder under ``AWSLogs``).
        injected: project accounts as ``injected`` instead of a list, for large organizations.
        start: first day of the ``date`` range, see ``range_start`` (default: CloudTrail's launch).

    ``enum`` or ``injected`` accounts: AWS recommends keeping an enum projection to "a few dozen or less" values,
    the table's metadata being bounded by Glue's limit of about 1 MB gzipped ("Supported types for partition
    projection", Athena user guide), and an account list must be kept up to date as accounts join. With
    ``injected`` the accounts are not listed at all; instead every query must name them with static equality or
    IN conditions on ``account``, or Athena refuses it with CONSTRAINT_VIOLATION ("Use dynamic ID partitioning",
    Athena user guide): a question on such a table is asked with its accounts. So: enum up to a few dozen
    accounts, injected for an organization beyond that, or one that adds accounts often.

    >>> ddl = athena_table_ddl("s3://my-trail-bucket", accounts="111122223333", regions="us-east-1")
    >>> print(ddl.splitlines()[-2])
      'storage.location.template'='s3://my-trail-bucket/AWSLogs/${account}/CloudTrail/${region}/${date}'
    """
    layout = s3layout.TrailLayout.parse(location, org)
    accounts = s3layout.accounts(accounts)
    if injected and accounts:
        raise InvalidInput("--accounts and --injected exclude each other: with injected accounts each query names "
                           "its own; drop one")
    if not injected and not accounts:
        raise InvalidInput("no accounts to project: give --accounts 111122223333[,444455556666...], or --injected "
                           "for an organization with many accounts")
    regions = s3layout.regions(regions) or s3layout.known_regions()
    first = range_start(start)
    account = [("projection.account.type", "injected")] if injected else [
        ("projection.account.type", "enum"), ("projection.account.values", ",".join(accounts))]
    return _create_table(database, table, f"s3://{layout.base.bucket}/{layout.logs()}", ("account", "region", "date"), [
        ("projection.enabled", "true"), *account,
        ("projection.region.type", "enum"), ("projection.region.values", ",".join(regions)),
        *_date_projection("date", first),
        ("storage.location.template", layout.template())])


# ---------------------------------------------------------------- DuckDB view

def _duck_shape(col: Column):
    if col.kind == "string":
        return "VARCHAR"
    if col.kind == "json":
        return "JSON"
    if col.kind == "map":
        return "MAP(VARCHAR, VARCHAR)"
    inner = {f.key: _duck_shape(f) for f in col.fields}
    return [inner] if col.kind == "array" else inner


def duckdb_shape() -> str:
    """The json_transform shape of one record (JSON keys are matched case-sensitively, so camelCase)."""
    return json.dumps({c.key: _duck_shape(c) for c in COLUMNS}, separators=(",", ":"))


def _q(key: str) -> str:
    return '"' + key.replace('"', '""') + '"'


def _duck_expr(col: Column, src: str) -> str:
    ref = f"{src}.{_q(col.key)}"
    if col.kind == "json":
        return f"CAST({ref} AS VARCHAR)"
    if col.kind in ("string", "map"):
        return ref
    if col.kind == "array":
        return f"list_transform({ref}, lambda x: {_duck_pack(col.fields, 'x')})"
    # A struct built from a missing object must be NULL, as Athena gives, not a struct of NULLs.
    return f"CASE WHEN {ref} IS NULL THEN NULL ELSE {_duck_pack(col.fields, ref)} END"


def _duck_pack(fields: tuple[Column, ...], src: str) -> str:
    return "struct_pack(" + ", ".join(f"{f.name} := {_duck_expr(f, src)}" for f in fields) + ")"


def duckdb_select(record: str = "r") -> str:
    """SELECT list turning a json_transform'ed record into the Athena column names and struct shapes."""
    return ",\n  ".join(f"{_duck_expr(c, record)} AS {c.name}" for c in COLUMNS)
