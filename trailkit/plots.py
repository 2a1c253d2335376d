"""matplotlib charts of a key's story. Each takes a DataFrame (and optionally an ``ax``) and returns the Axes.

Times are UTC on every axis. Charts stay legible with one IP or fifty, one hour or ninety days, and with no
events at all (an empty chart that says so).
"""
from __future__ import annotations

from datetime import timedelta

import pandas as pd

# Okabe-Ito colours: they survive common colour blindness.
OTHER = "#B0B0B0"
CATEGORY_COLORS = {"allowed": "#009E73", "unexpected": "#D55E00", "aws service": "#7F7F7F", "unchecked": "#0072B2",
                   None: "#0072B2"}
_BUCKETS = (  # (longest span, bucket, label)
    (timedelta(hours=3), "5min", "5 minutes"),
    (timedelta(days=2), "1h", "hour"),
    (timedelta(days=14), "6h", "6 hours"),
    (timedelta(days=120), "1D", "day"),
    (None, "7D", "week"),
)


def plain(value) -> str:
    """Text from the logs, shown as it is: matplotlib reads ``$...$`` as math markup (an attacker's event name
    or user agent could garble or break a chart), so dollars are escaped."""
    return str(value).replace("$", r"\$")


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "agg") \
            and "inline" not in matplotlib.get_backend():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _axes(ax, size=(10, 4)):
    if ax is not None:
        return ax
    fig, ax = _plt().subplots(figsize=size, layout="constrained")
    return ax


def _empty(ax, title: str, what: str = "No events in this window"):
    ax.set_title(title)
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, fontsize=12, color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def choose_bucket(start: pd.Timestamp, end: pd.Timestamp) -> tuple[str, str]:
    """A pandas frequency and its label for a time span: 5 minutes up to 3 h, hourly up to 2 days, ..."""
    span = end - start
    for longest, freq, label in _BUCKETS:
        if longest is None or span <= longest:
            return freq, label
    raise AssertionError("unreachable")


# IPs outside the allowlist get warm colours, the others cool ones, so the two charts tell the same story.
WARM = ("#D55E00", "#CC79A7", "#E69F00", "#F0E442")
COOL = ("#0072B2", "#56B4E9", "#009E73", "#004D80")


def _ip_colors(names, unexpected: set) -> dict:
    warm, cool = iter(WARM * 4), iter(COOL * 4)
    return {n: OTHER if n == "other" else next(warm) if n in unexpected else next(cool) for n in names}


