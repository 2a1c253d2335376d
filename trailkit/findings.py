"""What a key's lineage did that a responder acts on: findings, each with its evidence.

``queries/findings.sql`` aggregates the lineage's events where they are (DuckDB or Athena) into a few rows: the
watched calls per key, API and what they were about; bursts of read-only or denied calls per 10-minute slice;
regions and user-agent families first used a day after the lineage began; user agents of offensive tools; and
the source addresses. ``judge`` turns those rows into findings: the calls by ``trailkit.rules`` (one rule per thing
responders look for), the rest by the thresholds here; README "Findings" documents each with its rationale,
threshold and blind spots.

A finding: ``kind`` (``KINDS``), ``severity`` (``high``, ``medium``, ``low``, ``info``), ``accesskeyid``,
``first_seen``, ``last_seen``, ``events``, ``technique`` (ATT&CK ids), ``summary`` (one sentence with the
numbers), ``eventids`` (the evidence, space-separated, at most ``EVIDENCE`` per finding), ``rule`` (which rule).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .attack import api
from .rules import BY_API, SEVERITIES, lower_severity as _lower

if TYPE_CHECKING:
    import pandas as pd

KINDS = ("recon", "enumeration", "unexpected-ip", "new-region", "new-user-agent", "suspicious-user-agent",
         "persistence", "privilege-escalation", "credential-access", "data-access", "defense-evasion",
         "exfiltration", "resource-abuse", "sigma",
         # beyond the first list: techniques CloudTrail records that none of the above names
         "execution", "lateral-movement", "initial-access", "impact")
COLUMNS = ("kind", "severity", "accesskeyid", "first_seen", "last_seen", "events", "technique", "summary",
           "eventids", "rule")
EVIDENCE = 100  # event ids kept per finding (``events`` counts them all)
BURST_APIS = 20  # distinct read-only APIs in one 10-minute slice
BURST_DENIED = 10  # denied calls in one 10-minute slice ...
BURST_DENIED_APIS = 3  # ... of at least this many APIs (one call retried is not a probe)
#: user agents of offensive distributions, cloud attack and audit tools, secret scanners (lower case, RE2)
SUSPECT_AGENTS = (r"(^|[^a-z0-9])(kali|parrot|pentoo|blackarch|pacu|scoutsuite|scout suite|prowler|"
                  r"cloudsplaining|cloudfox|cloudmapper|pmapper|principalmapper|trufflehog|weirdaal|"
                  r"enumerate-iam|stratus-red-team|nuclei|sqlmap|nmap|masscan|s3scanner|cloudbrute|endgame|"
                  r"awspx|cloudgoat|gitleaks|ccat)([^a-z]|$)")


def _details(row) -> list[str]:
    """The things one aggregated row is about (a JSON list of names is several)."""
    text = row["detail"]
    if not text:
        return []
    if text.startswith("["):
        try:
            return [str(v) for v in json.loads(text) if v is not None]
        except ValueError:
            pass
    return [text]


def _listed(values: list[str], noun: str, limit: int = 5) -> str:
    if not values or not noun:
        return ""
    shown = ", ".join(values[:limit]) + (f" and {len(values) - limit} more" if len(values) > limit else "")
    return f" ({_many(len(values), noun)}: {shown})"


def _counted(events: int, errors: int, of: str = "") -> str:
    """``3 calls of StopLogging, all refused``."""
    text = f"{events} call{'' if events == 1 else 's'}" + (f" of {of}" if of else "")
    if errors and errors == events:
        return text + (", refused" if events == 1 else ", all refused")
    return text + (f", {errors} refused" if errors else "")


def _many(n: int, noun: str) -> str:
    """``1 policy``, ``6 policies``, ``2 addresses``."""
    if n == 1:
        return f"{n} {noun}"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return f"{n} {noun[:-1]}ies"
    return f"{n} {noun}{'es' if noun.endswith('s') else 's'}"


def evidence_count(ids: int, events: int) -> str:
    """How many event ids a finding's evidence holds, against its events: ``the first 100 of 2151 event ids``,
    or ``31 event ids (2 events have none)``."""
    if events > ids and ids >= EVIDENCE:
        return f"the first {ids} of {events} event ids"
    return f"{ids} event ids" + (f" ({events - ids} event{'s have' if events - ids != 1 else ' has'} none)"
                                 if events > ids else "")


def _evidence(ids) -> str:
    """The first ``EVIDENCE`` distinct event ids of several rows' evidence, in order."""
    seen: dict[str, None] = {}
    for chunk in ids:
        for i in (chunk or "").split():
            seen.setdefault(i)
            if len(seen) >= EVIDENCE:
                return " ".join(seen)
    return " ".join(seen)


