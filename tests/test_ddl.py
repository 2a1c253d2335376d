"""The Athena DDL (``trailkit ddl``): one golden statement per layout, read back with sqlglot and checked against
the layout it claims; every wrong location, account, region, organization or start refused in one line."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlglot
from sqlglot import exp

from trailkit.engines import s3layout
from trailkit.errors import InvalidInput
from trailkit.schema import COLUMN_NAMES, athena_ddl, athena_table_ddl

from .conftest import GOLDEN

ACCOUNTS = ("111122223333", "444455556666")
ORG = "o-a1b2c3d4e5"


@dataclass(frozen=True)
class Layout:
    """A golden DDL, how it is made, and what it must say, written out by hand."""

    make: object
    table: str
    location: str
    template: str
    types: dict  # partition column -> projection type, in PARTITIONED BY order
    values: dict  # enum column -> values
    start: str = "2013/11/01"


LAYOUTS = {
    "single": Layout(
        lambda: athena_ddl("s3://acme-trail/AWSLogs/111122223333/CloudTrail/us-east-1", database="security"),
        "security.cloudtrail", "s3://acme-trail/AWSLogs/111122223333/CloudTrail/us-east-1",
        "s3://acme-trail/AWSLogs/111122223333/CloudTrail/us-east-1/${timestamp}", {"timestamp": "date"}, {}),
    "accounts": Layout(
        lambda: athena_table_ddl("s3://acme-trail/audit/", accounts=",".join(ACCOUNTS), regions="us-east-1,eu-west-1",
                                 start="2023-01-15", database="security", table="trail"),
        "security.trail", "s3://acme-trail/audit/AWSLogs/",
        "s3://acme-trail/audit/AWSLogs/${account}/CloudTrail/${region}/${date}",
        {"account": "enum", "region": "enum", "date": "date"},
        {"account": list(ACCOUNTS), "region": ["us-east-1", "eu-west-1"]}, "2023/01/15"),
    "org": Layout(
        lambda: athena_table_ddl("s3://acme-org-trail", org=ORG, accounts=list(ACCOUNTS), regions=["eu-west-3"],
                                 start="2020/01/01"),
        "default.cloudtrail", f"s3://acme-org-trail/AWSLogs/{ORG}/",
        f"s3://acme-org-trail/AWSLogs/{ORG}/${{account}}/CloudTrail/${{region}}/${{date}}",
        {"account": "enum", "region": "enum", "date": "date"},
        {"account": list(ACCOUNTS), "region": ["eu-west-3"]}, "2020/01/01"),
    "injected": Layout(
        lambda: athena_table_ddl("s3://acme-org-trail/central", org=ORG, injected=True,
                                 regions="us-east-1,eu-west-1,ap-southeast-2", table="org_trail"),
        "default.org_trail", f"s3://acme-org-trail/central/AWSLogs/{ORG}/",
        f"s3://acme-org-trail/central/AWSLogs/{ORG}/${{account}}/CloudTrail/${{region}}/${{date}}",
        {"account": "injected", "region": "enum", "date": "date"},
        {"region": ["us-east-1", "eu-west-1", "ap-southeast-2"]}),
}


class Malformed(Exception):
    """sqlglot could not read the text as one CREATE TABLE statement."""


@dataclass(frozen=True)
class Ddl:
    table: str
    columns: tuple
    partitions: dict  # name -> sqlglot type
    location: str
    properties: dict


def read_ddl(text: str) -> Ddl:
    """The statement as sqlglot's Athena dialect reads it (Hive's grammar for CREATE EXTERNAL TABLE)."""
    try:
        statements = sqlglot.parse(text, read="athena")
    except sqlglot.errors.SqlglotError as e:
        raise Malformed(str(e).splitlines()[0]) from e
    # on syntax it cannot follow, sqlglot gives up quietly with a bare Command: that is malformed too
    if len(statements) != 1 or not isinstance(statements[0], exp.Create):
        raise Malformed(f"not one CREATE statement: {[type(s).__name__ for s in statements]}")
    create = statements[0]
    props = create.args["properties"].expressions
    if not any(isinstance(p, exp.ExternalProperty) for p in props):
        raise Malformed("not an EXTERNAL table")
    by = [p for p in props if isinstance(p, exp.PartitionedByProperty)]
    return Ddl(
        table=f"{create.this.this.db}.{create.this.this.name}",
        columns=tuple(c.name for c in create.this.expressions),
        partitions={c.name: c.args["kind"].this for c in by[0].this.expressions} if by else {},
        location=next(p.this.name for p in props if isinstance(p, exp.LocationProperty)),
        properties={p.this.name: p.args["value"].name for p in props if type(p) is exp.Property},
    )


def check(text: str, layout: Layout) -> None:
    """Every template variable is a partition column and the reverse, each projected as the layout says."""
    ddl = read_ddl(text)
    props = ddl.properties
    assert ddl.table == layout.table
    assert ddl.columns == COLUMN_NAMES
    assert list(ddl.partitions) == list(layout.types)
    assert set(ddl.partitions.values()) == {exp.DataType.Type.TEXT}  # `string`
    assert ddl.location == layout.location
    template = props["storage.location.template"]
    variables = re.findall(r"\$\{([^}]*)\}", template)
    assert variables == list(ddl.partitions), "the template's variables are the partition columns, in order"
    assert template == layout.template  # the fixed parts: bucket, prefix, AWSLogs, [org], CloudTrail
    assert template.startswith(ddl.location.rstrip("/") + "/")
    assert props["projection.enabled"] == "true"
    for column, kind in layout.types.items():
        assert props[f"projection.{column}.type"] == kind, column
        if kind == "enum":
            assert props[f"projection.{column}.values"].split(",") == layout.values[column]
        else:
            assert f"projection.{column}.values" not in props
        if kind == "date":
            assert props[f"projection.{column}.format"] == "yyyy/MM/dd"
            assert (props[f"projection.{column}.interval"], props[f"projection.{column}.interval.unit"]) == ("1", "DAYS")
            assert props[f"projection.{column}.range"] == f"{layout.start},NOW"
    projected = {k.split(".")[1] for k in props if k.startswith("projection.") and k != "projection.enabled"}
    assert projected == set(ddl.partitions), "no projection for a column the table does not have"


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_ddl_matches_golden_and_its_layout(name):
    layout = LAYOUTS[name]
    text = layout.make()
    golden = GOLDEN / f"ddl_{name}.sql"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    check(golden.read_text(), layout)


BREAKS = {
    "no ( after PARTITIONED BY": ("PARTITIONED BY (", "PARTITIONED BY "),
    "column list not closed": (")\nPARTITIONED", "\nPARTITIONED"),
    "comma missing between properties": ("'projection.enabled'='true',", "'projection.enabled'='true'"),
    "struct written with (": ("struct<", "struct("),
    "location unquoted": ("LOCATION '", "LOCATION "),
    "properties not closed": ("'\n)\n", "'\n"),
    "a second statement": ("\n)\n", "\n);\nDROP TABLE x\n"),
    "not external": ("CREATE EXTERNAL TABLE", "CREATE TABLE"),
}


@pytest.mark.parametrize("damage", sorted(BREAKS))
def test_the_reader_refuses_malformed_ddl(damage):
    text = (GOLDEN / "ddl_accounts.sql").read_text()
    old, new = BREAKS[damage]
    assert old in text
    with pytest.raises(Malformed):
        read_ddl(text.replace(old, new, 1))


@pytest.mark.parametrize("old, new", [
    ("${date}'", "${day}'"),                                        # a variable that is no partition
    ("/${region}/${date}'", "/${date}'"),                            # a partition missing from the template
    ("'projection.account.type'='enum'", "'projection.account.type'='injected'"),
    ("'111122223333,444455556666'", "'111122223333'"),
    ("/CloudTrail/", "/Cloudtrail/"),
], ids=["unknown variable", "missing variable", "projection type", "enum values", "fixed part"])
def test_the_check_catches_a_table_that_does_not_match_its_layout(old, new):
    text = (GOLDEN / "ddl_accounts.sql").read_text()
    assert old in text
    with pytest.raises(AssertionError):
        check(text.replace(old, new), LAYOUTS["accounts"])


def test_regions_default_to_every_region_cloudtrail_runs_in():
    known = s3layout.known_regions()
    assert {"us-east-1", "eu-west-1"} <= set(known)
    ddl = read_ddl(athena_table_ddl("s3://acme-trail", accounts=ACCOUNTS[0]))
    assert ddl.properties["projection.region.values"].split(",") == list(known)


@pytest.mark.parametrize("given", ["2023-01-15", "2023/01/15", date(2023, 1, 15), datetime(2023, 1, 15, 23, 59)])
def test_start_is_a_day_in_either_spelling(given):
    for text in (athena_table_ddl("s3://acme-trail", accounts=ACCOUNTS[0], regions="us-east-1", start=given),
                 athena_ddl("s3://acme-trail/AWSLogs/111122223333/CloudTrail/us-east-1", start=given)):
        assert "'2023/01/15,NOW'" in text


def test_start_defaults_to_cloudtrails_launch_so_no_old_log_is_hidden():
    assert "'projection.timestamp.range'='2013/11/01,NOW'" in athena_ddl(
        "s3://acme-trail/AWSLogs/111122223333/CloudTrail/us-east-1")
    today = datetime.now(timezone.utc).date()
    assert f"'{today:%Y/%m/%d},NOW'" in athena_ddl("s3://acme-trail/AWSLogs/111122223333/CloudTrail/us-east-1",
                                                    start=today)


def test_the_one_region_form_keeps_its_old_signature():
    location = "s3://acme-trail/AWSLogs/111122223333/CloudTrail/us-east-1/"
    text = athena_ddl(location, database="sec", table="ct", partitioned=True, projection_start="2020/01/01")
    assert "'projection.timestamp.range'='2020/01/01,NOW'" in text
    flat = read_ddl(athena_ddl(location, partitioned=False))
    assert flat.partitions == {} and flat.properties == {}
    assert flat.location == location  # a folder: the trailing slash keeps "CloudTrail-Digest" out of "CloudTrail"


def test_the_template_names_the_folders_a_fetch_lists():
    layout = s3layout.TrailLayout.parse("s3://acme-org-trail/central", ORG)
    day = layout.day(ACCOUNTS[0], "eu-west-1", date(2023, 1, 2))
    assert layout.template(ACCOUNTS[0], "eu-west-1", "2023/01/02") + "/" == f"s3://acme-org-trail/{day}"
    assert day.startswith(layout.region(ACCOUNTS[0], "eu-west-1")) and layout.region(ACCOUNTS[0], "eu-west-1").endswith("/")
    assert layout.logs() == f"central/AWSLogs/{ORG}/"


def _table(location="s3://acme-trail", **kw):
    return athena_table_ddl(location, **{"accounts": ACCOUNTS[0], "regions": "us-east-1", **kw})


def _single(location="s3://acme-trail/AWSLogs/111122223333/CloudTrail/us-east-1", **kw):
    return athena_ddl(location, **kw)


TOMORROW = (datetime.now(timezone.utc).date() + timedelta(days=1)).isoformat()
BAD = {
    "uppercase bucket": (lambda: _table("s3://Acme-Trail"), "bucket name"),
    "short bucket": (lambda: _table("s3://ab"), "3 to 63"),
    "two dots": (lambda: _table("s3://acme..trail"), "two dots"),
    "IP-like bucket": (lambda: _table("s3://192.168.10.12"), "IP address"),
    "no scheme": (lambda: _table("acme-trail/audit"), "s3://"),
    "space": (lambda: _table("s3://acme-trail/my logs"), "' '"),
    "empty folder": (lambda: _table("s3://acme-trail/audit//more"), "//"),
    "below AWSLogs": (lambda: _table("s3://acme-trail/AWSLogs/111122223333"), "above it (s3://acme-trail)"),
    "at AWSLogs": (lambda: _table("s3://acme-trail/audit/AWSLogs"), "above it (s3://acme-trail/audit)"),
    "a digest folder": (lambda: _table("s3://acme-trail/CloudTrail-Digest"), "digest folder"),
    "11-digit account": (lambda: _table(accounts="11112222333"), "12 digits"),
    "account not digits": (lambda: _table(accounts="111122223333,prod"), "'prod'"),
    "no accounts": (lambda: _table(accounts=()), "--injected"),
    "accounts and injected": (lambda: _table(injected=True), "drop one"),
    "region without number": (lambda: _table(regions="us-east"), "region name"),
    "uppercase region": (lambda: _table(regions="US-EAST-1"), "region name"),
    "org id uppercase": (lambda: _table(org="o-A1B2C3D4E5"), "organization id"),
    "org id short": (lambda: _table(org="o-a1b2"), "organization id"),
    "org id without o-": (lambda: _table(org="a1b2c3d4e5"), "organization id"),
    "start tomorrow": (lambda: _table(start=TOMORROW), "future"),
    "start far ahead": (lambda: _single(start="2999-01-01"), "future"),
    "start before CloudTrail": (lambda: _table(start="2013-10-31"), "before CloudTrail"),
    "start no such day": (lambda: _table(start="2023-02-30"), "not a date"),
    "start a word": (lambda: _single(start="yesterday"), "not a date"),
    "start mixed separators": (lambda: _table(start="2023/01-15"), "not a date"),
    "bad database": (lambda: _table(database="my-db"), "database"),
    "region folder too high": (lambda: _single("s3://acme-trail/AWSLogs/111122223333/CloudTrail"), "add /CloudTrail/REGION"),
    "region folder too low": (lambda: _single("s3://acme-trail/AWSLogs/111122223333/CloudTrail/us-east-1/2026"),
                              "date folders"),
    "region folder without AWSLogs": (lambda: _single("s3://acme-trail/audit"), "no AWSLogs level"),
    "region folder bad region": (lambda: _single("s3://acme-trail/AWSLogs/111122223333/CloudTrail/useast1"),
                                 "AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION"),
    "region folder bad bucket": (lambda: _single("s3://acme_trail/AWSLogs/111122223333/CloudTrail/us-east-1"),
                                 "bucket name"),
    "region folder quote": (lambda: _single("s3://x'; DROP"), "bucket name"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_refused_in_one_line_saying_what_to_fix(case):
    make, hint = BAD[case]
    with pytest.raises(InvalidInput) as caught:
        make()
    message = str(caught.value)
    assert "\n" not in message
    assert hint in message


@pytest.mark.parametrize("prefix", ["cloudtrail", "CloudTrail", "awslogs", "logs/CloudTrail"])
def test_a_prefix_named_like_a_cloudtrail_folder_is_a_prefix(prefix):
    text = _table(f"s3://acme-trail/{prefix}")
    assert f"s3://acme-trail/{prefix}/AWSLogs/${{account}}/CloudTrail/${{region}}/${{date}}" in text