def usage_over_time(events: pd.DataFrame, ax=None, *, top: int = 5, start=None, end=None, unexpected=()):
    """Events per time bucket, stacked by source IP (the ``top`` busiest, the rest as "other"); errors marked.

    Args:
        events: a key_usage / time_window frame (``eventtime``, ``sourceipaddress``, ``errorcode``).
        start, end: the window, to size buckets and the axis when the events do not span it.
        unexpected: source IPs to draw in warm colours (outside the allowlist); they are always shown by name.
    """
    import matplotlib.dates as mdates

    ax = _axes(ax)
    title = "Events over time by source IP (UTC)"
    if events.empty:
        return _empty(ax, title)
    times = events["eventtime"]
    lo = pd.Timestamp(start) if start is not None else times.min()
    hi = pd.Timestamp(end) if end is not None else times.max()
    freq, label = choose_bucket(lo, max(hi, lo + pd.Timedelta(minutes=1)))
    unexpected = set(unexpected)
    # Unexpected IPs first, so a handful of calls from a strange address is never folded into "other".
    ranked = events["sourceipaddress"].value_counts().index
    busiest = sorted(ranked, key=lambda ip: ip not in unexpected)[:top]
    ip = events["sourceipaddress"].where(events["sourceipaddress"].isin(busiest), "other").fillna("other")
    buckets = times.dt.floor(freq).dt.tz_localize(None)
    counts = pd.crosstab(buckets, ip)
    order = [c for c in busiest if c in counts.columns] + (["other"] if "other" in counts.columns else [])
    counts = counts[order]
    width = pd.Timedelta(freq) / pd.Timedelta(days=1) * 0.9
    bottom = pd.Series(0, index=counts.index)
    colors = _ip_colors(counts.columns, unexpected)
    for col in counts.columns:
        color = colors[col]
        ax.bar(mdates.date2num(counts.index.to_pydatetime()), counts[col], width=width, bottom=bottom,
               color=color, label=plain(col), align="edge", edgecolor="none")
        bottom = bottom + counts[col]
    errors = events.loc[events["errorcode"].notna()]
    if not errors.empty:
        err = errors["eventtime"].dt.floor(freq).dt.tz_localize(None).value_counts().sort_index()
        ax.plot(mdates.date2num(err.index.to_pydatetime()) + width / 2, err.values, linestyle="none", marker="x",
                color="black", markersize=7, label=f"errors ({len(errors)})")
    locator = mdates.AutoDateLocator(minticks=3, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlim(mdates.date2num(lo.tz_localize(None) if lo.tzinfo else lo) - width * 0.2,
                mdates.date2num((hi.tz_localize(None) if hi.tzinfo else hi)) + width * 1.2)
    ax.set_title(title)
    ax.set_ylabel(f"events per {label}")
    ax.set_xlabel("time (UTC)")
    ax.legend(title="source IP", fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return ax


def usage_by_ip(ips: pd.DataFrame, ax=None, *, top: int = 25):
    """Horizontal bars: events per source IP, labelled with first and last seen; coloured by ``category``
    (allowed / unexpected / aws service) when the frame has one."""
    n = min(len(ips), top)
    ax = _axes(ax, size=(10, max(2.2, 0.45 * n + 1.2)))
    title = "Events per source IP"
    if ips.empty:
        return _empty(ax, title)
    shown = ips.sort_values(["events", "sourceipaddress"], ascending=[False, True]).head(top).iloc[::-1]
    cats = shown["category"] if "category" in shown.columns else pd.Series([None] * len(shown), index=shown.index)
    colors = [CATEGORY_COLORS.get(c, CATEGORY_COLORS[None]) for c in cats]
    y = range(len(shown))
    ax.barh(list(y), shown["events"].astype(int), color=colors)
    ax.set_yticks(list(y), [plain(v) for v in shown["sourceipaddress"]], fontsize=9)
    peak = int(shown["events"].max())
    for i, row in zip(y, shown.itertuples()):
        seen = f"{row.first_seen:%Y-%m-%d %H:%M} → {row.last_seen:%Y-%m-%d %H:%M} UTC"
        ax.text(int(row.events) + peak * 0.01, i, f"{int(row.events):,}  ({seen})", va="center", fontsize=8)
    ax.set_xlim(0, peak * 1.9)
    ax.set_xlabel("events")
    more = len(ips) - len(shown)
    ax.set_title(title + (f" (top {len(shown)} of {len(ips)})" if more else ""))
    if "category" in ips.columns:
        from matplotlib.patches import Patch

        present = [c for c in ("unexpected", "allowed", "aws service", "unchecked") if c in set(ips["category"])]
        ax.legend(handles=[Patch(color=CATEGORY_COLORS[c], label=c) for c in present], fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return ax


def api_breakdown(events: pd.DataFrame, ax=None, *, top: int = 15):
    """Horizontal bars: calls per API (service:action), the failed part in red."""
    ax = _axes(ax, size=(10, max(2.2, 0.35 * min(top, max(1, events["eventname"].nunique() if not events.empty else 1)) + 1.2)))
    title = "Calls per API"
    if events.empty:
        return _empty(ax, title)
    api = events["eventsource"].str.replace(".amazonaws.com", "", regex=False) + ":" + events["eventname"]
    frame = pd.DataFrame({"api": api, "failed": events["errorcode"].notna()})
    table = frame.groupby("api")["failed"].agg(total="size", failed="sum").sort_values(
        ["total", "failed"], ascending=False)
    shown = table.head(top).iloc[::-1]
    y = list(range(len(shown)))
    ok = shown["total"] - shown["failed"]
    ax.barh(y, ok, color="#0072B2", label="succeeded")
    ax.barh(y, shown["failed"], left=ok, color="#D55E00", label="failed")
    ax.set_yticks(y, [plain(v) for v in shown.index], fontsize=9)
    ax.set_xlabel("calls")
    ax.set_title(title + (f" (top {len(shown)} of {len(table)})" if len(table) > top else ""))
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return ax


def _lane_label(row) -> str:
    how = row["via"] if isinstance(row["via"], str) else ("asked" if row["depth"] == 0 else "origin not in the logs")
    return plain(f"{row['accesskeyid']} · {how}")


def swimlanes(timeline: pd.DataFrame, lineage: pd.DataFrame, ax=None, *, top: int = 30):
    """One lane per key of the lineage (in the lineage's order), each event a tick at its time coloured by its
    first ATT&CK tactic (``tactics``, see ``trailkit.attack``), errors as red crosses; lanes labelled with how each
    key was obtained. Past ``top`` keys, the key asked about and the
    busiest others are shown, said in the title."""
    import matplotlib.dates as mdates

    busiest = lineage[lineage["depth"] != 0].sort_values("events", ascending=False, kind="stable").head(top - 1)
    keys = lineage[(lineage["depth"] == 0) | lineage["accesskeyid"].isin(busiest["accesskeyid"])]
    ax = _axes(ax, size=(10, max(2.5, 0.35 * len(keys) + 1.2)))
    title = "Events of every key in the lineage (UTC)"
    if len(lineage) > len(keys):
        title += f": the key asked and the {len(keys) - 1} busiest others of {len(lineage)} keys"
    if timeline.empty or keys.empty:
        return _empty(ax, title, "No events of the lineage's keys in this window")
    lane = {k: i for i, k in enumerate(keys["accesskeyid"])}
    shown = timeline[timeline["accesskeyid"].isin(lane) & timeline["eventtime"].notna()]
    x = mdates.date2num(shown["eventtime"].dt.tz_localize(None).dt.to_pydatetime())
    y = shown["accesskeyid"].map(lane).to_numpy()
    ok = shown["errorcode"].isna().to_numpy()
    tactic = _first_tactic(shown)
    for name, colour in _tactic_colours(tactic[ok]):  # each event coloured by its first ATT&CK tactic
        mine = ok & (tactic == name)
        ax.scatter(x[mine], y[mine], marker="|", s=120, color=colour, linewidths=1.2,
                   label=f"{name} ({int(mine.sum())})", zorder=3 if name != NO_TACTIC else 2)
    if (~ok).any():
        ax.scatter(x[~ok], y[~ok], marker="x", s=40, color="#D55E00", label=f"error ({int((~ok).sum())})", zorder=4)
    ax.set_yticks(range(len(lane)), [_lane_label(row) for row in keys.to_dict("records")], fontsize=8)
    ax.set_ylim(len(lane) - 0.5, -0.5)
    locator = mdates.AutoDateLocator(minticks=3, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_title(title)
    ax.set_xlabel("time (UTC)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax


NO_TACTIC = "no ATT&CK tactic"
# Okabe-Ito and Tableau colours, one per tactic in the order a kill chain reads; events without one in grey
_TACTIC_ORDER = ("Initial Access", "Execution", "Persistence", "Privilege Escalation", "Defense Evasion",
                 "Credential Access", "Discovery", "Lateral Movement", "Collection", "Exfiltration",
                 "Command and Control", "Impact")
_PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#D55E00", "#0072B2", "#8C8C00", "#9467BD", "#17BECF",
            "#B03000", "#7F7F7F", "#000000")


def _first_tactic(events: pd.DataFrame):
    import numpy as np

    if "tactics" not in events:
        return np.full(len(events), NO_TACTIC, dtype=object)
    return np.array([t.split(", ")[0] if isinstance(t, str) and t else NO_TACTIC for t in events["tactics"]],
                    dtype=object)


def _tactic_colours(tactics) -> list[tuple[str, str]]:
    present = set(tactics)
    named = [(t, c) for t, c in zip(_TACTIC_ORDER, _PALETTE) if t in present]
    other = sorted(present - set(_TACTIC_ORDER) - {NO_TACTIC})
    return ([(NO_TACTIC, "#BBBBBB")] if NO_TACTIC in present else []) + named + [(t, "#444444") for t in other]


def lineage_tree(lineage: pd.DataFrame, ax=None, *, top: int = 40, windowed: bool = False):
    """The lineage drawn as a tree, left to right: each key a box (how it was obtained, its events), an arrow
    from the key whose call produced it. The key asked about is outlined; past ``top`` keys, those nearest to
    it are drawn."""
    from .lineage import nearest, unused_words

    rows = nearest(lineage, top).to_dict("records")
    ax = _axes(ax, size=(10, max(2.0, 0.42 * len(rows) + 0.8)))
    title = "Lineage: where the key came from and what it led to"
    if len(lineage) > top:
        title += f" (the {top} nearest of {len(lineage)} keys)"
    if not rows:
        return _empty(ax, title, "No key")
    depths = [int(r["depth"]) for r in rows]
    low = min(depths)
    where = {}
    for i, r in enumerate(rows):
        where[r["accesskeyid"]] = (int(r["depth"]) - low, i)
    for r in rows:
        x, y = where[r["accesskeyid"]]
        parent = r["parent"] if isinstance(r["parent"], str) else None
        if parent in where:  # an elbow from the parent's box down to this one, drawn under the boxes
            px, py = where[parent]
            trunk = x - 0.12
            ax.plot([px + 0.3, trunk, trunk, x], [py, py, y, y], color="#777777", lw=0.9, zorder=1)
            ax.plot([x - 0.02], [y], marker=">", color="#777777", markersize=4, zorder=1)
        how = r["via"] if isinstance(r["via"], str) else "origin not in the logs"
        used = f"{r['events']} event{'s' if r['events'] != 1 else ''}" if r["events"] else unused_words(windowed)
        ax.text(x, y, plain(f"{r['accesskeyid']}\n{how} · {used}"), fontsize=7, va="center", ha="left", zorder=3,
                bbox={"boxstyle": "round,pad=0.3", "fc": "#FFF4E5" if r["depth"] == 0 else "#EEF5FB",
                      "ec": "#D55E00" if r["depth"] == 0 else "#0072B2", "lw": 1.5 if r["depth"] == 0 else 0.8})
    ax.set_xlim(-0.2, max(x for x, _ in where.values()) + 1.2)
    ax.set_ylim(len(rows) - 0.4, -0.6)
    ax.axis("off")
    ax.set_title(title)
    return ax
