"""The questions on the local engine, checked against answers computed by plain Python over the JSON."""
from __future__ import annotations

import gzip
import json
import warnings
from collections import defaultdict
from datetime import datetime, timezone

import pandas as pd
import pytest

from trailkit import InvalidInput, Trail
from trailkit.engines.layout import listing
from trailkit.errors import SkippedFile

PARTNER = "AKIA3PARTNERSYNC0001"
INVICTUS_KEY = "AKIATFQR7NSC8Q4X20BJ"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC") if pd.Timestamp(text).tzinfo else pd.Timestamp(text, tz="UTC")


def key_of(r):
    return (r.get("userIdentity") or {}).get("accessKeyId")


def expected_ips(recs, key, start=None, end=None):
    """distinct_ips by hand: per IP events, first/last seen, distinct APIs, errors."""
    per = defaultdict(list)
    for r in recs:
        if key_of(r) != key:
            continue
        if start and r["eventTime"] < start or end and r["eventTime"] >= end:
            continue
        per[r["sourceIPAddress"]].append(r)
    return {
        ip: (len(rs), min(r["eventTime"] for r in rs), max(r["eventTime"] for r in rs),
             len({(r["eventSource"], r["eventName"]) for r in rs}), sum(1 for r in rs if r.get("errorCode")))
        for ip, rs in per.items()
    }


def as_ips(df):
    return {
        row.sourceipaddress: (row.events, row.first_seen.strftime("%Y-%m-%dT%H:%M:%SZ"),
                              row.last_seen.strftime("%Y-%m-%dT%H:%M:%SZ"), row.apis, row.errors)
        for row in df.itertuples()
    }


# Every question runs through the cache (filled by earlier questions of the module) and without it.
@pytest.fixture(scope="module", params=["cached", "uncached"])
def sample_trail(sample, request):
    with Trail.local(sample, cache=request.param == "cached") as trail:
        yield trail


@pytest.fixture(scope="module", params=["cached", "uncached"])
def invictus_trail(invictus, request):
    with Trail.local(invictus, cache=request.param == "cached") as trail:
        yield trail


def test_invictus_distinct_ips_match_plain_python(invictus_trail, invictus, records):
    df = invictus_trail.ips(INVICTUS_KEY)
    want = expected_ips(records(invictus), INVICTUS_KEY)
    assert as_ips(df) == want
    # the dataset's facts, as its README and a plain read of the JSON give them
    assert want == {"192.168.10.20": (2104, "2023-07-10T11:54:33Z", "2023-07-10T12:29:09Z", 179, 224)}


