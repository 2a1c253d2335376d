"""Evidence as it arrives, and inputs as a hostile user gives them: each case from the list of what went wrong,
with the expected answer computed here in plain Python over the JSON."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import warnings
from collections import Counter

import pandas as pd
import pytest

from trailkit import Trail
from trailkit.cli import main
from trailkit.engines.local import LocalEngine
from trailkit.errors import SkippedFile

from .conftest import read_records

KEY = "AKIA3PARTNERSYNC0001"
DAY = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/10/24"


def key_of(r):
    return (r.get("userIdentity") or {}).get("accessKeyId")


def once(recs):
    """Each event once: the first record of every eventID (and every record without one)."""
    seen, out = set(), []
    for r in recs:
        if r.get("eventID") is None or r["eventID"] not in seen:
            out.append(r)
            seen.add(r.get("eventID"))
    return out


def ips_by_hand(recs, key):
    per = Counter(r["sourceIPAddress"] for r in once(recs) if key_of(r) == key)
    return dict(per)


def ask_all(folder, **kw):
    """Every question of the key, as plain values, through one engine."""
    with Trail.local(folder, **kw) as t:
        return {
            "ips": dict(zip(t.ips(KEY)["sourceipaddress"], t.ips(KEY)["events"])),
            "usage": sorted(t.usage(KEY)["eventid"]),
            "owner": int(t.owner(KEY)["events"].sum()),
            "minted": list(t.minted(KEY)["mintedkeyid"]),
            "window": sorted(t.window("2026-10-24", "2026-10-24")["eventid"]),
        }


def test_a_trail_delivered_twice_counts_each_event_once(sample, tmp_path, records):
    """An organization trail and the account's own trail in one bucket: every event arrives twice."""
    shutil.copytree(sample / "AWSLogs", tmp_path / "AWSLogs")
    org = tmp_path / "AWSLogs" / "o-abc123def4"
    shutil.copytree(sample / "AWSLogs", org)
    recs = read_records(tmp_path)
    assert len(recs) == 2 * len(records(sample))
    want_ips = ips_by_hand(recs, KEY)
    want_window = sorted(r["eventID"] for r in once(recs) if "2026-10-24" <= r["eventTime"] < "2026-10-25")
    for kw in ({"cache": False}, {"cache": True}, {"cache": True}):  # cold, building, warm
        got = ask_all(tmp_path, **kw)
        assert got["ips"] == want_ips
        assert len(got["usage"]) == len(set(got["usage"])) == sum(want_ips.values())
        assert got["owner"] == sum(want_ips.values())
        assert got["minted"] == ["ASIA3OPSADMINTMP0001"]
        assert got["window"] == want_window


def test_records_without_an_event_id_are_all_kept(tmp_path, sample, records):
    recs = [dict(r) for r in records(sample) if key_of(r) == KEY][:6]
    for r in recs:
        r.pop("eventID")
    (tmp_path / "export.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    with Trail.local(tmp_path, cache=False) as t:
        assert int(t.ips(KEY)["events"].sum()) == 6


def test_a_symlinked_folder_and_a_loop_are_read_once(sample, tmp_path, records):
    shutil.copytree(sample / "AWSLogs", tmp_path / "AWSLogs")
    os.symlink(tmp_path / "AWSLogs", tmp_path / "AWSLogs-link")
    os.symlink(tmp_path, tmp_path / "AWSLogs" / "loop")
    want = ips_by_hand(records(sample), KEY)
    for cache in (False, True):
        with Trail.local(tmp_path, cache=cache) as t:
            assert dict(zip(t.ips(KEY)["sourceipaddress"], t.ips(KEY)["events"])) == want
            assert t.sql("SELECT count(*) AS n FROM cloudtrail")["n"].iloc[0] == len(records(sample))


def test_file_names_are_data_not_patterns(tmp_path, sample, records):
    recs = [r for r in records(sample) if key_of(r) == KEY]
    (tmp_path / "part[1].json.gz").write_bytes(gzip.compress(json.dumps({"Records": recs[:3]}).encode()))
    (tmp_path / "part1.json.gz").write_bytes(gzip.compress(json.dumps({"Records": recs[3:5]}).encode()))
    (tmp_path / "all*.json").write_text(json.dumps({"Records": recs[5:6]}))
    (tmp_path / "q?.json").write_text(json.dumps({"Records": recs[6:7]}))
    for cache in (False, True):
        with Trail.local(tmp_path, cache=cache) as t:
            ids = t.sql("SELECT eventid FROM cloudtrail")["eventid"]
            assert sorted(ids) == sorted(r["eventID"] for r in recs[:7])
            assert len(t.usage(KEY)) == 7


def test_odd_suffixes_hidden_folders_and_gzip_named_json_are_read(tmp_path, sample, records):
    recs = [r for r in records(sample) if key_of(r) == KEY]
    (tmp_path / "UPPER.JSON.GZ").write_bytes(gzip.compress(json.dumps({"Records": recs[:2]}).encode()))
    (tmp_path / "mixed.Json.Gz").write_bytes(gzip.compress(json.dumps({"Records": recs[2:3]}).encode()))
    hidden = tmp_path / ".evidence"
    hidden.mkdir()
    (hidden / "h.json").write_text(json.dumps({"Records": recs[3:4]}))
    with Trail.local(tmp_path, cache=False) as t:
        assert sorted(t.usage(KEY)["eventid"]) == sorted(r["eventID"] for r in recs[:4])
    # gzip bytes under a plain .json name: the key's scan inflates by the bytes, not the name
    (tmp_path / "zipped.json").write_bytes(gzip.compress(json.dumps({"Records": recs[4:6]}).encode()))
    with Trail.local(tmp_path, cache=False) as t:
        assert sorted(t.usage(KEY)["eventid"]) == sorted(r["eventID"] for r in recs[:6])


def test_a_fifo_is_never_opened_and_is_named(tmp_path, sample, records):
    shutil.copytree(sample / "AWSLogs", tmp_path / "AWSLogs")
    os.mkfifo(tmp_path / "trap.json.gz")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Trail.local(tmp_path, cache=False) as t:
            got = dict(zip(t.ips(KEY)["sourceipaddress"], t.ips(KEY)["events"]))
    assert got == ips_by_hand(records(sample), KEY)
    assert any(issubclass(w.category, SkippedFile) and "trap.json.gz" in str(w.message) and "FIFO" in str(w.message)
               for w in caught)


def test_a_dangling_link_and_an_unreadable_folder_are_named_and_the_rest_answered(tmp_path, sample, records,
                                                                                    monkeypatch):
    shutil.copytree(sample / "AWSLogs", tmp_path / "AWSLogs")
    os.symlink(tmp_path / "gone", tmp_path / "dangling.json.gz")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "x.json").write_text("{}")
    real = os.scandir

    def scandir(path):  # what a folder without read permission does (root reads everything, so it is feigned)
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Trail.local(tmp_path, cache=False) as t:
            got = dict(zip(t.ips(KEY)["sourceipaddress"], t.ips(KEY)["events"]))
    assert got == ips_by_hand(records(sample), KEY)
    messages = [str(w.message) for w in caught if issubclass(w.category, SkippedFile)]
    assert any("dangling.json.gz" in m and "link to nothing" in m for m in messages)
    assert any("locked" in m and "Permission denied" in m for m in messages)


