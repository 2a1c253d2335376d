"""Charts: legible and honest at the edges — nothing, one event, fifty IPs, ninety days."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from trailkit import plots
from trailkit import classify_ips


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def events(times, ips, errors=None):
    n = len(times)
    return pd.DataFrame({
        "eventtime": pd.to_datetime(pd.Series(times), utc=True),
        "sourceipaddress": pd.array(ips, dtype="string"),
        "errorcode": pd.array(errors or [None] * n, dtype="string"),
        "eventsource": pd.array(["s3.amazonaws.com"] * n, dtype="string"),
        "eventname": pd.array(["ListBuckets"] * n, dtype="string"),
        "eventid": pd.array([str(i) for i in range(n)], dtype="string"),
    })


def ips_frame(rows):
    return pd.DataFrame({
        "sourceipaddress": pd.array([r[0] for r in rows], dtype="string"),
        "events": pd.array([r[1] for r in rows], dtype="Int64"),
        "first_seen": pd.to_datetime([r[2] for r in rows], utc=True),
        "last_seen": pd.to_datetime([r[3] for r in rows], utc=True),
    })


def texts(ax):
    return [t.get_text() for t in ax.texts]


def test_empty_frames_draw_an_empty_chart_that_says_so():
    empty = events([], [])
    for ax in (plots.usage_over_time(empty), plots.api_breakdown(empty), plots.usage_by_ip(ips_frame([]))):
        assert any("No events" in t for t in texts(ax))
        assert not ax.patches


def test_single_event():
    ax = plots.usage_over_time(events(["2026-10-24T02:13:31Z"], ["198.51.100.77"]))
    heights = [p.get_height() for p in ax.patches]
    assert heights == [1]
    assert ax.get_ylabel() == "events per 5 minutes" and "UTC" in ax.get_title()
    ax = plots.usage_by_ip(ips_frame([("198.51.100.77", 1, "2026-10-24T02:13:31Z", "2026-10-24T02:13:31Z")]))
    assert [p.get_width() for p in ax.patches] == [1]


def test_many_ips_fold_into_other_but_never_the_unexpected_one():
    times = pd.date_range("2026-10-01", periods=500, freq="7min", tz="UTC")
    ips = [f"203.0.113.{i % 50}" for i in range(500)]
    ips[-1] = "198.51.100.77"
    ax = plots.usage_over_time(events(times, ips), top=5, unexpected={"198.51.100.77"})
    labels = ax.get_legend_handles_labels()[1]
    assert "other" in labels and "198.51.100.77" in labels
    assert len(labels) == 6  # five IPs + other
    assert sum(p.get_height() for p in ax.patches) == 500  # every event is in some bar


def test_many_ips_by_ip_shows_top_and_says_so():
    rows = [(f"203.0.113.{i}", 100 - i, "2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z") for i in range(50)]
    frame = classify_ips(ips_frame(rows), "203.0.113.0/25")
    ax = plots.usage_by_ip(frame, top=25)
    assert len(ax.patches) == 25 and "top 25 of 50" in ax.get_title()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["allowed"]


@pytest.mark.parametrize("span, label", [("1h", "5 minutes"), ("36h", "hour"), ("10D", "6 hours"),
                                         ("90D", "day"), ("400D", "week")])
def test_bucket_follows_window_length(span, label):
    start = pd.Timestamp("2026-07-01", tz="UTC")
    end = start + pd.Timedelta(span)
    times = pd.date_range(start, end, periods=200)
    ax = plots.usage_over_time(events(times, ["203.0.113.1"] * 200), start=start, end=end)
    assert ax.get_ylabel() == f"events per {label}"
    assert sum(p.get_height() for p in ax.patches) == 200
    assert len(ax.get_xticklabels()) <= 12


def test_errors_are_marked_and_counted():
    ev = events(["2026-10-24T02:13:31Z", "2026-10-24T02:14:00Z", "2026-10-24T02:20:00Z"],
                ["1.2.3.4"] * 3, ["AccessDenied", None, "AccessDenied"])
    ax = plots.usage_over_time(ev)
    assert "errors (2)" in ax.get_legend_handles_labels()[1]
    ax = plots.api_breakdown(ev)
    failed = [p.get_width() for p in ax.patches][1]
    assert failed == 2


def test_given_axes_are_used():
    fig, ax = plt.subplots()
    assert plots.api_breakdown(events(["2026-10-24T02:13:31Z"], ["1.2.3.4"]), ax=ax) is ax
