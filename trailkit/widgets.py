"""The investigation panel: collects values, calls the same API as the CLI, shows the answer in place."""
from __future__ import annotations

import html
from datetime import date

from .errors import TrailkitError, require
from .settings import ATHENA_FIELDS, EngineSettings


def _as_date(value):
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    from .inputs import instant

    return instant(value).date()


class InvestigationPanel:
    """ipywidgets panel: engine and its settings, key, start/end dates, allowlist, Sigma rules, an Investigate button,
    a status line (progress; on Athena, data scanned and cost) and an output area with every section.

    Example:
        >>> InvestigationPanel(key="AKIA3PARTNERSYNC0001", logs="../data/sample")  # doctest: +SKIP
    """

    def __init__(self, key: str = "", start=None, end=None, engine: str = "local", logs: str = "data/sample",
                 athena: dict | None = None, allowed: str = "", accounts: str = "", regions: str = "",
                 sigma: str = ""):
        w = require("ipywidgets")
        athena = athena or {}
        style = {"description_width": "110px"}
        layout = w.Layout(width="520px")
        self.engine = w.ToggleButtons(options=[("Local files", "local"), ("Athena", "athena")], value=engine,
                                      description="Engine", style=style)
        self.logs = w.Text(value=str(logs or ""), description="Log folder", style=style, layout=layout)
        self.athena = {name: w.Checkbox(value=bool(athena.get(name)), description=name.replace("_", " "), style=style)
                       if name == "all_time" else
                       w.Text(value=str(athena.get(name) or ""), description=name.replace("_", " "), style=style,
                              layout=layout, placeholder=_PLACEHOLDERS.get(name, ""))
                       for name in ATHENA_FIELDS}
        self.accounts = w.Text(value=accounts or "", description="Accounts", placeholder="all (or 111122223333,...)",
                               style=style, layout=layout)
        self.regions = w.Text(value=regions or "", description="Regions", placeholder="all (or us-east-1,...)",
                              style=style, layout=layout)
        self.key = w.Text(value=key, description="Access key", placeholder="AKIA... or ASIA...", style=style, layout=layout)
        self.start = w.DatePicker(value=_as_date(start), description="Start (UTC)", style=style)
        self.end = w.DatePicker(value=_as_date(end), description="End (UTC, incl.)", style=style)
        self.allowed = w.Text(value=allowed or "", description="Allowed CIDRs", placeholder="203.0.113.0/24, ...",
                              style=style, layout=layout)
        self.sigma = w.Text(value=sigma or "", description="Sigma rules", placeholder="a folder of Sigma rules (optional)",
                            style=style, layout=layout)
        self.button = w.Button(description="Investigate", button_style="primary", icon="search")
        self.status = w.HTML(value="")
        self.lineage = w.HBox(layout=w.Layout(flex_flow="row wrap"))  # one button per key of the lineage
        self.out = w.Output()
        self._athena_box = w.VBox(list(self.athena.values()))
        self._local_box = w.VBox([self.logs])
        self.engine.observe(lambda change: self._show_engine(), names="value")
        self.button.on_click(lambda _: self.investigate())
        self._show_engine()
        self.widget = w.VBox([
            self.engine, self._local_box, self._athena_box, self.key, w.HBox([self.start, self.end]),
            self.allowed, self.accounts, self.regions, self.sigma, w.HBox([self.button, self.status]), self.lineage, self.out,
        ])
        self.investigation = None
        self.spent: list = []  # every query's figures since the panel was made: the session's cost

    def _show_engine(self):
        athena = self.engine.value == "athena"
        self._athena_box.layout.display = None if athena else "none"
        self._local_box.layout.display = "none" if athena else None

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def _say(self, text: str, error: bool = False):
        color = "#B03000" if error else "#333"
        self.status.value = f"<span style='color:{color}'>{html.escape(text)}</span>"

    def _lineage_buttons(self, done) -> None:
        """A button per other key of the lineage: one click investigates that key instead (up to 30)."""
        w = require("ipywidgets")
        if done.lineage is None:
            self.lineage.children = ()
            return
        from .lineage import nearest

        others = done.lineage[done.lineage["accesskeyid"] != done.key]
        rows = nearest(others, 30).to_dict("records")  # the nearest first: parent, children, ...
        more = f" (the 30 nearest of {len(others)})" if len(others) > 30 else ""
        buttons = [w.HTML(f"<b>Follow another key of the lineage{more}:</b>&nbsp;")] if rows else []
        for row in rows:
            button = w.Button(description=row["accesskeyid"], tooltip=_refocus_label(row),
                              layout=w.Layout(width="auto"), icon="arrow-up" if row["depth"] < 0 else "arrow-down")
            button.on_click(lambda _, key=row["accesskeyid"]: self.refocus(key))
            buttons.append(button)
        self.lineage.children = tuple(buttons)

    def refocus(self, key: str):
        """Investigate ``key`` (a key of the lineage) with the same window, allowlist and engine."""
        self.key.value = key
        return self.investigate()

    def settings(self) -> EngineSettings:
        """The engine the panel's fields name (empty fields fall back to the environment)."""
        scope = {"accounts": self.accounts.value.strip() or None, "regions": self.regions.value.strip() or None}
        if self.engine.value == "athena":
            return EngineSettings(engine="athena", **scope, athena={
                k: v.value if isinstance(v.value, bool) else (v.value.strip() or None) for k, v in self.athena.items()})
        return EngineSettings(logs=self.logs.value.strip() or None, **scope)

    def investigate(self):
        """What the button does: validate, ask, render every section into the output area."""
        from .investigate import Trail
        from .investigation import SECTIONS, Case, displayable, investigate, scanned

        self.out.outputs = ()  # clear_output() needs a kernel; this works everywhere
        self.button.disabled = True
        try:
            case = Case.parse(self.key.value, self.start.value, self.end.value, self.allowed.value.strip() or None)
            with Trail.open(self.settings()) as trail:
                step = {"text": ""}

                def say(text: str) -> None:
                    step["text"] = text
                    self._say(f"Investigating: {text}")

                # long work (a cold scan, a running Athena query) says how far it is in the status line
                trail.engine.on_progress = lambda line, seconds, finished: None if seconds < 2 or finished else \
                    self._say(f"Investigating: {step['text']} {line}")
                done = investigate(trail, case, progress=say, sigma=self.sigma.value.strip() or None)
        except TrailkitError as e:
            self._say(str(e), error=True)
            self.out.append_display_data(_html(f"<p style='color:#B03000'><b>Cannot investigate:</b> {html.escape(str(e))}</p>"))
            return None
        finally:
            self.button.disabled = False
        self.investigation = done
        for title, build in SECTIONS.items():
            self.out.append_display_data(_html(f"<h3>{html.escape(title)}</h3>"))
            for item in build(done):
                self.out.append_display_data(displayable(item))
        self._lineage_buttons(done)
        self.spent += done.stats
        status = f"{len(done.usage):,} events from {len(done.ips)} IPs"
        session = scanned(self.spent)
        if done.scanned and session != done.scanned:
            status += f"; {done.scanned} (this session: {session})"
        elif done.scanned:
            status += f"; {done.scanned}"
        self._say(status)
        return done


def _refocus_label(row) -> str:
    how = row["via"] if isinstance(row["via"], str) else "origin not in the logs"
    return f"{row['accesskeyid']} ({how}, {row['events']} events)"


_PLACEHOLDERS = {"max_scan": "no limit (or 5GB)", "timeout": "none (or 90s, 5m)",
                 "reuse_minutes": "off (or 60)", "partition_column": "learned from the table"}


def _html(text: str):
    from IPython.display import HTML

    return HTML(text)