def test_a_json_object_that_is_not_an_event_is_no_phantom(tmp_path, sample, records):
    recs = [r for r in records(sample) if key_of(r) == KEY][:3]
    (tmp_path / "a.json").write_text(json.dumps({"Records": recs}))
    (tmp_path / "settings.json").write_text(json.dumps({"foo": 1}))
    with Trail.local(tmp_path, cache=False) as t:
        assert int(t.sql("SELECT count(*) AS n FROM cloudtrail")["n"].iloc[0]) == 3


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, needle", [
    (["usage", KEY, "--end", "9999-12-31"], "out of range"),
    (["usage", KEY, "--start", "999999999d"], "out of range"),
    (["usage", KEY, "--start", "99999999999999d"], "out of range"),
    (["window", "--start", "0001-01-01", "--end", "2026-01-01"], "out of range"),
    (["sql", "SELEC eventname FROM cloudtrail"], "cannot be read"),
    (["sql", "EXPLAIN SELECT 1"], "read-only"),
    (["sql", "SELECT (eventname FROM cloudtrail"], "cannot be read"),
    (["sql", "SELECT * FROM read_csv('/etc/passwd')"], "not allowed"),
    (["sql", "COPY (SELECT 1) TO '/tmp/trailkit-copy.csv'"], "read-only"),
    (["sql", "SELECT 1; SELECT 2"], "exactly one SELECT"),
    (["sql", "UPDATE records SET eventname = 'x'"], "read-only"),
    (["sql", "DROP TABLE key_records"], "read-only"),
    (["sql", "SELECT * FROM key_records"], "is not known"),
    (["sql", "LOAD httpfs"], "read-only"),
    (["sql", "INSTALL httpfs"], "read-only"),
    (["sql", "ATTACH '/tmp/x.duckdb'"], "cannot be read"),
    (["sql", "SET threads = 1"], "read-only"),
    # a WITH name is no way around the rule: inside its own WITH, or outside its scope, it is the table itself
    (["sql", "WITH records AS (SELECT * FROM records) SELECT count(*) FROM records"], "is not known"),
    (["sql", "WITH key_records AS (SELECT 1) SELECT * FROM cloudtrail WHERE EXISTS "
             "(WITH meta AS (SELECT * FROM meta) SELECT * FROM meta)"], "is not known"),
    (["sql", 'WITH "/etc/passwd" AS (SELECT * FROM "/etc/passwd") SELECT * FROM "/etc/passwd"'], "is not known"),
    (["sql", 'SELECT * FROM (WITH "/etc/hosts" AS (SELECT 1) SELECT 1) a, "/etc/hosts"'], "is not known"),
    (["sql", "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) SELECT * FROM r"], "RECURSIVE"),
    (["sql", "SELECT l.* FROM cloudtrail, LATERAL read_text('/etc/passwd') l"], "not allowed"),
    (["sql", "SELECT * FROM cloudtrail CROSS JOIN LATERAL read_csv('/etc/passwd')"], "not allowed"),
    (["sql", "SELECT current_setting('secret_directory') AS s"], "not allowed"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, sample, argv, needle):
    code, out, err = run(capsys, *argv, "--logs", str(sample))
    assert code == 2 and out == "", err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not os.path.exists("/tmp/trailkit-copy.csv")


def test_with_names_and_unnest_still_work(capsys, sample, records):
    code, out, err = run(capsys, "sql", "WITH mine AS (SELECT * FROM cloudtrail WHERE useridentity.accesskeyid = :k), "
                         "late AS (SELECT * FROM mine WHERE eventtime >= '2026-10-24') SELECT count(*) AS n FROM late",
                         "--param", f"k={KEY}", "--logs", str(sample), "--format", "csv")
    want = sum(1 for r in once(records(sample)) if key_of(r) == KEY and r["eventTime"] >= "2026-10-24")
    assert code == 0 and out.splitlines() == ["n", str(want)], err


def test_outputs_are_checked_before_any_work(capsys, tmp_path, sample):
    code, _, err = run(capsys, "report", KEY, "--logs", str(sample), "--out", str(tmp_path))
    assert code == 2 and "is a folder" in err
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "report", KEY, "--logs", str(sample), "--out", str(tmp_path / "file" / "r.html"))
    assert code == 2 and "cannot be written" in err
    code, _, err = run(capsys, "sample", "--out", str(tmp_path / "file"))
    assert code == 2 and "is a file" in err and (tmp_path / "file").read_text() == "x"


def test_a_cache_setting_that_names_a_file_costs_speed_not_answers(capsys, tmp_path, sample, monkeypatch, records):
    (tmp_path / "not-a-folder").write_text("x")
    monkeypatch.setenv("TRAILKIT_CACHE", str(tmp_path / "not-a-folder"))
    code, out, err = run(capsys, "ips", KEY, "--logs", str(sample), "--format", "csv")
    assert code == 0 and "cannot be used" in err and "TRAILKIT_CACHE" in err
    assert len(out.splitlines()) == 1 + len(ips_by_hand(records(sample), KEY))


def test_clear_all_deletes_only_trailkit_s_own_files(capsys, tmp_path, sample, monkeypatch):
    monkeypatch.setenv("TRAILKIT_CACHE", str(tmp_path))
    (tmp_path / "mine.duckdb").write_text("the user's own database")
    assert run(capsys, "ips", KEY, "--logs", str(sample))[0] == 0
    ours = sorted(p.name for p in tmp_path.iterdir() if p.name != "mine.duckdb")
    assert any(n.endswith(".duckdb") for n in ours)
    code, out, _ = run(capsys, "cache", "--clear", "--all")
    assert code == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["mine.duckdb"]


