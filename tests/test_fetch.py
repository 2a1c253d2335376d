"""trailkit fetch against moto's S3 over HTTP (real boto3): the right objects, whole files, resumable, answered
by the local engine. Expected answers come from the keys the tests put, picked by plain Python."""
from __future__ import annotations

import gzip
import io
import json
import os
import re
import stat
import threading
import time
import warnings
from pathlib import Path

import pytest

from trailkit import InvalidInput, Trail, Window
from trailkit.engines.fetch import bar_to, fetch
from trailkit.engines.landing import MANIFEST
from trailkit.engines.layout import listing
from trailkit.engines.s3layout import TrailLayout

BUCKET = "acme-trail"
KEY = "AKIAFETCHTEST0000001"
OTHER_KEY = "AKIAFETCHOTHER000002"
A1, A2, A3 = "111111111111", "222222222222", "333333333333"
ORG = "o-aaaaaaaaaa"
WINDOW = Window.parse("2024-02-28", "2024-03-01")  # a leap day inside it
# the window's days and the day after (delivery lags), by hand; the rest must stay in S3
IN = ["2024/02/28", "2024/02/29", "2024/03/01", "2024/03/02"]
OUT = ["2024/02/27", "2024/03/03", "2024/01/28", "2024/04/01", "2023/02/28"]
TREES = {(None, A1): ["us-east-1", "eu-west-1"], (None, A2): ["us-east-1", "ap-southeast-2"],
         (ORG, A3): ["us-east-1", "eu-west-1"], (ORG, A1): ["us-east-1"]}
DELIVERED = re.compile(r"^(?:(?P<base>.+)/)?AWSLogs/(?:(?P<org>o-[a-z0-9]+)/)?(?P<account>\d{12})/CloudTrail/"
                       r"(?P<region>[a-z0-9-]+)/(?P<day>\d{4}/\d{2}/\d{2})/[^/]+$")


def s3():
    import boto3

    return boto3.client("s3", region_name="us-east-1")


def record(event_id: str, when: str, key: str, account: str, region: str) -> dict:
    return {"eventVersion": "1.09", "eventTime": when, "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets",
            "awsRegion": region, "sourceIPAddress": "203.0.113.7", "userAgent": "aws-cli/2.15.0",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAFETCHTEST00000001",
                             "arn": f"arn:aws:iam::{account}:user/fetcher", "accountId": account,
                             "accessKeyId": key, "userName": "fetcher"},
            "requestParameters": None, "responseElements": None, "requestID": event_id.upper(),
            "eventID": event_id, "readOnly": True, "eventType": "AwsApiCall", "managementEvent": True,
            "recipientAccountId": account, "eventCategory": "Management"}


def plant(client, base: str = "") -> tuple[dict[str, bytes], list[dict]]:
    """Several accounts, regions and months, an organization trail beside them, digests and stray folders.
    Each log file holds an event of its day and a late one of the day before; KEY is used from A1 in us-east-1."""
    objects, records = {}, []
    root = f"{base}/AWSLogs" if base else "AWSLogs"
    for (org, account), regions in TREES.items():
        for region in regions:
            for day in IN + OUT:
                folder = "/".join([root, *([org] if org else []), account, "CloudTrail", region, day])
                for n in range(2 if day == "2024/02/29" else 1):
                    y, m, d = day.split("/")
                    ident = f"{base.replace('/', '-') or 'root'}-{org}-{account}-{region}-{y}{m}{d}-{n}"
                    key = KEY if (org, account, region) == (None, A1, "us-east-1") else OTHER_KEY
                    late = _day_before(y, m, d)
                    recs = [record(ident + "-a", f"{y}-{m}-{d}T12:0{n}:00Z", key, account, region),
                            record(ident + "-b", f"{late}T23:5{n}:00Z", key, account, region)]
                    objects[f"{folder}/{account}_CloudTrail_{region}_{y}{m}{d}T1205Z_{ident}.json.gz"] = \
                        gzip.compress(json.dumps({"Records": recs}).encode(), mtime=0)
                    records += [dict(r, _base=base, _org=org) for r in recs]
            digests = "/".join([root, *([org] if org else []), account, "CloudTrail-Digest", region, "2024/02/29"])
            objects[f"{digests}/{account}_CloudTrail-Digest_{region}.json.gz"] = gzip.compress(b'{"logFiles": []}')
    objects[f"{root}/123/CloudTrail/us-east-1/2024/02/29/not-an-account.json.gz"] = b"{}"
    objects[f"{root}/{A1}/CloudTrail/us-east-1/2024/02/29/subfolder/x.json.gz"] = b"{}"
    for key, body in objects.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    return objects, records


