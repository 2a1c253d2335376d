"""trailkit's command line: a thin mirror of ``Trail``.

Exit status: 0 on success (also with zero rows), 2 on bad input (message on stderr), 1 on other failures.
Warnings, such as a skipped unreadable file, go to stderr.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

from .contract import visible
from .commands import cache_command, fetch_command, follow, given_allowlist, judged, settings_of
from .errors import InvalidInput, Notice, ReadAs, TrailkitError
from .output import progress, say_figures, write_result  # noqa: F401 (write_result: the API's)

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


def _output_options(p: argparse.ArgumentParser, formats: tuple = FORMATS) -> None:
    more = " or timesketch (the JSON lines Timesketch imports)" if "timesketch" in formats else ""
    p.add_argument("--format", choices=formats, default="table", help=f"table (default), csv, json (JSON lines){more}")
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
    p = key_command("ips", QUESTIONS["ips"].help)
    p.add_argument("--allow", metavar="CIDRS",
                   help="expected networks (comma-separated); adds a category column: allowed, unexpected or aws service")
    p.add_argument("--network", action="store_true",
                   help="adds each address's label, asn, organization and country (offline, DB-IP Lite)")
    key_command("owner", QUESTIONS["owner"].help)
    key_command("minted", QUESTIONS["minted"].help)
    for name in ("chain", "timeline", "lifecycle"):  # following the key: one whole key, no fragments
        p = sub.add_parser(name, help=QUESTIONS[name].help)
        p.add_argument("key", help="access key id (AKIA... or ASIA...)")
        _window_options(p)
        if name != "lifecycle":
            p.add_argument("--depth", type=int, metavar="N", help="follow descendants N levels down (default: all)")
        _engine_options(p)
        _output_options(p, FORMATS + ("timesketch",) if name == "timeline" else FORMATS)

    for name in ("findings", "objects"):  # what the key's lineage did
        p = sub.add_parser(name, help=QUESTIONS[name].help)
        p.add_argument("key", help="access key id (AKIA... or ASIA...)")
        _window_options(p)
        if name == "findings":
            p.add_argument("--allow", metavar="CIDRS", help="expected networks (comma-separated, IPv4 or IPv6): "
                                                            "addresses outside them are unexpected-ip findings")
            p.add_argument("--sigma", metavar="DIR", help="also run the Sigma rules of DIR (logsource aws/cloudtrail)")
        p.add_argument("--no-follow", action="store_true", help="the key alone, not its lineage")
        p.add_argument("--depth", type=int, metavar="N", help="follow descendants N levels down (default: all)")
        _engine_options(p)
        _output_options(p)

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
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write: report.html, or report.pdf (A4, printed by Chromium)")
    p.add_argument("--with-code", action="store_true", help="keep the notebook's code cells in the report")
    p.add_argument("--redact", action="store_true",
                   help="mask account ids, IPs, key ids and ARN names (the same value, the same mask) for sharing")
    p.add_argument("--sigma", metavar="DIR", help="also run the Sigma rules of DIR (logsource aws/cloudtrail) as findings")
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
        return fetch_command(args)
    if args.command == "cache":
        return cache_command(args)
    if args.command == "sample":
        from .sample import write_sample

        counts = write_sample(args.out)
        print(f"wrote {counts['records']} records in {counts['files']} files under {args.out}")
        return 0
    if args.command == "report":
        from .investigation import Case
        from .report import write_report

        given_allowlist(args.allow)  # given but empty is an error, not "no allowlist"
        case = Case.parse(args.key, args.start, args.end, args.allow)
        out = write_report(case, args.out, settings_of(args), with_code=args.with_code, redact=args.redact,
                           sigma=args.sigma)
        print(f"wrote {out}")
        return 0
    if args.command in ("chain", "timeline", "lifecycle"):
        return follow(args)
    if args.command in ("findings", "objects"):
        return judged(args)
    request = _request(args)  # every input checked before touching any engine
    allowlist = None
    if args.command == "ips" and args.allow:
        from .inputs import Allowlist

        allowlist = Allowlist.parse(args.allow)
    from .investigate import Trail

    with Trail.open(settings_of(args)) as trail:
        if sys.stderr.isatty():
            trail.engine.on_progress = progress
        if args.dry_run:
            sys.stdout.write(trail.explain(request))
            return 0
        trail.engine.prepare(request)  # the local key scan overlaps importing DuckDB
        names, rows = trail.ask_rows(request, spreadsheet_safe=args.format == "csv")
        extra = {}
        if allowlist is not None or getattr(args, "network", False):
            rows, ips = list(rows), names.index("sourceipaddress")
        if allowlist is not None:
            extra["category"] = [allowlist.category(row[ips]) for row in rows]
        if getattr(args, "network", False):
            from .network import lookup, label

            where = [lookup(row[ips]) for row in rows]
            extra["label"] = [label(row[ips]) for row in rows]
            extra["asn"] = [w[0] for w in where]
            extra["organization"] = [w[1] for w in where]
            extra["country"] = [w[2] for w in where]
        write_result(sys.stdout, names, rows, args.format, extra)
        say_figures(trail)
        if args.command == "owner" and args.format == "table" and request.hints.key:
            from .lineage import printable  # the key's birth and death beside its owner (csv/json: lifecycle)

            window = request.hints.window
            sys.stdout.write("\nlifecycle:\n")
            write_result(sys.stdout, *printable(trail.lifecycle(request.hints.key, window.start, window.end)), "table")
            say_figures(trail)
    return 0


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
        except OSError as e:  # the answer cannot be written (a full disk, an I/O error), or a file it writes
            code = _unwritten(e)
    for w in caught:
        if issubclass(w.category, UserWarning):
            kind = "note" if issubclass(w.category, (ReadAs, Notice)) else "warning"
            print(f"trailkit: {kind}: {visible(str(w.message))}", file=sys.stderr)
    return code


def _unwritten(e: OSError) -> int:
    """Say in one line what could not be written; the exit code for it."""
    where = f" ({visible(str(e.filename))})" if e.filename else ""
    print(f"trailkit: cannot write: {visible(e.strerror or str(e))}{where}", file=sys.stderr)
    return 1


def run() -> None:
    """The ``trailkit`` command: ``main`` without the cycle collector, then the process ends at once, its output
    flushed and its exit handlers run. A command lives for seconds, and reference counting frees what it makes;
    the collector's walks over every object DuckDB, pandas and pySigma hold cost up to a third of a command
    (``findings`` with SigmaHQ's rules on invictus: 1.45 s, 0.90 s without) and spare ~2% of its peak memory.
    Tearing the interpreter down object by object, DuckDB loaded, is ~20 ms that change nothing."""
    import atexit
    import gc

    from . import engines

    gc.disable()
    engines.process_ends = True
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # a reader gone (``| head``): what it did not take is not wanted
        pass
    except OSError as e:  # a full disk, an I/O error: the answer is not all there
        code = code or _unwritten(e)
    sys.stderr.flush()
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