def test_what_an_attacker_writes_cannot_hurt_the_reader(capsys, tmp_path, sample, records):
    rec = dict(next(r for r in records(sample) if key_of(r) == KEY), eventID="evil-1",
               userAgent="curl\x1b[2J\x1b[1A\rhidden\u202e", sourceIPAddress="=HYPERLINK(\"http://x\")",
               eventName="Get$\\frac{1}{2}$Object")
    (tmp_path / "evil.json").write_text(json.dumps({"Records": [rec]}))
    code, out, _ = run(capsys, "usage", KEY, "--logs", str(tmp_path), "--no-cache")
    assert code == 0 and "\x1b" not in out and "\r" not in out and "\u202e" not in out
    assert "\\x1b[2J" in out and "\\u202e" in out
    code, out, _ = run(capsys, "usage", KEY, "--logs", str(tmp_path), "--no-cache", "--format", "csv")
    assert "'=HYPERLINK" in out
    code, out, _ = run(capsys, "sql", "SELECT sourceipaddress, eventname FROM cloudtrail", "--logs", str(tmp_path),
                       "--format", "csv")  # free SQL: through Arrow
    assert out.splitlines()[1].startswith("\"'=HYPERLINK")
    code, out, _ = run(capsys, "usage", KEY, "--logs", str(tmp_path), "--no-cache", "--format", "json")
    assert json.loads(out.splitlines()[0])["sourceipaddress"] == "=HYPERLINK(\"http://x\")"  # JSON keeps it as it is
    import matplotlib

    matplotlib.use("Agg")
    from trailkit import plots

    with Trail.local(tmp_path, cache=False) as t:
        events, ips = t.usage(KEY), t.ips(KEY)
    for ax in (plots.usage_over_time(events), plots.usage_by_ip(ips), plots.api_breakdown(events)):
        ax.figure.savefig(tmp_path / "chart.png")  # mathtext would raise on the fraction, or eat the dollars
    labels = [t.get_text() for t in plots.api_breakdown(events).get_yticklabels()]
    assert any("$" in label for label in labels)


def test_times_with_offsets_are_instants_and_bad_times_cost_only_their_record(tmp_path, sample, records, capsys):
    base = [r for r in records(sample) if key_of(r) == KEY][:4]
    recs = [dict(base[0], eventID="t-1", eventTime="2026-10-24T03:30:00+02:00"),  # 01:30Z: the earliest
            dict(base[1], eventID="t-2", eventTime="2026-10-24T02:00:00Z"),
            dict(base[2], eventID="t-3", eventTime="2026-10-24T01:59:00-01:00"),  # 02:59Z: the latest
            dict(base[3], eventID="t-4", eventTime="yesterday, roughly")]
    (tmp_path / "times.json").write_text(json.dumps({"Records": recs}))
    for cache in (False, True):
        with Trail.local(tmp_path, cache=cache) as t:
            usage = t.usage(KEY)
            assert list(usage["eventid"]) == ["t-3", "t-2", "t-1", "t-4"]  # newest first, the unreadable time last
            assert usage["eventtime"].isna().sum() == 1
            assert str(usage["eventtime"].iloc[0]) == "2026-10-24 02:59:00+00:00"
            owner = t.owner(KEY)
            assert int(owner["events"].iloc[0]) == 4
            assert (str(owner["first_seen"].iloc[0]), str(owner["last_seen"].iloc[0])) == \
                ("2026-10-24 01:30:00+00:00", "2026-10-24 02:59:00+00:00")
            window = t.window("2026-10-24T01:00:00Z", "2026-10-24T02:30:00Z")
            assert sorted(window["eventid"]) == ["t-1", "t-2"]
    code, out, err = run(capsys, "usage", KEY, "--logs", str(tmp_path), "--format", "csv")
    assert code == 0 and out.splitlines()[1].startswith("2026-10-24T02:59:00Z,")
    assert out.splitlines()[-1].startswith(",")  # the record whose time does not parse: kept, time empty


def test_an_expiration_written_the_aws_way_is_a_utc_time(sample, capsys):
    with Trail.local(sample) as t:
        minted = t.minted(KEY)
    want = [json.loads(json.dumps(r))["responseElements"]["credentials"]["expiration"] for r in read_records(sample)
            if key_of(r) == KEY and r["eventSource"] == "sts.amazonaws.com" and r.get("responseElements")]
    assert want == ["Oct 24, 2026, 03:19:17 AM"]
    assert str(minted["expiration"].iloc[0]) == "2026-10-24 03:19:17+00:00"
    code, out, _ = run(capsys, "minted", KEY, "--logs", str(sample), "--format", "csv")
    assert code == 0 and ",2026-10-24T03:19:17Z," in out


