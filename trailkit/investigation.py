"""One investigation of one key: every question asked together, and their sections for a notebook or report.

``Case`` is the investigation's inputs, parsed once (one key, one window with one "now", one allowlist), before
any query runs. ``investigate()`` asks every question of a ``Trail`` and returns an ``Investigation``; it is what
the notebook, the widget panel and ``trailkit report`` all call. ``SECTIONS`` turns its answers into
displayable pieces (HTML tables and matplotlib figures) in the order a responder reads them.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pandas as pd

from . import __version__, questions
from .engines.base import QueryStats
from .contract import visible
from .inputs import Allowlist, KeyMatch, Window, iso
from .investigate import Trail
from .questions import QUESTIONS, classify_ips

RAW_ROWS = 500


@dataclass(frozen=True)
class Case:
    """What an investigation is about, validated: the key, the window and the allowlist."""

    key: KeyMatch
    window: Window = Window()
    allowed: Allowlist = Allowlist()

    @classmethod
    def parse(cls, key, start=None, end=None, allowed=None, fragment: bool = False, now=None) -> "Case":
        """Every input checked before anything runs; bad input raises InvalidInput with a one-line message."""
        return cls(KeyMatch.parse(key, fragment), Window.parse(start, end, now=now), Allowlist.parse(allowed))

    def requests(self) -> dict[str, questions.Request]:
        """The questions an investigation asks, by name, all about the same key and window."""
        return {"usage": questions.usage(self.key, self.window), "ips": questions.ips(self.key, self.window),
                "owner": questions.owner(self.key, self.window), "minted": questions.minted(self.key, self.window)}


@dataclass
class Investigation:
    """The answers about one key in one window, each under its question's name."""

    case: Case
    source: str
    usage: pd.DataFrame
    ips: pd.DataFrame
    owner: pd.DataFrame
    minted: pd.DataFrame
    lineage: pd.DataFrame | None = None  # every key the key came from and led to (Trail.lineage)
    lifecycle: pd.DataFrame | None = None  # its birth and death (Trail.lifecycle)
    timeline: pd.DataFrame | None = None  # every event of the lineage's keys, oldest first (Trail.timeline)
    sql: dict = field(default_factory=dict)  # question -> exact SQL run, values in place
    stats: list[QueryStats] = field(default_factory=list)
    generated: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def key(self) -> str:
        return self.case.key.value

    def redacted(self) -> "Investigation":
        """The same investigation with account ids, IPs, key ids and ARN names masked consistently (see
        ``trailkit.redact``), for a report that leaves the team."""
        from dataclasses import replace

        from .redact import Redactor

        r = Redactor()
        allowed = self.case.allowed
        case = replace(self.case, key=KeyMatch(r.text(self.case.key.value), self.case.key.fragment),
                       allowed=Allowlist(allowed.networks, r.text(allowed.text)) if allowed else allowed)
        stats = [replace(s, sql="", params={}, skipped=[(r.text(p), r.text(w)) for p, w in s.skipped],
                         notes=[(r.text(p), r.text(h)) for p, h in s.notes]) for s in self.stats]
        return replace(self, case=case, usage=r.frame(self.usage), ips=r.frame(self.ips), owner=r.frame(self.owner),
                       minted=r.frame(self.minted), sql={k: r.text(v) for k, v in self.sql.items()},
                       lineage=_masked(r, self.lineage), lifecycle=_masked(r, self.lifecycle),
                       timeline=_masked(r, self.timeline),
                       source=r.text(self.source), stats=stats)

    @property
    def window(self) -> Window:
        return self.case.window

    @property
    def unexpected(self) -> list[str]:
        return list(self.ips.loc[self.ips["category"] == "unexpected", "sourceipaddress"])

    def summary(self) -> dict:
        ev = self.usage
        return {
            "access key": self.key,
            "window (UTC)": self.window.describe(),
            "data source": self.source,
            "owner (ARN seen)": ", ".join(self.owner["principalarn"].dropna().unique()) or "—",
            "first seen (UTC)": iso(ev["eventtime"].min()) if len(ev) else "—",
            "last seen (UTC)": iso(ev["eventtime"].max()) if len(ev) else "—",
            "events": len(ev),
            "distinct source IPs": len(self.ips),
            "unexpected IPs": (", ".join(self.unexpected) or "none") if self.case.allowed else "no allowlist given",
            "errors": int(ev["errorcode"].notna().sum()),
            "temporary keys minted": ", ".join(self.minted["mintedkeyid"].dropna()) or "none",
            "keys in its lineage": _lineage_line(self.lineage, self.window.bounded),
        }

    @property
    def scanned(self) -> str | None:
        return scanned(self.stats)


