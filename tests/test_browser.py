"""A real browser: the exported report in headless Chromium, and the notebook driven in JupyterLab.

Debian's chromium driven by the playwright package (never a downloaded browser). Without /usr/bin/chromium
these tests skip with the reason; .ci/run installs it. Screenshots are kept in tests/artifacts/.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trailkit import EngineSettings
from trailkit.investigation import Case
from trailkit.report import write_report

from .conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).parent / "artifacts"
KEY = "AKIA3PARTNERSYNC0001"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:  # launch() gives every browser a fresh, empty profile
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_report_renders_offline_with_its_charts(browser, tmp_path, sample):
    report = write_report(Case.parse(KEY, allowed="203.0.113.0/24"), tmp_path / "report.html",
                          EngineSettings(logs=sample))
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    remote, failed = [], []
    page.on("requestfailed", lambda r: failed.append(r.url))

    def only_local(route):
        if route.request.url.startswith(("file:", "data:")):
            return route.continue_()
        remote.append(route.request.url)
        return route.abort()

    page.route("**/*", only_local)
    page.goto(report.as_uri(), wait_until="load")
    images = page.eval_on_selector_all(
        "img", "els => els.map(e => [e.complete, e.naturalWidth, e.getBoundingClientRect().width])")
    assert len(images) == 5  # over time, by IP, per API, the lineage tree, its swimlanes
    assert all(complete and natural > 0 and shown > 0 for complete, natural, shown in images)
    assert remote == [] and failed == []
    body = page.inner_text("body")
    assert "198.51.100.77" in body and "unexpected" in body and "Usage over time" in body
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab on 127.0.0.1 over a copy of the notebooks and sample (the repo's files stay untouched)."""
    work = tmp_path / "lab"
    shutil.copytree(ROOT / "notebooks", work / "notebooks", ignore=shutil.ignore_patterns("*.png", ".ipynb_*"))
    shutil.copytree(ROOT / "data" / "sample", work / "data" / "sample")
    port = _free_port()
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={work}",
         "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_jupyterlab_run_all_type_a_key_and_investigate(browser, jupyterlab, sample, records):
    expected = sum(1 for r in records(sample) if (r.get("userIdentity") or {}).get("accessKeyId") == KEY)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(f"{jupyterlab}/lab/tree/notebooks/investigate_access_key.ipynb")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
    key_box = "input[placeholder='AKIA... or ASIA...']"
    for attempt in range(3):  # "Run All" clicked as the kernel turns idle can be ignored: retry
        page.click(".jp-Notebook .jp-Cell >> nth=0")
        page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
        page.click("li.lm-Menu-item[data-command='runmenu:run-all']")
        try:
            page.wait_for_selector(key_box, timeout=30_000)
            break
        except Exception:
            if attempt == 2:
                raise
    for box, value in ((key_box, KEY), ("input[placeholder='203.0.113.0/24, ...']", "203.0.113.0/24")):
        page.fill(box, value)
        page.press(box, "Tab")  # a change event as well as input events, as a person leaving the field
    page.click("button:has-text('Investigate')")
    from playwright.sync_api import expect

    status = page.locator(".widget-html").filter(has_text="events from")
    expect(status).to_contain_text(f"{expected:,} events from 3 IPs", timeout=60_000)  # set once every section is shown
    output = page.locator(".widget-output")
    expect(output.locator("img")).to_have_count(5)  # usage, IPs, APIs, the lineage tree, its swimlanes
    assert all(img.evaluate("e => e.naturalWidth") > 0 for img in output.locator("img").all())
    expect(output.locator("td:text-is('198.51.100.77')").first).to_be_visible()
    expect(output.locator("td:text-is('unexpected')").first).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    news = page.get_by_role("button", name="No", exact=True)  # JupyterLab's "notify me about news?" toast
    if news.count():
        news.first.click()
        news.first.wait_for(state="detached")
    # the panel at the top of the view, its answer below it
    page.locator(".widget-toggle-buttons").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(ARTIFACTS / "jupyterlab.png"))
