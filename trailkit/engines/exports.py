"""Evidence that is not a delivered trail: what log pipelines export, mapped back to CloudTrail records.

A record is CloudTrail's own when it carries any of ``eventName``, ``eventSource``, ``eventID``, ``eventTime``;
one without ``eventTime`` takes it from the pipeline's time field (``@timestamp`` and the like). Otherwise the
original record is looked for where pipelines keep it as text (CloudTrail's event history ``CloudTrailEvent``,
Splunk's ``_raw``, Elastic's ``event.original``, CloudWatch Logs' and Logstash's ``message``) or as an object
(Splunk's ``result``, Datadog's ``attributes``), and only then are a pipeline's own field names mapped back:
Elastic's ECS fields, OCSF (Security Lake), Microsoft Sentinel's ``AWSCloudTrail`` columns, Datadog's standard
attributes. Containers are opened too: ``{"Records": [...]}``, top-level arrays, Splunk's ``results``,
Datadog's ``data``, CloudWatch's ``logEvents``. Every mapping used is said, by file, with its fields' sources.
Sources of the field names: each pipeline's own ingest definitions and field references (see README).
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone

from . import inflate

EVENT_KEYS = ("eventName", "eventSource", "eventID", "eventTime")
# Where pipelines put the time of the event when they leave eventTime out (Logstash's cloudtrail codec moves it)
TIME_KEYS = ("@timestamp", "timestamp", "_time", "date", "time", "TimeGenerated", "EventTime")
RAW_TEXT = ("CloudTrailEvent", "_raw", "event.original", "message")
WRAPPERS = ("result", "attributes", "content")
CONTAINERS = ("Records", "results", "data", "logEvents", "events", "Events")

# exported field (dotted path) -> CloudTrail field (dotted path), per pipeline; the first present wins
ECS = {
    "@timestamp": "eventTime", "event.action": "eventName", "event.provider": "eventSource", "event.id": "eventID",
    "source.address": "sourceIPAddress", "user_agent.original": "userAgent", "cloud.region": "awsRegion",
    "aws.cloudtrail.error_code": "errorCode", "aws.cloudtrail.error_message": "errorMessage",
    "aws.cloudtrail.user_identity.access_key_id": "userIdentity.accessKeyId",
    "aws.cloudtrail.user_identity.arn": "userIdentity.arn", "aws.cloudtrail.user_identity.type": "userIdentity.type",
    "cloud.account.id": "userIdentity.accountId", "user.id": "userIdentity.principalId",
    "aws.cloudtrail.flattened.request_parameters": "requestParameters",
    "aws.cloudtrail.flattened.response_elements": "responseElements",
    "aws.cloudtrail.read_only": "readOnly", "aws.cloudtrail.event_type": "eventType",
    "aws.cloudtrail.recipient_account_id": "recipientAccountId",
}
OCSF = {
    "time_dt": "eventTime", "time": "eventTime", "api.operation": "eventName", "api.service.name": "eventSource",
    "metadata.uid": "eventID", "src_endpoint.ip": "sourceIPAddress", "src_endpoint.domain": "sourceIPAddress",
    "http_request.user_agent": "userAgent", "cloud.region": "awsRegion", "api.response.error": "errorCode",
    "api.response.message": "errorMessage", "actor.user.credential_uid": "userIdentity.accessKeyId",
    "actor.user.uid": "userIdentity.arn", "actor.user.type": "userIdentity.type",
    "actor.user.account.uid": "userIdentity.accountId", "actor.user.account_uid": "userIdentity.accountId",
    "actor.user.name": "userIdentity.userName", "api.request.data": "requestParameters",
    "api.response.data": "responseElements", "metadata.event_code": "eventType",
}
SENTINEL = {
    "TimeGenerated": "eventTime", "EventName": "eventName", "EventSource": "eventSource", "AwsEventId": "eventID",
    "SourceIpAddress": "sourceIPAddress", "UserAgent": "userAgent", "AWSRegion": "awsRegion",
    "ErrorCode": "errorCode", "ErrorMessage": "errorMessage", "UserIdentityAccessKeyId": "userIdentity.accessKeyId",
    "UserIdentityArn": "userIdentity.arn", "UserIdentityType": "userIdentity.type",
    "UserIdentityAccountId": "userIdentity.accountId", "UserIdentityUserName": "userIdentity.userName",
    "RequestParameters": "requestParameters", "ResponseElements": "responseElements", "ReadOnly": "readOnly",
    "EventTypeName": "eventType", "RecipientAccountId": "recipientAccountId",
}
# Datadog keeps most CloudTrail names and adds its standard attributes; these fill what is missing
DATADOG = {
    "evt.name": "eventName", "network.client.ip": "sourceIPAddress", "http.useragent": "userAgent",
    "error.kind": "errorCode", "error.message": "errorMessage", "usr.account_id": "userIdentity.accountId",
}
MAPPINGS = (("Elastic ECS", ECS, ("event.action", "event.provider")),
            ("OCSF", OCSF, ("api.operation",)),
            ("Microsoft Sentinel", SENTINEL, ("EventName", "AwsEventId")),
            ("Datadog", DATADOG, ("evt.name",)))


def _get(obj, path: str):
    """``obj``'s value at a dotted path, whether the exporter nested it or kept the dots in one key."""
    if not isinstance(obj, dict):
        return None
    if path in obj:
        return obj[path]
    head, _, rest = path.partition(".")
    return _get(obj.get(head), rest) if rest and isinstance(obj.get(head), dict) else None