@pytest.mark.parametrize("damage", ["bad utf-8 byte", "cut last line", "a line of garbage"])
def test_a_bad_line_or_byte_costs_that_line_not_the_file(tmp_path, sample, records, damage):
    recs = [r for r in records(sample) if key_of(r) == KEY][:5]
    lines = [json.dumps(r).encode() for r in recs]
    if damage == "bad utf-8 byte":
        lines[1] = lines[1].replace(b'"userAgent": "', b'"userAgent": "\xff', 1)
        kept = 5
    elif damage == "cut last line":
        lines[4] = lines[4][: len(lines[4]) // 2]
        kept = 4
    else:
        lines.insert(2, b"this is not json")
        kept = 5
    (tmp_path / "export.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    for cache in (False, True):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with Trail.local(tmp_path, cache=cache) as t:
                by_key = int(t.ips(KEY)["events"].sum())
                windowed = len(t.window("2026-10-01", "2026-11-01"))
                counted = int(t.sql("SELECT count(*) AS n FROM cloudtrail")["n"].iloc[0])
        assert by_key == windowed == counted == kept, (cache, by_key, windowed, counted)
        if kept < 5 or damage != "bad utf-8 byte":
            assert any("export.jsonl" in str(w.message) and "read" in str(w.message) for w in caught)


def test_the_first_cached_window_over_an_unreadable_file_names_it(logs_copy, tmp_path, sample, records):
    bad = logs_copy / DAY / "broken.json.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00 this is not gzip")
    want = sorted(r["eventID"] for r in records(sample) if "2026-10-24" <= r["eventTime"] < "2026-10-25")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Trail(LocalEngine(logs_copy, cache_dir=tmp_path)) as t:
            assert sorted(t.window("2026-10-24", "2026-10-24")["eventid"]) == want
            assert sorted(t.window("2026-10-24", "2026-10-24")["eventid"]) == want  # warm
    assert any("broken.json.gz" in str(w.message) for w in caught)


def test_the_cache_answers_as_a_cold_read_whatever_was_asked_before(logs_copy, tmp_path, sample, records):
    """An event delivered three days late lies outside a window's padded days: a cold read does not see it, and
    neither may a cache that read its file for an earlier, unbounded question."""
    template = next(r for r in records(sample) if key_of(r) == KEY)
    late = dict(template, eventID="late-1", eventTime="2026-10-24T12:00:00Z", sourceIPAddress="192.0.2.44")
    folder = logs_copy / "AWSLogs/111122223333/CloudTrail/us-east-1/2026/10/27"
    (folder / "late.json.gz").write_bytes(gzip.compress(json.dumps({"Records": [late]}).encode()))

    def questions(t):
        return (sorted(t.window("2026-10-24", "2026-10-24")["eventid"]),
                sorted(t.usage(KEY, start="2026-10-24", end="2026-10-24")["eventid"]))

    with Trail.local(logs_copy, cache=False) as cold:
        want = questions(cold)
    assert "late-1" not in want[0] and "late-1" not in want[1]
    with Trail(LocalEngine(logs_copy, cache_dir=tmp_path)) as t:
        t.usage(KEY)  # unbounded: every file of the key is read and kept
        t.window("2026-10-01", "2026-10-31")
        assert questions(t) == want
    with Trail.local(logs_copy, cache=False) as cold:  # and the late event is there for a window that covers it
        assert "late-1" in set(cold.window("2026-10-24", "2026-10-26")["eventid"])


def _secrets(node, found):
    """Every string value under a secret-bearing key, by plain recursion over the JSON."""
    from trailkit.contract import SECRET_KEYS

    names = {k.lower() for k in SECRET_KEYS}
    if isinstance(node, dict):
        for k, v in node.items():
            if k.lower() in names and isinstance(v, str) and len(v) > 8:
                found.add(v)
            _secrets(v, found)
    elif isinstance(node, list):
        for v in node:
            _secrets(v, found)
    return found


def test_stratus_detonations_read_in_full_with_every_token_masked(stratus, capsys, tmp_path):
    recs = [r for path in sorted(stratus.glob("*.json")) for r in json.loads(path.read_text())]
    tokens = _secrets(recs, set())
    assert len(recs) == 310 and len(tokens) >= 5
    code, out, _ = run(capsys, "sql", "SELECT * FROM cloudtrail", "--logs", str(stratus), "--format", "json")
    assert code == 0 and len(out.splitlines()) == 310
    assert not [t for t in tokens if t in out or json.dumps(t)[1:-1] in out]
    assert out.count("<masked>") >= len(tokens)
    # the federation-token technique: the key that asked for the token, its report
    fed = json.loads((stratus / "aws.persistence.sts-federation-token.json").read_text())
    key = next(key_of(r) for r in fed if r["eventName"] == "GetFederationToken")
    from trailkit import EngineSettings
    from trailkit.investigation import Case
    from trailkit.report import write_report

    html = write_report(Case.parse(key), tmp_path / "r.html", EngineSettings(logs=stratus)).read_text()
    assert "GetFederationToken" in html and not [t for t in tokens if t in html]
    with Trail.local(stratus) as t:
        frames = [t.window("2020-01-01", "2030-01-01"), t.usage(key)]
    for frame in frames:
        text = frame.to_csv()
        assert not [t for t in tokens if t in text]


def _bomb(path, inflated: int) -> None:
    """A gzip file of ``inflated`` zero bytes (a few hundred KB on disk), written without holding them."""
    import zlib

    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as out:
        block = b"\0" * (1 << 20)
        for _ in range(inflated >> 20):
            out.write(z.compress(block))
        out.write(z.flush())


def test_a_decompression_bomb_is_named_and_memory_stays_flat(logs_copy, tmp_path, sample, records):
    import subprocess
    import sys

    _bomb(logs_copy / DAY / "bomb.json.gz", 1536 << 20)  # 1.5 GiB of zeros in ~1.5 MB
    assert (logs_copy / DAY / "bomb.json.gz").stat().st_size < 2 << 20
    code = ("import resource, sys; from trailkit.cli import main; rc = main(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, file=sys.stderr); sys.exit(rc)")
    for argv in (["ips", KEY, "--format", "csv"], ["window", "--start", "2026-10-24", "--end", "2026-10-24"]):
        proc = subprocess.run([sys.executable, "-c", code, *argv, "--logs", str(logs_copy), "--no-cache"],
                              capture_output=True, text=True, env={**os.environ, "TRAILKIT_CACHE": str(tmp_path)})
        assert proc.returncode == 0, proc.stderr
        assert "bomb.json.gz" in proc.stderr and "a decompression bomb" in proc.stderr
        assert int(proc.stderr.split()[-1]) < 600, "peak memory in MB"
    with warnings.catch_warnings(record=True), Trail.local(logs_copy, cache=False) as t:
        assert dict(zip(t.ips(KEY)["sourceipaddress"], t.ips(KEY)["events"])) == ips_by_hand(records(sample), KEY)


def test_a_record_nested_past_python_s_limit_is_read_not_a_traceback(tmp_path, sample, records, capsys):
    rec = dict(next(r for r in records(sample) if key_of(r) == KEY), eventID="deep-1", requestParameters=None)
    text = json.dumps(rec).replace('"requestParameters": null', '"requestParameters": ' + "[" * 5000 + "]" * 5000)
    (tmp_path / "deep.json").write_text('{"Records": [' + text + "]}")
    for argv in (["usage", KEY], ["window", "--start", "2026-01-01", "--end", "2027-01-01"]):
        code, out, err = run(capsys, *argv, "--logs", str(tmp_path), "--format", "csv")
        assert code == 0 and "deep-1" in out, err
    for argv in (["ips", KEY], ["owner", KEY]):
        code, out, err = run(capsys, *argv, "--logs", str(tmp_path), "--format", "csv")
        assert code == 0 and len(out.splitlines()) == 2, err


def test_a_key_written_with_json_escapes_is_the_same_key(tmp_path, sample, records):
    recs = [dict(r) for r in records(sample) if key_of(r) == KEY][:3]
    text = json.dumps({"Records": recs})
    escaped = text.replace(f'"accessKeyId": "{KEY}"', '"accessKeyId": "\\u0041' + KEY[1:] + '"', 1)
    assert escaped != text and json.loads(escaped) == {"Records": recs}
    (tmp_path / "escaped.json").write_text(escaped)
    with Trail.local(tmp_path, cache=False) as t:
        assert sorted(t.usage(KEY)["eventid"]) == sorted(r["eventID"] for r in recs)


def test_the_kernel_s_trees_are_never_walked(tmp_path, sample, capsys):
    shutil.copytree(sample / "AWSLogs", tmp_path / "AWSLogs")
    os.symlink("/proc/self", tmp_path / "p")
    code, out, err = run(capsys, "window", "--start", "2026-10-24", "--end", "2026-10-24", "--logs", str(tmp_path),
                         "--dry-run")
    files = sum(1 for p in (sample / "AWSLogs").rglob("*.json.gz") if "Digest" not in str(p))
    days = {p.parent for p in (sample / "AWSLogs").rglob("*.json.gz")}
    assert code == 0 and int(out.split("over ")[1].split(" file")[0]) < files
    code, _, err = run(capsys, "ips", KEY, "--logs", "/proc")
    assert code == 2 and "kernel" in err and days
    code, _, err = run(capsys, "ips", KEY, "--logs", "/")
    assert code == 2 and "whole machine" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, needle", [
    (["usage", KEY, "--limit", "99999999999999999999"], "below 2**63"),
    (["sql", "SELECT count(*) AS n FROM cloudtrail", "--param", "r=1"], "not used"),
    (["sql", "SELECT :a AS n FROM cloudtrail", "--param", "a=1", "--param", "a=2"], "given twice"),
    (["window", "--start", "2026"], "required: --end"),
    (["nonsense"], "invalid choice"),
])
def test_more_bad_input_in_one_line(capsys, sample, argv, needle):
    try:
        code, out, err = run(capsys, *argv, "--logs", str(sample))
    except SystemExit as e:  # argparse's own refusals
        code, (out, err) = e.code, capsys.readouterr()
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_a_placeholder_in_a_comment_is_no_placeholder(capsys, sample):
    code, out, err = run(capsys, "sql", "SELECT count(*) AS n FROM cloudtrail -- :nope\n", "--logs", str(sample),
                         "--format", "csv")
    assert code == 0, err


