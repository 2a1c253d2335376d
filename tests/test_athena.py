"""The Athena engine over the real protocol: pyathena → HTTP → moto's server on 127.0.0.1."""
from __future__ import annotations

import os
import signal
import threading

import pandas as pd
import pytest

from trailkit import QueryFailed, Trail
from trailkit.engines.athena import AthenaConfig, AthenaEngine
from trailkit import questions
from trailkit.inputs import KeyMatch, Window

from .conftest import GOLDEN

KEY = "AKIA3PARTNERSYNC0001"
OUTPUT = "s3://trailkit-results/athena/"


@pytest.fixture(autouse=True)
def flat_table(moto):
    """The console's table: not partitioned."""
    moto.table("security", "cloudtrail_logs")


def athena(**kw) -> Trail:
    config = AthenaConfig.resolve(database="security", table="cloudtrail_logs", output_location=OUTPUT,
                                  region="us-east-1", **kw)
    return Trail(AthenaEngine(config))


def seed_empty(moto, request, times: int = 1):
    """Athena writes a result file even for zero rows; moto only does when a result is queued."""
    for _ in range(times):
        moto.seed([(c, "varchar") for c in request.contract.names] or [("n", "bigint")], [])


KEYM = KeyMatch.parse(KEY)
REQUESTS = {
    "usage": lambda: questions.usage(KEYM, Window.parse("2026-10-24T00:00:00Z", "2026-10-25T00:00:00Z"), 100),
    "window": lambda: questions.window(Window.parse("2026-10-24T02:00:00Z", "2026-10-24T03:00:00Z")),
    "ips": lambda: questions.ips(KEYM, Window.parse("2026-10-01", "2026-10-28")),
    "owner": lambda: questions.owner(KEYM, Window.parse("2026-09-01", "2026-10-28")),
    "minted": lambda: questions.minted(KEYM, Window.parse("2026-10-20", "2026-10-27")),
}


@pytest.mark.parametrize("question", sorted(REQUESTS))
@pytest.mark.parametrize("partitioned", [False, True], ids=["flat", "partitioned"])
def test_sql_sent_matches_golden(moto, question, partitioned):
    trail = athena(partition_column="timestamp" if partitioned else None)
    seed_empty(moto, REQUESTS[question]())
    trail.ask(REQUESTS[question]())
    (sent,) = moto.sent()
    golden = GOLDEN / f"athena_{question}{'_partitioned' if partitioned else ''}.sql"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(sent)
    assert sent == golden.read_text()
    # what --dry-run prints is what is sent
    assert trail.explain(REQUESTS[question]()).rstrip().rstrip(";") == sent.rstrip()


def test_partition_predicates_only_on_partitioned_tables(moto):
    request = questions.usage(KEYM, Window.parse("2026-10-24", "2026-10-24"))
    seed_empty(moto, request, 3)
    athena(partition_column="timestamp").ask(request)
    athena().ask(request)
    partitioned, flat = moto.sent()
    assert "\"timestamp\" BETWEEN '2026/10/24' AND '2026/10/25'" in partitioned
    assert "timestamp\" BETWEEN" not in flat
    # no window, with --all-time: a partitioned table is scanned whole, as asked
    athena(partition_column="timestamp", all_time=True).ask(questions.usage(KEYM))
    assert "BETWEEN" not in moto.sent()[-1]


def test_dtypes_from_seeded_results_match_the_local_engine(moto, sample):
    """Engine parity: the rows Athena would return for the same question give an equal frame."""
    with Trail.local(sample) as local:
        want = local.ips(KEY)
    types = {"events": "bigint", "apis": "bigint", "errors": "bigint", "regions": "bigint", "useragents": "bigint"}
    columns = [(c, types.get(c, "varchar")) for c in want.columns]
    rows = [[None if pd.isna(v) else (v.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(v, pd.Timestamp) else v)
             for v in row] for row in want.itertuples(index=False)]
    moto.seed(columns, rows)
    got = athena().ips(KEY)
    pd.testing.assert_frame_equal(got, want)


def test_usage_parity_with_nulls_and_json_text(moto, sample):
    with Trail.local(sample) as local:
        want = local.usage(KEY, start="2026-10-24", end="2026-10-24")
    want = want.drop(columns="requestparameters")  # moto cannot carry JSON text (it does not escape quotes)
    rows = [[None if pd.isna(v) else (v.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(v, pd.Timestamp) else v)
             for v in row] for row in want.itertuples(index=False)]
    moto.seed([(c, "varchar") for c in want.columns], rows)
    got = athena().usage(KEY, start="2026-10-24", end="2026-10-24").drop(columns="requestparameters")
    pd.testing.assert_frame_equal(got, want)


def test_query_id_scanned_and_cost_are_recorded(moto):
    trail = athena()
    seed_empty(moto, questions.ips(KEYM))
    trail.ips(KEY)
    stats = trail.last
    assert stats.query_id and stats.state == "SUCCEEDED"
    assert stats.bytes_scanned == 0
    assert stats.cost_usd == pytest.approx(10 / 1024 ** 2 * 5)  # the 10 MB minimum
    assert stats.query_id in stats.summary()


def test_cost_estimate():
    from trailkit.engines.base import athena_cost_usd

    assert athena_cost_usd(1024 ** 4) == pytest.approx(5.0)
    assert athena_cost_usd(1) == athena_cost_usd(10 * 1024 ** 2)
    assert athena_cost_usd(10 * 1024 ** 2 + 1) == pytest.approx(11 / 1024 ** 2 * 5)