def scanned(stats: list[QueryStats]) -> str | None:
    """Athena's figures over ``stats``, as Athena returned them: queries, data scanned, cost, reused results."""
    athena = [s for s in stats if s.query_id]
    if not athena:
        return None
    total = sum(s.bytes_scanned or 0 for s in athena)
    cost = sum(s.cost_usd or 0 for s in athena)
    reused = sum(1 for s in athena if s.reused)
    return (f"{len(athena)} Athena queries, {total / 1024 ** 2:.1f} MB scanned, about USD {cost:.4f}"
            + (f", {reused} answered from reused results" if reused else ""))


def _masked(redactor, frame):
    return None if frame is None else redactor.frame(frame)


def _lineage_line(lineage, windowed: bool) -> str:
    from .lineage import unused_words

    if lineage is None:
        return "not followed (a key fragment)"
    above, below = int((lineage["depth"] < 0).sum()), int((lineage["depth"] > 0).sum())
    return f"{above} behind it, {below} from it ({int((lineage['events'] == 0).sum())} {unused_words(windowed)})"


def investigate(trail: Trail, case: Case, progress=None, redact: bool = False) -> Investigation:
    """Ask everything about ``case``: the key's events, source IPs (classified by its allowlist), owner and
    minted keys.

    Args:
        progress: optional callable receiving a short status line before each question.

    Example:
        >>> investigate(Trail.local("data/sample"),
        ...             Case.parse("AKIA3PARTNERSYNC0001", allowed="203.0.113.0/24"))  # doctest: +SKIP
    """
    import warnings

    say = progress or (lambda text: None)
    requests = case.requests()
    answers, sql, stats = {}, {}, []
    with warnings.catch_warnings():
        if redact:  # file names in warnings would leave the report unmasked: the data-quality section says it
            warnings.simplefilter("ignore")
        for i, (name, request) in enumerate(requests.items(), 1):
            say(f"{i}/{len(requests)} {name}…")
            answers[name] = trail.ask(request)
            sql[name] = trail.engine.statement(request)
            if trail.last is not None:
                stats.append(trail.last)
        follow = {}
        if not case.key.fragment:  # a lineage is about one whole key
            say(f"{len(requests) + 1}/{len(requests) + 2} lineage…")
            before = len(trail.engine.history)
            follow, more = _follow(trail, case)
            sql.update(more)
            stats += trail.engine.history[before:]
    say("done")
    done = Investigation(case=case, source=trail.engine.describe(), usage=answers["usage"],
                         ips=classify_ips(answers["ips"], case.allowed), owner=answers["owner"],
                         minted=answers["minted"], sql=sql, stats=stats, **follow)
    return done.redacted() if redact else done


def _follow(trail: Trail, case: Case) -> tuple[dict, dict]:
    """The key's lineage, lifecycle and timeline, from one reading of the links."""
    window = case.window
    follow = trail.follow(case.key.value, window.start, window.end)
    keys = list(follow["lineage"]["accesskeyid"])
    sql = {"chain": trail.engine.statement(questions.links(window)) + "\n" +
           trail.engine.statement(questions.figures(keys, [], window)),
           "timeline": trail.engine.statement(questions.events_of(keys, window))}
    return follow, sql


# ------------------------------------------------------------------ rendering

