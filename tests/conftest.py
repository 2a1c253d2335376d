"""How trailkit is tested: no cloud, real files, real protocols.

- ``sample`` / ``invictus``: the bundled synthetic logs and the real public logs in ../shared/datasets.
- ``records(folder)``: every record, read with nothing but gzip and json, so expected answers are computed
  independently of trailkit.
- ``moto``: moto's Athena/S3 server on 127.0.0.1, reached by real boto3/pyathena over HTTP; ``moto.seed`` queues
  the rows Athena would return, ``moto.sent()`` reads back the SQL actually sent. pyathena's ArrowCursor reads
  the result CSV with pyarrow's own S3 client, which ignores ``AWS_ENDPOINT_URL`` (apache/arrow#49643) and which
  PyAthena lets no one replace (PyAthena#485): the fixture points that one client at the same server.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
INVICTUS = ROOT.parent / "shared" / "datasets" / "invictus-aws"
STRATUS = ROOT.parent / "shared" / "datasets" / "stratus-detonations"
GOLDEN = Path(__file__).parent / "golden"


def read_records(folder: Path) -> list[dict]:
    """All CloudTrail records under ``folder`` (digests skipped), by plain gzip + json."""
    out = []
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file() or "CloudTrail-Digest" in str(path):
            continue
        if path.name.endswith(".json.gz"):
            out.extend(json.loads(gzip.decompress(path.read_bytes()))["Records"])
        elif path.name.endswith(".json"):
            out.extend(json.loads(path.read_text())["Records"])
    return out


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Caches go to a folder of this test run, never the user's."""
    os.environ["TRAILKIT_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def sample() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def invictus() -> Path:
    if not INVICTUS.exists():
        pytest.fail(f"the real public logs are missing at {INVICTUS}; CI lays ../shared beside the clone")
    return INVICTUS


@pytest.fixture(scope="session")
def stratus() -> Path:
    if not STRATUS.exists():
        pytest.fail(f"the real public logs are missing at {STRATUS}; CI lays ../shared beside the clone")
    return STRATUS


@pytest.fixture(scope="session")
def records():
    cache = {}

    def load(folder: Path) -> list[dict]:
        if folder not in cache:
            cache[folder] = read_records(folder)
        return cache[folder]

    return load


@pytest.fixture
def logs_copy(tmp_path, sample) -> Path:
    """A writable copy of the sample, for tests that add odd files to it."""
    dest = tmp_path / "logs"
    shutil.copytree(sample, dest)
    return dest


class Moto:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def reset(self):
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()
        import boto3

        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="trailkit-results")

    def seed(self, columns: list[tuple[str, str]], rows: list[list]):
        """Queue one result: ``columns`` as (name, athena type), ``rows`` as lists of text or None."""
        def cell(v):
            return {} if v is None else {"VarCharValue": str(v)}

        body = {"results": [{
            "rows": [{"Data": [{"VarCharValue": n} for n, _ in columns]}] + [{"Data": [cell(v) for v in r]} for r in rows],
            "column_info": [{"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": n, "Label": n,
                             "Type": t, "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": True}
                            for n, t in columns],
        }]}
        requests.post(f"{self.endpoint}/moto-api/static/athena/query-results", json=body, timeout=10).raise_for_status()

    def table(self, database: str, table: str, partition_keys=(), parameters=None, location=None):
        """A table in moto's Glue Data Catalog, as Athena's CREATE EXTERNAL TABLE makes it: ``partition_keys``
        names (strings), ``parameters`` the TBLPROPERTIES (projection), ``location`` the table's LOCATION."""
        import boto3

        glue = boto3.client("glue", region_name="us-east-1")
        try:
            glue.create_database(DatabaseInput={"Name": database})
        except glue.exceptions.AlreadyExistsException:
            pass
        glue.create_table(DatabaseName=database, TableInput={
            "Name": table, "TableType": "EXTERNAL_TABLE", "Parameters": dict(parameters or {}),
            "PartitionKeys": [{"Name": k, "Type": "string"} for k in partition_keys],
            "StorageDescriptor": {"Columns": [{"Name": "eventtime", "Type": "string"}],
                                  "Location": location or f"s3://trail-bucket/AWSLogs/"}})

    def sent(self) -> list[str]:
        """The SQL of every query started since the last reset, oldest first."""
        import boto3

        athena = boto3.client("athena", region_name="us-east-1")
        ids = athena.list_query_executions()["QueryExecutionIds"]
        execs = [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]
        return [e["Query"] for e in sorted(execs, key=lambda e: e["Status"]["SubmissionDateTime"])]


@pytest.fixture(scope="session")
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto(moto_server, monkeypatch):
    for name, value in {
        "AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", *[k for k in os.environ if k.startswith("TRAILKIT_")]):
        monkeypatch.delenv(name, raising=False)
    from pyarrow import fs
    from pyathena.arrow.result_set import AthenaArrowResultSetMetadataReader

    monkeypatch.setattr(AthenaArrowResultSetMetadataReader, "_create_s3_file_system",
                        lambda self: fs.S3FileSystem(endpoint_override=moto_server, access_key="testing",
                                                     secret_key="testing", region="us-east-1"))
    m = Moto(moto_server)
    m.reset()
    return m
