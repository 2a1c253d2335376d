"""Follow the key: lineage both ways, lifecycle and timeline, on real logs and on synthetic chains, expected answers
computed in plain Python over the JSON."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from trailkit import Trail, questions
from trailkit.cli import main
from trailkit.inputs import Window

from .conftest import read_records

ATTACKER = "AKIATFQR7NSC8Q4X20BJ"


def produced(record) -> str | None:
    out = record.get("responseElements") or {}
    return ((out.get("credentials") or {}).get("accessKeyId")
            or (out.get("accessKey") or {}).get("accessKeyId")) if isinstance(out, dict) else None


def used(records) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for r in {r["eventID"]: r for r in records}.values():
        key = r["userIdentity"].get("accessKeyId")
        if key:
            counts[key] += 1
    return counts


# -- real logs


def test_the_keys_the_attacker_created_and_never_used(invictus, records):
    recs = records(invictus)
    created = {produced(r) for r in recs if r["eventName"] == "CreateAccessKey"
               and r["userIdentity"].get("accessKeyId") == ATTACKER and produced(r)}
    assert len(created) == 2
    with Trail.local(invictus) as trail:
        tree = trail.lineage(ATTACKER)
    rows = tree[tree["via"] == "CreateAccessKey"]
    assert set(rows["accesskeyid"]) == created
    assert set(rows["parent"]) == {ATTACKER} and set(rows["depth"]) == {1}
    assert all(used(recs).get(k, 0) == 0 for k in created) and list(rows["events"]) == [0, 0]
    # and every temporary key the attacker minted, with its own count of events
    minted = {produced(r): r for r in recs if r["eventName"].startswith("AssumeRole")
              and r["userIdentity"].get("accessKeyId") == ATTACKER and produced(r)}
    sts = tree[tree["via"] == "AssumeRole"]
    assert set(sts["accesskeyid"]) == set(minted)
    counts = used(recs)
    assert dict(zip(sts["accesskeyid"], sts["events"])) == {k: counts.get(k, 0) for k in minted}
    assert tree.loc[tree["depth"] == 0, "events"].item() == counts[ATTACKER]


def test_the_instance_profile_session_used_from_two_networks_and_its_walk_back(invictus, records):
    recs = records(invictus)
    by_service = {produced(r): r for r in recs if r["eventName"] == "AssumeRole"
                  and r["userIdentity"].get("invokedBy") == "ec2.amazonaws.com" and produced(r)}
    sessions: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for r in recs:
        key = r["userIdentity"].get("accessKeyId")
        if key in by_service:
            sessions[r["userIdentity"]["arn"]][key].add(r["sourceIPAddress"])
    (session, keys), = [(s, k) for s, k in sessions.items() if len(set().union(*k.values())) >= 2]
    assert len(keys) == 2, session  # two temporary keys of one instance-profile session, two networks
    with Trail.local(invictus) as trail:
        for key, ips in keys.items():
            tree = trail.lineage(key)
            (row,) = tree.to_dict("records")  # nothing behind it: the call was made by a service
            assert row["depth"] == 0 and na(row["parent"]) and row["via"] == "AssumeRole"
            assert row["via_principal"] == "ec2.amazonaws.com" and row["principalarn"] == session
            assert row["via_eventid"] == by_service[key]["eventID"]
            assert set(row["sourceips"].split(", ")) == ips


def na(value) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or pd.isna(value)


def test_the_federation_token_and_its_federated_session(stratus):
    recs = json.loads((stratus / "aws.persistence.sts-federation-token.json").read_text())
    (call,) = [r for r in recs if r["eventName"] == "GetFederationToken"]
    token, root = produced(call), call["userIdentity"]["accessKeyId"]
    session_events = [r for r in recs if r["userIdentity"].get("accessKeyId") == token]
    with Trail.local(stratus) as trail:
        tree = trail.lineage(root)
        back = trail.lineage(token)
    row = tree.set_index("accesskeyid").loc[token]
    assert row["via"] == "GetFederationToken" and row["parent"] == root and row["events"] == len(session_events)
    assert row["principalarn"] == session_events[0]["userIdentity"]["arn"]  # the federated user
    assert list(back["accesskeyid"]) == [root, token] and list(back["depth"]) == [-1, 0]


# -- synthetic chains

ROOT, ONE, TWO, SESSION, NEW, LOST, FED, CONSOLE = (
    "AKIAROOTROOTROOT0001", "ASIAONEONEONEONE0001", "ASIATWOTWOTWOTWO0002", "ASIASESSIONTOKEN0003",
    "AKIANEWNEWNEWNEW0004", "ASIALOSTLOSTLOST0005", "ASIAFEDFEDFEDFED0006", "ASIACONSOLECONSOL007")
ACCOUNT = "111122223333"


def event(n: int, name: str, key: str | None, minute: int, *, arn=None, out=None, params=None, ip="198.51.100.7",
          kind="IAMUser", invoked=None, error=None) -> dict:
    identity = {"type": kind, "accountId": ACCOUNT, "arn": arn or f"arn:aws:iam::{ACCOUNT}:user/alice"}
    if key:
        identity["accessKeyId"] = key
    if invoked:
        identity = {"type": "AWSService", "invokedBy": invoked}
    record = {"eventVersion": "1.08", "userIdentity": identity, "eventTime": f"2026-10-24T10:{minute:02d}:00Z",
              "eventSource": "sts.amazonaws.com", "eventName": name, "awsRegion": "us-east-1",
              "sourceIPAddress": ip, "userAgent": "aws-cli", "requestParameters": params,
              "responseElements": out, "eventID": f"00000000-0000-0000-0000-{n:012d}", "eventType": "AwsApiCall",
              "recipientAccountId": ACCOUNT}
    if error:
        record["errorCode"] = error
    return record


def sts(key: str, expiration="Oct 24, 2026, 11:00:00 AM", arn=None) -> dict:
    out = {"credentials": {"accessKeyId": key, "sessionToken": "secret", "expiration": expiration}}
    if arn:
        out["assumedRoleUser"] = {"arn": arn}
    return out


ROLE1, ROLE2 = f"arn:aws:sts::{ACCOUNT}:assumed-role/one/s", f"arn:aws:sts::{ACCOUNT}:assumed-role/two/s"
FED_ARN = f"arn:aws:sts::{ACCOUNT}:federated-user/backdoor"
CHAIN = [
    event(1, "GetCallerIdentity", ROOT, 1),
    event(2, "AssumeRole", ROOT, 2, out=sts(ONE, arn=ROLE1)),
    event(3, "ListBuckets", ONE, 3, arn=ROLE1, kind="AssumedRole"),
    event(4, "AssumeRole", ONE, 4, arn=ROLE1, kind="AssumedRole", out=sts(TWO, arn=ROLE2)),
    event(5, "GetObject", TWO, 5, arn=ROLE2, kind="AssumedRole", ip="203.0.113.9"),
    event(6, "GetSessionToken", ROOT, 6, out=sts(SESSION)),
    event(7, "CreateAccessKey", ROOT, 7, params={"userName": "backdoor"},
          out={"accessKey": {"accessKeyId": NEW, "userName": "backdoor", "status": "Active"}}),
    event(8, "UpdateAccessKey", ROOT, 8, params={"userName": "backdoor", "accessKeyId": NEW, "status": "Inactive"}),
    event(9, "AttachUserPolicy", None, 9, invoked="iam.amazonaws.com",
          params={"userName": "backdoor", "policyArn": "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"}),
    event(10, "DeleteAccessKey", ROOT, 10, params={"userName": "backdoor", "accessKeyId": NEW}),
    # a cycle: the second role's session "mints" the first key again (a replay or a broken log): not followed twice
    event(11, "AssumeRole", TWO, 11, arn=ROLE2, kind="AssumedRole", out=sts(ONE, arn=ROLE1)),
    # a temporary key whose minting is not in the logs: a missing link
    event(12, "DescribeInstances", LOST, 12, arn=ROLE1, kind="AssumedRole"),
    # a federation token, and the console session of its federated user (keys of its own)
    event(13, "GetFederationToken", ROOT, 13, out={**sts(FED), "federatedUser": {"arn": FED_ARN}}),
    event(14, "ConsoleLogin", None, 14, arn=FED_ARN, kind="FederatedUser"),
    event(15, "DescribeInstances", CONSOLE, 15, arn=FED_ARN, kind="FederatedUser"),
    event(16, "RunInstances", CONSOLE, 16, arn=FED_ARN, kind="FederatedUser"),
    # a refused AssumeRole produces nothing
    event(17, "AssumeRole", ROOT, 17, error="AccessDenied"),
]


# the cache's path, and the one pass over the files without a cache (trailkit.engines.follow)
BOTH_PATHS = pytest.mark.parametrize("cache", [True, False], ids=["cache", "one-pass"])


@pytest.fixture
def chain_logs(tmp_path) -> Path:
    """The chain delivered, and delivered again in another layout (an export of JSON lines)."""
    day = tmp_path / "logs" / f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/10/24"
    day.mkdir(parents=True)
    (day / f"{ACCOUNT}_CloudTrail_us-east-1_20261024T1000Z_chain.json.gz").write_bytes(
        gzip.compress(json.dumps({"Records": CHAIN}).encode()))
    export = tmp_path / "logs" / "exports"
    export.mkdir()
    (export / "copy.jsonl").write_text("".join(json.dumps(r) + "\n" for r in CHAIN))
    return tmp_path / "logs"


def by_key(frame):
    return {row["accesskeyid"]: row for row in frame.to_dict("records")}


@BOTH_PATHS
def test_a_chain_forwards(chain_logs, cache):
    with Trail.local(chain_logs, cache=cache) as trail:
        tree = by_key(trail.lineage(ROOT))
    assert na(tree[ROOT]["parent"]) and na(tree[ROOT]["via"]) and tree[ROOT]["depth"] == 0
    assert {k: (r["parent"], r["via"], r["depth"]) for k, r in tree.items() if k != ROOT} == {
        ONE: (ROOT, "AssumeRole", 1), TWO: (ONE, "AssumeRole", 2),
        SESSION: (ROOT, "GetSessionToken", 1), NEW: (ROOT, "CreateAccessKey", 1),
        FED: (ROOT, "GetFederationToken", 1), CONSOLE: (FED, "ConsoleLogin", 2)}
    # each event once, though the chain was delivered twice (and the cycle not walked again)
    assert {k: r["events"] for k, r in tree.items()} == {ROOT: 8, ONE: 2, TWO: 2, SESSION: 0, NEW: 0, FED: 0, CONSOLE: 2}
    assert tree[TWO]["sourceips"] == "198.51.100.7, 203.0.113.9" and tree[ONE]["principalarn"] == ROLE1
    assert tree[TWO]["via_eventid"].endswith("000000000004") and str(tree[ONE]["expiration"]) == "2026-10-24 11:00:00+00:00"


@BOTH_PATHS
def test_a_chain_backwards_a_depth_limit_and_a_missing_link(chain_logs, cache):
    with Trail.local(chain_logs, cache=cache) as trail:
        back = trail.lineage(TWO)
        shallow = trail.lineage(ROOT, depth=1)
        lost = trail.lineage(LOST)
    assert list(zip(back["accesskeyid"], back["depth"])) == [(ROOT, -2), (ONE, -1), (TWO, 0)]
    assert set(shallow["accesskeyid"]) == {ROOT, ONE, SESSION, NEW, FED} and max(shallow["depth"]) == 1
    (row,) = lost.to_dict("records")
    assert na(row["parent"]) and na(row["via"]) and row["events"] == 1


@BOTH_PATHS
def test_the_lifecycle_of_a_created_key_and_of_a_minted_one(chain_logs, cache):
    with Trail.local(chain_logs, cache=cache) as trail:
        life = trail.lifecycle(NEW)
        minted = trail.lifecycle(ONE)
    assert list(life["eventname"]) == ["CreateAccessKey", "UpdateAccessKey", "AttachUserPolicy", "DeleteAccessKey"]
    assert list(life["detail"][:3]) == ["status Active", "status Inactive",
                                        "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2 attached to user backdoor"]
    assert life["bykey"][0] == ROOT and life["by"][2] == "iam.amazonaws.com"
    assert list(minted["eventname"]) == ["AssumeRole"] and minted["detail"][0] == "expires 2026-10-24T11:00:00Z"


@BOTH_PATHS
def test_the_timeline_merges_every_key_once_oldest_first(chain_logs, cache):
    with Trail.local(chain_logs, cache=cache) as trail:
        timeline = trail.timeline(ROOT)
    lineage_keys = {ROOT, ONE, TWO, SESSION, NEW, FED, CONSOLE}
    want = sorted({r["eventID"]: r for r in CHAIN if r["userIdentity"].get("accessKeyId") in lineage_keys}.values(),
                  key=lambda r: (r["eventTime"], r["eventID"]))
    assert list(timeline["eventid"]) == [r["eventID"] for r in want]
    depth = {ROOT: 0, ONE: 1, TWO: 2, CONSOLE: 2}
    assert list(timeline["depth"]) == [depth[r["userIdentity"]["accessKeyId"]] for r in want]


def test_the_commands(chain_logs, capsys):
    assert main(["chain", ROOT, "--logs", str(chain_logs), "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("accesskeyid,parent,via,via_time,via_eventid,via_principal,depth,principalarn")
    assert len(out) == 1 + 7
    assert main(["chain", ROOT, "--logs", str(chain_logs)]) == 0
    text = capsys.readouterr().out
    assert f"└─ {ROOT} (obtained outside these logs" in text and f"{CONSOLE} (ConsoleLogin by {FED_ARN}" in text
    assert main(["timeline", ROOT, "--logs", str(chain_logs), "--format", "timesketch"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 14 and {"message", "datetime", "timestamp_desc", "eventname", "depth"} <= set(lines[0])
    assert lines[0]["datetime"] == "2026-10-24T10:01:00+00:00" and "GetCallerIdentity" in lines[0]["message"]
    assert main(["lifecycle", NEW, "--logs", str(chain_logs), "--format", "json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    assert main(["owner", NEW, "--logs", str(chain_logs)]) == 0
    assert "lifecycle:" in capsys.readouterr().out
    assert main(["chain", "AKIA", "--logs", str(chain_logs)]) == 2
    assert main(["chain", ROOT, "--depth", "-1", "--logs", str(chain_logs)]) == 2
    assert main(["chain", TWO, "--depth", "0", "--logs", str(chain_logs), "--format", "csv"]) == 0  # ancestors only
    assert [line.split(",")[0] for line in capsys.readouterr().out.splitlines()[1:]] == [ROOT, ONE, TWO]
    with pytest.raises(SystemExit) as refused:  # Timesketch's format is the timeline's only
        main(["usage", ROOT, "--format", "timesketch", "--logs", str(chain_logs)])
    assert refused.value.code == 2


@pytest.mark.parametrize("partitioned", [False, True], ids=["flat", "partitioned"])
def test_the_graph_sql_through_athena(moto, partitioned):
    import os

    from trailkit.engines.athena import AthenaConfig, AthenaEngine

    from .conftest import GOLDEN

    moto.table("security", "cloudtrail_logs")
    links = questions.links(Window.parse("2026-10-24", "2026-10-25"))
    moto.seed([(c, "varchar") for c in links.contract.names], [
        ["link", ONE, ROOT, "AssumeRole", "2026-10-24T10:02:00Z", "e2", "arn:aws:iam::1:user/a", ROLE1, None,
         "Oct 24, 2026, 11:00:00 AM", None, None, "1.2.3.4", "111122223333"]])
    figures = questions.figures([ROOT, ONE])
    moto.seed([(c, "bigint" if c == "events" else "varchar") for c in figures.contract.names], [
        [ROOT, "arn:aws:iam::1:user/a", "a", "111122223333", "3", "2026-10-24T10:01:00Z", "2026-10-24T10:02:00Z",
         "1.2.3.4"]])
    engine = AthenaEngine(AthenaConfig.resolve(database="security", table="cloudtrail_logs",
                                               output_location="s3://trailkit-results/x/", region="us-east-1",
                                               partition_column="timestamp" if partitioned else None))
    tree = Trail(engine).lineage(ROOT, "2026-10-24", "2026-10-25")
    sent = moto.sent()
    for name, text in zip(("links", "figures"), sent):
        golden = GOLDEN / f"athena_{name}{'_partitioned' if partitioned else ''}.sql"
        if os.environ.get("UPDATE_GOLDEN"):
            golden.write_text(text)
        assert text == golden.read_text()
    assert len(sent) == 2 and f"IN ('{ROOT}', '{ONE}')" in sent[1]
    assert list(tree["accesskeyid"]) == [ROOT, ONE] and list(tree["events"]) == [3, 0]


# -- what a hostile reading found


def write_day(folder: Path, name: str, records: list, wrap=None) -> Path:
    day = folder / f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/10/24"
    day.mkdir(parents=True, exist_ok=True)
    body = wrap(records) if wrap else {"Records": records}
    (day / name).write_bytes(gzip.compress(json.dumps(body).encode()))
    return folder


def test_event_history_exports_keep_their_links(tmp_path):
    """lookup-events output keeps each record as text: its links are found all the same."""
    logs = write_day(tmp_path, "history.json.gz", CHAIN, wrap=lambda rs: {"Events": [
        {"EventId": r["eventID"], "CloudTrailEvent": json.dumps(r)} for r in rs]})
    with Trail.local(logs, cache=False) as trail:
        tree = by_key(trail.lineage(ROOT))
        life = trail.lifecycle(NEW)
    assert {ONE, TWO, SESSION, NEW, FED, CONSOLE} <= set(tree) and tree[TWO]["parent"] == ONE
    assert list(life["eventname"]) == ["CreateAccessKey", "UpdateAccessKey", "AttachUserPolicy", "DeleteAccessKey"]


def test_a_key_written_with_escapes_beside_another_is_found(tmp_path):
    records = [event(1, "AssumeRole", ROOT, 1, out=sts(ONE)), event(2, "ListBuckets", ONE, 2),
               event(3, "AssumeRole", ROOT, 3, out=sts(TWO)), event(4, "GetObject", TWO, 4)]
    text = json.dumps({"Records": records}).replace(f'"accessKeyId": "{TWO}"}}, "eventTime": "2026-10-24T10:04',
                                                     f'"accessKeyId": "\\u0041{TWO[1:]}"}}, "eventTime": "2026-10-24T10:04')
    assert "\\u0041" in text
    day = tmp_path / f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/10/24"
    day.mkdir(parents=True)
    (day / "escaped.json.gz").write_bytes(gzip.compress(text.encode()))
    with Trail.local(tmp_path, cache=False) as trail:
        tree = by_key(trail.lineage(ROOT))
        assert tree[TWO]["events"] == 1 and tree[ONE]["events"] == 1
        assert set(trail.timeline(ROOT)["eventid"]) == {r["eventID"] for r in records}


def test_two_tokens_for_one_federated_name_are_told_apart_by_time(tmp_path):
    partner, leaked, console = "AKIAPARTNERPARTNER01", "AKIALEAKEDLEAKEDLK02", "ASIACONSOLEATTACKER3"
    name = f"arn:aws:sts::{ACCOUNT}:federated-user/ops"
    tokens = {"ASIATOKENPARTNER0001": partner, "ASIATOKENLEAKED00002": leaked}
    records = [event(1, "GetFederationToken", partner, 1, out={**sts("ASIATOKENPARTNER0001"), "federatedUser": {"arn": name}}),
               event(2, "GetFederationToken", leaked, 30, out={**sts("ASIATOKENLEAKED00002"), "federatedUser": {"arn": name}}),
               event(3, "RunInstances", console, 32, arn=name, kind="FederatedUser", ip="198.51.100.66")]
    with Trail.local(write_day(tmp_path, "f.json.gz", records), cache=False) as trail:
        leaked_tree = by_key(trail.lineage(leaked))
        partner_tree = by_key(trail.lineage(partner))
    assert leaked_tree[console]["parent"] == "ASIATOKENLEAKED00002" and console not in partner_tree
    assert {k for k in tokens if k in leaked_tree} == {"ASIATOKENLEAKED00002"}


def test_quarantine_of_a_namesake_in_another_account_is_not_the_keys(tmp_path):
    other = dict(event(9, "AttachUserPolicy", None, 9, invoked="iam.amazonaws.com",
                       params={"userName": "backdoor", "policyArn": "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"}),
                 recipientAccountId="444455556666")
    records = [r for r in CHAIN if r["eventID"] != CHAIN[8]["eventID"]] + [other]
    with Trail.local(write_day(tmp_path, "q.json.gz", records), cache=False) as trail:
        assert "AttachUserPolicy" not in set(trail.lifecycle(NEW)["eventname"])


def test_evidence_that_arrives_is_in_the_next_lineage(chain_logs):
    with Trail.local(chain_logs) as trail:
        assert trail.lineage(TWO)["events"].iloc[-1] == 2
        write_day(chain_logs, "late.json.gz", [event(99, "PutObject", TWO, 50, arn=ROLE2, kind="AssumedRole")])
        assert trail.lineage(TWO)["events"].iloc[-1] == 3


def test_windows_say_no_events_in_the_window_and_trees_survive_cycles(chain_logs, capsys):
    assert main(["chain", ROOT, "--logs", str(chain_logs), "--start", "2026-10-24T10:00:00Z",
                 "--end", "2026-10-24T10:04:30Z"]) == 0
    out = capsys.readouterr().out
    assert "no events in the window" in out and "never used" not in out
    assert main(["chain", ONE, "--logs", str(chain_logs)]) == 0  # ONE and TWO mint each other: a cycle
    out = capsys.readouterr().out
    assert f"{ONE} (AssumeRole" in out and f"{TWO} (AssumeRole" in out and "<= asked" in out


def test_timesketch_leaves_out_events_without_a_time(tmp_path, capsys):
    records = [event(1, "GetCallerIdentity", ROOT, 1), dict(event(2, "ListBuckets", ROOT, 2), eventTime="soon")]
    assert main(["timeline", ROOT, "--logs", str(write_day(tmp_path, "t.json.gz", records)),
                 "--format", "timesketch"]) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 1 and lines[0]["datetime"] and "1 event(s) without a usable time" in err


def test_a_big_lineage_keeps_the_key_asked_in_its_pictures():
    import pandas as pd

    from trailkit import plots
    from trailkit.lineage import nearest

    keys = [f"ASIA{i:016d}" for i in range(60)]
    frame = pd.DataFrame({"accesskeyid": keys, "parent": [None] + keys[:-1], "via": ["AssumeRole"] * 60,
                          "depth": list(range(-55, 5)), "events": [1] * 60})
    shown = nearest(frame, 40)
    assert keys[55] in set(shown["accesskeyid"]) and keys[54] in set(shown["accesskeyid"])
    ax = plots.lineage_tree(frame)
    assert any(keys[55] in t.get_text() for t in ax.texts)


def test_sentinel_rows_keep_their_links(tmp_path):
    """Sentinel's AWSCloudTrail rows keep request parameters and response elements as JSON text."""
    rows = [{"TimeGenerated": r["eventTime"], "EventName": r["eventName"], "EventSource": r["eventSource"],
             "AwsEventId": r["eventID"], "SourceIpAddress": r["sourceIPAddress"], "AWSRegion": r["awsRegion"],
             "UserIdentityAccessKeyId": r["userIdentity"].get("accessKeyId"), "UserIdentityArn": r["userIdentity"].get("arn"),
             "RequestParameters": json.dumps(r["requestParameters"]) if r["requestParameters"] else "",
             "ResponseElements": json.dumps(r["responseElements"]) if r["responseElements"] else "",
             "RecipientAccountId": ACCOUNT} for r in CHAIN[:7]]
    (tmp_path / "sentinel.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with Trail.local(tmp_path, cache=False) as trail:
        tree = by_key(trail.lineage(ROOT))
        minted = trail.minted(ROOT)
    assert {ONE, TWO, SESSION, NEW} <= set(tree) and ONE in set(minted["mintedkeyid"])


def test_a_watched_unchanged_folder_reads_its_links_once(chain_logs):
    with Trail.local(chain_logs) as trail:
        first = trail.lineage(ROOT)
        asked = len(trail.engine.history)
        again = trail.lineage(ROOT)
        assert len(trail.engine.history) == asked  # nothing asked again: the watch saw no change
    with Trail.local(chain_logs, watch=False) as trail:  # unwatched: asked afresh, same answer
        fresh = trail.lineage(ROOT)
    assert first.equals(again) and first.equals(fresh)


# -- the one pass without a cache (trailkit.engines.follow): keys found late are looked for again


def deliver(folder: Path, region: str, stamp: str, records: list) -> None:
    """``records`` in a CloudTrail file of ``region`` delivered at ``stamp`` (YYYYMMDDTHHMM)."""
    day = folder / f"AWSLogs/{ACCOUNT}/CloudTrail/{region}/{stamp[:4]}/{stamp[4:6]}/{stamp[6:8]}"
    day.mkdir(parents=True, exist_ok=True)
    (day / f"{ACCOUNT}_CloudTrail_{region}_{stamp}Z_{len(list(day.iterdir()))}.json.gz").write_bytes(
        gzip.compress(json.dumps({"Records": records}).encode()))


def at(record: dict, when: str) -> dict:
    return {**record, "eventTime": when}


def test_one_pass_finds_a_key_used_in_a_file_read_before_its_making(tmp_path):
    """The AssumeRole that made ONE is delivered late, in another region's file; ONE's first calls are in a file
    delivered before it (read first): they are looked for again once ONE is known."""
    deliver(tmp_path, "eu-west-1", "20261024T1005", [at(event(1, "ListBuckets", ONE, 3, arn=ROLE1, kind="AssumedRole"),
                                                        "2026-10-24T10:03:00Z")])
    deliver(tmp_path, "us-east-1", "20261024T1030", [event(2, "AssumeRole", ROOT, 2, out=sts(ONE, arn=ROLE1))])
    deliver(tmp_path, "us-east-1", "20261024T1040", [event(3, "GetObject", ONE, 35, arn=ROLE1, kind="AssumedRole"),
                                                     event(4, "AssumeRole", ONE, 36, arn=ROLE1, kind="AssumedRole",
                                                           out=sts(TWO, arn=ROLE2))])
    deliver(tmp_path, "eu-west-1", "20261024T0900", [at(event(5, "GetObject", TWO, 0), "2026-10-24T08:58:00Z")])
    deliver(tmp_path, "eu-west-1", "20261024T1050", [event(6, "GetObject", TWO, 45, arn=ROLE2, kind="AssumedRole")])
    records = [r for path in tmp_path.rglob("*.json.gz") for r in json.loads(gzip.decompress(path.read_bytes()))["Records"]]
    counts = used(records)
    made = {produced(r): r["eventTime"] for r in records if produced(r)}
    # a genuine key is never used before the call that made it; one pass looks for it from an hour before that
    # (README "How a lineage is built"): TWO's record timed 08:58, 98 minutes before its making, is not its event
    def instant(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    plausible = used([r for r in records if r["userIdentity"].get("accessKeyId") not in made or
                      instant(r["eventTime"]) >= instant(made[r["userIdentity"]["accessKeyId"]]) - timedelta(hours=1)])
    with Trail.local(tmp_path, cache=False) as trail:
        tree = by_key(trail.lineage(ROOT))
        followed = trail.engine._followed
    with Trail.local(tmp_path) as cached:
        again = by_key(cached.lineage(ROOT))
    assert {k: (r["parent"], r["events"]) for k, r in tree.items() if k != ROOT} == {
        ONE: (ROOT, plausible[ONE]), TWO: (ONE, plausible[TWO])} and plausible[ONE] == 3 and plausible[TWO] == 1
    # ONE's first call, in a file read before ONE was known, was read again; the cache counts every call
    assert followed is not None and followed.reread >= 1
    assert {k: r["events"] for k, r in again.items()} == {ROOT: counts[ROOT], ONE: counts[ONE], TWO: counts[TWO]}


def test_one_pass_walks_back_to_a_parent_used_before_it_made_the_key(tmp_path):
    """ONE is asked; its maker ROOT is known only when the pass meets ONE's making, after ROOT's earlier calls were
    read: they are read again (ROOT's own making is not in the logs, so every earlier file is)."""
    deliver(tmp_path, "us-east-1", "20261024T0100", [at(event(1, "ListUsers", ROOT, 0), "2026-10-24T00:55:00Z")])
    deliver(tmp_path, "eu-west-1", "20261024T0500", [at(event(2, "ListRoles", ROOT, 0), "2026-10-24T04:50:00Z"),
                                                     at(event(3, "ListBuckets", LOST, 0), "2026-10-24T04:51:00Z")])
    deliver(tmp_path, "us-east-1", "20261024T1005", [event(4, "AssumeRole", ROOT, 2, out=sts(ONE, arn=ROLE1)),
                                                     event(5, "GetObject", ONE, 3, arn=ROLE1, kind="AssumedRole")])
    deliver(tmp_path, "us-east-1", "20261024T1100", [at(event(6, "ListUsers", ROOT, 0), "2026-10-24T10:58:00Z")])
    records = [r for path in tmp_path.rglob("*.json.gz") for r in json.loads(gzip.decompress(path.read_bytes()))["Records"]]
    counts = used(records)
    with Trail.local(tmp_path, cache=False) as trail:
        back = trail.lineage(ONE)
        timeline = trail.timeline(ONE)
    assert list(zip(back["accesskeyid"], back["depth"], back["events"])) == [(ROOT, -1, counts[ROOT]),
                                                                             (ONE, 0, counts[ONE])]
    assert counts[ROOT] == 4 and sorted(timeline["eventid"]) == sorted(
        r["eventID"] for r in records if r["userIdentity"].get("accessKeyId") in {ROOT, ONE})


def test_one_pass_keeps_a_key_produced_twice_with_its_first_maker(tmp_path):
    """Two calls return the same key (a replayed or forged record): it is the first maker's, as with the cache."""
    deliver(tmp_path, "us-east-1", "20261024T1010", [event(1, "AssumeRole", LOST, 2, out=sts(ONE, arn=ROLE1))])
    deliver(tmp_path, "us-east-1", "20261024T1020", [event(2, "AssumeRole", ROOT, 12, out=sts(ONE, arn=ROLE1)),
                                                     event(3, "AssumeRole", ROOT, 13, out=sts(TWO, arn=ROLE2)),
                                                     event(4, "GetObject", ONE, 14, arn=ROLE1, kind="AssumedRole")])
    with Trail.local(tmp_path, cache=False) as trail:
        one_pass = trail.lineage(ROOT)
    with Trail.local(tmp_path) as cached:
        cache = cached.lineage(ROOT)
    assert list(one_pass["accesskeyid"]) == [ROOT, TWO] and one_pass.equals(cache)


def test_one_pass_answers_the_links_and_figures_from_what_it_found(chain_logs):
    """Without a cache, a lineage reads the files once: the links and the keys' figures come from the pass."""
    with Trail.local(chain_logs, cache=False) as trail:
        trail.lineage(ROOT)
        followed = trail.engine._followed
        assert followed is not None and {ROOT, ONE, TWO, SESSION, NEW, FED} <= followed.keys
        asked = [stats.sql for stats in trail.engine.history]
    assert len(asked) >= 2  # the links, then the figures: both answered without another pass
    assert followed.reread == 0 or followed.reread <= len(followed.paths)


def compact(folder: Path, region: str, stamp: str, records: list) -> None:
    """As ``deliver``, written as CloudTrail writes it (no spaces): the pass's fast path."""
    deliver(folder, region, stamp, [])
    (path,) = [p for p in folder.rglob(f"*_{region}_{stamp}Z_*.json.gz")]
    path.write_bytes(gzip.compress(json.dumps({"Records": records}, separators=(",", ":")).encode()))


def first_makers(records) -> dict[str, str | None]:
    """Each produced key's first successful maker (by eventTime, then eventID): the caller's key."""
    calls = sorted((r["eventTime"], r["eventID"], r) for r in records if produced(r) and not r.get("errorCode"))
    out: dict = {}
    for _, _, r in calls:
        out.setdefault(produced(r), r["userIdentity"].get("accessKeyId"))
    return out


def delivered_records(folder: Path) -> list[dict]:
    return [r for p in folder.rglob("*.json.gz") for r in json.loads(gzip.decompress(p.read_bytes()))["Records"]]


def as_their_makers(folder: Path, keys) -> dict:
    """Each of ``keys``'s lineage is what the first makers (plain Python) say, on the one pass and with the cache
    alike; returns those makers."""
    makers = first_makers(delivered_records(folder))
    for key in keys:
        with Trail.local(folder, cache=False) as trail:
            one_pass = trail.lineage(key)
        with Trail.local(folder) as cached:
            cache = cached.lineage(key)
        assert set(one_pass["accesskeyid"]) == lineage_of(key, makers) and one_pass.equals(cache)
    return makers


def lineage_of(key: str, makers: dict) -> set:
    """``key``, its ancestors and its descendants under ``makers`` (plain Python)."""
    out, todo = {key}, [key]
    while todo:
        k = todo.pop()
        for child, parent in makers.items():
            if parent == k and child not in out:
                out.add(child)
                todo.append(child)
    k = key
    while makers.get(k) and makers[k] not in out:
        k = makers[k]
        out.add(k)
    return out


@pytest.mark.parametrize("delivered", ["20261024T0810", "20261024T1120"], ids=["long-before", "late"])
def test_one_pass_reads_an_earlier_maker(tmp_path, delivered):
    """ROOT's AssumeRole returns ONE at 10:15; a call of LOST had returned ONE at 08:05, delivered long before
    (read before ROOT's file, and more than an hour before it) or late (read after it): ONE is LOST's, on the one
    pass as with the cache."""
    compact(tmp_path, "us-east-1", "20261024T1020", [event(1, "AssumeRole", ROOT, 15, out=sts(ONE, arn=ROLE1)),
                                                     event(2, "GetObject", ONE, 16, arn=ROLE1, kind="AssumedRole")])
    earlier = at(event(3, "AssumeRole", LOST, 5, out=sts(ONE, arn=ROLE1)), "2026-10-24T08:05:00Z")
    # a caller with a Lambda function's credentials: ``credentialsIssuedTo`` is not a call's credentials
    earlier["userIdentity"]["inScopeOf"] = {"issuerType": "AWS::Lambda::Function",
                                            "credentialsIssuedTo": "arn:aws:lambda:us-east-1:111122223333:function:f"}
    compact(tmp_path, "eu-west-1", delivered, [earlier])
    compact(tmp_path, "us-west-2", "20261024T1030", [event(4, "AssumeRole", ONE, 17, out=sts(TWO, arn=ROLE2))])
    makers = as_their_makers(tmp_path, (ROOT, LOST))
    assert lineage_of(ROOT, makers) == {ROOT} and lineage_of(LOST, makers) == {LOST, ONE, TWO}


def test_one_pass_reads_a_maker_it_could_not_note(tmp_path):
    """A call whose credentials hold the key after a long token (too far to be read from the bytes): its file is
    read again for every key the walk asks about, so ONE is still its first maker's."""
    long_token = {"credentials": {"sessionToken": "T" * 6000, "accessKeyId": ONE, "expiration": "Oct 24, 2026"}}
    compact(tmp_path, "eu-west-1", "20261024T0810", [at(event(1, "GetSessionToken", LOST, 5, out=long_token),
                                                        "2026-10-24T08:05:00Z")])
    compact(tmp_path, "us-east-1", "20261024T1020", [event(2, "AssumeRole", ROOT, 15, out=sts(ONE, arn=ROLE1)),
                                                     event(3, "AssumeRole", ONE, 16, out=sts(TWO, arn=ROLE2))])
    makers = first_makers(delivered_records(tmp_path))
    with Trail.local(tmp_path, cache=False) as trail:
        mine, theirs = trail.lineage(ROOT), trail.lineage(LOST)
    assert set(mine["accesskeyid"]) == lineage_of(ROOT, makers) == {ROOT}
    assert {r["accesskeyid"]: r["parent"] for r in theirs.to_dict("records") if r["depth"] > 0} == \
        {k: makers[k] for k in lineage_of(LOST, makers) - {LOST}} == {ONE: LOST, TWO: ONE}


def test_one_pass_counts_what_the_cache_counts(chain_logs):
    """The pass meets a record again when it looks for a key it just added: counted once, so the copies the
    questions report are the delivered ones (the chain is delivered twice), as with the cache."""
    copies = {}
    for cache in (True, False):
        with Trail.local(chain_logs, cache=cache) as trail:
            trail.lineage(ROOT)
            copies[cache] = [(stats.rows, stats.duplicates) for stats in trail.engine.history[-2:]]
    assert copies[False] == copies[True] and all(n > 0 for _, n in copies[True])


def test_one_pass_is_not_misled_by_a_field_named_like_credentials(tmp_path):
    """``inScopeOf.credentialsIssuedTo`` (a call made with a Lambda function's credentials) is not a call's
    credentials: whatever key follows it, the first maker of ONE (LOST, 08:05) is still read, not ROOT's 10:15."""
    lambda_call = at(event(1, "ListBuckets", "ASIALAMBDALAMBDA0009", 0), "2026-10-24T08:29:00Z")
    lambda_call["userIdentity"]["inScopeOf"] = {
        "issuerType": "AWS::Lambda::Function", "credentialsIssuedTo": "arn:aws:lambda:us-east-1:111122223333:function:f"}
    lambda_call.pop("responseElements")
    compact(tmp_path, "eu-west-1", "20261024T0810", [at(event(2, "AssumeRole", LOST, 5, out=sts(ONE, arn=ROLE1)),
                                                        "2026-10-24T08:05:00Z")])
    compact(tmp_path, "us-west-2", "20261024T0840", [lambda_call, at(event(3, "GetObject", ONE, 0, arn=ROLE1,
                                                                           kind="AssumedRole"), "2026-10-24T08:30:00Z")])
    compact(tmp_path, "us-east-1", "20261024T1020", [event(4, "AssumeRole", ROOT, 15, out=sts(ONE, arn=ROLE1))])
    makers = as_their_makers(tmp_path, (ROOT, LOST))
    assert makers[ONE] == LOST and used(delivered_records(tmp_path))[ONE] == 1


def test_a_lineage_reads_one_listing_of_the_files(chain_logs, monkeypatch):
    """The lineage's questions (its pass, links and figures) see the same files: the folder is listed once for
    them; a question asked afterwards lists it again (evidence may have arrived)."""
    from trailkit.engines import local

    listed = []
    real = local.listing
    monkeypatch.setattr(local, "listing", lambda *a, **k: listed.append(a[0]) or real(*a, **k))
    with Trail.local(chain_logs, cache=False, watch=False) as trail:
        trail.lineage(ROOT)
        asked = len(trail.engine.history)
        once = len(listed)
        trail.usage(ROOT)
    assert asked >= 2 and once == 1 and len(listed) == 2


def test_one_pass_follows_a_console_session_both_ways(tmp_path):
    """A federation token's console session signs with keys of its own and mints another: asked from the root,
    the token, the session or what it minted, the one pass gives the cache's lineage (the session's key is tied to
    the token by its federated user, in whichever direction the walk goes)."""
    minted = "ASIAMINTEDBYCONSOL08"
    compact(tmp_path, "us-east-1", "20261024T1005", [
        event(1, "GetFederationToken", ROOT, 1, out={**sts(FED), "federatedUser": {"arn": FED_ARN}})])
    compact(tmp_path, "us-east-1", "20261024T1010", [
        event(2, "DescribeInstances", CONSOLE, 3, arn=FED_ARN, kind="FederatedUser"),
        event(3, "AssumeRole", CONSOLE, 4, arn=FED_ARN, kind="FederatedUser", out=sts(minted, arn=ROLE1)),
        event(4, "ListBuckets", minted, 5, arn=ROLE1, kind="AssumedRole")])
    expected = {ROOT: (None, None), FED: (ROOT, "GetFederationToken"), CONSOLE: (FED, "ConsoleLogin"),
                minted: (CONSOLE, "AssumeRole")}
    for key in expected:
        with Trail.local(tmp_path, cache=False) as trail:
            one_pass = trail.lineage(key)
        with Trail.local(tmp_path) as cached:
            cache = cached.lineage(key)
        assert one_pass.equals(cache), key
        assert {r["accesskeyid"]: (None if na(r["parent"]) else r["parent"], None if na(r["via"]) else r["via"])
                for r in one_pass.to_dict("records")} == expected, key


def test_one_pass_counts_a_record_once_however_it_was_read(tmp_path):
    """A file whose JSON escapes a field name is parsed whole when the pass looks for names, and cut out when it
    looks for a key alone: the same record either way, counted once (no copies where the cache sees none)."""
    compact(tmp_path, "us-east-1", "20261024T1205", [event(1, "AssumeRole", LOST, 1, out=sts(ONE, arn=ROLE1)),
                                                     event(2, "ListBuckets", LOST, 7)])
    (path,) = tmp_path.rglob("*_20261024T1205Z_*.json.gz")
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()).replace(b'"eventName"', b'"\\u0065ventName"')))
    compact(tmp_path, "us-east-1", "20261024T1035", [event(3, "GetObject", ONE, 40, arn=ROLE1, kind="AssumedRole")])
    copies = {}
    for cache in (True, False):
        with Trail.local(tmp_path, cache=cache) as trail:
            lineage = trail.lineage(ONE)
            copies[cache] = [stats.duplicates for stats in trail.engine.history[-2:]]
        assert list(zip(lineage["accesskeyid"], lineage["events"])) == [(LOST, 2), (ONE, 1)]
    assert copies[False] == copies[True] == [0, 0]


