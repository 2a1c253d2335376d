"""trailkit's command line: a thin mirror of ``Trail``.

Exit status: 0 on success (also with zero rows), 2 on bad input (message on stderr), 1 on other failures.
Warnings, such as a skipped unreadable file, go to stderr.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

from .contract import CONTROL, visible
from .errors import InvalidInput, Notice, ReadAs, TrailkitError

FORMATS = ("table", "csv", "json")


def _engine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine (local files by default)")
    g.add_argument("--logs", metavar="DIR", help="folder of CloudTrail files (default: $TRAILKIT_LOGS or ./data/sample)")
    g.add_argument("--no-cache", action="store_true", help="local: read the log files, bypassing the folder's cache")
    g.add_argument("--athena", action="store_true", help="query Athena instead of local files")
    g.add_argument("--database", help="Athena database (default: $TRAILKIT_DATABASE or default)")
    g.add_argument("--table", help="Athena table (default: $TRAILKIT_TABLE or cloudtrail)")
    g.add_argument("--workgroup", help="Athena workgroup (default: $TRAILKIT_WORKGROUP or the account's primary)")
    g.add_argument("--output", metavar="S3URL", help="S3 location for query results (default: $TRAILKIT_OUTPUT or the workgroup's)")
    g.add_argument("--region", help="AWS region (default: $TRAILKIT_REGION, then the AWS config chain)")
    g.add_argument("--profile", help="AWS profile (default: $TRAILKIT_PROFILE, then the AWS config chain)")
    g.add_argument("--partition-column", metavar="COL",
                   help="date partition column of a partition-projection table, e.g. timestamp "
                        "(default: $TRAILKIT_PARTITION_COLUMN; unset = learned from the table's definition)")
    g.add_argument("--accounts", metavar="IDS", help="only these accounts' events (comma-separated 12-digit ids); "
                                                     "Athena also bounds its account partition")
    g.add_argument("--regions", metavar="NAMES", help="only these regions' events (comma-separated, e.g. "
                                                      "us-east-1,eu-west-1); Athena also bounds its region partition")
    g.add_argument("--all-time", action="store_true",
                   help="Athena: allow a question without a window on a date-partitioned table (scans every day)")
    g.add_argument("--max-scan", metavar="SIZE", help="Athena: refuse a query estimated to scan more (e.g. 5GB), "
                                                      "stop one that reports more (default: $TRAILKIT_MAX_SCAN)")
    g.add_argument("--timeout", metavar="SECONDS", help="Athena: stop a query running longer (90, 5m; "
                                                        "default: $TRAILKIT_TIMEOUT)")
    g.add_argument("--reuse", metavar="MINUTES", help="Athena: reuse a result up to MINUTES old (never for a window "
                                                      "ending within the last day; default: $TRAILKIT_REUSE_MINUTES)")


def _output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default="table", help="table (default), csv, or json (JSON lines)")
    p.add_argument("--dry-run", action="store_true", help="print the exact SQL that would be sent and run nothing")


def _window_options(p: argparse.ArgumentParser, required: bool = False) -> None:
    help_t = "ISO 8601 (2023-08-26T20:50:00Z, 2023-08-26) or a span before now (24h, 7d); UTC"
    p.add_argument("--start", required=required, metavar="T", help=f"window start, inclusive: {help_t}")
    p.add_argument("--end", required=required, metavar="T", help=f"window end, exclusive; a bare date means the end of that day: {help_t}")


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line like every other bad input (exit 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message}; see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    from .questions import QUESTIONS

    parser = _Parser(
        prog="trailkit",
        description="Where, when, by whom and for what an AWS access key was used, from CloudTrail logs.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"trailkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def key_command(name: str, help: str):
        """A question about one key: KEY, a window, --fragment, the engine and output options."""
        p = sub.add_parser(name, help=help)
        p.add_argument("key", help="access key id (AKIA... or ASIA...)")
        _window_options(p)
        p.add_argument("--fragment", action="store_true", help="KEY is part of a key: match keys containing it")
        _engine_options(p)
        _output_options(p)
        return p

    key_command("usage", QUESTIONS["usage"].help).add_argument(
        "--limit", type=int, metavar="N", help="at most N events")
    key_command("ips", QUESTIONS["ips"].help).add_argument(
        "--allow", metavar="CIDRS",
        help="expected networks (comma-separated); adds a category column: allowed, unexpected or aws service")
    key_command("owner", QUESTIONS["owner"].help)
    key_command("minted", QUESTIONS["minted"].help)

    p = sub.add_parser("window", help=QUESTIONS["window"].help)
    _window_options(p, required=True)
    p.add_argument("--key", help="only this access key's events")
    p.add_argument("--limit", type=int, metavar="N", help="at most N events")
    p.add_argument("--fragment", action="store_true", help="--key is part of a key")
    _engine_options(p)
    _output_options(p)

    p = sub.add_parser("sql", help=QUESTIONS["sql"].help)
    p.add_argument("query", help='e.g. "SELECT eventname, count(*) AS n FROM cloudtrail WHERE awsregion = :r GROUP BY 1"')
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="bind :NAME to VALUE (text)")
    _engine_options(p)
    _output_options(p)

    p = sub.add_parser("report", help="write an HTML investigation report of the key (runs the notebook headless)")
    p.add_argument("key", help="access key id")
    _window_options(p)
    p.add_argument("--allow", metavar="CIDRS", help="expected networks (comma-separated): other IPs are flagged")
    p.add_argument("--out", required=True, metavar="FILE", help="the HTML file to write, e.g. report.html")
    p.add_argument("--with-code", action="store_true", help="keep the notebook's code cells in the report")
    p.add_argument("--redact", action="store_true",
                   help="mask account ids, IPs, key ids and ARN names (the same value, the same mask) for sharing")
    _engine_options(p)

    p = sub.add_parser("ddl", help="print the CREATE TABLE statement for CloudTrail logs in Athena")
    p.add_argument("location", help="s3://BUCKET[/PREFIX] (above AWSLogs) with --accounts/--regions, or one region's "
                                    "folder s3://BUCKET/AWSLogs/ACCOUNT/CloudTrail/REGION")
    p.add_argument("--accounts", metavar="IDS", help="the accounts that deliver there (comma-separated 12-digit ids)")
    p.add_argument("--regions", metavar="NAMES", help="their regions (comma-separated; default: every CloudTrail region)")
    p.add_argument("--org", metavar="ORG_ID", help="an organization trail's id (o-...): logs under AWSLogs/ORG_ID/")
    p.add_argument("--injected", action="store_true",
                   help="accounts projected as 'injected' (large organizations): every question names --accounts")
    p.add_argument("--start", metavar="YYYY-MM-DD", help="first day of the date partitions (default: 2013-11-01)")
    p.add_argument("--database", default="default")
    p.add_argument("--table", default="cloudtrail")
    p.add_argument("--not-partitioned", action="store_true", help="no partition projection (scans everything)")

    p = sub.add_parser("fetch", help="copy a window's CloudTrail files from S3 to a local folder, for --logs")
    p.add_argument("location", help="s3://BUCKET[/PREFIX]: where the trail writes AWSLogs/")
    _window_options(p, required=True)
    p.add_argument("--accounts", metavar="IDS", help="only these accounts (default: every account found)")
    p.add_argument("--regions", metavar="NAMES", help="only these regions (default: every region found)")
    p.add_argument("--org", metavar="ORG_ID", help="an organization trail's id (o-...)")
    p.add_argument("--dest", required=True, metavar="DIR", help="the local folder (keeps the delivered layout)")
    p.add_argument("--profile", help="AWS profile (default: the AWS config chain)")
    p.add_argument("--region", help="the bucket's AWS region (default: the AWS config chain)")
    p.add_argument("--workers", type=int, default=8, metavar="N", help="parallel downloads (default 8)")

    p = sub.add_parser("cache", help="show or clear the local engine's cache of a log folder")
    p.add_argument("--logs", metavar="DIR", help="the log folder (default: $TRAILKIT_LOGS or ./data/sample)")
    p.add_argument("--clear", action="store_true", help="delete the folder's cache")
    p.add_argument("--all", action="store_true", help="with --clear: delete every trailkit cache")

    p = sub.add_parser("sample", help="regenerate the bundled synthetic sample logs (byte-identical)")
    p.add_argument("--out", default="data/sample", help="folder to write (default: data/sample)")
    return parser


def _settings(args):
    """The engine the options name: one place (``EngineSettings``) applies the environment fallbacks."""
    from .settings import EngineSettings

    athena = {"database": args.database, "table": args.table, "workgroup": args.workgroup,
              "output_location": args.output, "region": args.region, "profile": args.profile,
              "partition_column": args.partition_column, "all_time": args.all_time, "max_scan": args.max_scan,
              "timeout": args.timeout, "reuse_minutes": args.reuse}
    # one question per process: no listing worth keeping between questions
    return EngineSettings(engine="athena" if args.athena else "local", logs=args.logs, cache=not args.no_cache,
                          watch=False, athena=athena, accounts=args.accounts, regions=args.regions)


def _params(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"--param {pair!r} is not NAME=VALUE")
        if name.strip() in out:
            raise InvalidInput(f"--param {name.strip()} is given twice; give each parameter once")
        out[name.strip()] = value
    return out


def _request(args):
    """The command's request, every input parsed (and checked) once, before any engine is opened."""
    from . import questions
    from .inputs import KeyMatch, Window

    if args.command == "sql":
        return questions.sql(args.query, _params(args.param))
    within = Window.parse(args.start, args.end)
    if args.command == "window":
        key = KeyMatch.parse(args.key, args.fragment) if args.key not in (None, "") else None
        return questions.window(within, key, args.limit)
    key = KeyMatch.parse(args.key, args.fragment)
    if args.command == "usage":
        return questions.usage(key, within, args.limit)
    return getattr(questions, args.command)(key, within)


