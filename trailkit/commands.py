"""The commands that are more than one question: following a key (chain, timeline, lifecycle), fetching logs
from S3 and the local cache; and the engine settings the options name."""
from __future__ import annotations

import os
import sys

from .contract import visible
from .errors import TrailkitError
from .output import json_line, progress, say_figures, write_result


def settings_of(args):
    """The engine the options name: one place (``EngineSettings``) applies the environment fallbacks."""
    from .settings import EngineSettings

    athena = {"database": args.database, "table": args.table, "workgroup": args.workgroup,
              "output_location": args.output, "region": args.region, "profile": args.profile,
              "partition_column": args.partition_column, "all_time": args.all_time, "max_scan": args.max_scan,
              "timeout": args.timeout, "reuse_minutes": args.reuse}
    # one question per process: no listing worth keeping between questions
    return EngineSettings(engine="athena" if args.athena else "local", logs=args.logs, cache=not args.no_cache,
                          watch=False, athena=athena, accounts=args.accounts, regions=args.regions)


def fetch_command(args) -> int:
    from .engines import s3layout
    from .engines.fetch import bar_to, fetch, s3_client
    from .inputs import Window

    window = Window.parse(args.start, args.end)  # every input checked before S3 is asked anything
    layout = s3layout.TrailLayout.parse(args.location, args.org)
    client = s3_client(args.workers, args.profile, args.region)
    result = fetch(layout, window, args.dest, accounts=args.accounts, regions=args.regions, workers=args.workers,
                   progress=bar_to(sys.stderr), client=client)
    for note in result.notes:
        print(f"trailkit: note: {visible(note)}", file=sys.stderr)
    for key, why in result.failures:
        print(f"trailkit: warning: not copied: {visible(key)}: {visible(why)}", file=sys.stderr)
    print(visible(result.summary()))
    if result.complete:
        import shlex

        print(f"answer with: trailkit usage KEY --logs {visible(shlex.quote(result.dest))}")
    return 0 if result.complete else 1


def follow(args) -> int:
    """``chain``, ``timeline`` and ``lifecycle``: the links, then the lineage's keys (see ``trailkit.lineage``)."""
    from . import questions
    from .inputs import KeyMatch, Window, levels
    from .investigate import Trail

    # every input checked before an engine is opened
    key, within, depth = KeyMatch.parse(args.key), Window.parse(args.start, args.end), levels(getattr(args, "depth", None))
    with Trail.open(settings_of(args)) as trail:
        if sys.stderr.isatty():
            trail.engine.on_progress = progress
        if args.dry_run:
            sys.stdout.write(trail.explain(questions.links(within)))
            print("-- then the figures of every key the walk finds: figures.sql with useridentity.accesskeyid IN "
                  "(the keys found)" + ("; then their events: the usage query with the same keys"
                                        if args.command == "timeline" else ""))
            return 0
        if args.command == "chain" and args.format != "timesketch":  # printed without pandas
            from .lineage import LINEAGE, tree_text

            rows = trail.lineage_records(key.value, within.start, within.end, depth)
            if args.format == "table":
                sys.stdout.write(tree_text(rows, windowed=within.bounded))
            write_result(sys.stdout, *LINEAGE.printable_dicts(rows, args.format == "csv"), args.format)
            say_figures(trail)
            return 0
        if args.command == "chain":
            frame = trail.lineage(key.value, within.start, within.end, depth)
        elif args.command == "lifecycle":
            frame = trail.lifecycle(key.value, within.start, within.end)
        else:
            frame = trail.timeline(key.value, within.start, within.end, depth)
        if args.format == "timesketch":
            from .lineage import timesketch_events

            for event in timesketch_events(frame):
                sys.stdout.write(json_line(event))
        else:
            from .lineage import printable

            if args.format == "table" and args.command == "chain":
                from .lineage import tree_text

                sys.stdout.write(tree_text(frame, windowed=within.bounded))
            names, rows = printable(frame, spreadsheet_safe=args.format == "csv")
            write_result(sys.stdout, names, rows, args.format)
        say_figures(trail)
    return 0


def judged(args) -> int:
    """``findings`` and ``objects``: the lineage's keys (unless --no-follow), then what they did."""
    from . import questions
    from .inputs import KeyMatch, Window, levels
    from .investigate import Trail
    from .lineage import printable

    # every input checked before an engine is opened
    key, within, depth = KeyMatch.parse(args.key), Window.parse(args.start, args.end), levels(args.depth)
    allowed = given_allowlist(getattr(args, "allow", None))
    ruleset = None
    if getattr(args, "sigma", None):
        from . import sigma

        ruleset = sigma.load(args.sigma)
    with Trail.open(settings_of(args)) as trail:
        if sys.stderr.isatty():
            trail.engine.on_progress = progress
        if args.dry_run:
            keys = [key.value]
            if not args.no_follow:
                sys.stdout.write(trail.explain(questions.links(within)))
                print("-- then the figures of every key the walk finds (figures.sql); then, with those keys:")
            if args.command == "findings":
                sys.stdout.write(trail.explain(questions.findings(keys, within)))
                if ruleset is not None and ruleset.rules:
                    from . import sigma

                    for _, request in sigma.requests(ruleset, keys, within):
                        sys.stdout.write(trail.explain(request))
            else:
                sys.stdout.write(trail.explain(questions.objects(keys, within)))
                sys.stdout.write(trail.explain(questions.data_events(within)))
            return 0
        follow_ = not args.no_follow
        if args.command == "findings":
            if ruleset is not None:
                print(f"trailkit: note: {visible(ruleset.describe())}", file=sys.stderr)
                for rule in ruleset.skipped:
                    print(f"trailkit: note: Sigma rule not run: {visible(rule.path)}: {visible(rule.title)}: "
                          f"{visible(rule.reason or '')}", file=sys.stderr)
            frame = trail.findings(key.value, within.start, within.end, allowed, follow_, ruleset, depth)
            if not frame.attrs.get("events"):
                print(f"trailkit: note: no events of {key.value}" + (" or its lineage" if follow_ else "")
                      + " in these logs" + (" and this window" if within.bounded else "")
                      + ": no findings is not 'nothing happened'", file=sys.stderr)
        else:
            frame = trail.objects(key.value, within.start, within.end, follow_, depth)
        if args.command == "findings" and args.format == "table":
            from .findings import text

            sys.stdout.write(text(frame))
        else:
            names, rows = printable(frame, spreadsheet_safe=args.format == "csv")
            write_result(sys.stdout, names, rows, args.format, whole=("resource", "detail"))
        say_figures(trail)
    return 0


def given_allowlist(text):
    """``--allow`` parsed; given but empty (an unset variable, ``,,``) is an error, not "no allowlist"."""
    from .errors import InvalidInput
    from .inputs import Allowlist

    allowed = Allowlist.parse(text)
    if text is not None and not allowed:
        raise InvalidInput("--allow is empty; give the expected networks (203.0.113.0/24,2001:db8::/32) or leave "
                           "--allow out")
    return allowed


def cache_command(args) -> int:
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
