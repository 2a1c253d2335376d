"""A benchmark corpus in the delivered layout, with a planted key whose answers are known.

30 days x 2 accounts x 2 regions, one file per 15 minutes per account and region (11,520 files). Records are
real CloudTrail records from ../shared/datasets/invictus-aws with new times, ids, keys and IPs, so sizes and
shapes are real. The planted key's events and the truth about them are written to ``truth.json``.

    python -m tests.bench.corpus OUT --records 2000000
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT.parent / "shared" / "datasets" / "invictus-aws"
ACCOUNTS = ("111122223333", "444455556666")
REGIONS = ("us-east-1", "eu-west-1")
DAYS = 30
START = datetime(2026, 9, 1, tzinfo=timezone.utc)
SLOTS_PER_DAY = 96
PLANTED = "AKIAPLANTEDBENCH0001"
PLANTED_IPS = ("203.0.113.10", "203.0.113.11")
PLANTED_BAD_IP = "198.51.100.77"
PLANTED_PER_FILE = 0.12  # expected planted events per file: ~1,400 over the corpus, in ~11% of files
WINDOW_DAY = 14  # the one-day window asked in the benchmark: START + 14 days
# A lineage of 5 keys over 3 levels below the planted key: (key, parent, the call, the day and hours it is used).
# Each descendant is used for a few hours of one day, so its events lie in a few dozen of the 11,520 files.
LINEAGE = (
    ("ASIAPLANTEDLINEAGE01", PLANTED, "AssumeRole", 10, range(2, 6)),
    ("AKIAPLANTEDLINEAGE02", PLANTED, "CreateAccessKey", 12, range(8, 20)),
    ("ASIAPLANTEDLINEAGE03", "ASIAPLANTEDLINEAGE01", "AssumeRole", 10, range(3, 6)),
    ("ASIAPLANTEDLINEAGE04", "ASIAPLANTEDLINEAGE03", "AssumeRole", 10, range(4, 6)),
)
LINEAGE_PER_FILE = 2  # events of a lineage key in each file of its hours


def _templates() -> list[dict]:
    recs = []
    for path in sorted(TEMPLATES.rglob("*.json.gz")):
        recs.extend(json.loads(gzip.decompress(path.read_bytes()))["Records"])
    return recs


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _file(args):
    out, account, region, day, slot, n, seed = args
    rng = random.Random(seed)
    templates = _TEMPLATES
    delivered = START + timedelta(days=day, minutes=15 * slot + 15) + timedelta(minutes=rng.randint(1, 9))
    keys = [f"AKIA{rng.getrandbits(64):016X}"[:20] for _ in range(4)] + [f"ASIA{i:016d}" for i in range(8)]
    records, planted = [], []
    n_planted = sum(1 for _ in range(3) if rng.random() < PLANTED_PER_FILE / 3)
    for i in range(n + n_planted):
        r = json.loads(json.dumps(rng.choice(templates)))
        t = delivered - timedelta(seconds=rng.randint(60, 20 * 60))
        r["eventTime"] = _iso(t)
        r["eventID"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        r["awsRegion"] = region
        r["recipientAccountId"] = account
        ident = r.setdefault("userIdentity", {})
        if i < n_planted:
            ident.update({"type": "IAMUser", "accessKeyId": PLANTED, "userName": "bench-partner",
                          "arn": f"arn:aws:iam::{account}:user/bench-partner", "accountId": account})
            ip = PLANTED_BAD_IP if day == 21 and rng.random() < 0.3 else rng.choice(PLANTED_IPS)
            r["sourceIPAddress"] = ip
            r.pop("errorCode", None)
            planted.append((ip, r["eventTime"], bool(r.get("errorCode"))))
        else:
            if "accessKeyId" in ident:
                ident["accessKeyId"] = rng.choice(keys)
            if r.get("sourceIPAddress", "").count(".") == 3 and r["sourceIPAddress"][0].isdigit():
                r["sourceIPAddress"] = f"198.18.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        records.append(r)
    lineage = _lineage(rng, account, region, day, slot, delivered, templates)
    records += [r for r, _ in lineage]
    planted += [(r["sourceIPAddress"], r["eventTime"], False) for r, (_, kind, parent, *_) in lineage
                if kind == "made" and parent == PLANTED]  # the planted key's own calls
    records.sort(key=lambda r: r["eventTime"])
    rel = (f"AWSLogs/{account}/CloudTrail/{region}/{delivered:%Y/%m/%d}/"
           f"{account}_CloudTrail_{region}_{delivered:%Y%m%dT%H%MZ}_{rng.getrandbits(64):016x}.json.gz")
    path = Path(out) / "logs" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(json.dumps({"Records": records}, separators=(",", ":")).encode(), 6, mtime=0))
    day_start = _iso(START + timedelta(days=WINDOW_DAY))
    day_end = _iso(START + timedelta(days=WINDOW_DAY + 1))
    in_day = sum(1 for r in records if day_start <= r["eventTime"] < day_end)
    return len(records), planted, in_day, path.stat().st_size, [info for _, info in lineage]


def _lineage(rng, account, region, day, slot, delivered, templates):
    """The lineage's records in one file: each key's call that produced it (in the first file of its first
    hour, made by its parent), and its own events in the files of its hours (account 1, us-east-1 only)."""
    if account != ACCOUNTS[0] or region != REGIONS[0]:
        return []
    out = []
    hour, first = divmod(slot, 4)[0], slot % 4 == 0
    for key, parent, via, on, hours in LINEAGE:
        if day != on or hour not in hours:
            continue
        t = delivered - timedelta(minutes=5)
        if first and hour == hours[0]:
            r = _made(rng, key, parent, via, t, account)
            out.append((r, (key, "made", parent, via, r["eventID"], _iso(t))))
        for i in range(LINEAGE_PER_FILE):
            r = json.loads(json.dumps(rng.choice(templates)))
            when = t - timedelta(seconds=30 * (i + 1))
            r.update({"eventTime": _iso(when), "eventID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                      "awsRegion": region, "recipientAccountId": account, "sourceIPAddress": "203.0.113.66"})
            r.pop("errorCode", None)
            r["userIdentity"] = {"type": "AssumedRole" if key.startswith("ASIA") else "IAMUser", "accessKeyId": key,
                                 "arn": f"arn:aws:sts::{account}:assumed-role/bench/{key}", "accountId": account}
            out.append((r, (key, "used", None, None, r["eventID"], _iso(when))))
    return out


def _made(rng, key, parent, via, t, account) -> dict:
    out = ({"accessKey": {"accessKeyId": key, "userName": "bench-backdoor", "status": "Active"}}
           if via == "CreateAccessKey" else
           {"credentials": {"accessKeyId": key, "sessionToken": "x", "expiration": "Sep 30, 2026, 11:00:00 PM"},
            "assumedRoleUser": {"arn": f"arn:aws:sts::{account}:assumed-role/bench/{key}"}})
    arn = (f"arn:aws:iam::{account}:user/bench-partner" if parent == PLANTED else
           f"arn:aws:sts::{account}:assumed-role/bench/{parent}")
    return {"eventVersion": "1.08", "eventTime": _iso(t), "eventSource": "sts.amazonaws.com" if via != "CreateAccessKey"
            else "iam.amazonaws.com", "eventName": via, "awsRegion": "us-east-1",
            "sourceIPAddress": PLANTED_IPS[0] if parent == PLANTED else "203.0.113.66",
            "userAgent": "aws-cli/2", "requestParameters": {}, "responseElements": out,
            "eventID": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "eventType": "AwsApiCall",
            "recipientAccountId": account, "userIdentity": {
                "type": "IAMUser" if parent.startswith("AKIA") else "AssumedRole", "accessKeyId": parent,
                "arn": arn, "accountId": account}}


def _lineage_truth(items) -> dict:
    """Per key of the lineage: its parent, the call, and its own events (the calls made with it count too)."""
    out = {key: {"parent": parent, "via": via, "events": 0} for key, parent, via, *_ in LINEAGE}
    out[PLANTED] = {"parent": None, "via": None, "events": 0}
    for key, kind, parent, via, _, _ in items:
        if kind == "used":
            out[key]["events"] += 1
        else:
            out[parent]["events"] += 1  # the minting call is an event of the key that made it
    return out


def _init():
    global _TEMPLATES
    _TEMPLATES = _templates()


def build(out: Path, records: int, workers: int = 2) -> dict:
    """Write the corpus's logs under ``out/logs`` and the planted truth in ``out/truth.json``; reuse a corpus of
    that size if one is there."""
    out = Path(out)
    truth_path = out / "truth.json"
    if truth_path.exists():
        truth = json.loads(truth_path.read_text())
        if truth["records_requested"] == records:
            return truth
    files = len(ACCOUNTS) * len(REGIONS) * DAYS * SLOTS_PER_DAY
    per_file = records / files
    rng = random.Random(records)
    jobs = []
    for account in ACCOUNTS:
        for region in REGIONS:
            for day in range(DAYS):
                for slot in range(SLOTS_PER_DAY):
                    n = max(1, int(rng.gauss(per_file, per_file * 0.2)))
                    jobs.append((str(out), account, region, day, slot, n, rng.getrandbits(32)))
    total, planted, in_day, gz, lineage = 0, [], 0, 0, []
    with ProcessPoolExecutor(workers, initializer=_init) as pool:
        for n, p, d, size, li in pool.map(_file, jobs, chunksize=64):
            total, in_day, gz = total + n, in_day + d, gz + size
            planted.extend(p)
            lineage.extend(li)
    per_ip = {}
    for ip, t, err in planted:
        row = per_ip.setdefault(ip, {"events": 0, "first_seen": t, "last_seen": t})
        row["events"] += 1
        row["first_seen"], row["last_seen"] = min(row["first_seen"], t), max(row["last_seen"], t)
    truth = {"records_requested": records, "records": total, "files": len(jobs), "gzip_bytes": gz,
             "key": PLANTED, "ips": per_ip, "planted_events": len(planted),
             "window_day": _iso(START + timedelta(days=WINDOW_DAY))[:10], "window_day_events": in_day,
             "lineage": _lineage_truth(lineage)}
    truth["lineage"][PLANTED]["events"] = len(planted)
    truth_path.write_text(json.dumps(truth, indent=1))
    return truth


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--records", type=int, default=500_000)
    args = parser.parse_args()
    print(json.dumps(build(Path(args.out), args.records), indent=1))