def _day_before(y: str, m: str, d: str) -> str:
    from datetime import date, timedelta

    return (date(int(y), int(m), int(d)) - timedelta(days=1)).isoformat()


def wanted(objects: dict[str, bytes], base="", org=None, accounts=(A1, A2), regions=None) -> dict[str, bytes]:
    out = {}
    for key, body in objects.items():
        m = DELIVERED.match(key)
        if m and (m["base"] or "") == base and m["org"] == org and m["account"] in accounts \
                and (regions is None or m["region"] in regions) and m["day"] in IN:
            out[key[len(base) + 1:] if base else key] = body
    return out


def landed(dest: Path) -> dict[str, bytes]:
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


def hidden(dest: Path) -> set[str]:
    return {p.relative_to(dest).as_posix() for p in dest.rglob(".*")}


@pytest.fixture
def bucket(moto):
    client = s3()
    client.create_bucket(Bucket=BUCKET)
    objects, records = plant(client)
    more, more_records = plant(client, "audit/ct")
    return client, {**objects, **more}, records + more_records


# name: (location below the bucket, --org, --accounts, --regions), and what is wanted, by hand
CASES = {
    "all found": (("", None, (), ()), {}),
    "an account and a region": (("", None, (A2,), ("ap-southeast-2",)),
                                {"accounts": (A2,), "regions": ("ap-southeast-2",)}),
    "a region of every account": (("", None, (), ("eu-west-1",)), {"regions": ("eu-west-1",)}),
    "the organization trail": (("", ORG, (), ()), {"org": ORG, "accounts": (A3, A1)}),
    "an account of the organization": (("", ORG, (A1,), ("us-east-1",)),
                                       {"org": ORG, "accounts": (A1,), "regions": ("us-east-1",)}),
    "below a prefix": (("audit/ct", None, (A2,), ()), {"base": "audit/ct", "accounts": (A2,)}),
}


def test_fetch_copies_exactly_the_days_accounts_and_regions_asked(bucket, tmp_path):
    _, objects, _ = bucket
    for name, ((base, org, accounts, regions), picks) in CASES.items():
        dest = tmp_path / name.replace(" ", "-")
        layout = TrailLayout.parse(f"s3://{BUCKET}/{base}".rstrip("/"), org)
        result = fetch(layout, WINDOW, dest, accounts=accounts, regions=regions, workers=4)
        want = wanted(objects, **picks)
        assert want and landed(dest) == want, name
        assert hidden(dest) == {MANIFEST}, name  # no temporary file left
        assert (result.listed, result.downloaded, result.skipped) == (len(want), len(want), 0), name
        assert result.failures == (), name
        assert result.downloaded_bytes == sum(map(len, want.values())), name
        assert set(result.accounts) == {k.split("/")[-7] for k in want}, name
        assert set(result.regions) == {k.split("/")[-5] for k in want}, name
        assert result.complete and "copied" in result.summary(), name


def test_the_copy_is_owner_only(bucket, tmp_path):
    dest = tmp_path / "evidence"
    fetch(TrailLayout.parse(f"s3://{BUCKET}"), WINDOW, dest, accounts=(A1,))
    for p in [dest, *dest.rglob("*")]:
        assert stat.S_IMODE(p.stat().st_mode) == (0o700 if p.is_dir() else 0o600), p


def test_what_is_absent_is_said_not_raised(bucket, tmp_path):
    layout = TrailLayout.parse(f"s3://{BUCKET}")
    result = fetch(layout, WINDOW, tmp_path / "a", accounts=(A2, "999999999999"), regions=("us-east-1", "eu-west-1"))
    assert f"this bucket holds an organization trail {ORG}: add --org {ORG}" in result.notes
    assert any("999999999999" in n for n in result.notes)
    assert any(A2 in n and "eu-west-1" in n for n in result.notes)
    assert result.accounts == (A2,) and result.regions == ("us-east-1",) and result.complete

    nothing = fetch(layout, WINDOW, tmp_path / "b", regions=("sa-east-1",))
    assert nothing.empty and not nothing.complete and nothing.summary().startswith("nothing to copy")
    late = fetch(layout, Window.parse("2025-01-01", "2025-01-02"), tmp_path / "c")
    assert late.empty and any("no CloudTrail files delivered 2025-01-01 to 2025-01-03" in n for n in late.notes)
    assert fetch(TrailLayout.parse(f"s3://{BUCKET}/elsewhere"), WINDOW, tmp_path / "d").empty


