"""Athena as its users run it: partitions learned from the table, scans bounded before they are sent, results
reused, deadlines kept, throttling survived and big results streamed, all through moto's server with the real
boto3/pyathena clients."""
from __future__ import annotations

import gzip
import json
import sys
import warnings

import boto3
import pytest
import requests

from trailkit import InvalidInput, QueryFailed, Trail, questions
from trailkit.engines.athena import AthenaConfig, AthenaEngine
from trailkit.errors import Notice
from trailkit.inputs import KeyMatch, Scope, Window

KEY = "AKIA3PARTNERSYNC0001"
KEYM = KeyMatch.parse(KEY)
OUTPUT = "s3://trailkit-results/athena/"
BUCKET = "acme-trail"
ACCOUNTS = ("111122223333", "444455556666")
REGIONS = ("us-east-1", "eu-west-1")
PROJECTION = {  # what `trailkit ddl s3://acme-trail --accounts ... --regions ...` gives the Glue catalog
    "projection.enabled": "true",
    "projection.account.type": "enum", "projection.account.values": ",".join(ACCOUNTS),
    "projection.region.type": "enum", "projection.region.values": ",".join(REGIONS),
    "projection.date.type": "date", "projection.date.format": "yyyy/MM/dd", "projection.date.range": "2013/11/01,NOW",
    "projection.date.interval": "1", "projection.date.interval.unit": "DAYS",
    "storage.location.template": f"s3://{BUCKET}/AWSLogs/${{account}}/CloudTrail/${{region}}/${{date}}",
}


def engine(table="org_trail", **kw) -> AthenaEngine:
    return AthenaEngine(AthenaConfig.resolve(database="security", table=table, output_location=OUTPUT,
                                             region="us-east-1", **kw))


def seed_empty(moto, request, times=1):
    for _ in range(times):
        moto.seed([(c, "varchar") for c in request.contract.names], [])


@pytest.fixture
def org_table(moto):
    moto.table("security", "org_trail", ("account", "region", "date"), PROJECTION, f"s3://{BUCKET}/AWSLogs/")


def test_every_partition_the_table_has_is_bounded(moto, org_table):
    request = questions.narrowed(questions.usage(KEYM, Window.parse("2026-10-24", "2026-10-24")),
                                 Scope(("111122223333",), ("us-east-1", "eu-west-1")))
    seed_empty(moto, request)
    Trail(engine()).ask(request)
    (sent,) = moto.sent()
    assert "\"date\" BETWEEN '2026/10/24' AND '2026/10/25'" in sent
    assert "\"account\" IN ('111122223333')" in sent and "\"region\" IN ('us-east-1', 'eu-west-1')" in sent
    # the events themselves are kept to the scope too, as the local engine keeps them
    assert "recipientaccountid IN ('111122223333')" in sent and "awsregion IN ('us-east-1', 'eu-west-1')" in sent


def test_a_hand_made_table_is_understood_by_its_template_and_names(moto):
    moto.table("security", "by_hand", ("acct", "rgn", "dt"), {
        "projection.enabled": "true", "projection.acct.type": "injected", "projection.rgn.type": "enum",
        "projection.rgn.values": "us-east-1", "projection.dt.type": "date", "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": "2024-01-01,NOW",
        "storage.location.template": f"s3://{BUCKET}/logs/AWSLogs/o-abcdefghij/${{acct}}/CloudTrail/${{rgn}}/${{dt}}"})
    e = engine("by_hand")
    p = e.partitioning
    assert (p.date, p.account, p.region, p.date_format, p.injected) == ("dt", "acct", "rgn", "%Y-%m-%d", ("acct",))
    # an injected account partition must be named: refused before anything is sent
    with pytest.raises(InvalidInput, match="--accounts"):
        Trail(e).usage(KEY, start="2026-10-24", end="2026-10-24")
    assert moto.sent() == []
    request = questions.narrowed(questions.ips(KEYM, Window.parse("2026-10-24", "2026-10-24")), Scope(ACCOUNTS))
    seed_empty(moto, request)
    Trail(e).ask(request)
    (sent,) = moto.sent()
    assert "\"dt\" BETWEEN '2026-10-24' AND '2026-10-25'" in sent and "\"acct\" IN ('111122223333', '444455556666')" in sent