def _put(record: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for p in parents:
        record = record.setdefault(p, {})
    record.setdefault(last, value)


def iso_time(value):
    """A time as CloudTrail writes it (ISO 8601 with Z) from what pipelines write: ISO with any offset, a
    space and ``GMT``/``UTC``, or epoch seconds or milliseconds. Anything else is kept as it is."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        except (OverflowError, OSError, ValueError):
            return str(value)
    text = str(value).strip()
    for suffix in (" GMT", " UTC", " Z"):
        if text.endswith(suffix):
            text = text[: -len(suffix)] + "+00:00"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return value
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{moment.microsecond // 1000:03d}Z" if moment.microsecond else "Z")


def _is_event(obj) -> bool:
    return isinstance(obj, dict) and any(k in obj for k in EVENT_KEYS)


def _parse(text):
    if not isinstance(text, str) or not text.lstrip().startswith("{"):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def normalize(obj, depth: int = 0) -> tuple[dict | None, str]:
    """The CloudTrail record ``obj`` holds, and how it was found ('' for CloudTrail's own); (None, why) when
    it holds none."""
    if not isinstance(obj, dict) or depth > 4:
        return None, "not a JSON object" if not isinstance(obj, dict) else "wrapped too deeply"
    if _is_event(obj):
        if "eventTime" in obj:
            return obj, ""
        for key in TIME_KEYS:
            if _get(obj, key) is not None:
                return {**obj, "eventTime": iso_time(_get(obj, key))}, f"eventTime from {key}"
        return obj, ""
    for key in RAW_TEXT:
        inner = _parse(_get(obj, key))
        if isinstance(inner, dict):
            record, how = normalize(inner, depth + 1)
            if record is not None:
                return _timed(record, obj), f"the record in {key}" + (f", {how}" if how else "")
    for key in WRAPPERS:
        inner = obj.get(key)
        if isinstance(inner, dict):
            record, how = normalize(inner, depth + 1)
            if record is not None:
                return _timed(record, obj), f"the record in {key}" + (f", {how}" if how else "")
    for name, table, marks in MAPPINGS:
        if any(_get(obj, m) is not None for m in marks):
            record: dict = {}
            for source, target in table.items():
                value = _get(obj, source)
                if value is not None and value != "":
                    if target in _OBJECT_FIELDS and isinstance(value, str):  # kept as JSON text (Sentinel, OCSF)
                        value = _parse(value) or value
                    _put(record, target, iso_time(value) if target == "eventTime" else value)
            return record, f"{name} fields"
    return None, "no CloudTrail fields"


# fields CloudTrail writes as objects, which some pipelines keep as JSON text
_OBJECT_FIELDS = ("requestParameters", "responseElements")


def _timed(record: dict, wrapper: dict) -> dict:
    """A record taken out of a wrapper, with the wrapper's time if it had none of its own."""
    if "eventTime" in record:
        return record
    for key in TIME_KEYS:
        if _get(wrapper, key) is not None:
            return {**record, "eventTime": iso_time(_get(wrapper, key))}
    return record


def candidates(doc):
    """The objects a parsed document holds: itself, or the items of its container (recursively)."""
    if isinstance(doc, list):
        for item in doc:
            yield from candidates(item)
        return
    if isinstance(doc, dict) and not _is_event(doc):
        for key in CONTAINERS:
            if isinstance(doc.get(key), list):
                for item in doc[key]:
                    yield from candidates(item)
                return
            if key == "Records" and isinstance(doc.get(key), dict):  # one record where a list belongs
                yield doc[key]
                return
    yield doc


def read_text(text: str) -> tuple[list[dict], Counter, int]:
    """Every CloudTrail record in ``text`` (one JSON document, or JSON lines), how each was found (a Counter
    of mappings, '' for CloudTrail's own, ``skipped: why`` for objects holding none), and how many lines were
    not JSON."""
    try:
        docs, bad = [json.loads(text)], 0
    except ValueError:
        docs, bad = [], 0
        for line in text.splitlines():
            if line.strip():
                try:
                    docs.append(json.loads(line))
                except ValueError:
                    bad += 1
    out, how = [], Counter()
    for doc in docs:
        for obj in candidates(doc):
            record, found = normalize(obj)
            if record is None:
                how[f"skipped: {found}"] += 1
            else:
                out.append(record)
                how[found] += 1
    return out, how, bad


def describe(how: Counter) -> str:
    """What ``read_text`` did, in words ('' when every record was CloudTrail's own)."""
    parts = [f"{n} record(s) as {found}" for found, n in sorted(how.items()) if found and not found.startswith("skipped")]
    parts += [f"{n} object(s) {found}" for found, n in sorted(how.items()) if found.startswith("skipped")]
    return "; ".join(parts)


def read_records(path: str) -> tuple[list[str], str]:
    """Every CloudTrail record of a file read in Python (an export, or a file DuckDB could not read), as JSON
    text, and what was done to get them, in words ('' for a plain CloudTrail file): records found in an
    export's layout (see ``exports``), bytes that are not UTF-8 replaced, lines that are not JSON skipped.
    Raises when it cannot be read as JSON at all (not gzip where it should be, nested past Python's limit)."""
    return records_of(inflate.read(path), path)


def records_of(raw: bytes, path: str) -> tuple[list[str], str]:
    """``read_records`` of a file's bytes already read (``path`` names it)."""
    parts = inflate.unzipped(raw) if raw[:4] == inflate.ZIP else \
        [(None, inflate.inflater()(raw) if inflate.gzipped(raw, path) else raw)]
    records, how, bad, lost = [], Counter(), 0, []
    for member, data in parts:
        text = data.decode("utf-8", errors="replace")
        if "\ufffd" in text and "\ufffd" not in data.decode("utf-8", errors="ignore"):
            lost.append(f"{text.count(chr(0xFFFD))} byte(s) that are not UTF-8 replaced" +
                        (f" in {member}" if member else ""))
        try:
            found, found_how, found_bad = read_text(text)
        except RecursionError:
            raise ValueError("records nested too deeply to read") from None
        records += found
        how += found_how
        bad += found_bad
    if len(parts) != 1 or parts[0][0] is not None:
        lost.insert(0, f"{len(parts)} log file(s) in the zip archive")
    if bad:
        lost.append(f"{bad} line(s) that are not JSON skipped")
    if describe(how):
        lost.append(describe(how))
    return [json.dumps(r) for r in records], "; ".join(lost)
