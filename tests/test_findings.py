"""What the key did: findings, data touched, ATT&CK, Sigma, network context.

Expected answers are worked out here from the JSON with plain Python; the rules' documented kinds per Stratus
technique are the table README "Findings" states (``DOCUMENTED``).
"""
from __future__ import annotations

import gzip
import json
import shutil
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from trailkit import Trail, questions
from trailkit.cli import main
from trailkit.findings import BURST_APIS, BURST_DENIED, KINDS
from trailkit.inputs import Window

SIGMA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sigma-cloudtrail"
TRAILDISCOVER = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "traildiscover" / "events.json"
ATTACKER = "AKIATFQR7NSC8Q4X20BJ"

#: the finding kinds README documents for each Stratus technique (whose events carry an access key)
DOCUMENTED = {
    "credential-access.ec2-get-password-data": {"credential-access"},
    "credential-access.ec2-steal-instance-credentials": {"execution"},
    "credential-access.secretsmanager-batch-retrieve-secrets": {"credential-access"},
    "credential-access.secretsmanager-retrieve-secrets": {"credential-access"},
    "credential-access.ssm-retrieve-securestring-parameters": {"credential-access"},
    "defense-evasion.cloudtrail-delete": {"defense-evasion"},
    "defense-evasion.cloudtrail-event-selectors": {"defense-evasion"},
    "defense-evasion.cloudtrail-stop": {"defense-evasion"},
    "defense-evasion.dns-delete-logs": {"defense-evasion"},
    "defense-evasion.organizations-leave": {"defense-evasion"},
    "defense-evasion.vpc-remove-flow-logs": {"defense-evasion"},
    "discovery.ec2-download-user-data": {"credential-access"},
    "execution.ec2-launch-unusual-instances": {"resource-abuse"},
    "execution.ec2-user-data": {"execution"},
    "execution.ssm-send-command": {"execution"},
    "execution.ssm-start-session": {"execution"},
    "exfiltration.ec2-security-group-open-port-22-ingress": {"defense-evasion"},
    "exfiltration.ec2-share-ami": {"exfiltration"},
    "exfiltration.ec2-share-ebs-snapshot": {"exfiltration"},
    "exfiltration.rds-share-snapshot": {"exfiltration"},
    "impact.bedrock-invoke-model": {"resource-abuse"},
    "lateral-movement.ec2-instance-connect": {"lateral-movement"},
    "lateral-movement.ec2-serial-console-send-ssh-public-key": {"lateral-movement"},
    "persistence.iam-backdoor-role": {"persistence"},
    "persistence.iam-backdoor-user": {"persistence"},
    "persistence.iam-create-admin-user": {"persistence", "privilege-escalation"},
    "persistence.iam-create-backdoor-role": {"persistence", "privilege-escalation"},
    "persistence.iam-create-user-login-profile": {"persistence"},
    "persistence.lambda-backdoor-function": {"persistence"},
    "persistence.lambda-layer-extension": {"persistence"},
    "persistence.lambda-overwrite-code": {"persistence"},
    "persistence.rolesanywhere-create-trust-anchor": {"persistence"},
    "persistence.sts-federation-token": {"persistence"},
    "privilege-escalation.iam-update-user-login-profile": {"privilege-escalation"},
}
#: kinds that say how, not what: every Stratus file has the attack tool's user agent, some ask who they are
CONTEXT = {"suspicious-user-agent", "recon"}


def stratus_findings(stratus: Path, tmp_path_factory) -> dict:
    out = {}
    for path in sorted(stratus.glob("aws.*.json")):
        records = json.loads(path.read_text())
        keys = sorted({(r.get("userIdentity") or {}).get("accessKeyId") for r in records} - {None, ""})
        folder = tmp_path_factory.mktemp("technique")
        shutil.copy(path, folder)
        with Trail.local(folder, cache=False) as trail:
            frames = [trail.findings(key) for key in keys]
        out[path.stem.removeprefix("aws.")] = (records, keys, frames)
    return out


@pytest.fixture(scope="module")
def techniques(stratus, tmp_path_factory):
    return stratus_findings(stratus, tmp_path_factory)