# -- the pass on forked workers (trailkit.engines.forked): a fresh interpreter, as from the shell (pytest's own
# process may have threads, where forking is refused and the pass runs on threads)
_ON_WORKERS = r"""
import json, sys
from trailkit import Trail
from trailkit.engines import forked

runs, run = [], forked.run
forked.run = lambda *a, **k: runs.append(run(*a, **k)) or runs[-1]
folder, key, on_threads = sys.argv[1], sys.argv[2], sys.argv[3] == "threads"
if on_threads:
    forked.usable = lambda workers: False
with Trail.local(folder, cache=False) as trail:
    trail.engine.threads = 2
    rows = trail.lineage(key).to_dict("records")
print(json.dumps({"workers": sum(r is not None for r in runs), "reread": trail.engine._followed.reread,
                  "rows": {r["accesskeyid"]: [r["parent"], int(r["events"])] for r in rows}}))
"""


def test_one_pass_on_forked_workers_is_the_pass_on_threads(tmp_path):
    """Two workers share 150 files (batches of 32): keys made in one worker's files are used in the other's, so
    they tell each other; SESSION, returned to ROOT late, was first another key's (noted by a worker, read after
    the pass). The lineage and its counts are plain Python's, and the same on threads."""
    noise = [f"AKIANOISENOISE{n:06d}" for n in range(5)]
    plan = {10: [event(5, "GetSessionToken", noise[1], 5, out=sts(SESSION))],
            50: [event(6, "GetSessionToken", ROOT, 6, out=sts(SESSION))],
            30: [event(1, "AssumeRole", ROOT, 1, out=sts(ONE, arn=ROLE1))],
            70: [event(2, "AssumeRole", ONE, 2, arn=ROLE1, kind="AssumedRole", out=sts(TWO, arn=ROLE2))],
            100: [event(3, "CreateAccessKey", TWO, 3, arn=ROLE2, kind="AssumedRole",
                        out={"accessKey": {"accessKeyId": NEW, "userName": "backdoor", "status": "Active"}})],
            120: [event(4, "AssumeRole", noise[0], 4, out=sts(LOST))]}
    n = 10
    for i in range(150):
        hour, minute = divmod(i * 5, 60)
        stamp = f"20261024T{hour:02d}{minute:02d}"
        when = f"2026-10-24T{hour:02d}:{minute:02d}:00Z"
        users = [ROOT] + [k for k, since in ((ONE, 30), (TWO, 70), (NEW, 100), (LOST, 120), (SESSION, 60))
                          if i > since]
        records = [at(r, when) for r in plan.get(i, [])]
        for who in users + noise:
            n += 1
            records.append(at(event(n, "GetObject", who, 0), when))
        compact(tmp_path, ("us-east-1", "eu-west-1")[i % 2], stamp, records)
    recs = delivered_records(tmp_path)
    makers, counts = first_makers(recs), used(recs)
    want = {k: [makers.get(k), counts.get(k, 0)] for k in lineage_of(ROOT, makers)}
    assert set(want) == {ROOT, ONE, TWO, NEW} and all(c > 0 for _, c in want.values()) and makers[SESSION] == noise[1]

    def run(how):
        proc = subprocess.run([sys.executable, "-c", _ON_WORKERS, str(tmp_path), ROOT, how], capture_output=True,
                              text=True, check=True)
        return json.loads(proc.stdout)

    on_workers, on_threads = run("workers"), run("threads")
    assert on_workers["workers"] == 1 and on_threads["workers"] == 0  # the pass ran on workers, then on threads
    assert on_workers["rows"] == on_threads["rows"] == want


