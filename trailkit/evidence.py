"""The investigation's sections on what the key did: findings (most severe first, each with its evidence one
click away), the data it touched, and the source addresses with their network and country.

Static HTML only (``<details>`` opens without JavaScript), so an exported report, its PDF and the notebook
show the same thing. Every value from the logs is escaped: CloudTrail fields are attacker-controlled.
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

COLOURS = {"high": "#B03000", "medium": "#B07000", "low": "#336699", "info": "#666666"}
CSS = """<style>
.tk-findings {border-collapse: collapse; font-size: 12px; width: 100%; table-layout: fixed}
.tk-findings td {word-wrap: break-word; overflow-wrap: anywhere}
.tk-findings td, .tk-findings th {border-bottom: 1px solid #ddd; padding: 3px 6px; text-align: left !important;
  vertical-align: top}
.tk-findings td.tk-sev {font-weight: bold; white-space: nowrap}
.tk-findings td.tk-when {white-space: nowrap}
.tk-findings td.tk-key {font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 90%; overflow-wrap: normal}
.tk-findings details summary {cursor: pointer; color: #336699}
.tk-findings code {font-size: 11px; word-break: break-all}
</style>"""


def _when(value) -> str:
    return "" if value is None or value != value else value.strftime("%Y-%m-%d %H:%M:%S")


def findings_html(findings: "pd.DataFrame | None", sigma: str | None = None) -> str:
    """The findings table: severity, kind, key, when, events, ATT&CK, the summary, and the evidence's event ids
    behind a click."""
    from .contract import visible
    from .findings import evidence_count, severity_line

    if findings is None:
        return "<p>Not judged: findings are about one whole key, not a fragment.</p>"
    note = f"<p>{html.escape(sigma)}</p>" if sigma else ""
    if findings.empty:
        return note + "<p>No findings: none of trailkit's rules (README, \"Findings\") matched these events.</p>"
    rows = []
    for r in findings.to_dict("records"):
        ids = (r["eventids"] or "").split()
        shown = evidence_count(len(ids), r["events"])
        evidence = (f"<details><summary>{shown}</summary><code>{html.escape(' '.join(ids))}</code></details>"
                    if ids else "")
        rows.append(
            f"<tr><td class='tk-sev' style='color:{COLOURS.get(r['severity'], '#333')}'>{html.escape(r['severity'])}"
            f"</td><td>{html.escape(r['kind'])}</td><td class='tk-key'>{html.escape(visible(r['accesskeyid'] or ''))}</td>"
            f"<td class='tk-when'>{_when(r['first_seen'])}<br>{_when(r['last_seen'])}</td><td>{r['events']}</td>"
            f"<td>{html.escape(r['technique'] or '')}</td><td>{html.escape(visible(r['summary']))}{evidence}</td></tr>")
    widths = "".join(f"<col style='width:{w}%'>" for w in (6, 10, 16, 13, 6, 8, 41))
    return (CSS + note + f"<p><b>{len(findings)} findings</b>: {severity_line(findings)}.</p><table class='tk-findings'>{widths}<tr>"
            "<th>severity</th><th>kind</th><th>key</th><th>first / last seen (UTC)</th><th>events</th>"
            "<th>ATT&amp;CK</th><th>what happened (evidence: click)</th></tr>" + "".join(rows) + "</table>")


def objects_html(objects: "pd.DataFrame | None") -> str:
    from .tables import table_html

    if objects is None:
        return "<p>Not followed: data touched is about one whole key, not a fragment.</p>"
    from .investigate import NO_DATA_EVENTS

    note = "" if objects.attrs.get("s3_data_events", True) else f"<p><b>Note:</b> {html.escape(NO_DATA_EVENTS)}.</p>"
    if objects.empty:
        return note + "<p>No secret, parameter, snapshot, image, table or S3 resource named by these keys' calls.</p>"
    return note + table_html(objects, 300)


def networks_of(ips: "pd.DataFrame") -> "pd.DataFrame":
    """The addresses of an ``ips`` answer with their ``label, asn, organization, country, block``."""
    from . import network

    context = network.context(list(ips["sourceipaddress"]))
    return ips.merge(context, on="sourceipaddress", how="left")


def networks_line() -> str:
    from . import network

    return (f"Network and country: {network.ATTRIBUTION}; data of {network.data_date()}. Addresses are grouped "
            "by ASN and /24 (IPv4) or /48 (IPv6) in the findings.")
