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

def _admin(row) -> str | None:
    text = (row["detail"] or "")
    return "high" if re.search(r"AdministratorAccess|IAMFullAccess|PowerUserAccess|:policy/.*[Aa]dmin", text) \
        else "medium"


def _outside(row) -> str | None:
    """A trust policy naming another account or anyone."""
    named = set((row["extra"] or "").split())
    foreign = {a for a in named if a.isdigit() and a != row["account"]}
    return "high" if foreign or '"*"' in named else "medium"


def _shared(row) -> str | None:
    """A snapshot or image shared: the accounts (or ``all``) it was shared with."""
    text = row["extra"] or ""
    if not text or text in ("null", "{}", "[]") or not re.search(r"\d{12}|all", text, re.I):
        return None
    return "high"


def _open(row) -> str | None:
    return "high" if re.search(r'/0"', row["extra"] or "") else None  # 0.0.0.0/0, ::/0, any address/0


def _gpu(row) -> str | None:
    kind = (row["detail"] or "").lower()
    return "high" if re.match(r"(p\d|g\d|inf\d|trn\d|dl\d|f\d|vt\d)", kind) or re.search(r"(24|32|48)xlarge|metal", kind) \
        else None


def _userdata(row) -> str | None:
    return "medium" if (row["extra"] or "") == "userData" else None


def _no_mfa(row) -> str | None:
    return "medium" if (row["extra"] or "").lower() == "no" and (row["detail"] or "") == "Success" else None


def _disabled(row) -> str | None:
    return "high" if (row["extra"] or "") == "false" else None


def _decrypted(row) -> str | None:
    return "high" if (row["extra"] or "") == "true" else "medium"


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
    when: Callable | None = None  # a row's severity, or None when the call is not what the rule is about
    why: str = ""  # rationale, for README
    blind: str = ""  # what it cannot see, for README


