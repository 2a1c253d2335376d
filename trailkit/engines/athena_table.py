"""What an Athena table over CloudTrail looks like, learned from the table itself, and what a question on it
would scan.

A table made by ``trailkit ddl``, by the console, or by hand names its partitions as it likes (``timestamp``,
``date``, ``dt``; ``account``, ``region``, ...). ``Partitioning.learn`` reads the table's definition from the Glue
Data Catalog (partition keys, projection properties, location template) and tells which partition is the
delivery date (and its format), which the account and which the region, so every question can bound each one.
When Glue cannot be read (permissions), the partition keys come from Athena's ``information_schema`` and are
recognised by name. ``Partitioning.estimate`` sums the sizes of the S3 objects under the partitions a question
would read: Athena bills what it scans, which for CloudTrail's gzipped JSON is the objects' size.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from ..errors import InvalidInput, TrailkitError, aws_error

# Java date patterns of partition projection -> strftime
_JAVA_TO_STRFTIME = (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"))
_DATE_NAMES = ("timestamp", "date", "dt", "day", "delivery_date", "partition_date", "eventdate")
_DATE_PARTS = ("year", "month", "day")  # AWS's manually partitioned table: region, year, month, day
_ACCOUNT_NAMES = ("account", "accountid", "account_id", "awsaccountid")
_REGION_NAMES = ("region", "awsregion", "aws_region")
# delivered date folders: the formats a hand-made partition's values take
_VALUE_FORMATS = (("%Y/%m/%d", re.compile(r"^\d{4}/\d{2}/\d{2}$")), ("%Y-%m-%d", re.compile(r"^\d{4}-\d{2}-\d{2}$")),
                  ("%Y%m%d", re.compile(r"^\d{8}$")))


def strftime_of(java: str) -> str:
    out = java
    for a, b in _JAVA_TO_STRFTIME:
        out = out.replace(a, b)
    return out


@dataclass(frozen=True)
class Partitioning:
    """The table's partitions as trailkit uses them.

    ``date``/``account``/``region`` name the partition columns with those roles (None: the table has none);
    ``others`` are partition columns trailkit cannot bound (said, never guessed). ``injected`` lists columns
    whose projection is ``injected``: Athena refuses a query that does not fix them with equality or IN.
    ``values`` holds enum projections' values; ``template`` the ``storage.location.template`` (or the table's
    location with no template); ``start`` the first day of a projected date range.
    """

    date: str | None = None
    date_format: str = "%Y/%m/%d"
    date_parts: tuple[str, ...] = ()  # (year, month, day) partitions standing together for the date
    account: str | None = None
    region: str | None = None
    others: tuple[str, ...] = ()
    injected: tuple[str, ...] = ()
    values: dict = field(default_factory=dict)
    template: str | None = None
    projected: bool = False
    start: date | None = None
    source: str = "none"

    @property
    def partitioned(self) -> bool:
        return bool(self.dated or self.account or self.region or self.others)

    @property
    def dated(self) -> bool:
        """Whether a partition (or year, month and day together) holds the delivery date."""
        return bool(self.date or self.date_parts)

    @property
    def date_columns(self) -> tuple[str, ...]:
        return (self.date,) if self.date else self.date_parts

    def date_sql(self, quote) -> str:
        """The date partition as ``yyyy/MM/dd``-comparable SQL (``quote`` quotes a column name)."""
        if self.date:
            return quote(self.date)
        year, month, day = (quote(c) for c in self.date_parts)
        return f"concat({year}, '/', lpad({month}, 2, '0'), '/', lpad({day}, 2, '0'))"

    @classmethod
    def given(cls, column: str, fmt: str = "%Y/%m/%d") -> "Partitioning":
        """The date partition named by the user (``--partition-column``), its values in ``fmt`` (the AWS
        table's ``yyyy/MM/dd`` unless the configuration says otherwise)."""
        return cls(date=column, date_format=fmt, source="setting")

    @classmethod
    def of_glue(cls, table: dict) -> "Partitioning":
        """From a Glue ``GetTable`` answer's ``Table``."""
        params = table.get("Parameters") or {}
        keys = [k["Name"].lower() for k in table.get("PartitionKeys") or []]
        projected = params.get("projection.enabled", "").lower() == "true"
        template = params.get("storage.location.template") or (table.get("StorageDescriptor") or {}).get("Location")
        roles: dict[str, str] = dict(_template_roles(template, keys))
        injected, values, fmt, start = [], {}, "%Y/%m/%d", None
        for key in keys:
            kind = params.get(f"projection.{key}.type", "").lower() if projected else ""
            if kind == "date":
                roles.setdefault("date", key)
                fmt = strftime_of(params.get(f"projection.{key}.format", "yyyy/MM/dd"))
                start = _range_start(params.get(f"projection.{key}.range", ""), fmt)
            elif kind == "injected":
                injected.append(key)
            elif kind == "enum":
                values[key] = tuple(v.strip() for v in params.get(f"projection.{key}.values", "").split(",") if v.strip())
        return cls._with_roles(keys, roles, date_format=fmt, injected=tuple(injected), values=values,
                               template=template, projected=projected, start=start, source="glue")

    @classmethod
    def _with_roles(cls, keys: list[str], roles: dict, **more) -> "Partitioning":
        """Roles completed by name (``timestamp``, ``account``, ``region``; ``year``/``month``/``day`` together)."""
        parts = ()
        if "date" not in roles and all(p in keys for p in _DATE_PARTS):
            parts = _DATE_PARTS
        for key in keys:
            role = _role_by_name(key)
            if role and role not in roles and key not in roles.values() and key not in parts and \
                    not (role == "date" and parts):
                roles[role] = key
        others = tuple(k for k in keys if k not in roles.values() and k not in parts)
        return cls(date=roles.get("date"), date_parts=parts, account=roles.get("account"),
                   region=roles.get("region"), others=others, **more)

    @classmethod
    def of_names(cls, keys: list[str]) -> "Partitioning":
        """From partition column names alone (``information_schema``): roles by name, dates as ``yyyy/MM/dd``."""
        return cls._with_roles([k.lower() for k in keys], {}, source="information_schema")

    def with_value_format(self, sample: str | None) -> "Partitioning":
        """The date format read off one partition value, for tables whose partitions are not projected."""
        from dataclasses import replace

        for fmt, pattern in _VALUE_FORMATS:
            if sample and pattern.match(sample):
                return replace(self, date_format=fmt)
        return self

    def describe(self) -> str:
        if not self.partitioned:
            return "not partitioned"
        roles = [f"{role} {col}" for role, col in (("date", self.date or "/".join(self.date_parts)),
                                                  ("account", self.account), ("region", self.region)) if col]
        roles += [f"{c} (not bounded by trailkit)" for c in self.others]
        return "partitioned by " + ", ".join(roles)

    # -- what a question would read

    def prefixes(self, first: date | None, last: date | None, accounts=(), regions=()) -> list[str] | str:
        """The S3 prefixes of the partitions a question reads, or why they cannot be known (a str)."""
        if not self.template or not self.template.startswith("s3://"):
            return "the table's location is not known"
        names = re.findall(r"\$\{([^}]+)\}", self.template)
        choices: dict[str, list[str]] = {}
        for name in names:
            key = name.lower()
            if key == self.date:
                continue
            given = accounts if key == self.account else regions if key == self.region else ()
            options = list(given) or list(self.values.get(key, ()))
            if not options:
                return (f"partition {key} is injected: give its values (--accounts) to estimate"
                        if key in self.injected else f"the values of partition {key} are not known")
            choices[key] = options
        days: list[str | None] = [None]
        if self.date and f"${{{self.date}}}" in self.template.lower() and first is not None and last is not None:
            if last < first:
                return []
            days = [(first + timedelta(d)).strftime(self.date_format) for d in range((last - first).days + 1)]
        out = []
        for day, combo in itertools.product(days, itertools.product(*choices.values())):
            text = self.template
            for key, value in zip(choices, combo):
                text = re.sub(r"\$\{" + re.escape(key) + r"\}", value, text, flags=re.I)
            if self.date and day is not None:
                text = re.sub(r"\$\{" + re.escape(self.date) + r"\}", day, text, flags=re.I)
            text = text.split("${", 1)[0]  # an unbounded date: everything under what comes before it
            out.append(text.rstrip("/") + "/")
        return sorted(set(out))

    def estimate(self, s3, first: date | None, last: date | None, accounts=(), regions=()) -> tuple[int | None, str]:
        """(bytes, how) the partitions would scan, from the S3 objects' sizes; (None, why) when it cannot be known."""
        prefixes = self.prefixes(first, last, accounts, regions)
        if isinstance(prefixes, str):
            return None, prefixes
        from concurrent.futures import ThreadPoolExecutor

        def listed(url: str) -> tuple[int, int]:
            bucket, _, prefix = url[5:].partition("/")
            size = count = 0
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", ()):
                    size, count = size + obj["Size"], count + 1
            return size, count

        try:  # one listing per partition folder, many at once: S3 answers each in tens of milliseconds
            with ThreadPoolExecutor(16, thread_name_prefix="trailkit-estimate") as pool:
                sizes = list(pool.map(listed, prefixes))
        except Exception as e:  # botocore's ClientError, NoCredentialsError, EndpointConnectionError
            return None, f"the S3 objects could not be listed ({_reason(e)})"
        return sum(s for s, _ in sizes), f"{sum(c for _, c in sizes)} objects under {len(prefixes)} S3 prefixes"


def _range_start(text: str, fmt: str) -> date | None:
    from datetime import datetime

    first = text.split(",")[0].strip()
    try:
        return datetime.strptime(first, fmt).date()
    except ValueError:
        return None


def _template_roles(template: str | None, keys: list[str]) -> dict[str, str]:
    """Roles of the ``${...}`` variables by where they stand in CloudTrail's layout,
    ``AWSLogs/[org/]ACCOUNT/CloudTrail/REGION/DATE``: the one before ``CloudTrail`` is the account (an
    organization's variable before it is not), the one after it the region, the one after that the date."""
    if not template:
        return {}
    parts = template.split("/")
    names = [p[2:-1].lower() if p.startswith("${") and p.endswith("}") else None for p in parts]
    marks = [i for i, p in enumerate(parts) if p.lower() == "cloudtrail"]
    if not marks:
        return {}
    i, roles = marks[-1], {}
    for role, at in (("account", i - 1), ("region", i + 1), ("date", i + 2)):
        if 0 <= at < len(parts) and names[at] in keys and (role != "date" or at == len(parts) - 1):
            roles[role] = names[at]
    return roles


def _role_by_name(key: str) -> str | None:
    if key in _DATE_NAMES:
        return "date"
    if key in _ACCOUNT_NAMES:
        return "account"
    if key in _REGION_NAMES:
        return "region"
    return None


def _reason(e: Exception) -> str:
    code = aws_error(e).get("Code")
    return code or (str(e).splitlines()[0] if str(e) else type(e).__name__)


def learn(glue, athena_query, database: str, table: str) -> Partitioning:
    """The table's partitioning, from Glue (``glue`` a boto3 client), else from ``information_schema`` through
    ``athena_query(sql, params) -> rows``. A table Glue does not have is an error naming it."""
    try:
        answer = glue.get_table(DatabaseName=database, Name=table)["Table"]
    except Exception as e:
        code = aws_error(e).get("Code")
        if code == "EntityNotFoundException":
            raise InvalidInput(f"table {database}.{table} is not in the Glue Data Catalog of this account and region; "
                               "create it (trailkit ddl prints the statement) or give --database/--table") from None
        if code not in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
            raise TrailkitError(f"the definition of table {database}.{table} could not be read from Glue "
                                f"({_reason(e)}); give --partition-column to skip reading it") from None
        rows = athena_query("SELECT column_name FROM information_schema.columns WHERE table_schema = %(db)s "
                            "AND table_name = %(t)s AND extra_info = 'partition key'", {"db": database, "t": table})
        return Partitioning.of_names([r[0] for r in rows])
    found = Partitioning.of_glue(answer)
    if found.date and not found.projected:
        try:
            parts = glue.get_partitions(DatabaseName=database, TableName=table, MaxResults=1).get("Partitions") or []
        except Exception:
            parts = []
        if parts:
            keys = [k["Name"].lower() for k in answer.get("PartitionKeys") or []]
            found = found.with_value_format(parts[0]["Values"][keys.index(found.date)])
    return found