def judge(rows: "pd.DataFrame", allowed=None, networks: "pd.DataFrame | None" = None) -> "pd.DataFrame":
    """The findings of ``findings.sql``'s rows; ``allowed`` an ``Allowlist`` (or CIDRs), ``networks`` the
    addresses' context (``trailkit.network.context``) for grouping unexpected addresses."""
    from .contract import visible
    from .inputs import Allowlist

    allowlist = Allowlist.parse(allowed)
    records = [{k: _plain(v) for k, v in r.items()} for r in rows.to_dict("records")]
    out: list[dict] = []
    out += _calls([r for r in records if r["rule"] == "call"])
    out += _bursts([r for r in records if r["rule"] == "burst"])
    for r in (r for r in records if r["rule"] == "region"):
        keys = ", ".join((r["extra"] or r["accesskeyid"] or "").split())
        out.append(finding("new-region", "low", "T1535", r, f"{keys} first used region {visible(r['detail'] or '')} "
                            f"a day or more after the lineage began ({_counted(r['events'], r['errors'])}, "
                            f"{_many(r['apis'], 'API')})", "new-region", refused=_all_refused(r)))
    for r in (r for r in records if r["rule"] == "agent"):
        out.append(finding("new-user-agent", "low", "T1078.004", r, f"the lineage first called with "
                            f"'{visible(r['detail'] or '')}' user agents a day or more after the lineage began "
                            f"({_counted(r['events'], r['errors'])}; first by {r['accesskeyid']}: "
                            f"'{visible(r['extra'] or '')[:80]}')", "new-user-agent", refused=_all_refused(r)))
    for r in (r for r in records if r["rule"] == "suspect"):
        out.append(finding("suspicious-user-agent", "medium", "T1595 T1078.004", r,
                            f"{r['accesskeyid']} called with user agents naming '{visible(r['detail'] or '')}', an "
                            f"offensive tool or distribution ({_counted(r['events'], r['errors'])}, "
                            f"{_many(r['apis'], 'API')}; first: '{visible(r['extra'] or '')[:120]}')",
                            "suspicious-user-agent", refused=_all_refused(r)))
    out += _unexpected([r for r in records if r["rule"] == "ip"], allowlist, networks)
    return findings_frame(out)


def _spanning(group: list[dict]) -> dict:
    """The earliest row of ``group``, its ``last_seen`` the group's latest: one finding over several rows."""
    first = min(group, key=lambda r: str(r["first_seen"]))
    return {**first, "last_seen": max(group, key=lambda r: str(r["last_seen"]))["last_seen"]}


def _all_refused(row) -> bool:
    return bool(row["errors"]) and row["errors"] == row["events"]


def _plain(value):
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    return value


def finding(kind, severity, technique, row, summary, rule, events=None, eventids=None, refused=False) -> dict:
    """One finding (a row of ``findings_frame``); ``refused`` (every call of it was refused: an attempt) makes it
    one step less severe."""
    if refused:
        severity = _lower(severity)
    return {"kind": kind, "severity": severity, "accesskeyid": row["accesskeyid"], "first_seen": row["first_seen"],
            "last_seen": row["last_seen"], "events": row["events"] if events is None else events,
            "technique": technique, "summary": summary,
            "eventids": _evidence([row["eventids"]] if eventids is None else eventids), "rule": rule}


def _calls(rows: list[dict]) -> list[dict]:
    """The watched calls, one finding per rule, key and severity."""
    from .contract import visible

    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        rule = BY_API.get(api(row["eventname"] or ""))
        if rule is None:
            continue
        judged = rule.when(row) if rule.when else True
        if judged is None:
            continue
        severity = rule.severity if judged is True else judged
        groups.setdefault((rule, row["accesskeyid"], severity), []).append(row)
    out = []
    for (rule, key, severity), group in groups.items():
        events, errors = sum(r["events"] for r in group), sum(r["errors"] for r in group)
        group.sort(key=lambda r: (str(r["first_seen"]), str(r["detail"]), str(r["extra"]), r["eventname"] or ""))
        details = []
        for r in group:
            details += [visible(d) for d in _details(r) if visible(d) not in details]
        apis = sorted({api(r["eventname"]) for r in group})
        summary = f"{key} {rule.says}: {_counted(events, errors, ', '.join(apis))}{_listed(details, rule.noun)}"
        out.append(finding(rule.kind, severity, rule.technique, _spanning(group), summary, rule.name, events,
                            [r["eventids"] for r in group], refused=bool(errors) and errors == events))
    return out


def _bursts(rows: list[dict]) -> list[dict]:
    """One finding per burst (``findings.sql`` merged its slices and counted each call once)."""
    out: list[dict] = []
    for r in rows:
        apis, denied, events = int(r["detail"] or 0), int(r["extra"] or 0), r["events"]
        minutes = max(1, round((r["last_seen"] - r["first_seen"]).total_seconds() / 60))
        severity = "high" if denied >= BURST_DENIED and denied * 2 >= events else "medium"
        share = round(100 * denied / events) if events else 0
        summary = (f"{r['accesskeyid']} probed {apis} read-only APIs across {_many(r['services'], 'service')} in "
                   f"{_many(minutes, 'minute')} from {_many(r['ips'], 'address')} ({events} read-only or denied "
                   f"calls, {denied} denied, {share}%)")
        out.append(finding("enumeration", severity, "T1580 T1526 T1087.004 T1069.003", r, summary, "burst"))
    return out


