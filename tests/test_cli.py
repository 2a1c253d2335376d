"""The CLI contract: commands, options, column names, formats, exit codes."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from trailkit.cli import main

KEY = "AKIA3PARTNERSYNC0001"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ips_as_a_whole_process_on_real_logs(invictus):
    """As a user runs it: a new process, the real public logs, CSV out."""
    proc = subprocess.run([sys.executable, "-m", "trailkit", "ips", "AKIATFQR7NSC8Q4X20BJ", "--logs", str(invictus),
                           "--format", "csv"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert len(rows) == 1
    row = rows[0]
    assert (row["sourceipaddress"], row["events"], row["first_seen"], row["last_seen"]) == \
        ("192.168.10.20", "2104", "2023-07-10T11:54:33Z", "2023-07-10T12:29:09Z")


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_usage_formats(capsys, sample, fmt):
    code, out, err = run(capsys, "usage", KEY, "--logs", str(sample), "--limit", "3", "--format", fmt)
    assert code == 0 and err == ""
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert len(rows) == 3
        for col in ("eventtime", "eventsource", "eventname", "awsregion", "sourceipaddress", "useragent",
                    "errorcode", "accesskeyid", "eventid"):
            assert col in rows[0]
        assert rows[0]["eventtime"].endswith("Z") and len(rows[0]["eventtime"]) == 20
    elif fmt == "json":
        rows = [json.loads(line) for line in out.splitlines()]
        assert len(rows) == 3 and rows[0]["accesskeyid"] == KEY
        assert rows[0]["eventtime"] >= rows[1]["eventtime"] >= rows[2]["eventtime"]
    else:
        assert "eventtime" in out and KEY in out and "(3 rows)" in out


def test_window_and_ips_and_sql(capsys, sample):
    code, out, _ = run(capsys, "window", "--start", "2026-10-24T02:00:00Z", "--end", "2026-10-24T03:00:00Z",
                       "--logs", str(sample), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 16 and {r["sourceipaddress"] for r in rows} == {"198.51.100.77"}
    code, out, _ = run(capsys, "window", "--start", "2026-10-24T02:00:00Z", "--end", "2026-10-24T03:00:00Z",
                       "--key", "ASIA3OPSADMINTMP0001", "--logs", str(sample), "--format", "json")
    assert code == 0 and len(out.splitlines()) == 5
    code, out, _ = run(capsys, "ips", KEY, "--logs", str(sample), "--format", "json", "--allow", "203.0.113.0/24")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and {r["sourceipaddress"]: r["category"] for r in rows}["198.51.100.77"] == "unexpected"
    assert set(rows[0]) >= {"sourceipaddress", "events", "first_seen", "last_seen"}
    code, out, _ = run(capsys, "sql", "SELECT count(*) AS n FROM cloudtrail WHERE sourceipaddress = :ip",
                       "--param", "ip=198.51.100.77", "--logs", str(sample), "--format", "csv")
    assert code == 0 and out.splitlines() == ["n", "16"]


def test_owner_table_shows_the_arn(capsys, sample):
    code, out, _ = run(capsys, "owner", KEY, "--logs", str(sample))
    assert code == 0 and "arn:aws:iam::111122223333:user/partner-sync" in out and "(1 rows)" in out


def test_owner_and_minted(capsys, sample):
    code, out, _ = run(capsys, "owner", KEY, "--logs", str(sample), "--format", "json")
    assert code == 0 and json.loads(out.splitlines()[0])["principalarn"].endswith(":user/partner-sync")
    code, out, _ = run(capsys, "minted", KEY, "--logs", str(sample), "--format", "csv")
    assert code == 0 and "ASIA3OPSADMINTMP0001" in out


def test_zero_rows_is_success(capsys, sample):
    code, out, err = run(capsys, "ips", "AKIAAAAAAAAAAAAAAAAA", "--logs", str(sample), "--format", "csv")
    assert code == 0 and out.splitlines() == ["sourceipaddress,events,first_seen,last_seen,apis,errors,regions,useragents"]
    code, out, err = run(capsys, "ips", "AKIAAAAAAAAAAAAAAAAA", "--logs", str(sample))
    assert code == 0 and "no rows" in out


@pytest.mark.parametrize("argv, needle", [
    (["usage", "AKIA123"], "not an access key id"),
    (["usage", KEY, "--start", "yesterday-ish"], "not a time"),
    (["usage", KEY, "--start", "2026-10-25", "--end", "2026-10-24"], "is not before end"),
    (["usage", KEY, "--limit", "0"], "positive"),
    (["window", "--start", "2026-10-24", "--end", "2026-10-25", "--key", "nope'--"], "not an access key id"),
    (["ips", KEY, "--allow", "300.1.1.0/24"], "CIDR"),
    (["sql", "SELECT :x FROM cloudtrail"], "no value for placeholder"),
    (["sql", "SELECT 1", "--param", "novalue"], "NAME=VALUE"),
    (["usage", KEY, "--database", "x"], "without --athena"),
])
def test_bad_input_exits_2_with_one_line(capsys, sample, argv, needle):
    code, out, err = run(capsys, *argv, "--logs", str(sample))
    assert code == 2 and out == ""
    assert needle in err and len(err.strip().splitlines()) == 1


def test_the_allowlist_is_checked_before_any_folder_is_read(capsys, tmp_path):
    code, out, err = run(capsys, "ips", KEY, "--allow", "203.0.113.0/24,nonsense", "--logs", str(tmp_path / "missing"))
    assert code == 2 and out == "" and "'nonsense' is not an IP address or CIDR block" in err


def test_missing_and_empty_folder_exit_2(capsys, tmp_path):
    code, _, err = run(capsys, "ips", KEY, "--logs", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "ips", KEY, "--logs", str(tmp_path))
    assert code == 2 and "no CloudTrail files" in err


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["window", "--start", "2026-10-24"])
    assert e.value.code == 2


def test_failure_exits_1(capsys, sample):
    code, out, err = run(capsys, "sql", "SELECT no_such_column FROM cloudtrail", "--logs", str(sample))
    assert code == 1 and "local query failed" in err and len(err.strip().splitlines()) == 1


def test_skipped_file_warns_on_stderr(capsys, logs_copy):
    bad = logs_copy / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "2026" / "10" / "05" / "x.json.gz"
    bad.write_bytes(b"garbage")
    code, out, err = run(capsys, "ips", KEY, "--logs", str(logs_copy), "--format", "csv")
    assert code == 0 and "warning: skipped unreadable file" in err and "x.json.gz" in err
    assert "203.0.113.10" in out


def test_dry_run_local_prints_sql_and_runs_nothing(capsys, sample):
    code, out, err = run(capsys, "usage", KEY, "--start", "2026-10-24", "--logs", str(sample), "--dry-run")
    assert code == 0 and "FROM cloudtrail" in out and f"'{KEY}'" in out and "2026-10-24T00:00:00.000Z" in out
    assert "rows" not in out


def test_dry_run_athena_is_ready_to_paste(capsys, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    code, out, err = run(capsys, "ips", KEY, "--start", "2026-10-24", "--end", "2026-10-24", "--athena",
                         "--database", "security", "--table", "trail", "--partition-column", "timestamp", "--dry-run")
    assert code == 0, err
    assert 'FROM "security"."trail"' in out and "useridentity.accesskeyid = 'AKIA3PARTNERSYNC0001'" in out
    assert "\"timestamp\" BETWEEN '2026/10/24' AND '2026/10/25'" in out and "%(" not in out and out.rstrip().endswith(";")


def test_ddl(capsys):
    code, out, _ = run(capsys, "ddl", "s3://acme-trail/AWSLogs/111122223333/CloudTrail/us-east-1", "--table", "ct")
    assert code == 0 and out.startswith("CREATE EXTERNAL TABLE `default`.`ct`")
    assert "'projection.timestamp.format'='yyyy/MM/dd'" in out and "useridentity struct<type:string" in out
    code, _, err = run(capsys, "ddl", "s3://x'; DROP")
    assert code == 2 and "not a bucket name" in err
    # without partitions: any level at or above a region folder, as a folder (not the digests beside it)
    code, out, _ = run(capsys, "ddl", "s3://acme-trail/AWSLogs/111122223333/CloudTrail", "--not-partitioned")
    assert code == 0 and "LOCATION 's3://acme-trail/AWSLogs/111122223333/CloudTrail/'" in out and "PARTITIONED" not in out
    for bad in ("s3://acme-trail/AWSLogs/111122223333/CloudTrail-Digest/", "s3://acme-trail/AWSLogs/111122223333/CloudTrail/us-east-1/2026"):
        code, _, err = run(capsys, "ddl", bad, "--not-partitioned")
        assert code == 2 and len(err.strip().splitlines()) == 1
    # many accounts and regions in one table
    code, out, _ = run(capsys, "ddl", "s3://acme-trail", "--accounts", "111122223333,444455556666", "--regions",
                       "us-east-1,eu-west-1", "--start", "2024-01-01")
    assert code == 0 and "PARTITIONED BY (`account` string, `region` string, `date` string)" in out
    assert "'projection.date.range'='2024/01/01,NOW'" in out
    code, _, err = run(capsys, "ddl", "s3://acme-trail", "--accounts", "111122223333", "--not-partitioned")
    assert code == 2 and "--not-partitioned" in err


def test_athena_through_cli_reports_query_id(capsys, moto):
    moto.table("default", "cloudtrail")
    moto.seed([("sourceipaddress", "varchar"), ("events", "bigint"), ("first_seen", "varchar"),
               ("last_seen", "varchar"), ("apis", "bigint"), ("errors", "bigint"), ("regions", "bigint"),
               ("useragents", "bigint")], [["198.51.100.77", "11", "2026-10-24T02:13:31Z", "2026-10-24T02:19:17Z",
                                            "10", "7", "2", "10"]])
    code, out, err = run(capsys, "ips", KEY, "--athena", "--output", "s3://trailkit-results/q/", "--format", "csv")
    assert code == 0, err
    assert out.splitlines()[1] == "198.51.100.77,11,2026-10-24T02:13:31Z,2026-10-24T02:19:17Z,10,7,2,10"
    assert "query id" in err and "USD" in err


def _commands() -> list[str]:
    """The commands as the parser knows them: a new command cannot escape the checks below."""
    import argparse

    from trailkit.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(sub.choices)


def test_the_commands_are_the_contract():
    assert {"usage", "window", "ips", "owner", "minted", "sql", "report", "ddl", "cache", "sample"} <= set(_commands())


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help(capsys, command):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "usage: trailkit " + command in text and len(text.splitlines()) > 3


def test_times_are_printed_in_utc_whatever_zone_the_engine_returned(sample):
    import pyarrow as pa

    from trailkit.cli import write_result
    from trailkit.contract import Contract
    from trailkit.engines.local import LocalEngine
    from trailkit.queries import Query
    from trailkit.questions import Request

    def format_result(names, rows, fmt):
        out = io.StringIO()
        write_result(out, names, rows, fmt)
        return out.getvalue()

    # 2023-07-10T13:54:33+02:00 is 11:54:33Z; an engine may hand back zoned or naive (UTC) timestamps
    zoned = pa.array([1688990073], pa.timestamp("s", tz="UTC")).cast(pa.timestamp("us", tz="Europe/Berlin"))
    table = pa.Table.from_arrays([zoned, pa.array([1688990073], pa.timestamp("s"))], names=["a", "b"])
    names, rows = Contract.of({"a": "time", "b": "time"}).printable(table)
    rows = list(rows)  # made as they are read: printed twice here
    assert format_result(names, rows, "csv").splitlines()[1] == "2023-07-10T11:54:33Z,2023-07-10T11:54:33Z"
    assert '"a": "2023-07-10T11:54:33Z"' in format_result(names, rows, "json")
    # the same contract applied by DuckDB (the command line's path): zoned, naive and ISO text times,
    # a HUGEINT count, '' as NULL, and the query's own order kept
    sql = ("SELECT from_iso8601_timestamp('2023-07-10T13:54:33.900+02:00') AS a, "
           "TIMESTAMP '2023-07-10 11:54:33' AS b, '2023-07-10T13:54:33+02:00' AS c, "
           "CAST(sum(1) AS DECIMAL(38, 0)) AS n, '' AS s, eventid FROM cloudtrail GROUP BY eventid "
           "ORDER BY eventid DESC")
    columns = {"a": "time", "b": "time", "c": "time", "n": "int", "s": "string", "eventid": "string"}
    request = Request(Query("probe", sql, Contract.of(columns)))
    with LocalEngine(sample, cache=False) as engine:
        names, rows = engine.rows(request)
    assert names == list(columns)
    assert rows[0][:5] == ("2023-07-10T11:54:33Z",) * 3 + (1, None)
    ids = [r[5] for r in rows]
    assert ids == sorted(ids, reverse=True) and len(ids) > 100


@pytest.mark.parametrize("argv", [
    ["usage", "AKIATFQR7NSC8Q4X20BJ"],
    ["ips", "AKIATFQR7NSC8Q4X20BJ", "--start", "2023-07-10T12:00:00Z"],
    ["owner", "AKIATFQR7NSC8Q4X20BJ"],
    ["minted", "AKIATFQR7NSC8Q4X20BJ"],
    ["window", "--start", "2023-07-10T12:00:00Z", "--end", "2023-07-10T12:10:00Z"],
], ids=lambda a: a[0])
def test_the_cli_prints_what_the_api_returns(capsys, invictus, argv):
    """The command line takes plain rows from DuckDB (no pyarrow); the API conforms Arrow: same contract."""
    from trailkit import Trail
    from trailkit.cli import _request, build_parser

    argv = argv + ["--logs", str(invictus), "--format", "json"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    with Trail.local(invictus) as trail:
        request = _request(build_parser().parse_args(argv))
        names, rows = request.contract.printable(trail.ask_table(request))
    expected = [dict(zip(names, row)) for row in rows]
    assert [json.loads(line) for line in out.splitlines()] == expected
    assert len(expected) > 0


@pytest.mark.parametrize("accounts, regions", [
    ("111122223333", "eu-west-1"), (None, "us-east-1,eu-west-1"), ("444455556666", None), (None, "eu-west-1")])
def test_accounts_and_regions_narrow_the_local_answers(capsys, sample, records, accounts, regions):
    """--accounts/--regions keep events recorded in those accounts and regions, on the local engine too."""
    want = [r["eventID"] for r in records(sample) if r["userIdentity"].get("accessKeyId") == KEY
            and (accounts is None or r["recipientAccountId"] in accounts.split(","))
            and (regions is None or r["awsRegion"] in regions.split(","))]
    argv = ["usage", KEY, "--logs", str(sample), "--format", "json"]
    argv += ["--accounts", accounts] if accounts else []
    argv += ["--regions", regions] if regions else []
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert sorted(json.loads(line)["eventid"] for line in out.splitlines()) == sorted(want)


@pytest.mark.parametrize("option, value, needle", [
    ("--accounts", "12345", "not an AWS account id"), ("--regions", "mars-1", "not an AWS region name"),
    ("--max-scan", "lots", "not a size"), ("--timeout", "-3", "not a duration")])
def test_scope_and_cost_options_are_checked(capsys, sample, option, value, needle):
    argv = ["usage", KEY, "--logs", str(sample), option, value]
    argv += ["--athena"] if option in ("--max-scan", "--timeout") else []
    code, _, err = run(capsys, *argv)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_athena_options_without_athena_are_refused(capsys, sample):
    code, _, err = run(capsys, "usage", KEY, "--logs", str(sample), "--max-scan", "5GB")
    assert code == 2 and "--athena" in err


def test_progress_is_drawn_on_a_terminal_after_two_seconds(capsys):
    from trailkit.output import progress

    progress("scanning log files: 10 of 100 (10%), about 9 s left", 1.0, False)
    assert capsys.readouterr().err == ""  # quick work says nothing
    progress("scanning log files: 50 of 100 (50%), about 3 s left", 3.0, False)
    assert "50 of 100" in capsys.readouterr().err
    progress("scanning log files: 100 of 100 (100%), about 0 s left", 6.0, True)
    assert capsys.readouterr().err.strip() == ""  # the line is cleared when the work ends


def test_the_command_says_when_its_answer_could_not_be_written(sample, tmp_path):
    """The ``trailkit`` command (``cli.run``) ends at once after its answer: a reader gone (``| head``) is no
    error, a full disk is (the answer is not all there)."""
    command = [sys.executable, "-c", "from trailkit.cli import run; run()", "usage", KEY, "--logs", str(sample),
               "--format", "csv", "--no-cache"]
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONUNBUFFERED"}
    with open("/dev/full", "w") as full:
        proc = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    assert proc.returncode == 1 and proc.stderr == "trailkit: cannot write: No space left on device\n"
    head = subprocess.run(" ".join(map(repr, command)) + " | head -n 1", shell=True, capture_output=True, text=True,
                          env=env, timeout=120)
    assert head.returncode == 0 and head.stdout.startswith("eventtime") and head.stderr == ""
    whole = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert whole.returncode == 0 and whole.stdout.count("\n") > 1
