"""The live check, for users who have AWS: the bundled sample in a scratch S3 prefix, the tables `trailkit ddl`
makes, every question asked on Athena and compared with the local engine's answer, and everything it made
deleted afterwards.

Opt in with ``TRAILKIT_LIVE_S3=s3://a-scratch-bucket/some/prefix`` and AWS credentials allowed to write there,
use Athena and the Glue catalog (``TRAILKIT_LIVE_WORKGROUP`` picks a workgroup; results go under the prefix).
It costs a few cents at most (a handful of queries, each billed the 10 MB minimum). Skipped, with its reason,
otherwise: it never runs in CI.
"""
from __future__ import annotations

import os
import uuid
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd
import pytest

from trailkit import Trail
from trailkit.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
KEY = "AKIA3PARTNERSYNC0001"
START, END = "2026-10-20", "2026-10-27"
QUESTIONS = {
    "usage": lambda t: t.usage(KEY, START, END),
    "window": lambda t: t.window("2026-10-24T00:00:00Z", "2026-10-24T06:00:00Z"),
    "ips": lambda t: t.ips(KEY, START, END),
    "owner": lambda t: t.owner(KEY, START, END),
    "minted": lambda t: t.minted(KEY, START, END),
}


def _live_prefix() -> str:
    prefix = os.environ.get("TRAILKIT_LIVE_S3", "")
    if not prefix:
        pytest.skip("live check: set TRAILKIT_LIVE_S3=s3://scratch-bucket/prefix (and AWS credentials) to run it")
    import boto3

    if boto3.session.Session().get_credentials() is None:
        pytest.skip("live check: TRAILKIT_LIVE_S3 is set but no AWS credentials were found")
    return prefix.rstrip("/")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    import boto3
    from pyathena import connect

    base = f"{_live_prefix()}/trailkit-live-{uuid.uuid4().hex[:8]}"
    bucket, _, prefix = base[5:].partition("/")
    s3 = boto3.client("s3")
    for path in SAMPLE.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(SAMPLE).as_posix()}")
    database = f"trailkit_live_{uuid.uuid4().hex[:8]}"
    output = f"{base}/athena-results/"
    settings = {"database": database, "output_location": output, "workgroup": os.environ.get("TRAILKIT_LIVE_WORKGROUP")}
    cursor = connect(s3_staging_dir=output, work_group=settings["workgroup"]).cursor()
    tables = {}
    try:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        for name, argv in {
            "partitioned": [base, "--accounts", "111122223333", "--regions", "us-east-1,eu-west-1",
                            "--start", "2026-10-01"],
            "flat": [f"{base}/AWSLogs/111122223333/CloudTrail/", "--not-partitioned"],
        }.items():
            ddl = tmp_path_factory.mktemp("ddl") / "ddl.sql"
            with open(ddl, "w") as out, redirect_stdout(out):
                assert main(["ddl", *argv, "--database", database, "--table", name]) == 0
            cursor.execute(ddl.read_text())
            tables[name] = name
        yield settings, tables
    finally:
        for name in tables:
            cursor.execute(f"DROP TABLE IF EXISTS {database}.{name}")
        cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix + "/"):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", ())]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})


@pytest.mark.parametrize("table", ["partitioned", "flat"])
@pytest.mark.parametrize("question", sorted(QUESTIONS))
def test_athena_answers_as_the_local_engine(live, table, question):
    settings, tables = live
    with Trail.local(SAMPLE) as local:
        want = QUESTIONS[question](local)
    with Trail.athena(table=tables[table], **settings) as athena:
        got = QUESTIONS[question](athena)
        assert athena.last.query_id and athena.last.state == "SUCCEEDED"
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