def test_names_and_messages_reach_the_terminal_escaped(tmp_path, sample, capsys):
    shutil.copytree(sample / "AWSLogs", tmp_path / "AWSLogs")
    (tmp_path / "esc\x1b[31mRED\nname.json.gz").write_bytes(b"\x1f\x8b not gzip")
    code, out, err = run(capsys, "ips", KEY, "--logs", str(tmp_path))
    assert code == 0 and "\x1b" not in err and "esc\\x1b[31mRED\\nname.json.gz" in err


def test_a_bound_finer_than_a_millisecond_never_lets_in_what_came_before(tmp_path, sample, records):
    rec = dict(next(r for r in records(sample) if key_of(r) == KEY), eventID="ms-1", eventTime="2026-10-24T02:13:31Z")
    (tmp_path / "ms.json").write_text(json.dumps({"Records": [rec]}))
    with Trail.local(tmp_path, cache=False) as t:
        assert t.window("2026-10-24T02:13:31.0005Z", "2026-10-24T03:00:00Z").empty
        assert list(t.window("2026-10-24T02:13:30Z", "2026-10-24T02:13:31.0005Z")["eventid"]) == ["ms-1"]


# ---- exports: evidence as pipelines hand it over, mapped back (field names from each pipeline's own docs)

def _key_records(records, sample, n=6):
    return [r for r in records(sample) if key_of(r) == KEY][:n]


