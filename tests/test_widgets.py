"""The widget panel in plain pytest: set values, click, read what the output area shows."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest

from trailkit.widgets import InvestigationPanel

KEY = "AKIA3PARTNERSYNC0001"


def html_of(panel):
    return "".join(o["data"].get("text/html", "") for o in panel.out.outputs)


def images_of(panel):
    return [o["data"]["image/png"] for o in panel.out.outputs if "image/png" in o["data"]]


def test_investigate_shows_sections_table_and_charts(sample, records):
    panel = InvestigationPanel(logs=str(sample))
    panel.key.value = KEY
    panel.allowed.value = "203.0.113.0/24"
    panel.button.click()
    text = html_of(panel)
    for ip in ("203.0.113.10", "203.0.113.11", "198.51.100.77"):
        assert f"<td>{ip}</td>" in text
    assert "<td>unexpected</td>" in text and "ASIA3OPSADMINTMP0001" in text
    assert len(images_of(panel)) == 5  # usage over time, by IP, per API, the lineage's tree and swimlanes
    expected = sum(1 for r in records(sample) if (r.get("userIdentity") or {}).get("accessKeyId") == KEY)
    assert f"{expected:,} events from 3 IPs" in panel.status.value
    assert panel.investigation is not None and len(panel.investigation.usage) == expected
    assert not panel.button.disabled


def test_dates_narrow_the_window(sample):
    import datetime as dt

    panel = InvestigationPanel(key=KEY, logs=str(sample))
    panel.start.value = dt.date(2026, 10, 24)
    panel.end.value = dt.date(2026, 10, 24)
    panel.button.click()
    days = set(panel.investigation.usage["eventtime"].dt.strftime("%Y-%m-%d"))
    assert days == {"2026-10-24"}


@pytest.mark.parametrize("change, needle", [
    ({"key": "AKIA123"}, "is not an access key id"),
    ({"key": "  "}, "no access key given"),
    ({"allowed": "10.0.0.0/99"}, "CIDR"),
    ({"logs": "/nonexistent/folder"}, "does not exist"),
])
def test_bad_input_shows_a_message_not_a_traceback(sample, change, needle):
    panel = InvestigationPanel(key=KEY, logs=str(sample))
    for name, value in change.items():
        getattr(panel, name).value = value
    panel.button.click()
    assert needle in panel.status.value
    assert needle in html_of(panel) and "Traceback" not in html_of(panel)
    assert not images_of(panel)


def test_engine_choice_switches_the_settings_shown(sample):
    panel = InvestigationPanel(key=KEY, logs=str(sample))
    assert panel._athena_box.layout.display == "none" and panel._local_box.layout.display is None
    panel.engine.value = "athena"
    assert panel._athena_box.layout.display is None and panel._local_box.layout.display == "none"


def test_athena_from_the_panel_shows_scanned_and_cost(moto):
    moto.table("security", "cloudtrail")
    panel = InvestigationPanel(key=KEY, engine="athena",
                               athena={"database": "security", "output_location": "s3://trailkit-results/w/"})
    from trailkit import questions

    for columns in (["eventtime", "sourceipaddress", "errorcode", "eventsource", "eventname", "eventid"],
                    ["sourceipaddress", "events", "first_seen", "last_seen"], ["principalarn"], ["mintedkeyid"],
                    questions.links().contract.names, questions.figures(["K"]).contract.names,
                    ["eventtime", "accesskeyid", "eventid"], questions.findings(["K"]).contract.names,
                    questions.objects(["K"]).contract.names, questions.data_events().contract.names):
        moto.seed([(c, "varchar") for c in columns], [])
    panel.button.click()
    assert "0 events from 0 IPs" in panel.status.value
    assert "10 Athena queries" in panel.status.value and "USD" in panel.status.value
    assert all('"security"."cloudtrail"' in sql for sql in moto.sent())


def test_one_click_follows_another_key_of_the_lineage(sample, records):
    panel = InvestigationPanel(logs=str(sample), key=KEY)
    panel.button.click()
    buttons = {b.description: b for b in panel.lineage.children if hasattr(b, "on_click")}
    minted = {r["responseElements"]["credentials"]["accessKeyId"] for r in records(sample)
              if r["userIdentity"].get("accessKeyId") == KEY and isinstance(r.get("responseElements"), dict)
              and "credentials" in r["responseElements"]}
    assert minted and minted <= set(buttons)
    other = sorted(minted)[0]
    buttons[other].click()
    assert panel.key.value == other and panel.investigation.key == other
    assert KEY in {b.description for b in panel.lineage.children if hasattr(b, "on_click")}  # and back again
    expected = sum(1 for r in records(sample) if r["userIdentity"].get("accessKeyId") == other)
    assert len(panel.investigation.usage) == expected


def test_long_work_says_how_far_it_is_in_the_status_line(logs_copy, monkeypatch):
    """A scan past ~2 s reports files done and an estimate: the scan's clock is made slow to make it long."""
    from types import SimpleNamespace

    from trailkit.engines import scan

    ticks = iter(range(0, 100_000, 3))
    monkeypatch.setattr(scan, "time", SimpleNamespace(monotonic=lambda: float(next(ticks))))
    said = []
    panel = InvestigationPanel(logs=str(logs_copy), key=KEY)  # a folder never cached: its files are scanned
    original = panel._say
    monkeypatch.setattr(panel, "_say", lambda text, error=False: (said.append(text), original(text, error)))
    panel.button.click()
    assert any("scanning log files:" in s and "s left" in s for s in said), said
    assert panel.investigation is not None