def test_a_fetch_stopped_by_ctrl_c_resumes(bucket, tmp_path):
    _, objects, _ = bucket
    want, dest, layout = wanted(objects), tmp_path / "evidence", TrailLayout.parse(f"s3://{BUCKET}")

    def interrupt(done, total, done_bytes, total_bytes):
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch(layout, WINDOW, dest, workers=2, progress=interrupt)
    before = landed(dest)
    assert 5 <= len(before) < len(want)
    assert all(want[rel] == body for rel, body in before.items())  # no part of a file under a real name
    assert hidden(dest) == {MANIFEST}  # the stopped workers removed their temporary files
    kept = {rel: (dest / rel).stat() for rel in before}

    calls = []
    result = fetch(layout, WINDOW, dest, workers=2, progress=lambda *a: calls.append(a))
    assert (result.downloaded, result.skipped, result.failures) == (len(want) - len(before), len(before), ())
    assert landed(dest) == want
    assert all((st.st_ino, st.st_mtime_ns) == ((dest / rel).stat().st_ino, (dest / rel).stat().st_mtime_ns)
               for rel, st in kept.items())  # what was there was not copied again
    total_bytes = sum(map(len, want.values()))
    assert calls[-1] == (len(want), len(want), total_bytes, total_bytes)
    assert [c[0] for c in calls] == list(range(1, len(want) + 1))


class _Flaky:
    """A real boto3 client whose downloads of some keys go wrong: ``keys[key]`` says how."""

    def __init__(self, client, keys: dict[str, str]):
        self.client, self.keys, self.started = client, keys, threading.Event()

    def __getattr__(self, name):
        return getattr(self.client, name)

    def get_object(self, **kwargs):
        response = self.client.get_object(**kwargs)
        if kwargs["Key"] in self.keys:
            response["Body"] = _Broken(response["Body"], self.keys[kwargs["Key"]], self.started)
        return response


class _Broken:
    def __init__(self, body, how: str, started: threading.Event):
        self.body, self.how, self.started = body, how, started

    def iter_chunks(self, size):
        data = self.body.read()
        if self.how == "slow":  # a big file on a slow line: a chunk every 10 ms for 5 s
            for _ in range(500):
                self.started.set()
                time.sleep(0.01)
                yield b"x"
            return
        if self.how == "garbled":  # every byte arrives, not the ones stored
            yield bytes(reversed(data))
            return
        yield data[: len(data) // 2]
        if self.how == "reset":
            raise ConnectionResetError("connection reset by peer")
        # "short": the stream ends early without a word

    def close(self):
        self.body.close()


def test_ctrl_c_stops_a_copy_under_way_between_chunks(bucket, tmp_path):
    client, objects, _ = bucket
    want, dest, layout = wanted(objects), tmp_path / "evidence", TrailLayout.parse(f"s3://{BUCKET}")
    slow = sorted(want)[0]  # the first listed: a worker starts on it at once
    flaky = _Flaky(client, {slow: "slow"})

    def interrupt(*progress):
        if flaky.started.is_set():
            raise KeyboardInterrupt

    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        fetch(layout, WINDOW, dest, workers=2, progress=interrupt, client=flaky)
    assert time.monotonic() - began < 3  # not the 5 s the slow copy would take
    assert not (dest / slow).exists() and hidden(dest) == {MANIFEST}


def test_a_copy_broken_midstream_leaves_no_partial_file_and_is_named(bucket, tmp_path):
    client, objects, _ = bucket
    want, dest, layout = wanted(objects), tmp_path / "evidence", TrailLayout.parse(f"s3://{BUCKET}")
    new, old, short, garbled = sorted(want)[:4]
    (dest / old).parent.mkdir(parents=True)
    (dest / old).write_bytes(b"an earlier copy")
    stale = dest / new.rsplit("/", 1)[0] / ".trailkit-killed.part"  # left by a fetch that was killed
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"half")

    flaky = _Flaky(client, {new: "reset", old: "reset", short: "short", garbled: "garbled"})
    result = fetch(layout, WINDOW, dest, client=flaky)
    why = dict(result.failures)
    assert sorted(why) == sorted([new, old, short, garbled])
    assert "ConnectionResetError" in why[new] and "ConnectionResetError" in why[old]
    assert f"of its {len(want[short])} bytes arrived" in why[short]
    assert "do not match its ETag" in why[garbled]
    assert not any((dest / k).exists() for k in (new, short, garbled))
    assert (dest / old).read_bytes() == b"an earlier copy"
    assert hidden(dest) == {MANIFEST}
    assert result.downloaded == len(want) - 4 and not result.complete and "4 failed" in result.summary()

    again = fetch(layout, WINDOW, dest)
    assert (again.downloaded, again.skipped, again.failures) == (4, len(want) - 4, ())
    assert landed(dest) == want


