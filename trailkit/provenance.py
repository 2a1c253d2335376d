"""What an investigation's answers rest on: the "About this analysis" section (data source, window, version, the
Athena queries and their cost, the exact SQL of each question) and "Data quality" (files covered, read and
skipped with why, exports and how they were read, records without a usable time, duplicate deliveries)."""
from __future__ import annotations

import html
import pandas as pd

from . import __version__
from .inputs import iso
from .questions import QUESTIONS
from .tables import CSS, table_html


def about_html(f) -> str:
    parts = [
        ("data source", f.source),
        ("window (UTC)", f.window.describe()),
        ("generated (UTC)", iso(f.generated)),
        ("trailkit version", __version__),
    ]
    if f.case.allowed:
        parts.append(("allowlist", f.case.allowed.text))
    if f.scanned:
        parts.append(("Athena", f.scanned))
        parts += [(f"query id ({s.rows} rows)", f"{s.query_id or ''}: {s.state}, {(s.bytes_scanned or 0) / 1024 ** 2:.1f} MB "
                   f"scanned, USD {s.cost_usd or 0:.4f}" + (", reused" if s.reused else "")) for s in f.stats]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in parts)
    sql = "".join(f"<h4>{html.escape(name)}: {html.escape(QUESTIONS[name].help)}</h4>"
                  f"<pre class='tk-sql'>{html.escape(text)}</pre>" for name, text in f.sql.items())
    return CSS + f"<table class='tk-summary'>{rows}</table>{sql}"


def _most(stats: list, field: str, text: str) -> str:
    values = [getattr(s, field) for s in stats if getattr(s, field) is not None]
    if not values:  # a window read straight from the files: counting would read them all a second time
        return "not counted without the cache (each event is still counted once)"
    return text.format(max(values))


def quality_html(f) -> str:
    """What the answers rest on: the files covered and read, those skipped and why, exports and how they were
    read, records without a usable time, duplicate deliveries set aside."""
    local = [s for s in f.stats if s.covered is not None]
    if not local:
        return ("<p>Athena read the files with its CloudTrail SerDe: what it could not read is not reported to "
                "trailkit. Each event is still counted once (same <code>eventid</code>).</p>")
    skipped = sorted({item for s in local for item in s.skipped})
    notes = sorted({item for s in local for item in s.notes})
    parts = [
        ("log files covered by the window", f"{max(s.covered for s in local):,} "
                                            f"({max(s.files or 0 for s in local):,} read now, the rest from the cache)"),
        ("files skipped", f"{len(skipped):,}" + (" (below)" if skipped else "")),
        ("files read from an export's layout or in part", f"{len(notes):,}" + (" (below)" if notes else "")),
        ("records without a usable time", _most(local, "untimed", "{:,} (kept where no window is asked; left out "
                                                                 "of windows)")),
        ("duplicate deliveries", _most(local, "duplicates", "{:,} records were second deliveries of an event (same "
                                                            "eventid) and were counted once")),
    ]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in parts)
    out = CSS + f"<table class='tk-summary'>{rows}</table>"
    if skipped:
        out += table_html(pd.DataFrame(skipped, columns=["file skipped", "why"]), 100)
    if notes:
        out += table_html(pd.DataFrame(notes, columns=["file", "how its records were read"]), 100)
    return out
