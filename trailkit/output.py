"""What the command line writes: rows for people (table) and programs (csv, JSON lines), and the figures of
the last query on stderr."""
from __future__ import annotations

import sys

from .contract import CONTROL, visible

# Columns left out of wide (event) tables for people; csv, json and the DataFrame keep everything.
TABLE_HIDDEN = ("requestparameters", "errormessage", "principalarn", "accountid", "identitytype", "readonly",
                "eventtype", "eventid", "regions", "useragents")


def write_result(out, names: list[str], rows, fmt: str, extra: dict | None = None, whole: tuple = ()) -> None:
    """Write printable rows (see ``Trail.ask_rows``) to ``out``: ``table`` for people, ``csv`` and ``json``
    (lines) for programs, row by row so that a large answer is never held twice. ``extra`` adds columns
    given as lists (the IP category); ``whole`` names columns a table never shortens (what the table is for)."""
    import csv

    if extra:
        names = list(names) + list(extra)
        rows = [tuple(row) + added for row, added in zip(rows, zip(*extra.values()))]
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(rows)  # None is written as an empty field; formulas were defused by the engine
        return
    if fmt == "json":
        for row in rows:
            out.write(json_line(dict(zip(names, row))))
        return
    rows = list(rows)  # a table's widths need every row
    if not rows:
        out.write("(no rows) columns: " + ", ".join(names) + "\n")
        return
    keep = [i for i, n in enumerate(names) if n not in TABLE_HIDDEN or len(names) <= 12]
    cells = [[names[i] for i in keep]] + [[_cell(row[i], names[i] in whole) for i in keep] for row in rows]
    widths = [max(len(line[j]) for line in cells) for j in range(len(keep))]
    for line in cells:
        out.write(" ".join(v.rjust(w) for v, w in zip(line, widths)) + "\n")
    out.write(f"({len(rows)} rows)\n")


def json_line(obj: dict) -> str:
    """One JSON line: JSON escapes C0 controls itself; C1 and bidi controls are escaped as \\uXXXX too, so no
    line can repaint a terminal."""
    import json

    text = json.dumps(obj, ensure_ascii=False, default=str)
    return CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


def _cell(value, whole: bool = False) -> str:
    text = visible("" if value is None else str(value))
    return text if whole or len(text) <= 48 else text[:47] + "…"


def say_figures(trail) -> None:
    last = trail.last
    if last is not None and trail.engine.reports_cost:
        print(last.summary(), file=sys.stderr)
    if last is not None and last.duplicates:
        print(f"trailkit: note: {last.duplicates} duplicate deliveries of events (same eventid) were counted "
              "once", file=sys.stderr)


_drawn = [0.0]  # when progress was last drawn


def progress(line: str, seconds: float, finished: bool) -> None:
    """Long work's progress on the terminal once it has run ~2 s, rewritten in place, cleared when it ends."""
    if seconds < 2 or not finished and 0 <= seconds - _drawn[0] < 0.1:  # at most ten lines a second (a new task starts over)
        return
    _drawn[0] = seconds
    sys.stderr.write("\r" + ("" if finished else visible(line)[:100]).ljust(100) + ("\r" if finished else ""))
    sys.stderr.flush()
