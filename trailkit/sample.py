"""Deterministic synthetic CloudTrail logs telling a small incident story (``data/sample``).

The story: ``partner-sync`` holds a long-term key that a partner system uses from its own network
(203.0.113.0/24) for four weeks. On 2026-10-24 at 02:13Z the same key shows up from 198.51.100.77 with a
different tool, probes IAM (denied), lists buckets, assumes the ``ops-admin`` role and uses the temporary key it
got to read a sensitive bucket. Around it: a CI deploy key, a console user and AWS service activity.

``write_sample(out)`` regenerates the folder byte for byte (fixed seed, gzip without timestamps).
"""
from __future__ import annotations

import gzip
import json
import random
import shutil
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .inputs import output_folder

ACCOUNT = "111122223333"
REGIONS = ("us-east-1", "eu-west-1")
START = datetime(2026, 10, 1, tzinfo=timezone.utc)
DAYS = 28

PARTNER_KEY = "AKIA3PARTNERSYNC0001"
PARTNER_USER = "partner-sync"
PARTNER_IPS = ("203.0.113.10", "203.0.113.11")
PARTNER_CIDR = "203.0.113.0/24"
PARTNER_AGENT = "aws-sdk-java/2.25.60 Linux/5.10.218 OpenJDK_64-Bit_Server_VM/17.0.11 vendor/Amazon.com_Inc. io/sync partner-sync/4.2"
ATTACKER_IP = "198.51.100.77"
ATTACKER_AGENT = "aws-cli/2.15.30 Python/3.11.8 Linux/6.6.9-amd64 exe/x86_64.kali.2024 prompt/off command/sts.get-caller-identity"
INCIDENT = datetime(2026, 10, 24, 2, 13, 5, tzinfo=timezone.utc)
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/ops-admin"
MINTED_KEY = "ASIA3OPSADMINTMP0001"
CI_KEY = "AKIA3CIDEPLOYBOT0001"
CI_IP = "192.0.2.44"
CONSOLE_KEY = "ASIA3ALICECONSOLE001"


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Story:
    def __init__(self, seed: int = 20261024):
        self.rng = random.Random(seed)
        self.records: list[dict] = []

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def user(self, name: str, key: str) -> dict:
        return {"type": "IAMUser", "principalId": "AIDA3" + name.upper().replace("-", "")[:11].ljust(11, "X") + "EX",
                "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}", "accountId": ACCOUNT, "accessKeyId": key,
                "userName": name}

    def role_session(self, role: str, session: str, key: str, created: datetime, mfa: str = "false") -> dict:
        return {"type": "AssumedRole", "principalId": f"AROA3{role.upper().replace('-', '')[:10].ljust(10, 'X')}EX:{session}",
                "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}", "accountId": ACCOUNT,
                "accessKeyId": key,
                "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": f"AROA3{role.upper().replace('-', '')[:10].ljust(10, 'X')}EX",
                                                     "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}", "accountId": ACCOUNT,
                                                     "userName": role},
                                   "webIdFederationData": {},
                                   "attributes": {"creationDate": _iso(created), "mfaAuthenticated": mfa}}}

    def event(self, t: datetime, who: dict | None, source: str, name: str, ip: str, agent: str, *,
              region: str = "us-east-1", request=None, response=None, error: tuple[str, str] | None = None,
              read_only: bool = True, resources=None, event_type: str = "AwsApiCall") -> dict:
        service = source.split(".")[0]
        record = {
            "eventVersion": "1.09",
            "userIdentity": who if who is not None else {"type": "AWSService", "invokedBy": source},
            "eventTime": _iso(t), "eventSource": source, "eventName": name, "awsRegion": region,
            "sourceIPAddress": ip, "userAgent": agent,
        }
        if error:
            record["errorCode"], record["errorMessage"] = error
        record["requestParameters"] = request
        record["responseElements"] = None if error else response
        record["requestID"] = self.uid()
        record["eventID"] = self.uid()
        record["readOnly"] = read_only
        if resources:
            record["resources"] = resources
        record.update({"eventType": event_type, "managementEvent": True, "recipientAccountId": ACCOUNT,
                       "eventCategory": "Management"})
        if event_type == "AwsApiCall" and "." in ip:
            record["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                                    "clientProvidedHostHeader": f"{service}.{region}.amazonaws.com"}
        self.records.append(record)
        return record

    # -- the cast

    def partner_day(self, day: datetime, partner: dict) -> None:
        if day.weekday() >= 5 and self.rng.random() < 0.7:
            return
        for _ in range(self.rng.randint(18, 34)):
            t = day + timedelta(hours=self.rng.randint(6, 19), minutes=self.rng.randint(0, 59),
                                seconds=self.rng.randint(0, 59))
            ip = self.rng.choice(PARTNER_IPS)
            roll = self.rng.random()
            if roll < 0.45:
                self.event(t, partner, "s3.amazonaws.com", "ListBuckets", ip, PARTNER_AGENT, request={"Host": "s3.amazonaws.com"})
            elif roll < 0.7:
                self.event(t, partner, "sqs.amazonaws.com", "GetQueueAttributes", ip, PARTNER_AGENT,
                           request={"queueUrl": f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/partner-orders",
                                    "attributeNames": ["ApproximateNumberOfMessages"]})
            elif roll < 0.9:
                self.event(t, partner, "kms.amazonaws.com", "Decrypt", ip, PARTNER_AGENT,
                           request={"encryptionAlgorithm": "SYMMETRIC_DEFAULT"},
                           resources=[{"accountId": ACCOUNT, "type": "AWS::KMS::Key",
                                       "ARN": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/5f0c1e2a-6d1b-4c3e-9a61-2f7e00a1b001"}])
            elif roll < 0.97:
                self.event(t, partner, "sts.amazonaws.com", "GetCallerIdentity", ip, PARTNER_AGENT)
            else:  # the partner's occasional mistake: a queue it is not allowed to read
                self.event(t, partner, "sqs.amazonaws.com", "GetQueueAttributes", ip, PARTNER_AGENT,
                           request={"queueUrl": f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/finance-ledger"},
                           region="eu-west-1",
                           error=("AccessDenied", f"User: arn:aws:iam::{ACCOUNT}:user/{PARTNER_USER} is not authorized to perform: sqs:getqueueattributes"))

    def ci_day(self, day: datetime, ci: dict) -> None:
        for _ in range(self.rng.randint(2, 6)):
            t = day + timedelta(hours=self.rng.randint(8, 17), minutes=self.rng.randint(0, 59), seconds=self.rng.randint(0, 59))
            region = self.rng.choice(REGIONS)
            agent = "Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux lang/python#3.12.3 cfg/retry-mode#legacy ci-deploy"
            self.event(t, ci, "cloudformation.amazonaws.com", "DescribeStacks", CI_IP, agent, region=region,
                       request={"stackName": "web-frontend"})
            self.event(t + timedelta(seconds=4), ci, "cloudformation.amazonaws.com", "UpdateStack", CI_IP, agent,
                       region=region, read_only=False, request={"stackName": "web-frontend"},
                       response={"stackId": f"arn:aws:cloudformation:{region}:{ACCOUNT}:stack/web-frontend/1"})

    def background_day(self, day: datetime) -> None:
        for _ in range(self.rng.randint(3, 8)):
            t = day + timedelta(hours=self.rng.randint(0, 23), minutes=self.rng.randint(0, 59), seconds=self.rng.randint(0, 59))
            region = self.rng.choice(REGIONS)
            self.event(t, None, "cloudtrail.amazonaws.com", "AssumeRole", "cloudtrail.amazonaws.com",
                       "cloudtrail.amazonaws.com", region=region,
                       request={"roleArn": f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/cloudtrail.amazonaws.com/AWSServiceRoleForCloudTrail",
                                "roleSessionName": "cloudtrail"})
            self.event(t + timedelta(seconds=30), None, "kms.amazonaws.com", "GenerateDataKey", "AWS Internal",
                       "AWS Internal", region=region)
        if day.weekday() < 5:
            t = day + timedelta(hours=9, minutes=self.rng.randint(0, 50))
            alice = self.role_session("developer", "alice", CONSOLE_KEY, t)
            console = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
            for name in ("DescribeInstances", "DescribeSecurityGroups", "DescribeVpcs"):
                t += timedelta(seconds=self.rng.randint(5, 90))
                self.event(t, alice, "ec2.amazonaws.com", name, "192.0.2.200", console)

    def incident(self, partner: dict) -> None:
        t, ip, agent = INCIDENT, ATTACKER_IP, ATTACKER_AGENT
        steps = [
            ("sts.amazonaws.com", "GetCallerIdentity", None, None),
            ("iam.amazonaws.com", "ListUsers", None, ("AccessDenied", f"User: arn:aws:iam::{ACCOUNT}:user/{PARTNER_USER} is not authorized to perform: iam:ListUsers")),
            ("iam.amazonaws.com", "ListRoles", None, ("AccessDenied", f"User: arn:aws:iam::{ACCOUNT}:user/{PARTNER_USER} is not authorized to perform: iam:ListRoles")),
            ("iam.amazonaws.com", "ListAttachedUserPolicies", {"userName": PARTNER_USER}, None),
            ("s3.amazonaws.com", "ListBuckets", None, None),
            ("s3.amazonaws.com", "GetBucketPolicy", {"bucketName": "acme-finance-exports"}, ("AccessDenied", "Access Denied")),
            ("ec2.amazonaws.com", "DescribeInstances", None, ("UnauthorizedOperation", "You are not authorized to perform this operation.")),
            ("secretsmanager.amazonaws.com", "ListSecrets", None, ("AccessDeniedException", f"User: arn:aws:iam::{ACCOUNT}:user/{PARTNER_USER} is not authorized to perform: secretsmanager:ListSecrets")),
        ]
        for source, name, request, error in steps:
            t += timedelta(seconds=self.rng.randint(3, 40))
            self.event(t, partner, source, name, ip, agent.replace("sts.get-caller-identity", name.lower()),
                       request=request, error=error)
        for region in REGIONS:  # quick sweep across regions
            t += timedelta(seconds=self.rng.randint(2, 9))
            self.event(t, partner, "ec2.amazonaws.com", "DescribeRegions", ip, agent, region=region,
                       error=("UnauthorizedOperation", "You are not authorized to perform this operation."))
        t += timedelta(minutes=3)
        expiration = t + timedelta(hours=1)
        self.event(t, partner, "sts.amazonaws.com", "AssumeRole", ip, agent.replace("sts.get-caller-identity", "sts.assume-role"),
                   request={"roleArn": ROLE_ARN, "roleSessionName": "sync-maint", "durationSeconds": 3600},
                   response={"credentials": {"accessKeyId": MINTED_KEY, "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLETOKEN",
                                             "expiration": expiration.strftime("%b %d, %Y, %I:%M:%S %p")},
                             "assumedRoleUser": {"assumedRoleId": "AROA3OPSADMINXXEX:sync-maint",
                                                 "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/ops-admin/sync-maint"}},
                   resources=[{"accountId": ACCOUNT, "type": "AWS::IAM::Role", "ARN": ROLE_ARN}])
        admin = self.role_session("ops-admin", "sync-maint", MINTED_KEY, t)
        boto = "Boto3/1.34.84 md/Botocore#1.34.84 ua/2.0 os/linux#6.6.9-amd64 lang/python#3.11.8"
        for name, request, error, read_only in [
            ("ListBuckets", None, None, True),
            ("ListObjects", {"bucketName": "acme-finance-exports"}, None, True),
            ("GetBucketPolicy", {"bucketName": "acme-finance-exports"}, None, True),
            ("PutBucketPolicy", {"bucketName": "acme-finance-exports"}, None, False),
            ("CreateAccessKey", {"userName": "ops-break-glass"}, ("AccessDenied", "User is not authorized to perform: iam:CreateAccessKey"), False),
        ]:
            t += timedelta(seconds=self.rng.randint(10, 70))
            source = "iam.amazonaws.com" if name == "CreateAccessKey" else "s3.amazonaws.com"
            self.event(t, admin, source, name, ip, boto, request=request, error=error, read_only=read_only)

    def build(self) -> list[dict]:
        partner = self.user(PARTNER_USER, PARTNER_KEY)
        ci = self.user("ci-deploy", CI_KEY)
        for n in range(DAYS):
            day = START + timedelta(days=n)
            self.partner_day(day, partner)
            self.ci_day(day, ci)
            self.background_day(day)
        self.incident(partner)
        self.records.sort(key=lambda r: (r["eventTime"], r["eventID"]))
        return self.records


def _delivery_files(records: list[dict], rng: random.Random) -> dict[str, list[dict]]:
    """Group records as CloudTrail delivers them: per region, one file per hour, stamped 5-14 minutes later."""
    files: dict[str, list[dict]] = {}
    names: dict[tuple, str] = {}
    for r in records:
        t = datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        slot = (r["awsRegion"], t.replace(minute=0, second=0))
        if slot not in names:
            region, hour = slot
            stamp = hour + timedelta(hours=1, minutes=rng.randint(5, 14))
            suffix = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(16))
            names[slot] = (f"AWSLogs/{ACCOUNT}/CloudTrail/{region}/{stamp:%Y/%m/%d}/"
                           f"{ACCOUNT}_CloudTrail_{region}_{stamp:%Y%m%dT%H%MZ}_{suffix}.json.gz")
        files.setdefault(names[slot], []).append(r)
    return files


def _gzip(payload: bytes) -> bytes:
    return gzip.compress(payload, compresslevel=9, mtime=0)


def write_sample(out: str | Path = "data/sample") -> dict:
    """(Re)write the sample under ``out``; returns counts. Byte-identical on every run."""
    out = output_folder(out)
    story = _Story()
    records = story.build()
    files = _delivery_files(records, story.rng)
    logs = out / "AWSLogs"
    if logs.exists():
        shutil.rmtree(logs)
    for rel, recs in sorted(files.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_gzip(json.dumps({"Records": recs}, separators=(",", ":")).encode()))
    # Digest files sit beside the logs in real buckets; they are not events and must be skipped.
    digest_day = START + timedelta(days=DAYS - 1)
    digest = (logs / ACCOUNT / "CloudTrail-Digest" / "us-east-1" / f"{digest_day:%Y/%m/%d}" /
              f"{ACCOUNT}_CloudTrail-Digest_us-east-1_sample_us-east-1_{digest_day:%Y%m%dT%H%MZ}.json.gz")
    digest.parent.mkdir(parents=True, exist_ok=True)
    digest.write_bytes(_gzip(json.dumps({
        "awsAccountId": ACCOUNT, "digestStartTime": _iso(digest_day), "digestEndTime": _iso(digest_day + timedelta(hours=1)),
        "digestS3Bucket": "acme-cloudtrail", "logFiles": [], "digestSignatureAlgorithm": "SHA256withRSA",
    }, separators=(",", ":")).encode()))
    return {"records": len(records), "files": len(files)}