# Columns left out of wide (event) tables for people; csv, json and the DataFrame keep everything.
TABLE_HIDDEN = ("requestparameters", "errormessage", "principalarn", "accountid", "identitytype", "readonly",
                "eventtype", "eventid", "regions", "useragents")


def write_result(out, names: list[str], rows, fmt: str, extra: dict | None = None) -> None:
    """Write printable rows (see ``Trail.ask_rows``) to ``out``: ``table`` for people, ``csv`` and ``json``
    (lines) for programs, row by row so that a large answer is never held twice. ``extra`` adds columns
    given as lists (the IP category)."""
    import csv
    import json

    if extra:
        names = list(names) + list(extra)
        rows = [tuple(row) + added for row, added in zip(rows, zip(*extra.values()))]
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(rows)  # None is written as an empty field; formulas were defused by the engine
        return
    if fmt == "json":  # JSON escapes C0 controls itself; C1 and bidi controls are escaped as \\uXXXX too
        for row in rows:
            line = json.dumps(dict(zip(names, row)), ensure_ascii=False, default=str)
            out.write(CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", line) + "\n")
        return
    rows = list(rows)  # a table's widths need every row
    if not rows:
        out.write("(no rows) columns: " + ", ".join(names) + "\n")
        return
    keep = [i for i, n in enumerate(names) if n not in TABLE_HIDDEN or len(names) <= 12]
    cells = [[names[i] for i in keep]] + [[_cell(row[i]) for i in keep] for row in rows]
    widths = [max(len(line[j]) for line in cells) for j in range(len(keep))]
    for line in cells:
        out.write(" ".join(v.rjust(w) for v, w in zip(line, widths)) + "\n")
    out.write(f"({len(rows)} rows)\n")


def _cell(value) -> str:
    text = visible("" if value is None else str(value))
    return text if len(text) <= 48 else text[:47] + "…"


def _fetch_command(args) -> int:
    from .engines import s3layout
    from .engines.fetch import bar_to, fetch, s3_client
    from .inputs import Window

    window = Window.parse(args.start, args.end)  # every input checked before S3 is asked anything
    layout = s3layout.TrailLayout.parse(args.location, args.org)
    client = s3_client(args.workers, args.profile, args.region) if args.workers > 0 else None
    result = fetch(layout, window, args.dest, accounts=args.accounts, regions=args.regions, workers=args.workers,
                   progress=bar_to(sys.stderr), client=client)
    for note in result.notes:
        print(f"trailkit: note: {visible(note)}", file=sys.stderr)
    for key, why in result.failures:
        print(f"trailkit: warning: not copied: {visible(key)}: {visible(why)}", file=sys.stderr)
    print(visible(result.summary()))
    if result.complete:
        print(f"answer with: trailkit usage KEY --logs {result.dest}")
    return 0 if result.complete else 1


def _cache_command(args) -> int:
    from .engines import cache
    from .paths import cache_dir
    from .settings import EngineSettings

    if args.clear and args.all:
        removed = cache.clear(None)
        print(f"removed {len(removed)} cache file(s) from {cache_dir()}")
        return 0
    logs = EngineSettings(logs=args.logs).log_folder
    if args.clear:
        removed = cache.clear(logs)
        print(f"removed {len(removed)} cache file(s) of {logs}" if removed else f"no cache of {logs}")
        return 0
    path = cache.cache_path(logs)
    if not path.exists():
        print(f"no cache of {logs} yet (it would be {path}); the first question fills it")
        return 0
    import duckdb

    store = cache.Cache(logs)  # the cache alone: no need to list the log folder to describe it
    try:
        store.open()
    except duckdb.Error as e:
        raise TrailkitError(f"cache {path} cannot be opened now ({str(e).splitlines()[0]}); "
                            "another trailkit may be using it") from e
    try:
        info = store.summary()
    finally:
        store.con.close()
    print(f"cache of {os.path.realpath(logs)}\n  file: {info['path']} ({info['bytes'] / 1024 ** 2:.1f} MB)")
    print(f"  records of {info['record_files']} log files ({info['records']:,} records) for window questions")
    for key, files in info["keys"].items():
        print(f"  key {key}: {files} log files scanned")
    return 0


def _run(args) -> int:
    if args.command == "ddl":
        from .schema import athena_ddl, athena_table_ddl

        if args.accounts or args.regions or args.org or args.injected:
            if args.not_partitioned:
                raise InvalidInput("--not-partitioned makes a one-location table: drop it, or drop --accounts/"
                                   "--regions/--org/--injected")
            text = athena_table_ddl(args.location, accounts=args.accounts, regions=args.regions, org=args.org,
                                    injected=args.injected, start=args.start, database=args.database,
                                    table=args.table)
        else:
            text = athena_ddl(args.location, database=args.database, table=args.table,
                              partitioned=not args.not_partitioned, start=args.start)
        sys.stdout.write(text)
        return 0
    if args.command == "fetch":
        return _fetch_command(args)
    if args.command == "cache":
        return _cache_command(args)
    if args.command == "sample":
        from .sample import write_sample

        counts = write_sample(args.out)
        print(f"wrote {counts['records']} records in {counts['files']} files under {args.out}")
        return 0
    if args.command == "report":
        from .investigation import Case
        from .report import write_report

        case = Case.parse(args.key, args.start, args.end, args.allow)
        out = write_report(case, args.out, _settings(args), with_code=args.with_code, redact=args.redact)
        print(f"wrote {out}")
        return 0
    request = _request(args)  # every input checked before touching any engine
    allowlist = None
    if args.command == "ips" and args.allow:
        from .inputs import Allowlist

        allowlist = Allowlist.parse(args.allow)
    from .investigate import Trail

    with Trail.open(_settings(args)) as trail:
        if sys.stderr.isatty() and hasattr(trail.engine, "on_progress"):
            trail.engine.on_progress = _athena_progress
        if args.dry_run:
            sys.stdout.write(trail.explain(request))
            return 0
        trail.engine.prepare(request)  # the local key scan overlaps importing DuckDB
        names, rows = trail.ask_rows(request, spreadsheet_safe=args.format == "csv")
        extra = {}
        if allowlist is not None:
            rows, ips = list(rows), names.index("sourceipaddress")
            extra["category"] = [allowlist.category(row[ips]) for row in rows]
        write_result(sys.stdout, names, rows, args.format, extra)
        last = trail.last
        if last is not None and trail.engine.reports_cost:
            print(last.summary(), file=sys.stderr)
        if last is not None and last.duplicates:
            print(f"trailkit: note: {last.duplicates} duplicate deliveries of events (same eventid) were counted "
                  "once", file=sys.stderr)
    return 0


def _athena_progress(state: str, elapsed: float, scanned: int) -> None:
    """A query's state on the terminal once it has run ~2 s, rewritten in place, cleared when it ends."""
    if elapsed < 2:
        return
    line = "" if state in ("SUCCEEDED", "FAILED", "CANCELLED") else \
        f"athena: {state.lower()} for {elapsed:.0f} s, {scanned / 1024 ** 2:,.1f} MB scanned so far"
    sys.stderr.write("\r" + line.ljust(70) + ("\r" if not line else ""))
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = _run(args)
        except InvalidInput as e:
            print(f"trailkit: {visible(str(e))}", file=sys.stderr)
            code = 2
        except TrailkitError as e:
            print(f"trailkit: {visible(str(e))}", file=sys.stderr)
            code = 1
        except KeyboardInterrupt:
            print("trailkit: interrupted", file=sys.stderr)
            code = 130
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = 0
    for w in caught:
        if issubclass(w.category, UserWarning):
            kind = "note" if issubclass(w.category, (ReadAs, Notice)) else "warning"
            print(f"trailkit: {kind}: {visible(str(w.message))}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
