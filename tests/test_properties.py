"""Property tests: random CloudTrail-like records, in random layouts and formats (delivered gzip, plain JSON,
JSON lines, top-level arrays, a Splunk export), with duplicate deliveries, late deliveries, times with offsets
and times that are no time, asked every question cold, through the cache, and after files change; each answer
equals a reference computed here in plain Python."""
from __future__ import annotations

import gzip
import json
import shutil
import tempfile
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trailkit import Trail
from trailkit.engines.local import LocalEngine

KEYS = ["AKIAPROPERTYKEY00001", "AKIAPROPERTYKEY00002", "ASIAPROPERTYKEY00003"]
START = datetime(2026, 3, 1, tzinfo=timezone.utc)


@st.composite
def record(draw, n):
    moment = START + timedelta(seconds=draw(st.integers(0, 4 * 86400)))
    style = draw(st.sampled_from(["Z", "Z", "Z", "offset", "broken"]))
    if style == "Z":
        text = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    elif style == "offset":
        hours = draw(st.integers(-5, 5))
        text = (moment + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S") + f"{hours:+03d}:00"
    else:
        text = "not a time"
    return {"eventVersion": "1.08", "eventID": f"ev-{n}", "eventTime": text, "_instant": moment if style != "broken" else None,
            "eventSource": draw(st.sampled_from(["s3.amazonaws.com", "iam.amazonaws.com"])),
            "eventName": draw(st.sampled_from(["ListBuckets", "GetObject", "CreateUser"])),
            "awsRegion": "us-east-1", "sourceIPAddress": draw(st.sampled_from(["198.51.100.1", "203.0.113.9", "AWS Internal"])),
            "userAgent": "prop", "errorCode": draw(st.sampled_from([None, None, "AccessDenied"])),
            "userIdentity": {"type": "IAMUser", "accessKeyId": draw(st.sampled_from(KEYS)),
                             "arn": "arn:aws:iam::111122223333:user/p", "accountId": "111122223333"}}


FORMATS = ["delivered", "json", "jsonl", "array", "splunk"]


@st.composite
def evidence(draw):
    count = draw(st.integers(1, 25))
    recs = [draw(record(i)) for i in range(count)]
    placed = []  # (format, late, record)
    for r in recs:
        for _ in range(draw(st.sampled_from([1, 1, 1, 2]))):  # some events delivered twice
            placed.append((draw(st.sampled_from(FORMATS)), draw(st.booleans()), r))
    times = [r["_instant"] for r in recs if r["_instant"]]
    bound = st.sampled_from(times) if times and draw(st.booleans()) else \
        st.builds(lambda h: START + timedelta(hours=h), st.integers(0, 96))  # an event's own instant is an edge
    window = sorted(draw(bound) for _ in range(2))
    if window[0] == window[1]:
        window[1] += timedelta(hours=1)
    return recs, placed, window


def write(folder: Path, placed) -> None:
    files: dict[tuple, list] = {}
    for fmt, late, r in placed:
        day = (r["_instant"] or START).date() + timedelta(days=int(late))
        files.setdefault((fmt, day if fmt == "delivered" else None), []).append(
            {k: v for k, v in r.items() if k != "_instant"})
    for n, ((fmt, day), rs) in enumerate(sorted(files.items(), key=str)):
        if fmt == "delivered":
            d = folder / f"AWSLogs/111122223333/CloudTrail/us-east-1/{day:%Y/%m/%d}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"f{n}.json.gz").write_bytes(gzip.compress(json.dumps({"Records": rs}).encode()))
        elif fmt == "json":
            (folder / f"e{n}.json").write_text(json.dumps({"Records": rs}))
        elif fmt == "jsonl":
            (folder / f"e{n}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs))
        elif fmt == "array":
            (folder / f"e{n}.json").write_text(json.dumps(rs))
        else:
            (folder / f"e{n}.json").write_text("".join(json.dumps({"result": {"_raw": json.dumps(r)}}) + "\n" for r in rs))


def reference(recs, placed, window):
    """The answers by hand: each event once, times as instants, [start, end)."""
    present = {r["eventID"]: r for _, _, r in placed}
    events = list(present.values())
    out = {}
    for key in KEYS:
        mine = [r for r in events if r["userIdentity"]["accessKeyId"] == key]
        ips = {}
        for r in mine:
            ips[r["sourceIPAddress"]] = ips.get(r["sourceIPAddress"], 0) + 1
        out[key] = {"usage": sorted(r["eventID"] for r in mine), "ips": ips,
                    "errors": sum(1 for r in mine if r["errorCode"])}
    out["window"] = sorted(r["eventID"] for r in events if r["_instant"] and window[0] <= r["_instant"] < window[1])
    return out


def answers(trail, window):
    out = {}
    for key in KEYS:
        ips = trail.ips(key)
        out[key] = {"usage": sorted(trail.usage(key)["eventid"]),
                    "ips": {a: int(n) for a, n in zip(ips["sourceipaddress"], ips["events"])},
                    "errors": int(ips["errors"].sum())}
    out["window"] = sorted(trail.window(window[0], window[1])["eventid"])
    return out


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evidence(), evidence())
def test_every_question_equals_plain_python_cold_cached_and_after_changes(first, second):
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logs, cache = Path(tmp) / "logs", Path(tmp) / "cache"
        logs.mkdir()
        recs, placed, window = first
        write(logs, placed)
        want = reference(recs, placed, window)
        with Trail(LocalEngine(logs, cache=False)) as cold:
            assert answers(cold, window) == want
        with Trail(LocalEngine(logs, cache_dir=cache)) as cached:
            assert answers(cached, window) == want  # building
            assert answers(cached, window) == want  # warm
            # the evidence changes under the same engine: new files replace the old ones
            shutil.rmtree(logs)
            logs.mkdir()
            recs2, placed2, _ = second
            renamed = [(fmt, late, {**r, "eventID": "b-" + r["eventID"]}) for fmt, late, r in placed2]
            write(logs, renamed)
            assert answers(cached, window) == reference(recs2, renamed, window)
