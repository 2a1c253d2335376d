"""The rules for single calls: what a responder acts on when a key's lineage calls it, one ``Rule`` each.

Each rule names the calls it is about (event names, without the API version Lambda appends), its finding kind,
severity and ATT&CK techniques, and how its summary reads; ``when`` looks at what the call was about (the
``detail`` and ``extra`` that ``queries/findings.sql`` extracts) to decide whether it matters and how much.
README "Findings" documents every rule: its rationale, threshold and blind spots.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

SEVERITIES = ("high", "medium", "low", "info")


def lower_severity(severity: str) -> str:
    """One step less severe (every call of a finding refused: an attempt)."""
    return SEVERITIES[min(SEVERITIES.index(severity) + 1, len(SEVERITIES) - 1)]


# ------------------------------------------------------------------ conditions on one call's detail
# Each takes a row of findings.sql's ``call`` rows and says: None (not what the rule is about), True (it is, at the
# rule's severity) or "high" (it is, and worse).

_MOST = 1 << 20  # a policy document longer than this is not read (a hostile record cannot make judging slow)


def _admin(row):
    """A managed policy that grants (nearly) everything, or a policy or group named admin: high."""
    text = row["detail"] or ""
    return "high" if re.search(r"AdministratorAccess|IAMFullAccess|PowerUserAccess|admin", text, re.I) else True


def _document(text):
    """A JSON document from its text (a policy inside a request is JSON written as a string, sometimes twice);
    None if it is not one, or too large or too deep to read."""
    import json

    for _ in range(3):
        if not isinstance(text, str):
            break
        if len(text) > _MOST:
            return None
        try:
            text = json.loads(text)
        except (ValueError, RecursionError):
            return None
    return text if isinstance(text, (dict, list)) else None


def _granted(document, account) -> tuple[bool, bool]:
    """(anyone, another account): who the ``Allow`` statements of a policy let in. ``anyone`` is a principal
    ``"*"`` (or ``{"AWS": "*"}``) without a condition (a condition, such as an organization's, is not judged);
    another account is an account id, or an ARN in one, other than ``account``. Deny statements grant nothing;
    service and federated principals are not accounts."""
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    anyone = other = False
    for st in statements if isinstance(statements, list) else [statements]:
        if not isinstance(st, dict) or str(st.get("Effect", "")).lower() != "allow":
            continue
        principal = st.get("Principal")
        values = [principal] if isinstance(principal, str) else \
            (principal.get("AWS") if isinstance(principal, dict) else None)
        values = values if isinstance(values, list) else [values] if values is not None else []
        for value in map(str, values):
            if value == "*":
                anyone = anyone or not st.get("Condition")
            else:
                ids = re.findall(r"(?:^|:)(\d{12})(?::|$)", value)
                other = other or any(i != account for i in ids)
    return anyone, other


def _outside(row):
    """A trust policy letting in another account or anyone: high."""
    anyone, other = _granted(_document(row["extra"]), row["account"])
    return "high" if anyone or other else True


def shared_with(text) -> tuple[list[str], list[str]]:
    """(added, removed): the accounts (or ``all``, organisations) a snapshot's or image's sharing request adds and
    removes, from the request's JSON (EC2's ``{"add": {"items": [{"userId": ...}, {"group": "all"}]}, "remove":
    ...}``, RDS's list of accounts added); several documents may follow each other in ``text``."""
    import json

    def who(node) -> list[str]:
        items = node.get("items", node) if isinstance(node, dict) else node
        items = items if isinstance(items, list) else [items]
        return [str(i.get("userId") or i.get("group") or i.get("organizationArn") or i.get("organizationalUnitArn"))
                if isinstance(i, dict) else str(i) for i in items if i]

    added: list[str] = []
    removed: list[str] = []
    if not isinstance(text, str) or len(text) > _MOST:
        return added, removed
    decoder, text, pos = json.JSONDecoder(), text.strip(), 0
    while pos < len(text):
        try:
            value, end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            break
        pos = end + (len(text[end:]) - len(text[end:].lstrip()))
        if isinstance(value, dict):
            added += who(value.get("add") or value.get("Add") or [])
            removed += who(value.get("remove") or value.get("Remove") or [])
        elif value is not None:
            added += who(value)
    return list(dict.fromkeys(added)), list(dict.fromkeys(removed))


def _shared(row):
    """A snapshot or image shared with an account, or with ``all``."""
    return True if shared_with(row["extra"])[0] else None


def _open(row):
    """An ingress rule from every address: a ``cidrIp`` or ``cidrIpv6`` of prefix 0 anywhere in the request."""
    import ipaddress

    def ranges(node, depth=0):
        if depth > 50:  # deeper than any request AWS writes
            return
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("cidrIp", "cidrIpv6") and isinstance(value, str):
                    yield value
                else:
                    yield from ranges(value, depth + 1)
        elif isinstance(node, list):
            for value in node:
                yield from ranges(value, depth + 1)

    for text in ranges(_document(row["extra"])):
        try:
            if ipaddress.ip_network(text.strip(), strict=False).prefixlen == 0:
                return True
        except ValueError:
            continue
    return None


def _gpu(row):
    kind = (row["detail"] or "").lower()
    return True if re.match(r"(p\d|g\d|inf\d|trn\d|dl\d|f\d|vt\d)", kind) \
        or re.search(r"(24|32|48)xlarge|metal", kind) else None


def _userdata(row):
    return True if (row["extra"] or "") == "userData" else None


def _no_mfa(row):
    return True if (row["extra"] or "").lower() == "no" and (row["detail"] or "") == "Success" else None


def _exposed(row):
    """A bucket policy letting in anyone or another account, an ACL granting all (authenticated) users (a grant
    or a canned ACL), or a public access block removed: high; any other change of who may read: the rule's."""
    if row["eventname"] == "DeletePublicAccessBlock":
        return "high"
    text = row["extra"] or ""
    if re.search(r"acs\.amazonaws\.com/groups/global/(AllUsers|AuthenticatedUsers)|"
                 r"public-read|authenticated-read", text):
        return "high"
    anyone, other = _granted(_document(text), row["account"])
    return "high" if anyone or other else True


def _public_function(row):
    """A function URL without authentication, or an invoke permission for anyone: high."""
    return "high" if (row["extra"] or "") in ("NONE", "*") else True


def _disabled(row):
    return True if (row["extra"] or "") == "false" else None


def _decrypted(row):
    return "high" if (row["extra"] or "") == "true" else True


@dataclass(frozen=True)
class Rule:
    """One kind of call a responder acts on."""

    name: str  # the rule's id, in the ``rule`` column and README
    kind: str
    severity: str
    technique: str  # ATT&CK ids, space-separated
    apis: tuple[str, ...]  # event names (without Lambda's version suffix)
    says: str  # what the key did, after its id: "stopped CloudTrail logging"
    noun: str = ""  # what the details are ("trail", "secret"): "of 3 trails: a, b, c"
    when: Callable | None = None  # None: not what the rule is about; True: it is; "high": it is, and worse
    why: str = ""  # rationale, for README
    blind: str = ""  # what it cannot see, for README


RULES: tuple[Rule, ...] = (
    Rule("who-am-i", "recon", "low", "T1087.004 T1033", ("GetCallerIdentity", "GetAccountSummary",
         "ListAccountAliases", "GetAccountAuthorizationDetails"), "asked who it is", "",
         why="the first call made with a found key: `GetCallerIdentity` needs no permission and says whose key it is",
         blind="SDKs, the CLI and many tools call it routinely: read it with the other findings"),
    Rule("user-created", "persistence", "medium", "T1136.003", ("CreateUser",), "created IAM users", "user",
         why="a new IAM user is a way back in that survives rotating the leaked key",
         blind="users created by infrastructure code (Terraform, CloudFormation) look the same; check the user "
                "agent"),
    Rule("access-key-created", "persistence", "high", "T1098.001", ("CreateAccessKey",),
         "created access keys", "user",
         why="a new long-term key outlives the leaked one (the lineage follows it)",
         blind="a key created outside the logs given, or in an account whose trail you lack, is not seen"),
    Rule("login-profile-created", "persistence", "high", "T1098", ("CreateLoginProfile",),
         "gave IAM users a console password", "user",
         why="a console password for an IAM user that had none: console access that needs no key",
         blind="SSO and federated console access are other calls (not covered)"),
    Rule("login-profile-changed", "privilege-escalation", "high", "T1098", ("UpdateLoginProfile",),
         "changed IAM users' console passwords", "user",
         why="changing another user's console password takes over that user",
         blind="a user changing its own password (ChangePassword) is not this call"),
    Rule("policy-attached", "privilege-escalation", "medium", "T1098.003",
         ("AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy", "PutUserPolicy", "PutRolePolicy",
          "PutGroupPolicy", "CreatePolicyVersion", "SetDefaultPolicyVersion", "AddUserToGroup"),
         "granted permissions", "permission", _admin,
         why="granting permissions to oneself or a planted identity; high when the policy is "
              "AdministratorAccess, IAMFullAccess, PowerUserAccess, or the policy or group is named *admin*",
         blind="an inline policy's content is not read (only its name): a powerful inline policy is medium"),
    Rule("role-trust", "persistence", "medium", "T1098.003", ("CreateRole", "UpdateAssumeRolePolicy"),
         "created or re-trusted roles", "role", _outside,
         why="a role that trusts another account or anyone is a way back in; high when an Allow statement of the "
              "trust policy names an account other than the recording one, or `\"*\"`",
         blind="trust through an identity provider (OIDC, SAML) or an organization condition is not judged foreign"),
    Rule("lambda-backdoor", "persistence", "medium", "T1546 T1648",
         ("CreateFunction", "UpdateFunctionCode", "UpdateFunctionConfiguration", "AddPermission",
          "CreateFunctionUrlConfig", "UpdateFunctionUrlConfig", "AddLayerVersionPermission", "PublishLayerVersion",
          "CreateEventSourceMapping"), "changed Lambda functions' code, layers or who may call them", "function",
         _public_function,
         why="code that runs with the function's role, or a public invoke permission, is a persistent foothold; high "
             "when a function URL needs no authentication (`authType` NONE) or anyone (`\"*\"`) may invoke it",
         blind="deployments by CI pipelines look the same: read the user agent and the key"),
    Rule("roles-anywhere", "persistence", "high", "T1098", ("CreateTrustAnchor", "CreateProfile"),
         "set up IAM Roles Anywhere (certificates that get role sessions)", "name",
         why="a trust anchor lets whoever holds its certificate obtain role sessions, with no key at all",
         blind="—"),
    Rule("federation-token", "persistence", "medium", "T1550.001 T1078.004", ("GetFederationToken",),
         "minted federation tokens (console sessions that outlive the key's deactivation)", "federated user",
         why="federation tokens and their console sessions live on after the key that made them is disabled",
         blind="the session's own keys are followed by the lineage (see Following the key)"),
    Rule("key-pair", "persistence", "medium", "T1098.004", ("ImportKeyPair", "CreateKeyPair"),
         "added EC2 key pairs", "key pair",
         why="an SSH key pair added to EC2 lets its holder into instances launched with it",
         blind="keys added inside instances (authorized_keys) are not in CloudTrail"),
    Rule("secrets-read", "credential-access", "high", "T1555.006", ("GetSecretValue", "BatchGetSecretValue"),
         "read Secrets Manager secrets", "secret",
         why="reading secret values is the goal of many intrusions",
         blind="applications read secrets all day: the key's usual behaviour is the baseline"),
    Rule("parameters-read", "credential-access", "medium", "T1555.006",
         ("GetParameter", "GetParameters", "GetParametersByPath"), "read SSM parameters", "parameter", _decrypted,
         why="SecureString parameters hold credentials; high when decrypted (`withDecryption`)",
         blind="plain String parameters are medium whatever they hold"),
    Rule("password-data", "credential-access", "high", "T1552", ("GetPasswordData",),
         "asked for EC2 instances' Windows passwords", "instance",
         why="a Windows instance's administrator password, encrypted to the key pair",
         blind="—"),
    Rule("user-data-read", "credential-access", "medium", "T1552.005 T1580", ("DescribeInstanceAttribute",),
         "read EC2 instances' user data (where secrets are often left)", "instance", _userdata,
         why="user data often holds bootstrap secrets; counted only when `attribute` is `userData`",
         blind="the instance metadata service (IMDS) reads from inside the instance are not in CloudTrail"),
    Rule("object-read", "data-access", "medium", "T1530", ("GetObject", "SelectObjectContent", "RestoreObject"),
         "read S3 objects", "bucket",
         why="reading S3 objects (data events): what left",
         blind="S3 data events are logged only by trails that select them: `objects` says when the logs hold none"),
    Rule("table-read", "data-access", "medium", "T1530", ("Scan", "ExportTableToPointInTime"),
         "read DynamoDB tables whole", "table",
         why="a whole-table read or export of DynamoDB",
         blind="DynamoDB data events (Scan, Query) are logged only when selected"),
    Rule("logging-stopped", "defense-evasion", "high", "T1562.008",
         ("StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors", "PutInsightSelectors",
          "DeleteEventDataStore", "StopEventDataStoreIngestion"), "stopped, deleted or narrowed CloudTrail logging",
         "trail",
         why="stopping, deleting or narrowing a trail (event selectors, insight selectors) hides what follows",
         blind="a trail deleted in another region or account is seen only in that trail's logs"),
    Rule("flow-logs-deleted", "defense-evasion", "high", "T1562.008",
         ("DeleteFlowLogs", "DeleteResolverQueryLogConfig", "DisassociateResolverQueryLogConfig", "DeleteLogGroup",
          "DeleteLogStream", "PutRetentionPolicy"), "deleted network or DNS logs", "log",
         why="deleting VPC flow logs, DNS query logging or log groups erases network evidence",
         blind="log retention shortened by other means (lifecycle rules) is not covered"),
    Rule("guardduty-disabled", "defense-evasion", "high", "T1562.001",
         ("DeleteDetector", "DisassociateFromMasterAccount", "DisassociateFromAdministratorAccount", "DeleteMembers",
          "StopMonitoringMembers", "CreateIPSet", "UpdateIPSet", "CreateFilter", "UpdateFilter"),
         "disabled or blinded GuardDuty", "detector",
         why="deleting or detaching GuardDuty, or adding trusted IP lists and suppression filters, blinds detection",
         blind="—"),
    Rule("guardduty-paused", "defense-evasion", "high", "T1562.001", ("UpdateDetector",),
         "disabled GuardDuty detectors", "detector", _disabled,
         why="`UpdateDetector` with `enable: false` turns GuardDuty off; other updates are not findings",
         blind="—"),
    Rule("config-stopped", "defense-evasion", "high", "T1562.001",
         ("StopConfigurationRecorder", "DeleteConfigurationRecorder", "DeleteDeliveryChannel", "DisableSecurityHub",
          "DeleteAccessAnalyzer"), "stopped AWS Config, Security Hub or Access Analyzer", "recorder",
         why="stopping AWS Config, Security Hub or Access Analyzer removes the account's watchers",
         blind="—"),
    Rule("left-organization", "defense-evasion", "high", "T1666", ("LeaveOrganization",),
         "tried to take the account out of its organization (and its guardrails)",
         why="leaving the organization drops its service control policies and central logging",
         blind="only the member account's own trail records the attempt"),
    Rule("firewall-opened", "defense-evasion", "high", "T1562.007", ("AuthorizeSecurityGroupIngress",),
         "opened security groups to the whole internet", "group", _open,
         why="a security group opened to every address (`/0`, IPv4 or IPv6): a way in; only rules from `/0` count",
         blind="a rule open to a large but not /0 range is not judged"),
    Rule("snapshot-shared", "exfiltration", "high", "T1537",
         ("ModifySnapshotAttribute", "ModifyImageAttribute", "ModifyDBSnapshotAttribute",
          "ModifyDBClusterSnapshotAttribute"), "shared snapshots or images with other accounts", "resource", _shared,
         why="an EBS snapshot, AMI or RDS snapshot shared with another account (or `all`) copies the data out",
         blind="copying a snapshot into another account's KMS key is a different call"),
    Rule("bucket-opened", "exfiltration", "medium", "T1537 T1530",
         ("PutBucketPolicy", "PutBucketAcl", "PutObjectAcl", "DeletePublicAccessBlock"),
         "changed who may read S3 buckets", "bucket", _exposed,
         why="a bucket policy or ACL that lets anyone, every AWS user or another account read is a way out for the "
             "data; high when an Allow statement names `\"*\"` (without a condition) or another account, when an "
             "ACL grants AllUsers or AuthenticatedUsers, or when a public access block is removed (Deny "
             "statements grant nothing)",
         blind="access granted through an access point, a KMS key policy or a role trusted by another account is "
               "not judged here"),
    Rule("gpu-instances", "resource-abuse", "high", "T1496.001", ("RunInstances",),
         "launched GPU, accelerated or very large instances", "instance type", _gpu,
         why="GPU, accelerated and very large instances are what crypto-miners launch; only those types count",
         blind="mining on ordinary instance types, or in a region whose trail you lack, is not seen here "
                "(new-region may see it)"),
    Rule("quota-raised", "resource-abuse", "medium", "T1496", ("RequestServiceQuotaIncrease",),
         "asked for higher service quotas", "quota",
         why="asking for more quota is how abuse scales",
         blind="—"),
    Rule("model-invoked", "resource-abuse", "high", "T1496.004",
         ("InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream", "PutUseCaseForModelAccess",
          "CreateFoundationModelAgreement", "PutFoundationModelEntitlement"),
         "used or unlocked Bedrock models (logged as read-only)", "model",
         why="stolen keys are resold for Bedrock model access (LLMjacking); `InvokeModel` is logged as "
              "read-only, so read-only filters miss it",
         blind="model invocation logging (prompts) is a separate Bedrock feature"),
    Rule("email-abuse", "resource-abuse", "high", "T1496.004",
         ("SendEmail", "SendRawEmail", "SendBulkEmail", "SendBulkTemplatedEmail", "UpdateAccountSendingEnabled",
          "PutAccountDetails", "VerifyEmailIdentity", "CreateEmailIdentity", "DeleteIdentity"),
         "sent email or prepared SES for sending", "identity",
         why="SES sending from a trusted domain is a spam and phishing source",
         blind="SES `SendEmail` is a data event in some API versions and may not be logged"),
    Rule("remote-command", "execution", "high", "T1651", ("SendCommand", "StartSession"),
         "ran commands or sessions on instances through SSM", "document or target",
         why="SSM `SendCommand` and `StartSession` run commands on instances with their roles",
         blind="what the command did inside the instance is not in CloudTrail"),
    Rule("user-data-changed", "execution", "high", "T1059.009", ("ModifyInstanceAttribute",),
         "changed EC2 instances' user data (code run at next start)", "instance", _userdata,
         why="new user data is code the instance runs at its next start",
         blind="—"),
    Rule("ssh-key-pushed", "lateral-movement", "high", "T1021.008",
         ("SendSSHPublicKey", "SendSerialConsoleSSHPublicKey", "EnableSerialConsoleAccess"),
         "pushed SSH keys to instances (EC2 Instance Connect, serial console)", "instance",
         why="EC2 Instance Connect and the serial console push a one-time SSH key: a way onto instances",
         blind="—"),
    Rule("console-without-mfa", "initial-access", "medium", "T1078.004", ("ConsoleLogin",),
         "signed in to the console without MFA", "result", _no_mfa,
         why="a successful console sign-in without MFA (`additionalEventData.MFAUsed` = `No`)",
         blind="a console sign-in carries no access key: it is in a key's findings only through a federated "
                "session of its lineage"),
    Rule("data-destroyed", "impact", "medium", "T1485",
         ("DeleteParameter", "DeleteParameters", "DeleteSecret", "DeleteBucket", "DeleteObjects", "DeleteDBInstance",
          "DeleteDBCluster", "DeleteSnapshot", "DeleteVolume"), "deleted data", "resource",
         why="deleting parameters, secrets, buckets, databases, snapshots or volumes: impact, or covering tracks",
         blind="object deletions inside buckets are data events, logged only when selected"),
)
WATCHED = tuple(sorted({name for rule in RULES for name in rule.apis}))
BY_API = {name: rule for rule in RULES for name in rule.apis}


def markdown() -> str:
    """README's table of the call rules (a test keeps README's copy equal to this)."""
    rows = ["| rule | kind | severity | calls | ATT&CK | why, and its threshold | blind spots |",
            "|---|---|---|---|---|---|---|"]
    for r in RULES:
        when = " (see why)" if r.when else ""
        rows.append(f"| `{r.name}` | {r.kind} | {r.severity}{when} | {', '.join(r.apis)} | {r.technique} | {r.why} | "
                    f"{r.blind} |")
    return "\n".join(rows) + "\n"