def test_without_glue_the_partitions_come_from_information_schema(moto, monkeypatch):
    """No permission to read Glue: the partition keys are read from Athena's information_schema."""
    from botocore.stub import Stubber

    glue = boto3.client("glue", region_name="us-east-1")
    stub = Stubber(glue)
    stub.add_client_error("get_table", "AccessDeniedException", "not allowed", 400)
    stub.activate()
    e = engine("console_table")
    monkeypatch.setattr(e, "client", lambda service: glue if service == "glue" else boto3.client(service))
    moto.seed([("column_name", "varchar")], [["timestamp"]])
    request = questions.usage(KEYM, Window.parse("2026-10-24", "2026-10-24"))
    seed_empty(moto, request)
    Trail(e).ask(request)
    schema, sent = moto.sent()
    assert "information_schema.columns" in schema and "'console_table'" in schema
    assert "\"timestamp\" BETWEEN '2026/10/24' AND '2026/10/25'" in sent


@pytest.mark.parametrize("ask", [
    lambda t: t.owner(KEY),
    lambda t: t.usage(KEY),
    lambda t: t.sql("SELECT count(*) AS n FROM cloudtrail WHERE eventname = 'ConsoleLogin'"),
], ids=["owner", "usage", "sql"])
def test_no_window_on_a_partitioned_table_is_refused_before_anything_is_sent(moto, org_table, ask):
    with pytest.raises(InvalidInput) as err:
        ask(Trail(engine()))
    assert "--all-time" in str(err.value) and "--start" in str(err.value)
    assert moto.sent() == []


def test_all_time_and_free_sql_bounding_the_partition_are_sent(moto, org_table):
    moto.seed([("n", "bigint")], [["1"]])
    Trail(engine()).sql("SELECT count(*) AS n FROM cloudtrail WHERE \"date\" >= '2026/10/01'")
    seed_empty(moto, questions.owner(KEYM))
    Trail(engine(all_time=True)).owner(KEY)
    free, whole = moto.sent()
    assert "BETWEEN" not in whole and "\"security\".\"org_trail\"" in whole


def put_logs(sizes: dict[str, int]):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    for key, size in sizes.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x" * size)