def _failing(next_batch, mail, post):
    while (b := next_batch()) is not None:
        if b == 3:
            raise ValueError("batch 3")
        post(b)


def _posting(next_batch, mail, post):
    taken = []
    while (b := next_batch()) is not None:
        mail.send(("took", b))
        post(b)
        taken.append(b)
    return taken, mail.received()


_POOL = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from tests.test_lineage import _failing, _posting
from trailkit.engines import forked

import os, time
held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]  # past select()'s 1,024: the pool still answers
posted, seen = [], []
answers = forked.run(2, 40, _posting, received=posted.append, progress=lambda taken, s: seen.append(taken))
failed = forked.run(2, 40, _failing, received=lambda part: None)
# a user over the kernel's pipe allowance gets pipes of a page: too small for the batches' numbers, so no pool
pipe, grow = os.pipe, forked.fcntl.fcntl
def small():
    r, w = pipe()
    grow(w, forked._SETPIPE_SIZE, 4096)
    return r, w
def refused(fd, op, *args):
    if op == forked._SETPIPE_SIZE:
        raise PermissionError("over the allowance")
    return grow(fd, op, *args)
forked.os.pipe, forked.fcntl.fcntl = small, refused
began = time.monotonic()
cramped = forked.run(2, 5000, _posting, received=lambda part: None)
print(json.dumps({"answers": answers, "posted": sorted(posted), "progress": seen[-1] if seen else None,
                  "failed": failed, "cramped": cramped, "cramped_s": time.monotonic() - began}))
"""


def test_forked_workers_share_the_batches_post_as_they_go_and_give_way_when_they_cannot():
    proc = subprocess.run([sys.executable, "-c", _POOL, str(Path(__file__).parents[1])], capture_output=True,
                          text=True, check=True)
    got = json.loads(proc.stdout)
    taken = [b for answer in got["answers"] for b in answer[0]]
    assert sorted(taken) == got["posted"] == list(range(40))  # each batch to one worker, posted once
    told = [b for answer in got["answers"] for _, b in answer[1]]
    assert set(told) <= set(taken)  # what a worker was told, another took
    assert got["progress"] == 40 and got["failed"] is None
    assert got["cramped"] is None and got["cramped_s"] < 5  # refused at once, not stuck writing