def test_every_stratus_technique_gets_its_documented_kind_and_no_other_techniques(techniques):
    labelled = set().union(*DOCUMENTED.values())
    assert set(techniques) - set(DOCUMENTED) == {"initial-access.console-login-without-mfa"}
    console, keys, _ = techniques["initial-access.console-login-without-mfa"]
    assert keys == [] and all(r["eventName"] == "ConsoleLogin" for r in console)  # no key: no key's lineage
    false_positives = {}
    for name, expected in DOCUMENTED.items():
        records, keys, frames = techniques[name]
        kinds = set().union(*(set(f["kind"]) for f in frames))
        assert expected <= kinds, f"{name}: {sorted(kinds)}"
        assert kinds <= set(KINDS)
        extra = (kinds & labelled) - expected
        if extra:
            false_positives[name] = extra
        # the evidence is the technique's own events
        ids = {r["eventID"] for r in records}
        for frame in frames:
            for row in frame.itertuples():
                assert set(row.eventids.split()) <= ids and row.events >= 1
    assert false_positives == {}  # README states the rate: 0 of 34 files
    assert {k for name in DOCUMENTED for f in techniques[name][2] for k in f["kind"]} - labelled <= CONTEXT


def test_the_summaries_carry_the_numbers(techniques):
    records, (key,), (frame,) = techniques["credential-access.secretsmanager-retrieve-secrets"]
    reads = [r for r in records if r["eventName"] == "GetSecretValue"]
    (row,) = frame[frame["rule"] == "secrets-read"].itertuples()
    secrets = {r["requestParameters"]["secretId"] for r in reads}
    assert row.events == len(reads) and row.severity == "high" and row.technique == "T1555.006"
    assert f"{len(reads)} calls of GetSecretValue ({len(secrets)} secrets:" in row.summary
    assert set(row.eventids.split()) == {r["eventID"] for r in reads}
    # every call refused: an attempt, one step less severe, and said so
    records, keys, frames = techniques["credential-access.ec2-get-password-data"]
    (tried,) = [r for r in frames[0].itertuples() if r.rule == "password-data"]  # AKIA..., the root
    denied = [r for r in records if r["eventName"] == "GetPasswordData"]
    assert all(r.get("errorCode") for r in denied)
    assert tried.severity == "medium" and f"{len(denied)} calls of GetPasswordData, all refused" in tried.summary


def test_invictus_secrets_keys_and_parameters(invictus, records):
    mine = {r["eventID"]: r for r in records(invictus)
            if (r.get("userIdentity") or {}).get("accessKeyId") == ATTACKER}.values()
    calls = Counter(r["eventName"] for r in mine)
    ok = lambda name: [r for r in mine if r["eventName"] == name and not r.get("errorCode")]  # noqa: E731
    with Trail.local(invictus) as trail:
        found = trail.findings(ATTACKER, follow=False)
        objects = trail.objects(ATTACKER, follow=False)
    by_rule = {r.rule: r for r in found.itertuples()}
    secrets = {r["requestParameters"]["secretId"] for r in ok("GetSecretValue")}
    assert by_rule["secrets-read"].events == calls["GetSecretValue"]
    assert f"({len(secrets)} secrets:" in by_rule["secrets-read"].summary
    created = {r["requestParameters"]["userName"] for r in ok("CreateAccessKey")}
    assert by_rule["access-key-created"].events == calls["CreateAccessKey"] == 2
    assert all(user in by_rule["access-key-created"].summary for user in created)
    # the parameters deleted: one row per name; the calls that name none (throttled: no parameters) kept too
    deleted = objects[objects["eventname"] == "DeleteParameter"]
    names = Counter(r["requestParameters"]["name"] for r in mine
                    if r["eventName"] == "DeleteParameter" and (r.get("requestParameters") or {}).get("name"))
    assert set(deleted["resource"].dropna()) == set(names) and len(names) == 40
    assert int(deleted["events"].sum()) == calls["DeleteParameter"]
    assert int(deleted["errors"].sum()) == sum(1 for r in mine if r["eventName"] == "DeleteParameter" and r.get("errorCode"))
    read = objects[objects["eventname"] == "GetSecretValue"]
    assert set(read["resource"]) == secrets and int(read["events"].sum()) == calls["GetSecretValue"]
    assert objects.attrs["s3_data_events"] is False  # the trail selects no data events: said, not implied


def test_objects_names_s3_objects_with_bytes_and_who_a_snapshot_went_to(tmp_path):
    logs = write(tmp_path, [
        rec(1, "GetObject", KEY, 0, source="s3.amazonaws.com", params={"bucketName": "b", "key": "secret.txt"},
            extra={"bytesTransferredOut": 1234.0}, category="Data"),
        rec(2, "GetObject", KEY, 1, source="s3.amazonaws.com", params={"bucketName": "b", "key": "secret.txt"},
            extra={"bytesTransferredOut": 66.0}, category="Data"),
        rec(3, "ModifySnapshotAttribute", KEY, 2, params={
            "snapshotId": "snap-1", "createVolumePermission": {"add": {"items": [{"userId": "999988887777"}]}}}),
        rec(4, "GetParameters", KEY, 3, source="ssm.amazonaws.com", params={"names": ["/a", "/b"]}),
    ])
    with Trail.local(logs, cache=False) as trail:
        objects = trail.objects(KEY)
    rows = {r.resource: r for r in objects.itertuples()}
    assert rows["s3://b/secret.txt"].events == 2 and rows["s3://b/secret.txt"].bytes == 1300
    assert "999988887777" in rows["snap-1"].detail
    assert rows["/a"].events == rows["/b"].events == 1 and rows["/a"].eventname == "GetParameters"
    assert objects.attrs["s3_data_events"] is True


