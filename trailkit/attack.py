"""ATT&CK for CloudTrail events: trailkit's own table, derived from TrailDiscover.

``attack.json`` beside this module maps each (eventSource, eventName) TrailDiscover documents to its ATT&CK
tactics and techniques. It is derived (ids and names normalised, nothing else) from TrailDiscover's
``docs/events.json`` (github.com/adanalvarez/TrailDiscover at commit f96cbdb0591f78d16b1948e84c211becce6258e6),
licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); the file carries that attribution. ``build``
makes it again from the dataset (``python -m trailkit.attack EVENTS_JSON``); a test checks the shipped file is
what ``build`` makes.
"""
from __future__ import annotations

import json
import re
import sys
from functools import cache
from importlib import resources
from pathlib import Path

ATTRIBUTION = ("Derived from TrailDiscover (github.com/adanalvarez/TrailDiscover, commit "
               "f96cbdb0591f78d16b1948e84c211becce6258e6, docs/events.json) by Adan Alvarez and contributors, "
               "licensed CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/). Changes: only each event's "
               "ATT&CK tactics and techniques are kept, their ids and names normalised.")
_ID = re.compile(r"\b(TA\d{4}|T\d{4}(?:\.\d{3})?)\b\s*[-:]?\s*(.*)")
#: Lambda's API names carry a version (UpdateFunctionCode20150331v2): the table and lookups use the bare name
_VERSION = re.compile(r"20\d{6}(v\d+)?$")


def api(eventname: str) -> str:
    """An event name without the API version Lambda appends (``AddPermission20150331v2`` -> ``AddPermission``)."""
    return _VERSION.sub("", eventname or "")


def _ids(values) -> list[tuple[str, str]]:
    out = []
    for value in values:
        m = _ID.match(value.strip())
        if m and (m.group(1), m.group(2)) not in out:
            out.append((m.group(1), m.group(2).strip()))
    return out


def build(events: list[dict]) -> dict:
    """The shipped table from TrailDiscover's events (a list of its entries)."""
    table: dict[str, dict] = {}
    for entry in sorted(events, key=lambda e: (e["eventSource"], e["eventName"])):
        named = _ids(entry.get("mitreAttackTactics", []))
        techniques = _ids(entry.get("mitreAttackSubTechniques", []) + entry.get("mitreAttackTechniques", []))
        tactics = [f"{i} {n}" for i, n in named if i.startswith("TA")]
        techniques += [(i, n) for i, n in named if not i.startswith("TA")]  # a technique filed among tactics
        row = table.setdefault(f"{entry['eventSource']}:{api(entry['eventName'])}", {"tactics": [], "techniques": []})
        row["tactics"] += [t for t in tactics if t not in row["tactics"]]
        row["techniques"] += [f"{i} {n}" for i, n in techniques if f"{i} {n}" not in row["techniques"]]
    return {"attribution": ATTRIBUTION, "licence": "CC BY 4.0", "events": table}


@cache
def table() -> dict:
    return json.loads(resources.files("trailkit.data").joinpath("attack.json").read_text(encoding="utf-8"))["events"]


def of(eventsource: str, eventname: str) -> tuple[str, str]:
    """(tactics, techniques) of one event: tactic names joined by ", " (``Persistence, Privilege Escalation``) and
    technique ids by spaces (``T1136 T1078``); both empty when TrailDiscover does not list the event."""
    row = table().get(f"{eventsource}:{api(eventname)}")
    if row is None:
        return "", ""
    return (", ".join(t.split(" ", 1)[1] for t in row["tactics"]),
            " ".join(t.split(" ", 1)[0] for t in row["techniques"]))


def annotate(events) -> None:
    """Add ``tactics`` and ``techniques`` columns to a frame of events (``eventsource``, ``eventname``)."""
    import pandas as pd

    pairs = [of(s, n) for s, n in zip(events["eventsource"].fillna(""), events["eventname"].fillna(""))]
    events["tactics"] = pd.array([p[0] or None for p in pairs], dtype="string")
    events["techniques"] = pd.array([p[1] or None for p in pairs], dtype="string")


if __name__ == "__main__":  # python -m trailkit.attack ../shared/datasets/traildiscover/events.json
    built = build(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))
    out = Path(__file__).with_name("data") / "attack.json"
    out.write_text(json.dumps(built, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(built['events'])} events")