def test_max_scan_refuses_on_the_estimate_from_the_objects_under_the_partitions(moto, org_table):
    day = "AWSLogs/{}/CloudTrail/{}/2026/10/{}/f{}.json.gz"
    sizes = {day.format(a, r, d, i): 300_000 for a in ACCOUNTS for r in REGIONS for d in ("24", "25") for i in (1, 2)}
    sizes[day.format(ACCOUNTS[0], "us-east-1", "23", 1)] = 50_000_000  # outside the window's days
    put_logs(sizes)
    within = Window.parse("2026-10-24", "2026-10-24")  # delivery days 24 and 25
    expected = sum(v for k, v in sizes.items() if "/2026/10/23/" not in k)  # 16 objects, 4.8 MB
    with pytest.raises(InvalidInput) as err:
        Trail(engine(max_scan=str(expected - 1))).usage(KEY, start=within.start, end=within.end)
    assert "16 objects" in str(err.value) and "--max-scan" in str(err.value)
    assert moto.sent() == []
    # narrowed to one account and region: a quarter of it, allowed
    request = questions.narrowed(questions.usage(KEYM, within), Scope(ACCOUNTS[:1], REGIONS[:1]))
    seed_empty(moto, request)
    Trail(engine(max_scan=str(expected // 4))).ask(request)
    assert len(moto.sent()) == 1


def test_max_scan_without_an_estimate_says_so(moto):
    moto.table("security", "injected", ("account", "date"), {
        "projection.enabled": "true", "projection.account.type": "injected", "projection.date.type": "date",
        "projection.date.format": "yyyy/MM/dd", "projection.date.range": "2020/01/01,NOW",
        "storage.location.template": f"s3://{BUCKET}/AWSLogs/${{account}}/CloudTrail/us-east-1/${{date}}"})
    request = questions.narrowed(questions.usage(KEYM, Window.parse("2026-10-24", "2026-10-24")), Scope(ACCOUNTS))
    seed_empty(moto, request)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trail(engine("injected", max_scan="1GB")).ask(request)
    (note,) = [w for w in caught if issubclass(w.category, Notice)]
    assert "no scan estimate" in str(note.message)  # the bucket cannot be listed: said, and the query watched


def manual_progress(moto):
    """Keep every query RUNNING until it is stopped (moto's state manager)."""
    requests.post(f"{moto.endpoint}/moto-api/state-manager/set-transition", timeout=10,
                  json={"model_name": "athena::execution", "transition": {"progression": "manual", "times": 1000}}
                  ).raise_for_status()


@pytest.fixture
def running(moto):
    manual_progress(moto)
    yield
    requests.post(f"{moto.endpoint}/moto-api/state-manager/unset-transition", timeout=10,
                  json={"model_name": "athena::execution"})


def server_state() -> str:
    athena = boto3.client("athena", region_name="us-east-1")
    (qid,) = athena.list_query_executions()["QueryExecutionIds"]
    return athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]


def test_timeout_stops_the_query_on_the_server(moto, org_table, running):
    e = engine(timeout="1")
    with pytest.raises(QueryFailed) as err:
        Trail(e).usage(KEY, start="2026-10-24", end="2026-10-24")
    assert "--timeout 1 s" in str(err.value) and server_state() == "CANCELLED"
    assert e.last.state == "CANCELLED"


def test_a_running_query_that_reports_more_than_max_scan_is_stopped(moto, org_table, running, monkeypatch):
    from moto.athena.responses import AthenaResponse

    original = AthenaResponse.get_query_execution

    def scanning(self):
        body = json.loads(original(self))
        body["QueryExecution"].setdefault("Statistics", {})["DataScannedInBytes"] = 3 * 1024 ** 3
        return json.dumps(body)

    monkeypatch.setattr(AthenaResponse, "get_query_execution", scanning)
    put_logs({})  # an empty bucket: the estimate (0 bytes) lets the query start
    e = engine(max_scan="2GB")
    with pytest.raises(QueryFailed) as err:
        Trail(e).usage(KEY, start="2026-10-24", end="2026-10-24")
    assert "more than --max-scan 2.0 GB" in str(err.value) and server_state() == "CANCELLED"
    assert e.last.cost_usd == pytest.approx(3 / 1024 * 5)  # a cancelled query is billed what it scanned


@pytest.fixture
def started(monkeypatch):
    """Each StartQueryExecution request as the server received it."""
    from moto.athena.responses import AthenaResponse

    seen = []
    original = AthenaResponse.start_query_execution

    def recording(self):
        seen.append(json.loads(self.body))
        return original(self)

    monkeypatch.setattr(AthenaResponse, "start_query_execution", recording)
    return seen


def test_reuse_is_asked_only_for_windows_that_ended_a_day_ago(moto, org_table, started):
    old = questions.usage(KEYM, Window.parse("2026-10-24", "2026-10-24"))
    recent = questions.usage(KEYM, Window.parse("2h"))
    seed_empty(moto, old, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trail(engine(reuse_minutes="60")).ask(old)
        Trail(engine(reuse_minutes="60")).ask(recent)
        Trail(engine()).ask(old)
    reuse = [s.get("ResultReuseConfiguration") for s in started]
    assert reuse[0] == {"ResultReuseByAgeConfiguration": {"Enabled": True, "MaxAgeInMinutes": 60}}
    assert reuse[1] is None and reuse[2] is None
    assert any("still be arriving" in str(w.message) for w in caught)


def test_throttling_is_retried_and_counted(moto, org_table, monkeypatch):
    from moto.athena.responses import AthenaResponse

    original, calls = AthenaResponse.start_query_execution, []

    def throttled(self):
        calls.append(1)
        if len(calls) <= 2:
            return json.dumps({"__type": "ThrottlingException", "Message": "Rate exceeded"}), {"status": 400}
        return original(self)

    monkeypatch.setattr(AthenaResponse, "start_query_execution", throttled)
    request = questions.usage(KEYM, Window.parse("2026-10-24", "2026-10-24"))
    seed_empty(moto, request)
    trail = Trail(engine())
    trail.ask(request)
    assert len(calls) == 3 and trail.last.retries == 2 and trail.last.state == "SUCCEEDED"
    assert "2 throttled calls retried" in trail.last.summary()


def test_a_big_result_is_printed_row_by_row_without_pandas(moto, org_table, capsys, monkeypatch):
    from trailkit.cli import main

    n = 30_000
    columns = [("sourceipaddress", "varchar"), ("events", "bigint"), ("first_seen", "varchar"),
               ("last_seen", "varchar"), ("apis", "bigint"), ("errors", "bigint"), ("regions", "bigint"),
               ("useragents", "bigint")]
    moto.seed(columns, [[f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", "1", "2026-10-24T02:13:31Z",
                         "2026-10-24T02:13:31Z", "1", "0", "1", "1"] for i in range(n)])
    monkeypatch.setitem(sys.modules, "pandas", None)  # importing pandas now fails
    code = main(["ips", KEY, "--start", "2026-10-24", "--end", "2026-10-24", "--athena", "--database", "security",
                 "--table", "org_trail", "--output", OUTPUT, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == n and json.loads(lines[-1])["sourceipaddress"] == f"10.0.{(n - 1) // 256 % 256}.{(n - 1) % 256}"


def test_a_table_partitioned_by_year_month_and_day_is_bounded_by_all_three(moto):
    """AWS's manually partitioned table (region, year, month, day): the date is the three together."""
    moto.table("security", "manual", ("region", "year", "month", "day"), {}, f"s3://{BUCKET}/AWSLogs/{ACCOUNTS[0]}/CloudTrail/")
    request = questions.narrowed(questions.usage(KEYM, Window.parse("2026-10-31", "2026-10-31")), Scope((), ("us-east-1",)))
    seed_empty(moto, request)
    e = engine("manual")
    assert e.partitioning.date_parts == ("year", "month", "day") and e.partitioning.region == "region"
    Trail(e).ask(request)
    (sent,) = moto.sent()
    assert ("concat(\"year\", '/', lpad(\"month\", 2, '0'), '/', lpad(\"day\", 2, '0')) "
            "BETWEEN '2026/10/31' AND '2026/11/01'") in sent and "\"region\" IN ('us-east-1')" in sent


def test_an_organization_variable_is_not_taken_for_the_account(moto):
    moto.table("security", "org_vars", ("org_id", "account_id", "region", "date"), {
        "projection.enabled": "true", "projection.org_id.type": "enum", "projection.org_id.values": "o-abcdefghij",
        "projection.account_id.type": "injected", "projection.region.type": "enum", "projection.region.values": "us-east-1",
        "projection.date.type": "date", "projection.date.format": "yyyy/MM/dd", "projection.date.range": "2024/01/01,NOW",
        "storage.location.template": f"s3://{BUCKET}/AWSLogs/${{org_id}}/${{account_id}}/CloudTrail/${{region}}/${{date}}"})
    p = engine("org_vars").partitioning
    assert (p.account, p.region, p.date, p.others, p.injected) == ("account_id", "region", "date", ("org_id",), ("account_id",))


@pytest.mark.parametrize("ask", [
    lambda t: t.owner(KEY, end="2026-10-01"),  # an end alone reads every day before it
    lambda t: t.sql("SELECT \"date\", count(*) AS n FROM cloudtrail GROUP BY 1"),
    lambda t: t.sql("SELECT count(*) AS n FROM cloudtrail WHERE \"date\" IS NOT NULL OR \"date\" IS NULL"),
    lambda t: t.sql("SELECT count(*) AS n FROM cloudtrail WHERE \"date\" < '2026/10/01'"),
    lambda t: t.explain(questions.owner(KEYM)),  # --dry-run refuses what the run would refuse
], ids=["end-only", "group-by-date", "or-is-null", "upper-bound-only", "dry-run"])
def test_scans_of_every_day_are_refused_however_they_are_asked(moto, org_table, ask):
    with pytest.raises(InvalidInput, match="--all-time"):
        ask(Trail(engine()))
    assert moto.sent() == []


def test_a_quoted_table_name_is_the_configured_table_too(moto, org_table):
    moto.seed([("n", "bigint")], [["1"]])
    Trail(engine()).sql('SELECT count(*) AS n FROM "cloudtrail" WHERE "date" >= \'2026/10/01\'')
    (sent,) = moto.sent()
    assert 'FROM "security"."org_trail"' in sent and '"cloudtrail"' not in sent


def test_free_sql_is_not_narrowed_silently(moto, org_table, sample):
    for trail in (Trail(engine(), Scope(ACCOUNTS[:1])), Trail.open(logs=sample, accounts=ACCOUNTS[0])):
        with pytest.raises(InvalidInput, match="recipientaccountid"):
            trail.sql("SELECT count(*) AS n FROM cloudtrail")


def test_what_the_table_cannot_hold_is_said(moto, org_table):
    request = questions.narrowed(questions.usage(KEYM, Window.parse("2012-01-01", "2012-01-02")),
                                 Scope(("777788889999",), ("ap-south-1",)))
    seed_empty(moto, request)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trail(engine()).ask(request)
    said = " ".join(str(w.message) for w in caught if issubclass(w.category, Notice))
    assert "before the table's first day (2013-11-01" in said
    assert "777788889999 is not among the table's projected accounts" in said and "ap-south-1 is not among" in said


def test_reuse_is_never_older_than_the_windows_logs(moto, org_table, started):
    from datetime import datetime, timedelta, timezone

    end = datetime.now(timezone.utc) - timedelta(days=1, hours=2)  # its logs settled two hours ago
    request = questions.usage(KEYM, Window(end - timedelta(hours=1), end))
    seed_empty(moto, request)
    Trail(engine(reuse_minutes="10080")).ask(request)
    age = started[0]["ResultReuseConfiguration"]["ResultReuseByAgeConfiguration"]["MaxAgeInMinutes"]
    assert 115 <= age <= 120
