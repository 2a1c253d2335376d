"""Both notebooks executed headless (papermill), and the HTML reports made from them."""
from __future__ import annotations

import re
import subprocess
import sys

import nbformat
import papermill
import pytest

from trailkit import EngineSettings
from trailkit.investigation import Case
from trailkit.report import NOTEBOOKS, write_report


KEY = "AKIA3PARTNERSYNC0001"


def execute(name, tmp_path, **params):
    out = tmp_path / name
    papermill.execute_notebook(str(NOTEBOOKS / name), str(out), parameters=params, cwd=str(NOTEBOOKS),
                               progress_bar=False, kernel_name="python3")
    return nbformat.read(out, as_version=4)


def outputs(nb, mime):
    return [o["data"][mime] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if "data" in o and mime in o["data"]]


def errors(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o["output_type"] == "error"]


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path
        assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), path


def test_investigation_notebook_on_the_sample(tmp_path, sample):
    nb = execute("investigate_access_key.ipynb", tmp_path, logs=str(sample), allowed="203.0.113.0/24")
    assert not errors(nb)
    html = "".join(outputs(nb, "text/html"))
    assert "198.51.100.77" in html and "ASIA3OPSADMINTMP0001" in html
    assert len(outputs(nb, "image/png")) == 5  # over time, by IP, per API, lineage tree, swimlanes: static PNGs


def test_explore_notebook_on_the_sample(tmp_path, sample):
    nb = execute("explore.ipynb", tmp_path, logs=str(sample))
    assert not errors(nb)
    text = "".join(outputs(nb, "text/plain")) + "".join(outputs(nb, "text/html"))
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert KEY in text and "AccessDenied" in text and "198.51.100.77" in text
    assert "from_iso8601_timestamp" in printed or "TIMESTAMPTZ" in printed  # trail.last_sql


def test_report_on_real_logs_has_the_numbers_and_both_charts(tmp_path, invictus):
    out = write_report(Case.parse("AKIATFQR7NSC8Q4X20BJ"), tmp_path / "report.html", EngineSettings(logs=invictus))
    html = out.read_text()
    assert "<td>192.168.10.20</td>" in html and "<td>2104</td>" in html
    assert "2023-07-10T11:54:33Z" in html and "2023-07-10T12:29:09Z" in html
    # the lineage: the two keys the attacker created (never used), in the tree's table
    assert re.search(r"<td[^>]*>AKIATFQR7NSC3ZO6PKAZ</td>", html) and re.search(r"<td[^>]*>AKIATFQR7NSCQLA2F4OD</td>", html)
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) == 5  # over time, by IP, per API, the lineage tree, its swimlanes
    assert not re.search(r'<script[^>]+src="https?:', html) and not re.search(r'<link[^>]+href="https?:', html)
    # it states its source, window, time, version and the SQL of each question; code hidden by default
    for needle in ("data source", "window (UTC)", "generated (UTC)", "trailkit version", "useridentity.accesskeyid"):
        assert needle in html
    assert not re.search(r"class=\"[^\"]*jp-InputArea-editor", html) and "InvestigationPanel" not in html


def test_report_with_code_via_cli(tmp_path, sample):
    out = tmp_path / "sub" / "r.html"
    proc = subprocess.run([sys.executable, "-m", "trailkit", "report", KEY, "--logs", str(sample), "--out", str(out),
                           "--start", "2026-10-24", "--end", "2026-10-24", "--allow", "203.0.113.0/24", "--with-code"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    html = out.read_text()
    assert re.search(r"class=\"[^\"]*jp-InputArea-editor", html) and "198.51.100.77" in html
    assert "2026-10-24T00:00:00Z to 2026-10-25T00:00:00Z" in html


def test_a_relative_window_means_the_same_instants_in_the_report(tmp_path, sample):
    """The report's kernel is another process with another clock: it is given the instants, not "5d"."""
    from datetime import datetime, timezone

    now = datetime(2026, 10, 25, 12, 30, tzinfo=timezone.utc)
    case = Case.parse(KEY, "2d", "1d", allowed="203.0.113.0/24", now=now)
    html = write_report(case, tmp_path / "r.html", EngineSettings(logs=sample)).read_text()
    assert "2026-10-23T12:30:00Z to 2026-10-24T12:30:00Z" in html
    assert "198.51.100.77" in html  # the incident hour lies inside


@pytest.mark.parametrize("argv, needle", [
    (["report", "AKIA1", "--out", "x.html"], "not an access key id"),
    (["report", KEY, "--out", "x.html", "--start", "nope"], "not a time"),
    (["report", KEY, "--out", "x.html", "--logs", "/nonexistent"], "does not exist"),
])
def test_report_bad_input_fails_fast(capsys, argv, needle):
    from trailkit.cli import main

    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_the_notebook_shows_every_section():
    """A section added to the investigation must reach the notebook (and so the report)."""
    import json

    from trailkit.investigation import SECTIONS

    from .conftest import ROOT

    nb = json.loads((ROOT / "notebooks" / "investigate_access_key.ipynb").read_text())
    shown = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert [t for t in SECTIONS if f'show(investigation, "{t}")' not in shown] == []


SIGMA = NOTEBOOKS.parents[1] / "shared" / "datasets" / "sigma-cloudtrail"


def test_report_opens_with_findings_and_shows_networks(tmp_path, invictus):
    out = write_report(Case.parse("AKIATFQR7NSC8Q4X20BJ", allowed="10.0.0.0/8"), tmp_path / "report.html",
                       EngineSettings(logs=invictus), sigma=SIGMA)
    html = out.read_text()
    sections = [m for m in re.findall(r"<h2[^>]*>([^<]+)", html)]
    assert sections[:2] == ["Summary", "Findings"]  # the findings right after the summary
    assert "read Secrets Manager secrets: 60 calls of GetSecretValue" in html
    assert "unexpected-ip" in html and "Sigma rule 'AWS CloudTrail Important Change'" in html
    assert "<details><summary>" in html and "56 Sigma rules converted, 1 not" in html
    assert "IP Geolocation by DB-IP" in html and "these logs hold no S3 data events" in html


@pytest.mark.browser
def test_a_pdf_report_is_a4_and_every_page_holds_its_text(tmp_path, invictus):
    import shutil

    import pypdfium2

    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    out = write_report(Case.parse("AKIATFQR7NSC8Q4X20BJ", allowed="10.0.0.0/8"), tmp_path / "report.pdf",
                       EngineSettings(logs=invictus))
    pdf = pypdfium2.PdfDocument(str(out))
    assert len(pdf) > 5
    first = "".join(pdf[i].get_textpage().get_text_range() for i in range(3))
    assert "Findings" in first and "unexpected-ip" in first  # the findings open the report
    for i in range(len(pdf)):
        page = pdf[i]
        width, height = page.get_size()
        assert abs(width - 595.3) < 1.5 and abs(height - 841.9) < 1.5  # A4
        text = page.get_textpage()
        for c in range(text.count_chars()):
            left, bottom, right, top = text.get_charbox(c)
            assert -1 <= left and right <= width + 1, f"page {i + 1}: text runs off the page"
        image = page.render(scale=1).to_pil().convert("L")
        assert image.getextrema()[0] < 160  # something is printed on every page