def _epoch_ms(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _ecs(r, original: bool):
    doc = {"@timestamp": r["eventTime"].replace("Z", ".000Z"), "event": {"action": r["eventName"],
           "provider": r["eventSource"], "id": r["eventID"]}, "source": {"address": r["sourceIPAddress"]},
           "user_agent": {"original": r.get("userAgent")}, "cloud": {"region": r["awsRegion"],
           "account": {"id": r["userIdentity"]["accountId"]}},
           "aws": {"cloudtrail": {"user_identity": {"access_key_id": r["userIdentity"]["accessKeyId"],
                                                    "arn": r["userIdentity"]["arn"], "type": r["userIdentity"]["type"]}}}}
    if original:
        doc["event"]["original"] = json.dumps(r)
    return doc


SHAPES = {
    # Elastic integration with the original kept, and without it (ECS fields only)
    "elastic-original.ndjson": lambda rs: "".join(json.dumps(_ecs(r, True)) + "\n" for r in rs),
    "elastic-ecs.ndjson": lambda rs: "".join(json.dumps(_ecs(r, False)) + "\n" for r in rs),
    # Logstash's cloudtrail codec: eventTime moved to @timestamp
    "logstash.json": lambda rs: json.dumps([{**{k: v for k, v in r.items() if k != "eventTime"},
                                             "@timestamp": r["eventTime"], "@version": "1"} for r in rs]),
    # Splunk's search export: one {"result": {"_raw": ...}} per line
    "splunk.json": lambda rs: "".join(json.dumps({"preview": False, "result": {"_raw": json.dumps(r),
                                      "_time": r["eventTime"], "sourcetype": "aws:cloudtrail"}}) + "\n" for r in rs),
    # Datadog's logs API v2
    "datadog.json": lambda rs: json.dumps({"data": [{"id": str(i), "type": "log", "attributes": {
        "timestamp": r["eventTime"], "attributes": {**r, "evt": {"name": r["eventName"]}}}} for i, r in enumerate(rs)]}),
    # CloudWatch Logs: events with the record as text
    "cloudwatch.json": lambda rs: json.dumps({"logEvents": [{"id": str(i), "timestamp": 1, "message": json.dumps(r)}
                                                             for i, r in enumerate(rs)]}),
    # CloudTrail's own event history (LookupEvents)
    "event-history.json": lambda rs: json.dumps({"Events": [{"EventId": r["eventID"], "CloudTrailEvent": json.dumps(r)}
                                                             for r in rs]}),
    # Security Lake (OCSF, time in epoch milliseconds) and Microsoft Sentinel's AWSCloudTrail table
    "ocsf.json": lambda rs: json.dumps([{"time": _epoch_ms(r["eventTime"]), "class_uid": 6003,
        "api": {"operation": r["eventName"], "service": {"name": r["eventSource"]}},
        "metadata": {"uid": r["eventID"]}, "src_endpoint": {"ip": r["sourceIPAddress"]},
        "cloud": {"region": r["awsRegion"]}, "actor": {"user": {"credential_uid": r["userIdentity"]["accessKeyId"],
                                                                 "uid": r["userIdentity"]["arn"]}}} for r in rs]),
    "sentinel.json": lambda rs: json.dumps([{"TimeGenerated": r["eventTime"].replace("Z", ".0000000Z"),
        "EventName": r["eventName"], "EventSource": r["eventSource"], "AwsEventId": r["eventID"],
        "SourceIpAddress": r["sourceIPAddress"], "AWSRegion": r["awsRegion"],
        "UserIdentityAccessKeyId": r["userIdentity"]["accessKeyId"]} for r in rs]),
    # JSON lines whose lines are arrays, and Records holding one object
    "array-lines.jsonl": lambda rs: json.dumps(rs[:3]) + "\n" + json.dumps(rs[3:]) + "\n",
    "one-record.json": lambda rs: json.dumps({"Records": rs[0]}),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_an_export_is_read_as_the_records_it_holds(tmp_path, sample, records, capsys, shape):
    recs = _key_records(records, sample)
    (tmp_path / shape).write_text(SHAPES[shape](recs))
    want = recs[:1] if shape == "one-record.json" else recs
    for cache in ("--no-cache", None):
        argv = ["usage", KEY, "--logs", str(tmp_path), "--format", "json"] + ([cache] if cache else [])
        code, out, err = run(capsys, *argv)
        rows = [json.loads(line) for line in out.splitlines()]
        assert code == 0, err
        assert sorted(r["eventid"] for r in rows) == sorted(r["eventID"] for r in want)
        assert sorted(r["eventtime"] for r in rows) == sorted(r["eventTime"] for r in want)
        assert {r["sourceipaddress"] for r in rows} == {r["sourceIPAddress"] for r in want}
        code, out, err = run(capsys, "window", "--start", "2026-10-01", "--end", "2026-11-01", "--logs", str(tmp_path),
                             "--format", "csv", *([cache] if cache else []))
        assert code == 0 and len(out.splitlines()) == 1 + len(want), err
    if shape not in ("array-lines.jsonl", "one-record.json"):  # CloudTrail's own records: nothing to say
        assert shape in err and "record(s) as" in err  # which file, which mapping


def test_a_zip_of_logs_is_read(tmp_path, sample, records):
    import zipfile

    recs = _key_records(records, sample, 8)
    with zipfile.ZipFile(tmp_path / "evidence.ZIP", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a/one.json", json.dumps({"Records": recs[:3]}))
        z.writestr("b/two.json.gz", gzip.compress(json.dumps({"Records": recs[3:6]}).encode()))
        z.writestr("c/three.jsonl", "".join(json.dumps(r) + "\n" for r in recs[6:]))
        z.writestr("README.txt", "not a log")
    for cache in (False, True):
        with Trail.local(tmp_path, cache=cache) as t:
            assert sorted(t.usage(KEY)["eventid"]) == sorted(r["eventID"] for r in recs)
            assert len(t.window("2026-10-01", "2026-11-01")) == len(recs)


def test_every_answer_says_what_it_rests_on(tmp_path, sample, records):
    """Files covered, read, skipped (why), exports (how), records without a time, duplicates: in trail.last and in
    the report's data-quality section."""
    shutil.copytree(sample / "AWSLogs", tmp_path / "AWSLogs")
    recs = _key_records(records, sample, 4)
    (tmp_path / "splunk.json").write_text(SHAPES["splunk.json"](recs[:2]))  # two events delivered again
    (tmp_path / "notime.json").write_text(json.dumps({"Records": [dict(recs[2], eventID="nt-1", eventTime="soon")]}))
    (tmp_path / "AWSLogs" / "broken.json.gz").write_bytes(b"\x1f\x8b\x08 not gzip")
    from trailkit.investigation import Case, investigate, quality_html

    with warnings.catch_warnings(record=True), Trail(LocalEngine(tmp_path, cache_dir=tmp_path / "cache")) as t:
        done = investigate(t, Case.parse(KEY))
        last = done.stats[0]  # the usage question: every event of the key
    assert done.stats[3].duplicates == 0  # minted (usage, ips, owner, minted, then the lineage): no STS call copied
    files = sum(1 for p in tmp_path.rglob("*.json*") if "Digest" not in str(p))
    assert last.covered == files and last.untimed == 1 and last.duplicates == 2
    assert [p for p, _ in last.skipped] == [str(tmp_path / "AWSLogs" / "broken.json.gz")]
    assert [p for p, _ in last.notes] == [str(tmp_path / "splunk.json")]
    with warnings.catch_warnings(record=True), Trail.local(tmp_path, cache=False) as t:
        t.window("2026-10-01", "2026-11-01")  # straight from the files: copies not counted, and it says so
        assert t.last.duplicates is None and t.last.untimed is None
    page = quality_html(done)
    for needle in ("broken.json.gz", "splunk.json", "the record in _raw", "records without a usable time",
                   f"{files:,} (", ">2 records were second deliveries"):
        assert needle in page, needle


def test_a_report_can_be_shared_with_identities_masked(tmp_path, sample, records, capsys):
    out = tmp_path / "shared.html"
    code, _, err = run(capsys, "report", KEY, "--logs", str(sample), "--allow", "203.0.113.0/24", "--out", str(out),
                       "--redact")
    assert code == 0, err
    html = out.read_text()
    recs = [r for r in records(sample) if key_of(r) == KEY]
    # (the partner's user agent names its own software "partner-sync/4.2": that is no identity, and stays)
    identities = {KEY, "111122223333", "ASIA3OPSADMINTMP0001", ">partner-sync<", "user/partner-sync"} | \
        {r["sourceIPAddress"] for r in recs}
    assert not [v for v in identities if v in html]
    assert "AKIA-KEY-1" in html and "ACCOUNT-1" in html and "user/NAME-" in html and "IP-1" in html
    assert "unexpected" in html and "AccessDenied" in html  # the story stays
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def test_what_trailkit_keeps_is_its_owner_s_alone(tmp_path, sample, monkeypatch, capsys):
    monkeypatch.setenv("TRAILKIT_CACHE", str(tmp_path / "cache"))
    assert run(capsys, "ips", KEY, "--logs", str(sample))[0] == 0
    assert oct((tmp_path / "cache").stat().st_mode & 0o777) == "0o700"
    assert all(p.stat().st_mode & 0o077 == 0 for p in (tmp_path / "cache").glob("*.duckdb"))


def test_the_forked_scan_dies_with_its_parent(tmp_path, sample):
    import signal
    import subprocess
    import sys
    import time

    shutil.copytree(sample / "AWSLogs", tmp_path / "AWSLogs")
    # the child's scan takes a minute (as over a large folder); the parent is killed meanwhile
    code = ("import time; import trailkit.engines.scan as s; from trailkit.inputs import Window\n"
            "s.scan = lambda *a, **k: time.sleep(60)\n"
            f"child = s.ForkedScan.start({str(tmp_path)!r}, Window(), {KEY!r}); print(child.pid, flush=True); "
            "time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        try:  # a zombie no one reaps still answers kill(0): look at its state
            if open(f"/proc/{child}/stat").read().split()[2] == "Z":
                break
        except OSError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the forked scan outlived its parent")


@pytest.mark.parametrize("cache", ["--no-cache", None])
def test_ctrl_c_stops_within_a_second_and_leaves_the_cache_whole(tmp_path, sample, cache):
    import signal
    import subprocess
    import sys
    import time

    slow = ("SELECT count(*) AS n FROM cloudtrail a, cloudtrail b, cloudtrail c, cloudtrail d "
            "WHERE md5(a.eventid || b.eventid || c.eventid || d.eventid) < 'a'")  # hours of work
    env = {**os.environ, "TRAILKIT_CACHE": str(tmp_path)}
    argv = [sys.executable, "-m", "trailkit", "sql", slow, "--logs", str(sample)] + ([cache] if cache else [])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(2.5)  # well into the query
    assert proc.poll() is None, proc.communicate()
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert time.monotonic() - sent < 1.5 and proc.returncode == 130 and "interrupted" in err
    # the cache answers as before
    done = subprocess.run([sys.executable, "-m", "trailkit", "ips", KEY, "--logs", str(sample), "--format", "csv"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0 and "203.0.113.10" in done.stdout, done.stderr


def test_gzip_members_of_equal_sizes_are_all_read(tmp_path, sample, records):
    recs = _key_records(records, sample, 4)
    one = ("".join(json.dumps(dict(recs[0], eventID=f"m-{i}")) + "\n" for i in range(2))).encode()
    two = ("".join(json.dumps(dict(recs[0], eventID=f"n-{i}")) + "\n" for i in range(2))).encode()
    assert len(one) == len(two)  # the trailer (the last member's size) matches the first member: nothing tells
    (tmp_path / "firehose.jsonl.gz").write_bytes(gzip.compress(one) + gzip.compress(two))
    with Trail.local(tmp_path, cache=False) as t:
        assert sorted(t.usage(KEY)["eventid"]) == ["m-0", "m-1", "n-0", "n-1"]


def test_a_file_linked_from_outside_and_changed_there_is_seen_in_a_notebook(tmp_path, sample, records):
    logs, outside = tmp_path / "logs", tmp_path / "outside"
    shutil.copytree(sample / "AWSLogs", logs / "AWSLogs")
    outside.mkdir()
    rec = _key_records(records, sample, 1)[0]
    target = outside / "extra.json"
    target.write_text(json.dumps({"Records": [dict(rec, eventID="x-1")]}))
    os.symlink(target, logs / "extra.json")
    with Trail(LocalEngine(logs, cache_dir=tmp_path / "cache")) as t:  # watch on, as in a notebook
        before = len(t.usage(KEY))
        target.write_text(json.dumps({"Records": [dict(rec, eventID="x-1"), dict(rec, eventID="x-2")]}))
        assert len(t.usage(KEY)) == before + 1


def test_a_rewrite_that_keeps_size_and_time_is_noticed(tmp_path, sample, records):
    logs = tmp_path / "logs"
    (logs / DAY).mkdir(parents=True)
    rec = _key_records(records, sample, 1)[0]
    path = logs / DAY / "one.json"
    path.write_text(json.dumps({"Records": [dict(rec, eventID="same-0001")]}))
    before = os.stat(path)
    with Trail(LocalEngine(logs, cache_dir=tmp_path / "cache", watch=False)) as t:
        assert list(t.usage(KEY)["eventid"]) == ["same-0001"]
        path.write_text(json.dumps({"Records": [dict(rec, eventID="same-0002")]}))  # same length, other event
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = os.stat(path)
        assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
        assert list(t.usage(KEY)["eventid"]) == ["same-0002"]


def test_a_name_that_is_not_utf8_and_a_hard_link_are_read_once(tmp_path, sample, records):
    recs = _key_records(records, sample, 3)
    odd = os.path.join(os.fsencode(tmp_path), b"bad\xff\xfename.json")
    with open(odd, "w") as f:
        f.write(json.dumps({"Records": recs}))
    os.link(odd, os.path.join(os.fsencode(tmp_path), b"hard.json"))
    for cache in (False, True):
        with Trail.local(tmp_path, cache=cache) as t:
            assert sorted(t.usage(KEY)["eventid"]) == sorted(r["eventID"] for r in recs)
            assert len(t.window("2026-10-01", "2026-11-01")) == 3
            assert int(t.sql("SELECT count(*) AS n FROM cloudtrail")["n"].iloc[0]) == 3


def test_a_name_that_is_not_utf8_alone(tmp_path, sample, records):
    recs = _key_records(records, sample, 2)
    with open(os.path.join(os.fsencode(tmp_path), b"only\xff.json"), "w") as f:
        f.write(json.dumps({"Records": recs}))
    day = os.path.join(os.fsencode(tmp_path), DAY.encode(), b"x\xfe.json.gz")
    os.makedirs(os.path.dirname(day))
    with open(day, "wb") as f:
        f.write(gzip.compress(json.dumps({"Records": _key_records(records, sample, 4)[2:]}).encode()))
    for cache in (False, True):
        with Trail.local(tmp_path, cache=cache) as t:
            assert len(t.usage(KEY)) == 4
            assert len(t.window("2026-10-01", "2026-11-01")) == 4



def test_records_without_an_event_id_are_no_copies(tmp_path, sample, records):
    recs = [dict(r) for r in _key_records(records, sample, 3)]
    for r in recs:
        r.pop("eventID")
    (tmp_path / "AWSLogs").mkdir()
    (tmp_path / "export.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    with warnings.catch_warnings(record=True), Trail(LocalEngine(tmp_path, cache_dir=tmp_path / "c")) as t:
        assert len(t.usage(KEY)) == 3 and t.last.duplicates == 0


def test_free_sql_shaped_like_a_question_is_answered_not_a_traceback(capsys, sample):
    code, out, err = run(capsys, "sql", "WITH delivered AS (\n SELECT eventid FROM cloudtrail\n)\nSELECT count(*) AS n "
                         "FROM delivered", "--logs", str(sample), "--format", "csv")
    assert code == 0 and out.splitlines()[0] == "n", err


def test_with_names_in_any_case_and_two_tables_on_athena(capsys, sample, moto):
    code, out, err = run(capsys, "sql", "WITH Recent AS (SELECT * FROM cloudtrail) SELECT count(*) AS n FROM recent",
                         "--logs", str(sample), "--format", "csv")
    assert code == 0, err
    moto.table("security", "cloudtrail")
    moto.seed([("n", "bigint")], [["1"]])
    code, out, err = run(capsys, "sql", "SELECT count(*) AS n FROM cloudtrail a, cloudtrail b WHERE cloudtrail.x = 1",
                         "--athena", "--database", "security", "--output", "s3://trailkit-results/q/", "--dry-run")
    assert code == 0 and out.count('"security"."cloudtrail"') == 3 and " cloudtrail" not in out.replace('"cloudtrail"', ""), out


def test_a_zip_cannot_inflate_past_one_budget(tmp_path, sample, records):
    import zipfile

    member = b"\0" * (200 << 20)
    with zipfile.ZipFile(tmp_path / "many.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(3):
            z.writestr(f"part{i}.json", member)
    (tmp_path / "a.json").write_text(json.dumps({"Records": _key_records(records, sample, 2)}))
    with warnings.catch_warnings(record=True) as caught, Trail.local(tmp_path, cache=False) as t:
        warnings.simplefilter("always")
        assert len(t.usage(KEY)) == 2
    assert any("many.zip" in str(w.message) and "decompression bomb" in str(w.message) for w in caught)


def test_a_redacted_report_leaks_no_path_name_or_session(tmp_path, sample, records, capsys):
    shutil.copytree(sample / "AWSLogs", tmp_path / "AWSLogs")
    (tmp_path / "AWSLogs" / "111122223333_broken.json.gz").write_bytes(b"\x1f\x8b\x08 not gzip")
    from trailkit.redact import Redactor

    r = Redactor()
    text = r.text('arn:aws:sts::111122223333:assumed-role/ops-admin/sync-maint AROAEXAMPLEID1234567:alice@corp.com '
                  '{"userName": "bob", "roleSessionName": "sync-maint"}')
    assert "ops-admin" not in text and "alice" not in text and '"bob"' not in text
    assert text.count("NAME-2") == 2  # the session in the ARN and in the parameters: one mask
    out = tmp_path / "r.html"
    code, _, err = run(capsys, "report", KEY, "--logs", str(tmp_path), "--out", str(out), "--redact")
    assert code == 0, err
    html = out.read_text()
    assert "111122223333" not in html and "broken.json.gz" in html  # the file is named, its account masked


def test_records_read_as_columns_once_whatever_their_text_holds(sample, records):
    """A scan's records go into DuckDB parsed once; a text that is (or may be, behind escapes) a whole
    ``{"Records": [...]}`` document is still read as the records it holds, and an object with no event field is no
    event, as when files are read whole."""
    import duckdb

    from trailkit.engines import duck

    recs = _key_records(records, sample, 6)
    accented = dict(recs[1], userAgent="café/1.0")  # written by json.dumps as caf\u00e9
    texts = [json.dumps(recs[0], separators=(",", ":")), json.dumps(accented),
             json.dumps({"Records": recs[2:4]}), json.dumps({"Records": recs[4:5]}).replace('"Records"', '"\\u0052ecords"'),
             json.dumps(recs[5]), json.dumps({"note": KEY, "digestPublicKeyFingerprint": "x"})]
    assert "\\u00e9" in texts[1] and "\\u0052" in texts[3]
    con = duckdb.connect()
    for plain_only in (True, False):
        duck.records_table(con, "t", texts[-2:] if plain_only else texts)
        rows = con.execute("SELECT eventid, eventtime, useragent, useridentity.accesskeyid FROM t").fetchall()
        want = recs[5:] if plain_only else [recs[0], accented, *recs[2:]]
        assert sorted(rows) == sorted((r["eventID"], r["eventTime"], r.get("userAgent"), key_of(r)) for r in want)


def test_the_command_leaves_an_in_memory_database_to_the_process_s_end(sample, tmp_path, monkeypatch):
    """The ``trailkit`` command ends its process at once: an engine without a cache leaves its DuckDB database to
    that end (nothing to write), and one with a cache still closes it (its file is whole, and free for the next)."""
    from trailkit import engines

    monkeypatch.setattr(engines, "process_ends", True)
    monkeypatch.setattr(engines, "left_open", [])
    for cache in (False, True):
        engine = LocalEngine(sample, cache=cache, cache_dir=tmp_path)
        with Trail(engine) as t:
            assert len(t.ips(KEY)) > 0
            con, store = engine._con, engine._cache
        assert engine._con is None and (engines.left_open == [con]) is not cache
    opened = subprocess.run([sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).close()",
                             str(store.path)], capture_output=True, text=True)
    assert opened.returncode == 0, opened.stderr  # closed: another process may open the cache
    # a database that spilled to disk (a small machine, a big window) is closed: closing removes its files
    engine, spill, kept = LocalEngine(sample, cache=False), tmp_path / "spill", list(engines.left_open)
    engine.con.execute(f"SET memory_limit = '16MB'; SET temp_directory = '{spill}'")
    engine.con.execute("CREATE TEMP TABLE big AS SELECT repeat('x', 200) || range AS s FROM range(400000)")
    assert engine.con.execute("SELECT count(*) FROM duckdb_temporary_files()").fetchone()[0] > 0
    engine.close()
    assert engines.left_open == kept and not [p for p in spill.rglob("*") if p.is_file()]


def test_two_copies_of_an_event_that_differ_are_told_apart_alike_with_and_without_the_cache(tmp_path, capsys,
                                                                                          monkeypatch):
    """Which of two differing copies of one event is counted (same eventID and time: an export beside CloudTrail's
    own file, a re-delivery) does not depend on how the records were read: the first in the file, both ways."""
    day = tmp_path / DAY
    day.mkdir(parents=True)
    one = {"eventVersion": "1.08", "eventTime": "2026-10-24T10:00:00Z", "eventSource": "s3.amazonaws.com",
           "eventName": "ListBuckets", "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7",
           "userIdentity": {"type": "IAMUser", "accessKeyId": KEY, "arn": "arn:aws:iam::111122223333:user/bob"},
           "eventID": "00000000-0000-0000-0000-000000000001", "recipientAccountId": "111122223333"}
    copies = [dict(one, userAgent="pacu/1.0 (café)"), dict(one, userAgent="pacu/1.1")]  # the first holds \u00e9
    text = json.dumps({"Records": copies}, separators=(",", ":"))
    assert "\\u00e9" in text
    (day / "111122223333_CloudTrail_us-east-1_20261024T1005Z_aaaa.json.gz").write_bytes(gzip.compress(text.encode()))
    monkeypatch.setenv("TRAILKIT_CACHE", str(tmp_path / "cache"))
    for cache in ("--no-cache", None):
        code, out, err = run(capsys, "usage", KEY, "--logs", str(tmp_path), "--format", "json",
                             *([cache] if cache else []))
        assert code == 0, err
        assert [json.loads(line)["useragent"] for line in out.splitlines()] == [copies[0]["userAgent"]], cache


def test_a_link_to_the_whole_machine_does_not_lead_into_the_kernel_s_trees(tmp_path, monkeypatch):
    """Only a link leads a walk out of the log folder; below one, every folder is resolved, so a link to a folder
    holding one of the kernel's trees (as ``/`` holds /proc) does not walk that tree."""
    from trailkit.engines import layout

    kernel, logs = tmp_path / "kernel" / "AWSLogs", tmp_path / "logs"
    kernel.mkdir(parents=True)
    logs.mkdir()
    (kernel / "inside.json.gz").write_bytes(gzip.compress(b'{"Records":[]}'))
    (logs / "mine.json.gz").write_bytes(gzip.compress(b'{"Records":[]}'))
    os.symlink(tmp_path, logs / "everything")
    monkeypatch.setattr(layout, "_PSEUDO", (str(tmp_path / "kernel"),))
    listed = [f.path for f in layout.listing(logs, stat=False).files]
    assert listed == [str(logs / "mine.json.gz")]