CSS = """<style>
.tk-summary {border-collapse: collapse; margin: 0 !important}
.tk-summary td, .tk-summary th {padding: 2px 10px !important; text-align: left !important; vertical-align: top}
.tk-summary th {white-space: nowrap; width: 14em}
.tk-table {border-collapse: collapse; font-size: 12px}
.tk-table td, .tk-table th {border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: left !important; white-space: nowrap}
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
    if max_rows and len(df) > max_rows:
        text += f"<p>First {max_rows} of {len(df):,} rows.</p>"
    return text


def summary_html(f: Investigation) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td{' class=tk-unexpected' if k == 'unexpected IPs' and f.unexpected else ''}>"
        f"{html.escape(str(v))}</td></tr>" for k, v in f.summary().items())
    return CSS + f"<table class='tk-summary'>{rows}</table>"


def about_html(f: Investigation) -> str:
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


def quality_html(f: Investigation) -> str:
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


def ip_table(f: Investigation) -> pd.DataFrame:
    return f.ips[["sourceipaddress", "category", "events", "first_seen", "last_seen", "apis", "errors"]]


def api_table(f: Investigation) -> pd.DataFrame:
    ev = f.usage
    if ev.empty:
        return pd.DataFrame({"eventsource": [], "eventname": [], "calls": [], "errors": [], "last_called": []})
    grouped = ev.assign(failed=ev["errorcode"].notna()).groupby(["eventsource", "eventname"])
    return grouped.agg(calls=("eventid", "size"), errors=("failed", "sum"), last_called=("eventtime", "max")) \
        .reset_index().sort_values(["calls", "eventname"], ascending=[False, True])


def _over_time(f: Investigation) -> list:
    from . import plots

    ax = plots.usage_over_time(f.usage, start=f.window.start, end=f.window.end, unexpected=f.unexpected)
    return [ax.figure]


def _by_ip(f: Investigation) -> list:
    from . import plots

    return [plots.usage_by_ip(f.ips).figure, table_html(ip_table(f))]


def _per_api(f: Investigation) -> list:
    from . import plots

    return [plots.api_breakdown(f.usage).figure, table_html(api_table(f), 50)]


LINEAGE_COLUMNS = ["accesskeyid", "depth", "parent", "via", "via_time", "via_principal", "principalarn", "events",
                   "first_seen", "last_seen", "sourceips"]


def _lineage(f: Investigation) -> list:
    from . import plots

    if f.lineage is None:
        return ["<p>Not followed: a lineage is about one whole key, not a fragment.</p>"]
    return [plots.lineage_tree(f.lineage, windowed=f.window.bounded).figure, table_html(f.lineage[LINEAGE_COLUMNS], 200)]


def _lifecycle(f: Investigation) -> str:
    if f.lifecycle is None:
        return "<p>Not followed: a lifecycle is about one whole key, not a fragment.</p>"
    if f.lifecycle.empty:
        return ("<p>No call that created, minted, changed or deleted the key is in these logs (it was made before "
                "them, or outside the accounts and regions they cover).</p>")
    return table_html(f.lifecycle)


def _timeline(f: Investigation) -> list:
    from . import plots

    if f.lineage is None or f.timeline is None:
        return ["<p>Not followed: a lineage is about one whole key, not a fragment.</p>"]
    return [plots.swimlanes(f.timeline, f.lineage).figure]


RAW_COLUMNS = ["eventtime", "eventsource", "eventname", "awsregion", "sourceipaddress", "errorcode", "useragent",
               "accesskeyid", "eventid"]

#: section title -> what it shows (HTML strings and matplotlib Figures), in reading order
SECTIONS = {
    "Summary": lambda f: [summary_html(f)],
    "Lineage": lambda f: _lineage(f),
    "Lifecycle": lambda f: [_lifecycle(f)],
    "Usage over time": _over_time,
    "Usage by IP": _by_ip,
    "Per-API breakdown": _per_api,
    "Timeline of the lineage": lambda f: _timeline(f),
    "Temporary keys minted": lambda f: [table_html(f.minted) if len(f.minted) else "<p>None.</p>"],
    "Raw events (newest first)": lambda f: [table_html(f.usage[RAW_COLUMNS], RAW_ROWS)],
    "Data quality": lambda f: [quality_html(f)],
    "About this analysis": lambda f: [about_html(f)],
}


def displayable(item):
    """An IPython display object for a section item: HTML stays HTML, a Figure becomes a PNG (and is closed),
    so outputs are static and an exported report needs no JavaScript."""
    import io

    from IPython.display import HTML, Image

    if isinstance(item, str):
        return HTML(item)
    buf = io.BytesIO()
    item.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(item)
    return Image(data=buf.getvalue(), format="png")


def show(f: Investigation, title: str) -> None:
    """Display one section in a notebook (static outputs: PNG charts, HTML tables)."""
    from IPython.display import display

    for item in SECTIONS[title](f):
        display(displayable(item))