def fail_queries(monkeypatch, state="FAILED", reason="HIVE_BAD_DATA: Error parsing field value", scanned=None):
    """moto never fails a query: its answer is made to say ``state`` with ``reason`` (and bytes scanned)."""
    import json

    from moto.athena.responses import AthenaResponse

    original = AthenaResponse.get_query_execution

    def failing(self):
        body = json.loads(original(self))
        if "information_schema" not in body["QueryExecution"]["Query"]:
            body["QueryExecution"]["Status"]["State"] = state
            body["QueryExecution"]["Status"]["StateChangeReason"] = reason
            if scanned is not None:
                body["QueryExecution"].setdefault("Statistics", {})["DataScannedInBytes"] = scanned
        return json.dumps(body)

    monkeypatch.setattr(AthenaResponse, "get_query_execution", failing)


def test_failed_query_carries_reason_and_id_and_costs_nothing(moto, monkeypatch):
    fail_queries(monkeypatch, scanned=5 * 1024 ** 3)
    trail = athena()
    with pytest.raises(QueryFailed) as err:
        trail.ips(KEY)
    e = err.value
    assert "HIVE_BAD_DATA" in str(e) and e.query_id and e.query_id in str(e) and e.state == "FAILED"
    assert '"security"."cloudtrail_logs"' in e.sql
    # Athena does not bill a failed query, whatever it scanned
    assert trail.last.state == "FAILED" and trail.last.bytes_scanned == 5 * 1024 ** 3 and trail.last.cost_usd == 0


def test_cancelled_query_costs_what_it_scanned(moto, monkeypatch):
    fail_queries(monkeypatch, state="CANCELLED", reason="Query cancelled by user", scanned=3 * 1024 ** 3)
    trail = athena()
    with pytest.raises(QueryFailed):
        trail.ips(KEY)
    assert trail.last.state == "CANCELLED" and trail.last.cost_usd == pytest.approx(3 / 1024 * 5)


def test_workgroup_cutoff_is_named_when_athena_stops_a_query(moto, monkeypatch):
    import boto3

    boto3.client("athena", region_name="us-east-1").create_work_group(
        Name="capped", Configuration={"BytesScannedCutoffPerQuery": 10 * 1024 ** 3,
                                      "ResultConfiguration": {"OutputLocation": OUTPUT}})
    fail_queries(monkeypatch, state="CANCELLED", scanned=10 * 1024 ** 3,
                 reason="Query cancelled! : Bytes scanned limit was exceeded")
    with pytest.raises(QueryFailed) as err:
        athena(workgroup="capped").ips(KEY)
    message = str(err.value)
    assert "per-query limit of 10.0 GB" in message and "workgroup capped" in message


def test_a_table_that_does_not_exist_is_named_before_anything_is_sent(moto):
    from trailkit import InvalidInput

    trail = Trail(AthenaEngine(AthenaConfig.resolve(database="security", table="no_such_table",
                                                    output_location=OUTPUT, region="us-east-1")))
    with pytest.raises(InvalidInput, match="security.no_such_table is not in the Glue Data Catalog"):
        trail.ips(KEY)
    assert moto.sent() == []


def test_ctrl_c_cancels_the_running_query(moto):
    """A query kept RUNNING by moto's state manager; SIGINT must stop it on the server."""
    import boto3
    import requests

    requests.post(f"{moto.endpoint}/moto-api/state-manager/set-transition", timeout=10,
                  json={"model_name": "athena::execution", "transition": {"progression": "manual", "times": 1000}}
                  ).raise_for_status()
    try:
        trail = athena()
        timer = threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            trail.ips(KEY)
        timer.cancel()
        athena_client = boto3.client("athena", region_name="us-east-1")
        (qid,) = athena_client.list_query_executions()["QueryExecutionIds"]
        state = athena_client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
        assert state == "CANCELLED"
    finally:
        requests.post(f"{moto.endpoint}/moto-api/state-manager/unset-transition", timeout=10,
                      json={"model_name": "athena::execution"})


def test_config_from_environment(moto, monkeypatch):
    monkeypatch.setenv("TRAILKIT_DATABASE", "forensics")
    monkeypatch.setenv("TRAILKIT_TABLE", "trail_2026")
    monkeypatch.setenv("TRAILKIT_OUTPUT", OUTPUT)
    monkeypatch.setenv("TRAILKIT_PARTITION_COLUMN", "timestamp")
    config = AthenaConfig.resolve()
    assert (config.database, config.table, config.region, config.partition_column) == \
        ("forensics", "trail_2026", "us-east-1", "timestamp")
    assert AthenaConfig.resolve(database="explicit").database == "explicit"


@pytest.mark.parametrize("bad", [{"database": "x; drop"}, {"table": 'a"b'}, {"partition_column": "t s"},
                                 {"output_location": "http://x"}])
def test_bad_identifiers_rejected(moto, bad):
    from trailkit import InvalidInput

    with pytest.raises(InvalidInput):
        AthenaConfig.resolve(**bad)


def test_injection_values_are_escaped_by_pyathena(moto):
    trail = athena()
    moto.seed([("n", "bigint")], [["0"]])
    evil = "x' OR '1'='1"
    trail.sql("SELECT count(*) AS n FROM cloudtrail WHERE eventname = :e AND eventsource LIKE '%s3%'", {"e": evil})
    (sent,) = moto.sent()
    assert "eventname = 'x'' OR ''1''=''1'" in sent
    assert "LIKE '%s3%'" in sent and '"security"."cloudtrail_logs"' in sent
