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

from .errors import InvalidInput
from .inputs import quote_identifier


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


_S3_RE = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[A-Za-z0-9!_.*()/\-]*)?$")


def athena_ddl(location: str, *, database: str = "default", table: str = "cloudtrail",
               partitioned: bool = True, projection_start: str = "2020/01/01") -> str:
    """CREATE EXTERNAL TABLE text for CloudTrail logs at ``location`` (``s3://bucket/AWSLogs/<acct>/CloudTrail/<region>``).

    With ``partitioned`` (the default) the table uses partition projection on a ``timestamp`` column
    (``yyyy/MM/dd``), so trailkit's windowed questions scan only the days asked.
    """
    if not _S3_RE.match(location or ""):
        raise InvalidInput(f"{location!r} is not an S3 location such as s3://my-trail-bucket/AWSLogs/111122223333/CloudTrail/us-east-1")
    if not re.match(r"^\d{4}/\d{2}/\d{2}$", projection_start):
        raise InvalidInput(f"{projection_start!r} is not a yyyy/MM/dd date")
    location = location.rstrip("/")
    cols = ",\n".join(f"  {c.name} {_athena_type(c)}" for c in COLUMNS)
    lines = [f"CREATE EXTERNAL TABLE {quote_identifier(database, 'database')}.{quote_identifier(table, 'table')} (",
             cols, ")"]
    if partitioned:
        lines.append("PARTITIONED BY (`timestamp` string)")
    lines += [
        "ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'",
        "STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'",
        "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'",
        f"LOCATION '{location}'",
    ]
    if partitioned:
        lines += [
            "TBLPROPERTIES (",
            "  'projection.enabled'='true',",
            "  'projection.timestamp.format'='yyyy/MM/dd',",
            "  'projection.timestamp.interval'='1',",
            "  'projection.timestamp.interval.unit'='DAYS',",
            f"  'projection.timestamp.range'='{projection_start},NOW',",
            "  'projection.timestamp.type'='date',",
            f"  'storage.location.template'='{location}/${{timestamp}}'",
            ")",
        ]
    # Athena DDL quotes identifiers with backticks, not double quotes.
    return "\n".join(lines).replace('"', "`") + "\n"


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