def test_an_object_named_like_a_hidden_file_is_named_not_copied(bucket, tmp_path):
    client, objects, _ = bucket
    odd = f"AWSLogs/{A1}/CloudTrail/us-east-1/2024/02/29/.trailkit-evil.part"
    client.put_object(Bucket=BUCKET, Key=odd, Body=b"not a log")
    dest = tmp_path / "evidence"
    result = fetch(TrailLayout.parse(f"s3://{BUCKET}"), WINDOW, dest)
    assert [k for k, _ in result.failures] == [odd] and "starts with '.'" in result.failures[0][1]
    assert landed(dest) == wanted(objects) and hidden(dest) == {MANIFEST}


def test_same_size_and_etag_are_skipped_and_changes_copied(bucket, tmp_path):
    client, objects, _ = bucket
    want, dest, layout = wanted(objects), tmp_path / "evidence", TrailLayout.parse(f"s3://{BUCKET}")
    assert fetch(layout, WINDOW, dest).downloaded == len(want)
    second = fetch(layout, WINDOW, dest)
    assert (second.downloaded, second.skipped, second.skipped_bytes) == (0, len(want), sum(map(len, want.values())))

    same_size, longer = sorted(want)[:2]
    want[same_size] = bytes(reversed(want[same_size]))  # another object of the same size
    want[longer] = want[longer] + b"\n"
    for key in (same_size, longer):
        client.put_object(Bucket=BUCKET, Key=key, Body=want[key])
    third = fetch(layout, WINDOW, dest)
    assert (third.downloaded, third.skipped) == (2, len(want) - 2)
    assert landed(dest) == want

    (dest / MANIFEST).unlink()  # single-part ETags are MD5s: the files are known by their bytes
    assert fetch(layout, WINDOW, dest).downloaded == 0
    tampered = dest / sorted(want)[3]
    tampered.write_bytes(bytes(reversed(tampered.read_bytes())))
    fourth = fetch(layout, WINDOW, dest)
    assert (fourth.downloaded, fourth.skipped) == (1, len(want) - 1) and landed(dest) == want

    # altered in place with its size and modification time put back: the change time gives it away
    import os

    altered = dest / sorted(want)[4]
    before = altered.stat()
    altered.write_bytes(bytes(reversed(altered.read_bytes())))
    os.utime(altered, ns=(before.st_atime_ns, before.st_mtime_ns))
    fifth = fetch(layout, WINDOW, dest)
    assert (fifth.downloaded, fifth.skipped) == (1, len(want) - 1) and landed(dest) == want