# -- synthetic bursts and addresses

KEY = "AKIAFINDINGSTEST0001"
ACCOUNT = "111122223333"
T0 = datetime(2026, 10, 24, 12, 8, tzinfo=timezone.utc)  # a burst from 12:08 crosses a 10-minute boundary


def rec(n, name, key, seconds, *, source="ec2.amazonaws.com", ip="203.0.113.9", error=None, params=None,
        extra=None, category="Management", agent="aws-cli/2.13.0", region="us-east-1") -> dict:
    out = {"eventVersion": "1.09", "eventTime": (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "eventSource": source, "eventName": name, "awsRegion": region, "sourceIPAddress": ip,
           "userAgent": agent, "requestParameters": params, "responseElements": None,
           "eventID": f"00000000-0000-0000-0000-{n:012d}", "eventType": "AwsApiCall", "eventCategory": category,
           "recipientAccountId": ACCOUNT,
           "userIdentity": {"type": "IAMUser", "accountId": ACCOUNT, "accessKeyId": key,
                            "arn": f"arn:aws:iam::{ACCOUNT}:user/partner", "userName": "partner"}}
    if error:
        out["errorCode"], out["errorMessage"] = error, "not authorized"
    if extra:
        out["additionalEventData"] = extra
    return out


def write(folder: Path, records: list) -> Path:
    day = folder / f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/10/24"
    day.mkdir(parents=True, exist_ok=True)
    (day / f"{ACCOUNT}_CloudTrail_us-east-1_20261024T1200Z_x.json.gz").write_bytes(
        gzip.compress(json.dumps({"Records": records}).encode()))
    return folder


def findings_of(tmp_path, records, **kw):
    with Trail.local(write(tmp_path, records), cache=False) as trail:
        return trail.findings(KEY, **kw)


@pytest.mark.parametrize("apis", [BURST_APIS - 1, BURST_APIS])
def test_enumeration_at_its_threshold(tmp_path, apis):
    # distinct read-only APIs over four minutes that straddle 12:10, each called twice
    records = [rec(i * 2 + j, f"Describe{chr(65 + i // 26)}{chr(65 + i % 26)}", KEY, i * 12 + j) for i in range(apis)
               for j in range(2)]
    found = findings_of(tmp_path, records)
    bursts = found[found["kind"] == "enumeration"]
    if apis < BURST_APIS:
        assert bursts.empty
    else:
        (row,) = bursts.itertuples()
        assert f"probed {apis} read-only APIs" in row.summary and row.events == 2 * apis
        assert set(row.eventids.split()) == {r["eventID"] for r in records}


@pytest.mark.parametrize("denied,apis,expected", [(BURST_DENIED - 1, 3, False), (BURST_DENIED, 3, True),
                                                  (BURST_DENIED * 3, 1, False)])
def test_denied_bursts_need_several_apis(tmp_path, denied, apis, expected):
    records = [rec(i, ["CreateUser", "PutRolePolicy", "RunInstances"][i % apis], KEY, i * 20, error="AccessDenied")
               for i in range(denied)]
    found = findings_of(tmp_path, records)
    bursts = found[found["kind"] == "enumeration"]
    assert len(bursts) == int(expected)
    if expected:
        assert bursts.iloc[0]["severity"] == "high" and f"{denied} denied, 100%" in bursts.iloc[0]["summary"]


def test_unexpected_addresses_ipv4_ipv6_and_services(tmp_path):
    records = [rec(1, "ListBuckets", KEY, 0, ip="203.0.113.9"),
               rec(2, "ListBuckets", KEY, 1, ip="2001:db8::5"),
               rec(3, "ListBuckets", KEY, 2, ip="2001:db8::6"),
               rec(4, "GetObject", KEY, 3, ip="s3.amazonaws.com"),
               rec(5, "Decrypt", KEY, 4, ip="AWS Internal")]
    found = findings_of(tmp_path, records, allowed="203.0.113.0/24")
    (row,) = found[found["kind"] == "unexpected-ip"].itertuples()
    assert row.events == 2 and "2 addresses" in row.summary and "2001:db8::/48" in row.summary
    assert set(row.eventids.split()) == {records[1]["eventID"], records[2]["eventID"]}
    assert "documentation addresses" in row.summary
    none = findings_of(tmp_path / "c", records, allowed="203.0.113.0/24, 2001:db8::/32")
    assert none[none["kind"] == "unexpected-ip"].empty  # the services' names are never foreign
    assert findings_of(tmp_path / "d", records)["kind"].eq("unexpected-ip").sum() == 0  # no allowlist: unchecked


def test_new_region_and_user_agent_after_a_days_baseline(tmp_path):
    day = 86400
    records = [rec(1, "ListBuckets", KEY, 0), rec(2, "ListBuckets", KEY, 3600, region="eu-west-1"),
               rec(3, "DescribeInstances", KEY, day + 60, region="ap-southeast-3", agent="Boto3/1.28 kali"),
               rec(4, "DescribeInstances", KEY, day + 90, region="ap-southeast-3", agent="Boto3/1.28 kali")]
    found = findings_of(tmp_path, records)
    (region,) = found[found["kind"] == "new-region"].itertuples()
    assert "ap-southeast-3" in region.summary and region.events == 2
    (agent,) = found[found["kind"] == "new-user-agent"].itertuples()
    assert "'Boto3'" in agent.summary
    (suspect,) = found[found["kind"] == "suspicious-user-agent"].itertuples()
    assert "'kali'" in suspect.summary and suspect.events == 2


def test_findings_count_an_event_once_across_deliveries(tmp_path):
    records = [rec(i, "GetSecretValue", KEY, i, source="secretsmanager.amazonaws.com", params={"secretId": "s"})
               for i in range(3)]
    write(tmp_path, records)
    again = tmp_path / "org" / "o-abc" / "again"  # the same events delivered by an organization trail
    again.mkdir(parents=True)
    (again / "copy.json").write_text(json.dumps({"Records": records}))
    with Trail.local(tmp_path, cache=False) as trail:
        (row,) = trail.findings(KEY).query("rule == 'secrets-read'").itertuples()
    assert row.events == 3


# -- ATT&CK

def test_the_shipped_attack_table_is_traildiscovers_with_its_attribution():
    from importlib import resources

    from trailkit import attack

    shipped = json.loads(resources.files("trailkit.data").joinpath("attack.json").read_text())
    assert shipped == json.loads(json.dumps(attack.build(json.loads(TRAILDISCOVER.read_text()))))
    assert "TrailDiscover" in shipped["attribution"] and shipped["licence"] == "CC BY 4.0"
    entries = json.loads(TRAILDISCOVER.read_text())
    stop = next(e for e in entries if e["eventName"] == "StopLogging")
    tactics, techniques = attack.of("cloudtrail.amazonaws.com", "StopLogging")
    assert tactics == ", ".join(t.split(" - ", 1)[1] for t in stop["mitreAttackTactics"])
    assert set(techniques.split()) == {t.split(" ")[0].rstrip(":") for t in
                                       stop["mitreAttackSubTechniques"] + stop["mitreAttackTechniques"]}
    assert attack.of("lambda.amazonaws.com", "UpdateFunctionCode20150331v2")[1]  # Lambda's versioned names


def test_timeline_events_carry_their_tactics(invictus):
    with Trail.local(invictus) as trail:
        timeline = trail.timeline(ATTACKER)
    secrets = timeline[timeline["eventname"] == "GetSecretValue"]
    assert len(secrets) and (secrets["tactics"] == "Credential Access").all()
    assert (secrets["techniques"].str.contains("T1555.006")).all()


# -- Sigma

def test_the_sigmahq_rules_convert_or_say_why(tmp_path):
    import yaml

    from trailkit import sigma

    ruleset = sigma.load(SIGMA)
    files = sorted(SIGMA.glob("*.yml"))
    cloudtrail = [f for f in files if (yaml.safe_load(f.read_text()).get("logsource") or {}) ==
                  {"product": "aws", "service": "cloudtrail"}]
    assert len(files) == 57 and len(ruleset.rules) + len(ruleset.skipped) == len(cloudtrail)
    assert len(ruleset.rules) >= 55
    for rule in ruleset.skipped:
        assert rule.reason and rule.title  # listed with the reason, never silently skipped
    (saml,) = [r for r in ruleset.skipped if r.path.endswith("aws_delete_saml_provider.yml")]
    assert "'status'" in saml.reason


def test_sigma_matches_checked_against_the_json(stratus, tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    for name in ("cloudtrail-stop", "vpc-remove-flow-logs", "cloudtrail-delete"):
        shutil.copy(stratus / f"aws.defense-evasion.{name}.json", folder)
    records = [r for p in folder.glob("*.json") for r in json.loads(p.read_text())]
    with Trail.local(folder, cache=False) as trail:
        found = {}
        for key in {r["userIdentity"]["accessKeyId"] for r in records}:
            frame = trail.findings(key, sigma=SIGMA)
            for row in frame[frame["kind"] == "sigma"].itertuples():
                found.setdefault(row.summary.split("'")[1], set()).update(row.eventids.split())
    important = {r["eventID"] for r in records if r["eventSource"] == "cloudtrail.amazonaws.com"
                 and r["eventName"] in ("StopLogging", "UpdateTrail", "DeleteTrail")}
    assert found["AWS CloudTrail Important Change"] == important and len(important) == 2
    assert found["AWS VPC Flow Logs Deleted"] == {r["eventID"] for r in records if r["eventName"] == "DeleteFlowLogs"}


def test_a_hostile_rule_stays_inside_its_literal(tmp_path):
    from trailkit import sigma

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "hostile.yml").write_text("""title: hostile
id: 11111111-1111-1111-1111-111111111111
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: "x') OR true OR ('"
  condition: selection
level: high
""")
    (rules / "keywords.yml").write_text("""title: keywords
logsource: {product: aws, service: cloudtrail}
detection:
  words: [evil]
  condition: words
""")
    (rules / "broken.yml").write_text("title: [unclosed\n")
    ruleset = sigma.load(rules)
    assert [r.title for r in ruleset.rules] == ["hostile"]
    reasons = {Path(r.path).name: r.reason for r in ruleset.skipped}
    assert "keyword" in reasons["keywords.yml"] and "unreadable" in reasons["broken.yml"]
    logs = write(tmp_path / "logs", [rec(1, "ListBuckets", KEY, 0)])
    with Trail.local(logs, cache=False) as trail:
        assert trail.findings(KEY, sigma=rules).query("kind == 'sigma'").empty


# -- network context

def test_network_context_labels_and_groups():
    from trailkit import network

    frame = network.context(["8.8.8.8", "10.1.2.3", "203.0.113.5", "s3.amazonaws.com", "2001:4860:4860::8888"])
    rows = {r.sourceipaddress: r for r in frame.itertuples()}
    assert rows["8.8.8.8"].asn == 15169 and rows["8.8.8.8"].label == "public" and rows["8.8.8.8"].block == "8.8.8.0/24"
    assert rows["10.1.2.3"].label == "private" and rows["203.0.113.5"].label == "documentation"
    assert rows["s3.amazonaws.com"].label == "aws service"
    assert rows["2001:4860:4860::8888"].asn == 15169 and rows["2001:4860:4860::8888"].block == "2001:4860:4860::/48"
    assert network.data_date()[:4].isdigit()


# -- command line, Athena

def test_the_commands(tmp_path, capsys):
    logs = write(tmp_path, [rec(1, "StopLogging", KEY, 0, source="cloudtrail.amazonaws.com",
                                params={"name": "main"}, ip="198.51.100.4")])
    assert main(["findings", KEY, "--logs", str(logs), "--allow", "203.0.113.0/24", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "HIGH   defense-evasion" in out and "HIGH   unexpected-ip" in out and "(2 findings)" in out
    assert main(["findings", KEY, "--logs", str(logs), "--format", "json", "--no-cache"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["kind"] == "defense-evasion" and row["eventids"] == "00000000-0000-0000-0000-000000000001"
    assert main(["objects", KEY, "--logs", str(logs), "--no-cache"]) == 0
    assert "no S3 data events" in capsys.readouterr().err
    assert main(["findings", KEY, "--logs", str(logs), "--sigma", str(tmp_path / "none")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["findings", KEY, "--logs", str(logs), "--allow", "300.1.1.1"]) == 2


def test_the_findings_sql_through_athena(moto, invictus):
    """The SQL sent is the golden one; the rows Athena returns (those the local engine computes) judge alike:
    the findings with the Sigma rules' matches, and the data touched."""
    import os

    import sqlglot

    from trailkit import sigma
    from trailkit.engines.athena import AthenaConfig, AthenaEngine

    from .conftest import GOLDEN

    window = Window.parse("2023-07-10", "2023-07-11")
    ruleset = sigma.load(SIGMA)
    ((chunk, matching),) = sigma.requests(ruleset, [ATTACKER], window)
    asked = [questions.findings([ATTACKER], window), matching, questions.objects([ATTACKER], window),
             questions.data_events(window)]
    with Trail.local(invictus) as local:
        answers = [local.ask(request) for request in asked]
        expected = local.findings(ATTACKER, "2023-07-10", "2023-07-11", follow=False, allowed="10.0.0.0/8",
                                  sigma=ruleset)
        touched = local.objects(ATTACKER, "2023-07-10", "2023-07-11", follow=False)
    moto.table("security", "cloudtrail_logs")
    for request, rows in zip(asked, answers):  # queued in the order they are asked
        kinds = dict(request.contract.columns)
        moto.seed([(c, "bigint" if kinds[c] == "int" else "varchar") for c in request.contract.names],
                  [[_cell(v) for v in row] for row in rows.itertuples(index=False)])
    engine = AthenaEngine(AthenaConfig.resolve(database="security", table="cloudtrail_logs",
                                               output_location="s3://trailkit-results/x/", region="us-east-1",
                                               partition_column="timestamp"))
    athena = Trail(engine)
    got = athena.findings(ATTACKER, "2023-07-10", "2023-07-11", follow=False, allowed="10.0.0.0/8", sigma=ruleset)
    got_touched = athena.objects(ATTACKER, "2023-07-10", "2023-07-11", follow=False)
    sent = moto.sent()
    assert len(sent) == 4
    for name, text in zip(("findings", "sigma", "objects", "data_events"), sent):
        golden = GOLDEN / f"athena_{name}_partitioned.sql"
        if os.environ.get("UPDATE_GOLDEN"):
            golden.write_text(text)
        assert text == golden.read_text()
        sqlglot.parse_one(text, read="athena")
        assert "\"timestamp\" BETWEEN '2023/07/10' AND '2023/07/12'" in text
    columns = ["kind", "severity", "events", "summary", "eventids"]
    pd.testing.assert_frame_equal(got[columns], expected[columns])
    assert set(got["kind"]) >= {"credential-access", "persistence", "defense-evasion", "unexpected-ip", "sigma"}
    pd.testing.assert_frame_equal(got_touched, touched)
    assert got_touched.attrs["s3_data_events"] is False


def _cell(value):
    """A value as moto's result CSV must hold it: moto writes cells between quotes without doubling the quotes
    inside (Athena doubles them), so they are doubled here."""
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value).replace('"', '""')


def test_readme_documents_every_rule_and_kind():
    from trailkit import rules

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert rules.markdown() in readme + "\n"  # the table of call rules, as the code has them
    assert all(f"`{kind}`" in readme for kind in KINDS)
    assert all(rule.why and rule.blind for rule in rules.RULES)


# -- what a hostile reading found

def test_two_bursts_apart_are_two_and_one_burst_counts_each_call_once(tmp_path):
    first = [rec(i, f"List{chr(65 + i // 26)}{chr(65 + i % 26)}", KEY, i * 10) for i in range(BURST_APIS)]
    second = [rec(100 + i, f"Describe{chr(65 + i // 26)}{chr(65 + i % 26)}", KEY, 3600 + i * 10)
              for i in range(BURST_APIS)]
    found = findings_of(tmp_path, first + second)
    bursts = found[found["kind"] == "enumeration"].sort_values("first_seen")
    assert list(bursts["events"]) == [BURST_APIS, BURST_APIS]  # an hour apart: two bursts
    # calls spread over 14 minutes: slices of both grids qualify and overlap; each call is counted once
    spread = [rec(i, f"Get{chr(65 + i // 26)}{chr(65 + i % 26)}", KEY, i * 28) for i in range(30)]
    (row,) = findings_of(tmp_path / "b", spread).query("kind == 'enumeration'").itertuples()
    assert row.events <= 30 and set(row.eventids.split()) <= {r["eventID"] for r in spread}


def policy(statements) -> dict:
    return {"bucketName": "logs-222233334444", "bucketPolicy": {"Version": "2012-10-17", "Statement": statements}}


@pytest.mark.parametrize("statements, severity", [
    ([{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}],
     "medium"),
    ([{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "s3:GetObject"}], "medium"),
    ([{"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "s3:GetObject"}], "high"),
    ([{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "s3:GetObject"}], "high"),
])
def test_bucket_policies_are_read_not_grepped(tmp_path, statements, severity):
    found = findings_of(tmp_path, [rec(1, "PutBucketPolicy", KEY, 0, source="s3.amazonaws.com",
                                       params=policy(statements))])
    (row,) = found.query("rule == 'bucket-opened'").itertuples()
    assert row.severity == severity


def test_only_a_range_of_every_address_opens_a_security_group(tmp_path):
    quiet = {"groupId": "sg-1", "ipPermissions": {"items": [{"ipRanges": {"items": [
        {"cidrIp": "10.0.0.0/8", "description": "replaces 0.0.0.0/0"}]}}]}}
    open6 = {"groupId": "sg-2", "ipPermissions": {"items": [{"ipv6Ranges": {"items": [{"cidrIpv6": "::/0"}]}}]}}
    found = findings_of(tmp_path, [rec(1, "AuthorizeSecurityGroupIngress", KEY, 0, params=quiet),
                                   rec(2, "AuthorizeSecurityGroupIngress", KEY, 1, params=open6)])
    (row,) = found.query("rule == 'firewall-opened'").itertuples()
    assert row.eventids == "00000000-0000-0000-0000-000000000002" and "sg-2" in row.summary


def test_hostile_sigma_folders_are_said_not_crashed(tmp_path):
    from trailkit import sigma

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "nested.yml").write_text("title: nested\nlogsource: {product: aws, service: cloudtrail}\n"
                                      "detection:\n  sel: {eventName: x}\n  condition: " + "not (" * 60 + "sel"
                                      + ")" * 60 + "\n")
    (rules / "empty.yml").write_text("")
    (rules / "ok.yml").write_text("title: ok\nlogsource: {product: aws, service: cloudtrail}\n"
                                  "detection:\n  sel: {eventName: ListBuckets}\n  condition: sel\n")
    ruleset = sigma.load(rules)
    reasons = {Path(r.path).name: r.reason for r in ruleset.skipped}
    assert [r.title for r in ruleset.rules] == ["ok"]
    assert "nested too deeply" in reasons["nested.yml"] and "no rule" in reasons["empty.yml"]


def test_summaries_escape_once_and_bad_input_is_said(tmp_path, capsys):
    from trailkit.errors import InvalidInput

    logs = write(tmp_path, [rec(1, "ListBuckets", KEY, 0),
                            rec(2, "ListBuckets", KEY, 90000, agent="\x1b[31m kali-tool")])
    with Trail.local(logs, cache=False) as trail:
        found = trail.findings(KEY)
        with pytest.raises(InvalidInput):
            trail.findings(123)
    text = " ".join(found["summary"])
    assert "'\\x1b[31m kali-tool'" in text and "\\\\x1b" not in text
    assert set(found["kind"]) >= {"new-user-agent", "suspicious-user-agent"}
    assert main(["findings", KEY, "--logs", str(logs), "--allow", ""]) == 2
    assert "--allow is empty" in capsys.readouterr().err


def test_sigma_values_cannot_reach_the_querys_frame(tmp_path):
    """A value with a newline (a line of its own, a comment), or the frame's own marks ({partitions}, :keys),
    stays a value: refused with a reason, or matched literally; the other findings still come."""
    from trailkit import sigma

    rules = tmp_path / "rules"
    rules.mkdir()
    for name, value in (("newline", '"x\\n-- g"'), ("partitions", '"{partitions}"'), ("placeholder", '":keys"'),
                        ("fill", '"{any}"')):
        (rules / f"{name}.yml").write_text(f"title: {name}\nlogsource: {{product: aws, service: cloudtrail}}\n"
                                           f"detection:\n  sel:\n    eventName: {value}\n  condition: sel\n")
    ruleset = sigma.load(rules)
    assert sorted(r.title for r in ruleset.rules) == ["fill", "partitions", "placeholder"]
    (newline,) = ruleset.skipped
    assert "control character" in newline.reason
    logs = write(tmp_path / "logs", [rec(1, "StopLogging", KEY, 0, source="cloudtrail.amazonaws.com",
                                         params={"name": "t"})])
    with Trail.local(logs, cache=False) as trail:
        found = trail.findings(KEY, sigma=ruleset)
    assert found.query("kind == 'sigma'").empty and (found["rule"] == "logging-stopped").any()


def test_a_policy_nested_past_jsons_depth_does_not_stop_the_findings(tmp_path):
    deep = "[" * 5000 + "]" * 5000
    found = findings_of(tmp_path, [
        rec(1, "CreateRole", KEY, 0, source="iam.amazonaws.com", params={"roleName": "r", "assumeRolePolicyDocument": deep}),
        rec(2, "AuthorizeSecurityGroupIngress", KEY, 1, params={"groupId": "sg-1", "x": json.loads("[" * 900 + "]" * 900)}),
        rec(3, "StopLogging", KEY, 2, source="cloudtrail.amazonaws.com", params={"name": "t"})])
    assert set(found["rule"]) >= {"role-trust", "logging-stopped"}


@pytest.mark.parametrize("params, severity", [
    ({"bucketName": "b", "x-amz-acl": ["public-read"]}, "high"),
    ({"bucketName": "b", "AccessControlPolicy": {"AccessControlList": {"Grant": [{"Grantee": {
        "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "READ"}]}}}, "high"),
    (policy([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
              "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc"}}}]), "medium"),
])
def test_canned_acls_and_conditioned_principals(tmp_path, params, severity):
    name = "PutBucketAcl" if "bucketPolicy" not in params else "PutBucketPolicy"
    found = findings_of(tmp_path, [rec(1, name, KEY, 0, source="s3.amazonaws.com", params=params)])
    (row,) = found.query("rule == 'bucket-opened'").itertuples()
    assert row.severity == severity


def test_a_rule_keeps_its_own_severity_and_groups_are_read(tmp_path):
    found = findings_of(tmp_path, [
        rec(1, "ModifyInstanceAttribute", KEY, 0, params={"instanceId": "i-1", "userData": "<sensitiveDataRemoved>"}),
        rec(2, "AddUserToGroup", KEY, 1, source="iam.amazonaws.com", params={"groupName": "Administrators",
                                                                            "userName": "bob"})])
    rows = {r.rule: r for r in found.itertuples()}
    assert rows["user-data-changed"].severity == "high"  # the rule's own, as README says
    assert rows["policy-attached"].severity == "high" and "Administrators" in rows["policy-attached"].summary


def test_a_redacted_reports_findings_name_no_one(tmp_path):
    from trailkit.investigation import Case, investigate

    logs = write(tmp_path, [rec(1, "CreateUser", KEY, 0, source="iam.amazonaws.com",
                                params={"userName": "backdoor-bob"}),
                            rec(2, "CreateAccessKey", KEY, 1, source="iam.amazonaws.com",
                                params={"userName": "backdoor-bob"})])
    with Trail.local(logs, cache=False) as trail:
        done = investigate(trail, Case.parse(KEY), redact=True)
    text = " ".join(done.findings["summary"])
    assert "backdoor-bob" not in text and KEY not in text and "NAME-" in text


def test_a_watched_unchanged_folder_judges_once_and_sees_what_arrives(tmp_path):
    import time

    logs = write(tmp_path, [rec(1, "StopLogging", KEY, 0, source="cloudtrail.amazonaws.com", params={"name": "t"})])
    with Trail.local(logs) as trail:
        first = trail.findings(KEY)
        asked = len(trail.engine.history)
        again = trail.findings(KEY)
        assert len(trail.engine.history) == asked and first.equals(again)  # kept: the watch saw no change
        day = logs / f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/10/24"
        (day / "more.json").write_text(json.dumps({"Records": [
            rec(2, "DeleteTrail", KEY, 60, source="cloudtrail.amazonaws.com", params={"name": "t"})]}))
        time.sleep(0.2)
        (row,) = trail.findings(KEY).query("rule == 'logging-stopped'").itertuples()
    assert row.events == 2  # the new evidence is in the next answer


def test_no_events_is_said_and_athena_without_a_results_place_is_one_line(tmp_path, capsys, monkeypatch):
    logs = write(tmp_path, [rec(1, "ListBuckets", KEY, 0)])
    assert main(["findings", "AKIAFINDINGSTEST0002", "--logs", str(logs), "--no-cache"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "no findings\n" and "no events of AKIAFINDINGSTEST0002" in captured.err
    for name in ("TRAILKIT_OUTPUT", "TRAILKIT_WORKGROUP"):
        monkeypatch.delenv(name, raising=False)
    assert main(["findings", KEY, "--athena", "--table", "t", "--region", "us-east-1", "--partition-column", "date",
                 "--start", "2026-10-24", "--no-follow"]) == 2
    err = capsys.readouterr().err
    assert "--output s3://" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_ips_with_network_context_on_the_command_line(tmp_path, capsys):
    logs = write(tmp_path, [rec(1, "ListBuckets", KEY, 0, ip="8.8.8.8"), rec(2, "ListBuckets", KEY, 1, ip="10.1.2.3"),
                            rec(3, "GetObject", KEY, 2, ip="s3.amazonaws.com")])
    assert main(["ips", KEY, "--logs", str(logs), "--no-cache", "--network", "--format", "json"]) == 0
    rows = {r["sourceipaddress"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["8.8.8.8"]["asn"] == 15169 and rows["8.8.8.8"]["country"] == "US"
    assert rows["10.1.2.3"]["label"] == "private" and rows["10.1.2.3"]["asn"] is None
    assert rows["s3.amazonaws.com"]["label"] == "aws service"