def test_every_invictus_key_has_the_same_ips_as_plain_python(invictus_trail, invictus, records):
    recs = records(invictus)
    keys = sorted({key_of(r) for r in recs if key_of(r)})
    assert len(keys) == 133
    for key in keys[:: max(1, len(keys) // 12)]:
        assert as_ips(invictus_trail.ips(key)) == expected_ips(recs, key), key


def test_invictus_key_usage_is_every_event_newest_first(invictus_trail, invictus, records):
    df = invictus_trail.usage(INVICTUS_KEY)
    want = sorted((r for r in records(invictus) if key_of(r) == INVICTUS_KEY), key=lambda r: r["eventTime"], reverse=True)
    assert len(df) == len(want) == 2104
    assert set(df["eventid"]) == {r["eventID"] for r in want}
    assert df["eventtime"].is_monotonic_decreasing
    assert df["eventtime"].iloc[0] == ts(want[0]["eventTime"])
    assert df["errorcode"].notna().sum() == sum(1 for r in want if r.get("errorCode"))


def test_invictus_time_window_is_exact(invictus_trail, invictus, records):
    start, end = "2023-07-10T12:10:00Z", "2023-07-10T12:12:30Z"
    df = invictus_trail.window(start, end)
    want = [r for r in records(invictus) if start <= r["eventTime"] < end]
    assert len(df) == len(want) > 0
    assert set(df["eventid"]) == {r["eventID"] for r in want}
    assert df["eventtime"].is_monotonic_increasing
    only_key = invictus_trail.window(start, end, key=INVICTUS_KEY)
    assert len(only_key) == sum(1 for r in want if key_of(r) == INVICTUS_KEY)


def test_sample_tells_the_story(sample_trail, sample, records):
    recs = records(sample)
    ips = sample_trail.ips(PARTNER, allowed="203.0.113.0/24")
    assert as_ips(ips.drop(columns="category")) == expected_ips(recs, PARTNER)
    assert dict(zip(ips.sourceipaddress, ips.category)) == {
        "203.0.113.10": "allowed", "203.0.113.11": "allowed", "198.51.100.77": "unexpected"}
    # newest activity first: the last row to be seen is on top
    assert ips["last_seen"].is_monotonic_decreasing
    minted = sample_trail.minted(PARTNER)
    want = [json.loads(json.dumps(r["responseElements"]))["credentials"]["accessKeyId"] for r in recs
            if key_of(r) == PARTNER and r["eventSource"] == "sts.amazonaws.com" and r.get("responseElements")]
    assert list(minted["mintedkeyid"]) == want == ["ASIA3OPSADMINTMP0001"]
    owner = sample_trail.owner(PARTNER)
    assert list(owner["principalarn"]) == ["arn:aws:iam::111122223333:user/partner-sync"]
    assert owner["events"].iloc[0] == sum(1 for r in recs if key_of(r) == PARTNER)


def test_window_on_key_usage_and_limit(sample_trail, records, sample):
    start, end = "2026-10-24T00:00:00Z", "2026-10-25T00:00:00Z"
    df = sample_trail.usage(PARTNER, start="2026-10-24", end="2026-10-24")
    want = [r for r in records(sample) if key_of(r) == PARTNER and start <= r["eventTime"] < end]
    assert len(df) == len(want) > 0
    assert len(sample_trail.usage(PARTNER, limit=7)) == 7


@pytest.mark.parametrize("question", ["usage", "window"])
def test_window_reads_only_the_days_it_needs(sample, question):
    with Trail.local(sample, cache=False) as trail:
        if question == "usage":
            trail.usage(PARTNER, start="2026-10-10", end="2026-10-10")
        else:
            trail.window("2026-10-10", "2026-10-10")
        one_day = trail.last.files
        trail.usage(PARTNER)
        everything = trail.last.files
    days = {f.day for f in listing(sample).files}
    assert one_day and everything == sum(1 for f in sample.rglob("*.json.gz") if "Digest" not in str(f))
    assert one_day < everything * 2.5 / len(days)  # the day and the day after, not the month


def test_events_delivered_after_midnight_are_found(tmp_path, records, sample):
    """A file's date is its delivery date: 23:5x events land in the next day's folder."""
    recs = records(sample)
    late = [r for r in recs if r["eventTime"][11:13] == "23"]
    assert late, "the sample should have events in the last hour of a day"
    day = late[0]["eventTime"][:10]
    with Trail.local(sample) as trail:
        df = trail.window(day, day)
    assert late[0]["eventID"] in set(df["eventid"])


def test_column_contract(sample_trail):
    df = sample_trail.usage(PARTNER, limit=5)
    assert str(df["eventtime"].dtype) == "datetime64[us, UTC]"
    assert df["eventname"].dtype == "string"
    ips = sample_trail.ips(PARTNER)
    assert ips["events"].dtype == "Int64" and ips["errors"].dtype == "Int64"
    assert str(ips["first_seen"].dtype) == "datetime64[us, UTC]"
    empty = sample_trail.ips("AKIAAAAAAAAAAAAAAAAA")
    assert empty.empty and list(empty.columns) == list(ips.columns) and empty["events"].dtype == "Int64"


def test_fragment_search_escapes_wildcards(sample_trail):
    assert set(sample_trail.usage("partnersync", fragment=True)["accesskeyid"]) == {PARTNER}
    # '_' and '%' would be LIKE wildcards; in a fragment they are literal (and not key characters at all)
    with pytest.raises(InvalidInput):
        sample_trail.usage("A%", fragment=True)
    from trailkit.inputs import KeyMatch

    assert KeyMatch.parse("SYNC", fragment=True).params == {"key_pattern": "%SYNC%"}


@pytest.mark.parametrize("evil", [
    "AKIA' OR '1'='1", "AKIA3PARTNERSYNC0001' --", "'; DROP TABLE cloudtrail; --", "AKIA3PARTNERSYNC000%",
])
def test_injection_strings_are_rejected_or_inert(sample_trail, evil):
    with pytest.raises(InvalidInput):
        sample_trail.usage(evil)
    with pytest.raises(InvalidInput):
        sample_trail.usage(evil, fragment=True)
    # through the escape hatch a value is bound, never executed
    df = sample_trail.sql("SELECT count(*) AS n FROM cloudtrail WHERE useridentity.accesskeyid = :k", {"k": evil})
    assert int(df["n"].iloc[0]) == 0


def test_escape_hatch_binds_parameters(sample_trail, sample, records):
    df = sample_trail.sql(
        "SELECT eventname, count(*) AS n FROM cloudtrail WHERE awsregion = :region GROUP BY eventname ORDER BY n DESC",
        {"region": "eu-west-1"})
    want = defaultdict(int)
    for r in records(sample):
        if r["awsRegion"] == "eu-west-1":
            want[r["eventName"]] += 1
    assert dict(zip(df["eventname"], df["n"])) == want
    counted = sample_trail.sql("SELECT count_if(errorcode IS NOT NULL) AS errors, sum(1) AS n FROM cloudtrail")
    assert str(counted["errors"].dtype) == "Int64" and str(counted["n"].dtype) == "Int64"


def test_schema_shapes_match_athena(sample_trail):
    cols = sample_trail.engine.con.execute("DESCRIBE cloudtrail").df()
    types = dict(zip(cols["column_name"], cols["column_type"]))
    from trailkit.schema import COLUMN_NAMES

    assert tuple(types) == COLUMN_NAMES
    assert types["eventtime"] == "VARCHAR" and types["requestparameters"] == "VARCHAR"
    assert types["resources"].startswith("STRUCT(arn VARCHAR") and types["resources"].endswith("[]")
    assert "sessioncontext STRUCT(attributes STRUCT(mfaauthenticated VARCHAR" in types["useridentity"]
    nulls = sample_trail.sql("SELECT count(*) AS n FROM cloudtrail WHERE useridentity.sessioncontext IS NULL "
                             "AND useridentity.type = 'IAMUser'")
    assert int(nulls["n"].iloc[0]) > 0  # absent objects are NULL, as in Athena, not structs of NULLs


def test_layouts_jsonl_org_trail_and_digests(tmp_path, sample, records):
    recs = [r for r in records(sample) if key_of(r) == PARTNER][:40]
    org = tmp_path / "AWSLogs" / "o-abc123def4" / "111122223333" / "CloudTrail" / "us-east-1" / "2026" / "10" / "02"
    org.mkdir(parents=True)
    (org / "a.json.gz").write_bytes(gzip.compress(json.dumps({"Records": recs[:20]}).encode()))
    (tmp_path / "export.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs[20:30]))
    (tmp_path / "firehose.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in recs[30:]).encode()))
    digest = tmp_path / "AWSLogs" / "111122223333" / "CloudTrail-Digest" / "us-east-1" / "2026" / "10" / "02"
    digest.mkdir(parents=True)
    (digest / "d.json.gz").write_bytes(gzip.compress(json.dumps({"Records": recs[:5], "digestStartTime": "x"}).encode()))
    with Trail.local(tmp_path) as trail:
        df = trail.usage(PARTNER)
    assert sorted(df["eventid"]) == sorted(r["eventID"] for r in recs)


def test_unreadable_file_is_named_and_the_rest_answered(logs_copy, records, sample):
    bad = logs_copy / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "2026" / "10" / "05" / "broken.json.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00 this is not gzip")
    with Trail.local(logs_copy) as trail, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = trail.ips(PARTNER)
    assert any(issubclass(w.category, SkippedFile) and "broken.json.gz" in str(w.message) for w in caught)
    assert as_ips(df) == expected_ips(records(sample), PARTNER)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        Trail.local(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="no CloudTrail files"):
        Trail.local(tmp_path / "empty")


def test_window_outside_the_data_is_empty_not_an_error(sample_trail):
    df = sample_trail.window("2020-01-01", "2020-01-02")
    assert df.empty and "eventtime" in df.columns


def test_utc_everywhere(sample_trail):
    # an offset in the input is converted, not dropped: 04:13+02:00 is 02:13Z
    a = sample_trail.window("2026-10-24T04:13:00+02:00", "2026-10-24T04:30:00+02:00", key=PARTNER)
    b = sample_trail.window("2026-10-24T02:13:00Z", "2026-10-24T02:30:00Z", key=PARTNER)
    assert len(a) == len(b) > 0
    assert a["eventtime"].iloc[0] >= datetime(2026, 10, 24, 2, 13, tzinfo=timezone.utc)
