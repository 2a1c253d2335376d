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

from . import questions
from .engines.base import QueryStats
from .inputs import Allowlist, KeyMatch, Window, iso
from .investigate import Trail
from .evidence import findings_html, objects_html
from .tables import CSS, table_html
from .provenance import about_html, quality_html
from .questions import classify_ips

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
    findings: pd.DataFrame | None = None  # what the lineage did, most severe first (Trail.findings)
    objects: pd.DataFrame | None = None  # what it read, wrote, shared or deleted (Trail.objects)
    sigma: str | None = None  # the Sigma rules run, and those that could not be
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
        done = replace(self, case=case, usage=r.frame(self.usage), ips=r.frame(self.ips), owner=r.frame(self.owner),
                       minted=r.frame(self.minted), sql={k: r.text(v) for k, v in self.sql.items()},
                       lineage=_masked(r, self.lineage), lifecycle=_masked(r, self.lifecycle),
                       timeline=_masked(r, self.timeline), findings=_masked(r, self.findings),
                       objects=_masked(r, self.objects), sigma=r.text(self.sigma) if self.sigma else None,
                       source=r.text(self.source), stats=stats)
        if done.findings is not None:  # names the sentences list alone, once every other part has been masked
            done.findings["summary"] = done.findings["summary"].map(r.known, na_action="ignore").astype("string")
        return done

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
            "findings": _findings_line(self.findings),
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


def _sigma_line(ruleset) -> str | None:
    """The Sigma rules run, and each that could not be with its reason."""
    from pathlib import Path

    if ruleset is None:
        return None
    skipped = "; ".join(f"{Path(r.path).name} ({r.title}): {r.reason}" for r in ruleset.skipped)
    return ruleset.describe() + (f". Not run: {skipped}" if skipped else "")


def _findings_line(findings) -> str:
    if findings is None:
        return "not judged (a key fragment)"
    if findings.empty:
        return "none"
    from .findings import severity_line

    return severity_line(findings) + " (kinds: " + ", ".join(dict.fromkeys(findings["kind"])) + ")"


def investigate(trail: Trail, case: Case, progress=None, redact: bool = False, sigma=None) -> Investigation:
    """Ask everything about ``case``: the key's events, source IPs (classified by its allowlist), owner and
    minted keys.

    Args:
        progress: optional callable receiving a short status line before each question.
        sigma: a folder of Sigma rules (or a loaded ``sigma.RuleSet``) whose matches are findings too.

    Example:
        >>> investigate(Trail.local("data/sample"),
        ...             Case.parse("AKIA3PARTNERSYNC0001", allowed="203.0.113.0/24"))  # doctest: +SKIP
    """
    import warnings

    say = progress or (lambda text: None)
    ruleset = None
    if sigma:  # read (its errors said) before any query runs
        from . import sigma as sigma_rules

        ruleset = sigma if isinstance(sigma, sigma_rules.RuleSet) else sigma_rules.load(sigma)
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
            say(f"{len(requests) + 1}/{len(requests) + 2} lineage, findings…")
            before = len(trail.engine.history)
            follow, more = _follow(trail, case, ruleset)
            sql.update(more)
            stats += trail.engine.history[before:]
    say("done")
    done = Investigation(case=case, source=trail.engine.describe(), usage=answers["usage"],
                         ips=classify_ips(answers["ips"], case.allowed), owner=answers["owner"],
                         minted=answers["minted"], sql=sql, stats=stats,
                         sigma=_sigma_line(ruleset), **follow)
    return done.redacted() if redact else done


def _follow(trail: Trail, case: Case, ruleset=None) -> tuple[dict, dict]:
    """The key's lineage, lifecycle and timeline, from one reading of the links; what the lineage's keys did."""
    import warnings

    from .errors import Notice

    window = case.window
    follow = trail.follow(case.key.value, window.start, window.end)
    keys = list(follow["lineage"]["accesskeyid"])
    follow["findings"] = trail.judge(keys, window, case.allowed, ruleset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Notice)  # no S3 data events: the section says it
        follow["objects"] = trail.touched(keys, window)
    sql = {"chain": trail.engine.statement(questions.links(window)) + "\n" +
           trail.engine.statement(questions.figures(keys, [], window)),
           "timeline": trail.engine.statement(questions.events_of(keys, window)),
           "findings": trail.engine.statement(questions.findings(keys, window)),
           "objects": trail.engine.statement(questions.objects(keys, window)) + "\n" +
           trail.engine.statement(questions.data_events(window))}
    return follow, sql


# ------------------------------------------------------------------ rendering

def summary_html(f: Investigation) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td{' class=tk-unexpected' if k == 'unexpected IPs' and f.unexpected else ''}>"
        f"{html.escape(str(v))}</td></tr>" for k, v in f.summary().items())
    return CSS + f"<table class='tk-summary'>{rows}</table>"


def ip_table(f: Investigation) -> pd.DataFrame:
    from .evidence import networks_of

    shown = networks_of(f.ips)
    shown["network"] = [n if isinstance(n, str) else (label if label != "public" else "unknown")
                        for n, label in zip(shown["organization"].astype("object"), shown["label"].astype("object"))]
    shown["asn"] = shown["asn"].map(lambda a: "" if pd.isna(a) else f"AS{int(a)}")
    return shown[["sourceipaddress", "category", "asn", "network", "country", "events", "first_seen", "last_seen",
                  "apis", "errors"]]


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
    from .evidence import networks_line

    return [plots.usage_by_ip(f.ips).figure, table_html(ip_table(f)), f"<p><small>{html.escape(networks_line())}"
            "</small></p>"]


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
    "Findings": lambda f: [findings_html(f.findings, f.sigma)],
    "Lineage": lambda f: _lineage(f),
    "Lifecycle": lambda f: [_lifecycle(f)],
    "Usage over time": _over_time,
    "Usage by IP": _by_ip,
    "Per-API breakdown": _per_api,
    "Timeline of the lineage": lambda f: _timeline(f),
    "Data touched": lambda f: [objects_html(f.objects)],
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
