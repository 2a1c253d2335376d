"""Static HTML tables for notebooks and reports: one stylesheet, one escaping table writer."""
from __future__ import annotations

import re

import pandas as pd

from .contract import visible

CSS = """<style>
.tk-summary {border-collapse: collapse; margin: 0 !important}
.tk-summary td, .tk-summary th {padding: 2px 10px !important; text-align: left !important; vertical-align: top}
.tk-summary th {white-space: nowrap; width: 14em}
.tk-table {border-collapse: collapse; font-size: 12px; table-layout: auto !important}
.tk-table td, .tk-table th {border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: left !important; white-space: nowrap}
.tk-table td.tk-id {white-space: nowrap !important; overflow-wrap: normal !important}
.tk-unexpected {color: #B03000; font-weight: bold}
.tk-sql {background: #f6f6f6 !important; padding: 8px !important; font-size: 12px;
          font-family: ui-monospace, Menlo, Consolas, monospace !important; overflow-x: auto}
</style>"""


def table_html(df: pd.DataFrame, max_rows: int | None = None) -> str:
    """An escaped HTML table (CloudTrail fields are attacker-controlled: user agents, request parameters)."""
    shown = df.head(max_rows) if max_rows else df
    out = shown.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%d %H:%M:%S")
    out = out.astype("object").where(out.notna(), "")  # to_html prints pd.NA as <NA> whatever na_rep says
    out = out.map(lambda v: visible(v) if isinstance(v, str) else v)
    text = out.to_html(index=False, escape=True, classes="tk-table", border=0)
    text = _IDS.sub(r'<td class="tk-id">\1</td>', text)
    if max_rows and len(df) > max_rows:
        text += f"<p>First {max_rows} of {len(df):,} rows.</p>"
    return text


# cells that are one access key id: never broken across lines, so a key can be read and found (event ids break
# at their hyphens)
_IDS = re.compile(r"<td>((?:AKIA|ASIA|AIDA|AROA|ABIA|ACCA)[A-Z0-9]{12,124})</td>")