def test_a_multipart_etag_is_remembered_by_the_manifest(moto, tmp_path):
    client = s3()
    client.create_bucket(Bucket=BUCKET)
    key = f"AWSLogs/{A1}/CloudTrail/us-east-1/2024/02/29/{A1}_CloudTrail_us-east-1_20240229T1205Z_big.json.gz"
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1000)]
    upload = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    etags = [client.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=n, Body=body)["ETag"]
             for n, body in enumerate(parts, 1)]
    client.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={
        "Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(etags, 1)]})
    assert "-" in client.head_object(Bucket=BUCKET, Key=key)["ETag"]
    dest, layout = tmp_path / "evidence", TrailLayout.parse(f"s3://{BUCKET}")

    assert fetch(layout, WINDOW, dest).downloaded == 1
    assert (dest / key).read_bytes() == b"".join(parts)
    assert fetch(layout, WINDOW, dest).skipped == 1
    (dest / MANIFEST).unlink()  # no MD5 to know it by: copied again, rather than trusted
    assert fetch(layout, WINDOW, dest).downloaded == 1
    assert (dest / key).read_bytes() == b"".join(parts)


def test_the_copy_is_answered_at_once_by_the_local_engine(bucket, tmp_path):
    _, _, records = bucket
    dest = tmp_path / "evidence"
    fetch(TrailLayout.parse(f"s3://{BUCKET}"), WINDOW, dest)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the manifest is never read as a log, nor warned about
        with Trail.local(dest) as trail:
            found = trail.usage(KEY, "2024-02-28", "2024-03-01")
    want = {r["eventID"] for r in records if r["_base"] == "" and r["_org"] is None
            and r["userIdentity"]["accessKeyId"] == KEY and "2024-02-28" <= r["eventTime"] < "2024-03-02"}
    assert set(found["eventid"]) == want
    assert any(r.endswith("-20240302-0-b") for r in want)  # delivered the day after the window: padding matters


def test_temporary_files_and_the_manifest_are_never_read_as_logs(tmp_path):
    day = tmp_path / "AWSLogs" / A1 / "CloudTrail" / "us-east-1" / "2024" / "02" / "29"
    day.mkdir(parents=True)
    (day / ".trailkit-x1y2z3.part").write_bytes(b"half a gzip")
    (tmp_path / MANIFEST).write_text('["AWSLogs/x", "etag", 1, 1]\n')
    (tmp_path / (MANIFEST + ".part")).write_text("")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert listing(tmp_path).files == []


def test_bad_input_is_refused_before_s3_is_asked(tmp_path):
    layout = TrailLayout.parse(f"s3://{BUCKET}")
    for window in (Window.parse("2024-02-28"), Window.parse(None, "2024-02-28"), Window()):
        with pytest.raises(InvalidInput, match="--start and --end"):
            fetch(layout, window, tmp_path / "x", client=object())
    with pytest.raises(InvalidInput, match="account id"):
        fetch(layout, WINDOW, tmp_path / "x", accounts=("1234",), client=object())
    with pytest.raises(InvalidInput, match="region"):
        fetch(layout, WINDOW, tmp_path / "x", regions=("mars-1",), client=object())
    with pytest.raises(InvalidInput, match="--workers"):
        fetch(layout, WINDOW, tmp_path / "x", workers=0, client=object())
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidInput, match="--dest"):
        fetch(layout, WINDOW, tmp_path / "file", client=object())
    assert not (tmp_path / "x").exists()


def test_s3_refusals_are_one_line_saying_what_to_do(moto, tmp_path, monkeypatch):
    with pytest.raises(InvalidInput, match="bucket 'no-such-trail' does not exist; check the name") as e:
        fetch(TrailLayout.parse("s3://no-such-trail"), WINDOW, tmp_path / "x")
    assert "\n" not in str(e.value)

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it keeps the credentials it found before
    with pytest.raises(InvalidInput, match="no AWS credentials found: set AWS_PROFILE"):
        fetch(TrailLayout.parse(f"s3://{BUCKET}"), WINDOW, tmp_path / "x")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_progress_bar_draws_only_on_a_terminal():
    piped, terminal = io.StringIO(), _Terminal()
    for stream in (piped, terminal):
        draw = bar_to(stream, width=10)
        draw(5, 10, 500, 1000)
        draw(10, 10, 2_500_000, 2_500_000)
    assert piped.getvalue() == ""
    assert terminal.getvalue().endswith("\r[##########] 10/10 files, 2.5 MB of 2.5 MB\n")


def test_the_command_copies_then_answers_and_a_rerun_skips(bucket, tmp_path, capsys):
    from trailkit.cli import main

    _, objects, records = bucket
    dest = tmp_path / "cli"
    argv = ["fetch", f"s3://{BUCKET}", "--start", "2024-02-28", "--end", "2024-03-01", "--dest", str(dest),
            "--accounts", A1]
    assert main(argv) == 0
    out, _ = capsys.readouterr()
    want = wanted(objects, accounts=(A1,))
    assert landed(dest) == want and f"copied {len(want)} files" in out and "--logs" in out
    assert main(argv) == 0
    out, _ = capsys.readouterr()
    assert f"copied 0 files" in out and f"{len(want)} already there" in out
    assert main(["usage", KEY, "--logs", str(dest), "--format", "json", "--start", "2024-02-28", "--end", "2024-03-01"]) == 0
    out, _ = capsys.readouterr()
    expected = {r["eventID"] for r in records if r["_base"] == "" and r["_org"] is None and r["recipientAccountId"] == A1
                and r["userIdentity"]["accessKeyId"] == KEY and "2024-02-28" <= r["eventTime"] < "2024-03-02"}
    assert {json.loads(line)["eventid"] for line in out.splitlines()} == expected and expected
    # bad input: exit 2, one line, before S3 is asked
    assert main(["fetch", f"s3://{BUCKET}/AWSLogs/{A1}", "--start", "1d", "--end", "0d", "--dest", str(dest)]) == 2
    _, err = capsys.readouterr()
    assert "AWSLogs" in err and len(err.strip().splitlines()) == 1