def _unexpected(rows: list[dict], allowlist, networks) -> list[dict]:
    """Addresses outside the allowlist, one finding per network (ASN and /24 or /48)."""
    from . import network as net

    if not allowlist:
        return []
    outside = [r for r in rows if allowlist.category(r["detail"]) == "unexpected"]
    context = {}
    if networks is not None and len(networks):
        context = {r["sourceipaddress"]: r for r in networks.to_dict("records")}
    groups: dict[tuple, list[dict]] = {}
    for r in outside:
        c = context.get(r["detail"], {})
        asn = _plain(c.get("asn"))
        key = (asn, _plain(c.get("block")) or net.block(r["detail"]))
        groups.setdefault(key, []).append(r)
    out = []
    for (asn, block), group in sorted(groups.items(), key=lambda kv: -sum(r["events"] for r in kv[1])):
        c = context.get(group[0]["detail"], {})
        label = _plain(c.get("label")) or net.label(group[0]["detail"])
        where = net.network_name(asn, _plain(c.get("organization")), _plain(c.get("country"))) \
            if label == "public" else f"{label} addresses"
        events, errors = sum(r["events"] for r in group), sum(r["errors"] for r in group)
        keys = sorted({k for r in group for k in (r["extra"] or r["accesskeyid"] or "").split()})
        addresses = sorted(r["detail"] for r in group)
        shown = ", ".join(addresses[:5]) + (f" and {len(addresses) - 5} more" if len(addresses) > 5 else "")
        n = len(addresses)
        summary = (f"{', '.join(keys)} called from {n} address{'es' if n != 1 else ''} outside the allowlist in "
                   f"{block} ({where}): {_counted(events, errors)} "
                   f"({shown})")
        severity = "medium" if errors == events else "high"
        row = _spanning(group)
        row["accesskeyid"] = keys[0] if keys else row["accesskeyid"]
        out.append(finding("unexpected-ip", severity, "T1078.004", row, summary, "unexpected-ip", events,
                            [r["eventids"] for r in group]))
    return out


def findings_frame(findings: list[dict]) -> "pd.DataFrame":
    """Findings (``finding`` rows) as the frame every findings answer is: ``COLUMNS``, most severe first."""
    import pandas as pd

    frame = pd.DataFrame(findings, columns=list(COLUMNS))
    for name in ("first_seen", "last_seen"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    frame["events"] = frame["events"].astype("Int64")
    for name in ("kind", "severity", "accesskeyid", "technique", "summary", "eventids", "rule"):
        frame[name] = frame[name].astype("string")
    order = frame["severity"].map({s: i for i, s in enumerate(SEVERITIES)})
    return frame.assign(_o=order).sort_values(["_o", "first_seen", "kind"], kind="stable") \
        .drop(columns="_o").reset_index(drop=True)


def merged(*frames: "pd.DataFrame") -> "pd.DataFrame":
    """Findings of several sources in one frame, most severe first (with the first frame's ``attrs``)."""
    records = [r for f in frames if f is not None for r in f.to_dict("records")]
    out = findings_frame([{k: _plain(v) for k, v in r.items()} for r in records])
    out.attrs.update(frames[0].attrs if frames and frames[0] is not None else {})
    return out


def severity_line(findings: "pd.DataFrame") -> str:
    """``14 high, 23 medium, 7 low``: how many findings of each severity, most severe first."""
    counts = findings["severity"].value_counts()
    return ", ".join(f"{int(counts[s])} {s}" for s in SEVERITIES if s in counts)


def text(findings: "pd.DataFrame", width: int = 110) -> str:
    """Findings for people: one block each, most severe first, the summary whole and the first event ids."""
    import textwrap

    from .contract import visible

    if findings.empty:
        return "no findings\n"
    lines = []
    for row in findings.to_dict("records"):
        ids = (row["eventids"] or "").split()
        when = " → ".join(t.strftime("%Y-%m-%d %H:%M:%S") for t in (row["first_seen"], row["last_seen"])
                          if t is not None and t == t) + " UTC"
        head = [f"{row['severity'].upper():6} {row['kind']}", row["accesskeyid"] or "", when,
                _many(row["events"], "event"), row["technique"] or "", f"[{row['rule']}]"]
        lines.append(visible("  ".join(part for part in head if part)))
        lines += textwrap.wrap(visible(row["summary"]), width, initial_indent="       ", subsequent_indent="       ",
                               break_on_hyphens=False, break_long_words=False)  # names stay whole, to be copied
        if ids:
            listed = "--format json lists them" if row["events"] <= len(ids) else "--format json lists these"
            lines.append(f"       evidence: {visible(' '.join(ids[:3]))}" + (
                f" … ({evidence_count(len(ids), row['events'])}; {listed})" if len(ids) > 3 else ""))
    return "\n".join(lines) + f"\n({len(findings)} findings)\n"