RULES: tuple[Rule, ...] = (
    Rule("who-am-i", "recon", "low", "T1087.004 T1033", ("GetCallerIdentity", "GetAccountSummary",
         "ListAccountAliases", "GetAccountAuthorizationDetails"), "asked who it is", "",
         why="the first thing a stolen key is used for (`GetCallerIdentity` needs no permission)",
         blind="legitimate SDKs and tools call it too: read it with the other findings"),
    Rule("user-created", "persistence", "medium", "T1136.003", ("CreateUser",), "created IAM users", "user"),
    Rule("access-key-created", "persistence", "high", "T1098.001", ("CreateAccessKey",),
         "created access keys", "user", why="a new long-term key outlives the leaked one"),
    Rule("login-profile-created", "persistence", "high", "T1098", ("CreateLoginProfile",),
         "gave IAM users a console password", "user"),
    Rule("login-profile-changed", "privilege-escalation", "high", "T1098", ("UpdateLoginProfile",),
         "changed IAM users' console passwords", "user", why="taking over another user's console"),
    Rule("policy-attached", "privilege-escalation", "medium", "T1098.003",
         ("AttachUserPolicy", "AttachRolePolicy", "AttachGroupPolicy", "PutUserPolicy", "PutRolePolicy",
          "PutGroupPolicy", "CreatePolicyVersion", "SetDefaultPolicyVersion", "AddUserToGroup"),
         "granted permissions", "policy", _admin, why="high when the policy is AdministratorAccess, "
         "IAMFullAccess, PowerUserAccess or named *admin*"),
    Rule("role-trust", "persistence", "medium", "T1098.003", ("CreateRole", "UpdateAssumeRolePolicy"),
         "created or re-trusted roles", "role", _outside,
         why="high when the trust policy names another account or anyone (`\"*\"`): a way back in"),
    Rule("lambda-backdoor", "persistence", "medium", "T1546 T1648",
         ("CreateFunction", "UpdateFunctionCode", "UpdateFunctionConfiguration", "AddPermission",
          "CreateFunctionUrlConfig", "UpdateFunctionUrlConfig", "AddLayerVersionPermission", "PublishLayerVersion",
          "CreateEventSourceMapping"), "changed Lambda functions' code, layers or who may call them", "function"),
    Rule("roles-anywhere", "persistence", "high", "T1098", ("CreateTrustAnchor", "CreateProfile"),
         "set up IAM Roles Anywhere (certificates that get role sessions)", "name"),
    Rule("federation-token", "persistence", "medium", "T1550.001 T1078.004", ("GetFederationToken",),
         "minted federation tokens (console sessions that outlive the key's deactivation)", "federated user"),
    Rule("key-pair", "persistence", "medium", "T1098.004", ("ImportKeyPair", "CreateKeyPair"),
         "added EC2 key pairs", "key pair"),
    Rule("secrets-read", "credential-access", "high", "T1555.006", ("GetSecretValue", "BatchGetSecretValue"),
         "read Secrets Manager secrets", "secret"),
    Rule("parameters-read", "credential-access", "medium", "T1555.006",
         ("GetParameter", "GetParameters", "GetParametersByPath"), "read SSM parameters", "parameter", _decrypted,
         why="high when decrypted (`withDecryption`: SecureString values)"),
    Rule("password-data", "credential-access", "high", "T1552", ("GetPasswordData",),
         "asked for EC2 instances' Windows passwords", "instance"),
    Rule("user-data-read", "credential-access", "medium", "T1552.005 T1580", ("DescribeInstanceAttribute",),
         "read EC2 instances' user data (where secrets are often left)", "instance", _userdata),
    Rule("object-read", "data-access", "medium", "T1530", ("GetObject", "SelectObjectContent", "RestoreObject"),
         "read S3 objects", "bucket", blind="S3 data events are logged only by trails that select them"),
    Rule("table-read", "data-access", "medium", "T1530", ("Scan", "ExportTableToPointInTime"),
         "read DynamoDB tables whole", "table"),
    Rule("logging-stopped", "defense-evasion", "high", "T1562.008",
         ("StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors", "PutInsightSelectors",
          "DeleteEventDataStore", "StopEventDataStoreIngestion"), "stopped, deleted or narrowed CloudTrail logging",
         "trail"),
    Rule("flow-logs-deleted", "defense-evasion", "high", "T1562.008",
         ("DeleteFlowLogs", "DeleteResolverQueryLogConfig", "DisassociateResolverQueryLogConfig", "DeleteLogGroup",
          "DeleteLogStream", "PutRetentionPolicy"), "deleted network or DNS logs", "log"),
    Rule("guardduty-disabled", "defense-evasion", "high", "T1562.001",
         ("DeleteDetector", "DisassociateFromMasterAccount", "DisassociateFromAdministratorAccount", "DeleteMembers",
          "StopMonitoringMembers", "CreateIPSet", "UpdateIPSet", "CreateFilter", "UpdateFilter"),
         "disabled or blinded GuardDuty", "detector"),
    Rule("guardduty-paused", "defense-evasion", "high", "T1562.001", ("UpdateDetector",),
         "disabled GuardDuty detectors", "detector", _disabled),
    Rule("config-stopped", "defense-evasion", "high", "T1562.001",
         ("StopConfigurationRecorder", "DeleteConfigurationRecorder", "DeleteDeliveryChannel", "DisableSecurityHub",
          "DeleteAccessAnalyzer"), "stopped AWS Config, Security Hub or Access Analyzer", "recorder"),
    Rule("left-organization", "defense-evasion", "high", "T1666", ("LeaveOrganization",),
         "tried to take the account out of its organization (and its guardrails)"),
    Rule("firewall-opened", "defense-evasion", "high", "T1562.007", ("AuthorizeSecurityGroupIngress",),
         "opened security groups to the whole internet", "group", _open),
    Rule("snapshot-shared", "exfiltration", "high", "T1537",
         ("ModifySnapshotAttribute", "ModifyImageAttribute", "ModifyDBSnapshotAttribute",
          "ModifyDBClusterSnapshotAttribute"), "shared snapshots or images with other accounts", "resource", _shared),
    Rule("gpu-instances", "resource-abuse", "high", "T1496.001", ("RunInstances",),
         "launched GPU, accelerated or very large instances", "instance type", _gpu),
    Rule("quota-raised", "resource-abuse", "medium", "T1496", ("RequestServiceQuotaIncrease",),
         "asked for higher service quotas", "quota"),
    Rule("model-invoked", "resource-abuse", "high", "T1496.004",
         ("InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream", "PutUseCaseForModelAccess",
          "CreateFoundationModelAgreement", "PutFoundationModelEntitlement"),
         "used or unlocked Bedrock models (logged as read-only)", "model",
         why="LLMjacking: stolen keys resold for model access"),
    Rule("email-abuse", "resource-abuse", "high", "T1496.004",
         ("SendEmail", "SendRawEmail", "SendBulkEmail", "SendBulkTemplatedEmail", "UpdateAccountSendingEnabled",
          "PutAccountDetails", "VerifyEmailIdentity", "CreateEmailIdentity", "DeleteIdentity"),
         "sent email or prepared SES for sending", "identity", why="spam from a trusted domain"),
    Rule("remote-command", "execution", "high", "T1651", ("SendCommand", "StartSession"),
         "ran commands or sessions on instances through SSM", "document or target"),
    Rule("user-data-changed", "execution", "high", "T1059.009", ("ModifyInstanceAttribute",),
         "changed EC2 instances' user data (code run at next start)", "instance", _userdata),
    Rule("ssh-key-pushed", "lateral-movement", "high", "T1021.008",
         ("SendSSHPublicKey", "SendSerialConsoleSSHPublicKey", "EnableSerialConsoleAccess"),
         "pushed SSH keys to instances (EC2 Instance Connect, serial console)", "instance"),
    Rule("console-without-mfa", "initial-access", "medium", "T1078.004", ("ConsoleLogin",),
         "signed in to the console without MFA", "result", _no_mfa),
    Rule("data-destroyed", "impact", "medium", "T1485",
         ("DeleteParameter", "DeleteParameters", "DeleteSecret", "DeleteBucket", "DeleteObjects", "DeleteDBInstance",
          "DeleteDBCluster", "DeleteSnapshot", "DeleteVolume"), "deleted data", "resource"),
)
WATCHED = tuple(sorted({name for rule in RULES for name in rule.apis}))
BY_API = {name: rule for rule in RULES for name in rule.apis}
