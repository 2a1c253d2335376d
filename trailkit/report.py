"""Reports: papermill runs the investigation notebook headless, nbconvert writes one self-contained HTML file.

Every chart is an embedded PNG and every table static HTML, so the report renders offline with no widget
JavaScript; code cells are hidden unless asked for.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import InvalidInput, MissingDependency, QueryFailed, TrailkitError, require
from .inputs import output_file
from .investigation import Case
from .settings import EngineSettings

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "investigate_access_key.ipynb"


def write_report(case: Case, out: str | os.PathLike, settings: EngineSettings | None = None, *,
                 with_code: bool = False, redact: bool = False, kernel: str = "python3", sigma=None) -> Path:
    """Run ``notebooks/investigate_access_key.ipynb`` for ``case`` and write it as HTML to ``out``, or as a PDF
    (A4, printed by Chromium) when ``out`` ends in ``.pdf``.

    The inputs were parsed once (``Case.parse``); the notebook is given them as absolute values, so a relative
    window such as ``7d`` means the same instants in the report as when it was asked for.

    Example:
        >>> write_report(Case.parse("AKIA3PARTNERSYNC0001", allowed="203.0.113.0/24"), "report.html",
        ...              EngineSettings(logs="data/sample"))  # doctest: +SKIP
    """
    settings = settings or EngineSettings()
    out = output_file(out)  # checked before the notebook runs, not after
    if case.key.fragment:
        raise InvalidInput("a report is about one whole key; find it first with: trailkit usage FRAGMENT --fragment")
    settings.check()  # a missing or empty folder is an input error, said before the kernel starts
    browser = chromium() if out.suffix.lower() == ".pdf" else None  # and a PDF without a browser to print it
    if sigma:
        from .sigma import load

        load(sigma)  # a missing or empty rules folder too
        sigma = str(Path(sigma).expanduser().resolve())
    if not NOTEBOOK.exists():
        raise TrailkitError(f"the report notebook is missing at {NOTEBOOK}; run trailkit from a clone of the project")
    papermill = require("papermill")
    nbformat = require("nbformat")
    window = case.window
    params = {"key": case.key.value, "start": window.start.isoformat() if window.start else None,
              "end": window.end.isoformat() if window.end else None, "engine": settings.engine,
              "logs": str(Path(settings.log_folder).resolve()) if settings.engine == "local" else "",
              "athena": settings.athena_given, "allowed": case.allowed.text or "", "redact": bool(redact),
              "accounts": ",".join(settings.scope.accounts), "regions": ",".join(settings.scope.regions),
              "sigma": sigma or ""}
    with tempfile.TemporaryDirectory() as tmp:
        executed = Path(tmp) / "executed.ipynb"
        try:
            papermill.execute_notebook(str(NOTEBOOK), str(executed), parameters=params, cwd=str(NOTEBOOKS),
                                       kernel_name=kernel, progress_bar=False, log_output=False,
                                       config=_kernel_config(Path(tmp)))
        except papermill.PapermillExecutionError as e:
            if e.ename == "InvalidInput":  # said by the engine (a window refused on Athena, ...): still bad input
                raise InvalidInput(e.evalue) from None
            raise QueryFailed(f"the report notebook failed: {e.ename}: {e.evalue}", engine=settings.engine,
                              sql="") from e
        nb = nbformat.read(executed, as_version=4)
    html = export_html(nb, with_code=with_code)
    body = print_pdf(html, browser) if browser else html.encode("utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    # the report holds what the logs hold: readable by its owner only, whatever the umask
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(body)
    return out


def chromium() -> str:
    """The Chromium that prints PDFs: ``$TRAILKIT_CHROMIUM``, else ``chromium`` (or Chrome) on the PATH."""
    import shutil

    given = os.environ.get("TRAILKIT_CHROMIUM")
    found = given or next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if not found or not shutil.which(found):
        raise MissingDependency("a PDF report is printed by Chromium, which was not found: install it (apt-get "
                                "install chromium) or set TRAILKIT_CHROMIUM, or write --out report.html")
    return found


# A4 for ticket systems that refuse HTML: tables wrap instead of running off the page, charts shrink to fit,
# rows and charts are not cut in two, the evidence behind each finding's click is printed open.
PRINT_CSS = """<style>
@page { size: A4; margin: 10mm 8mm; }
@media print {
  body { font-size: 10px; }
  .jp-Cell, .jp-OutputArea-output, .jp-RenderedHTMLCommon { max-width: 100% !important; overflow: visible !important; }
  img { max-width: 100% !important; height: auto !important; break-inside: avoid; }
  .jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { padding: 1px 3px !important; line-height: 1.2 !important; }
  .tk-table { font-size: 7.5px !important; width: 100% !important; }
  .tk-table td { white-space: normal !important; overflow-wrap: anywhere; max-width: 30em; }
  .tk-table th { white-space: normal !important; overflow-wrap: normal; word-break: keep-all; }
  .tk-findings { font-size: 8px !important; }
  .tk-findings code { font-size: 6.5px !important; }
  tr { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  pre.tk-sql { white-space: pre-wrap !important; word-break: break-all; font-size: 7px !important; }
}
</style>"""


def print_pdf(html: str, browser: str) -> bytes:
    """``html`` printed to an A4 PDF by headless Chromium, in a throwaway profile with its background networking
    off (the report is one file with nothing to fetch; ``--no-sandbox`` because trailkit may run as root)."""
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        page, pdf = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        page.write_text(html.replace("</head>", PRINT_CSS + "</head>", 1).replace("<details>", "<details open>"),
                        encoding="utf-8")
        args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={tmp}/profile", "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri()]
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise TrailkitError(f"Chromium ({browser}) could not print the report: {e}") from None
        if not pdf.exists() or pdf.stat().st_size == 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise TrailkitError(f"Chromium ({browser}) printed no PDF (exit {done.returncode}: {last}); "
                                "write --out report.html instead")
        return pdf.read_bytes()


def _kernel_config(sockets: Path):
    # The kernel talks to us over local sockets (in our temporary folder) rather than TCP: nothing listens
    # on the network, and nothing is left beside the notebook.
    from traitlets.config import Config

    return Config({"KernelManager": {"transport": "ipc", "ip": str(sockets / "kernel")}})


def export_html(nb, *, with_code: bool = False) -> str:
    """HTML with charts embedded, the interactive panel and (by default) code removed, no remote scripts."""
    nbconvert = require("nbconvert")
    from traitlets.config import Config

    nb.metadata.pop("widgets", None)  # widget state would pull the widget manager from a CDN
    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_cell_tags = {"panel"}
    config.TagRemovePreprocessor.remove_input_tags = {"parameters", "injected-parameters"}
    exporter = nbconvert.HTMLExporter(config=config, template_name="trailkit_report",
                                      extra_template_basedirs=[str(Path(__file__).parent / "templates")])
    exporter.exclude_input = not with_code
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.embed_images = True
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": "trailkit: access key investigation"}})
    return body
