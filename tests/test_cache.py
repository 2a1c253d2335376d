"""The local engine's cache and fast scan give exactly the plain engine's answers, and follow the files."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import warnings

import pandas as pd
import pytest

from trailkit import Trail
from trailkit.cli import main
from trailkit.engines.cache import cache_path
from trailkit.engines.local import LocalEngine

KEY = "AKIA3PARTNERSYNC0001"
QUESTIONS = {
    "usage": lambda t: t.usage(KEY),
    "usage_window": lambda t: t.usage(KEY, start="2026-10-24", end="2026-10-24"),
    "ips": lambda t: t.ips(KEY),
    "owner": lambda t: t.owner(KEY),
    "minted": lambda t: t.minted(KEY),
    "window": lambda t: t.window("2026-10-23", "2026-10-24"),
    "window_key": lambda t: t.window("2026-10-23", "2026-10-24", key="ASIA3OPSADMINTMP0001"),
}


def trail(folder, cache_dir=None, **kw) -> Trail:
    return Trail(LocalEngine(folder, cache_dir=cache_dir, **kw))


@pytest.mark.parametrize("question", sorted(QUESTIONS))
def test_cold_warm_uncached_and_plain_engine_agree(sample, tmp_path, question):
    ask = QUESTIONS[question]
    with trail(sample, cache=False, fast_scan=False) as plain:
        want = ask(plain)
    with trail(sample, cache=False) as scanned:
        pd.testing.assert_frame_equal(ask(scanned), want)
    with trail(sample, tmp_path) as cached:
        pd.testing.assert_frame_equal(ask(cached), want)  # builds
        pd.testing.assert_frame_equal(ask(cached), want)  # warm
        assert cached.last.files == 0
    with trail(sample, tmp_path) as again:  # a new process, same cache
        pd.testing.assert_frame_equal(ask(again), want)
        assert again.last.files == 0
    assert len(want) > 0


def _partner_records(folder):
    out = []
    for path in sorted(folder.rglob("*.json.gz")):
        if "Digest" in str(path):
            continue
        out += [r for r in json.loads(gzip.decompress(path.read_bytes()))["Records"]
                if r["userIdentity"].get("accessKeyId") == KEY]
    return out


def test_new_changed_and_removed_files_are_followed(logs_copy, tmp_path):
    day = logs_copy / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "2026" / "10" / "30"
    with trail(logs_copy, tmp_path) as t:
        before = t.ips(KEY)
        window_before = len(t.window("2026-10-29", "2026-10-30"))
        # a new file with two new events from a new IP
        template = _partner_records(logs_copy)[0]
        new = [dict(template, eventID=f"new-{i}", eventTime=f"2026-10-30T01:0{i}:00Z", sourceIPAddress="192.0.2.99")
               for i in range(2)]
        day.mkdir(parents=True)
        (day / "late.json.gz").write_bytes(gzip.compress(json.dumps({"Records": new}).encode()))
        after = t.ips(KEY)
        assert dict(zip(after.sourceipaddress, after.events))["192.0.2.99"] == 2
        assert t.last.files == 1  # only the new file was read
        assert len(t.window("2026-10-29", "2026-10-30")) == window_before + 2
        # the same file changed: now three events
        new.append(dict(template, eventID="new-9", eventTime="2026-10-30T02:00:00Z", sourceIPAddress="192.0.2.99"))
        (day / "late.json.gz").write_bytes(gzip.compress(json.dumps({"Records": new}).encode()))
        os.utime(day / "late.json.gz", ns=(1, 1))
        assert dict(zip(*[t.ips(KEY)[c] for c in ("sourceipaddress", "events")]))["192.0.2.99"] == 3
        # removed again: back to the start
        shutil.rmtree(day)
        pd.testing.assert_frame_equal(t.ips(KEY), before)
        assert len(t.window("2026-10-29", "2026-10-30")) == window_before


def test_corrupted_cache_is_rebuilt_not_trusted(sample, tmp_path):
    with trail(sample, tmp_path) as t:
        want = t.ips(KEY)
    path = cache_path(sample, tmp_path)
    path.write_bytes(b"this is not a database" * 100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with trail(sample, tmp_path) as t:
            pd.testing.assert_frame_equal(t.ips(KEY), want)
            assert t.last.files > 0  # rebuilt from the logs
    assert any("rebuilding" in str(w.message) for w in caught)


def test_cache_command_shows_and_clears(capsys, sample, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAILKIT_CACHE", str(tmp_path))
    assert main(["cache", "--logs", str(sample)]) == 0
    assert "no cache" in capsys.readouterr().out
    assert main(["ips", KEY, "--logs", str(sample), "--format", "csv"]) == 0
    capsys.readouterr()
    assert main(["cache", "--logs", str(sample)]) == 0
    out = capsys.readouterr().out
    assert f"key {KEY}: " in out and str(tmp_path) in out
    assert main(["ips", KEY, "--logs", str(sample), "--no-cache", "--format", "csv"]) == 0
    assert main(["cache", "--clear", "--logs", str(sample)]) == 0
    assert "removed 1" in capsys.readouterr().out.splitlines()[-1]
    assert not cache_path(sample, tmp_path).exists()


def test_no_cache_writes_nothing(sample, tmp_path):
    with trail(sample, tmp_path, cache=False) as t:
        t.ips(KEY)
        t.window("2026-10-23", "2026-10-24")
    assert not any(tmp_path.iterdir())


def test_scan_finds_records_in_jsonl_and_unusual_files(tmp_path, sample):
    recs = _partner_records(sample)[:9]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs[:3]))
    # one JSON-lines file in two gzip members, as Firehose writes them: the second member must not be missed
    members = [gzip.compress("".join(json.dumps(r) + "\n" for r in part).encode()) for part in (recs[6:8], recs[8:])]
    (tmp_path / "firehose.jsonl.gz").write_bytes(b"".join(members))
    # records whose first key is not eventVersion: the scan falls back to the whole file
    odd = [{k: r[k] for k in reversed(list(r))} for r in recs[3:6]]
    (tmp_path / "b.json").write_text(json.dumps({"Records": odd}))
    with trail(tmp_path, cache=False) as t:
        got = t.usage(KEY)
    assert sorted(got["eventid"]) == sorted(r["eventID"] for r in recs)


def test_a_window_question_reads_only_its_days_and_keeps_the_rest(sample, tmp_path):
    with trail(sample, tmp_path) as t:
        full = t.usage(KEY)
        t.window("2026-10-01", "2026-10-28")
    with trail(sample, tmp_path) as t:
        t.usage(KEY, start="2026-10-24", end="2026-10-24")
        assert t.last.files == 0
        t.window("2026-10-24", "2026-10-24")
        assert t.last.files == 0
        pd.testing.assert_frame_equal(t.usage(KEY), full)  # nothing outside the window was dropped
        assert t.last.files == 0


@pytest.mark.parametrize("simd", [True, False], ids=["stringzilla", "libc memmem"])
def test_the_key_search_finds_the_key_anywhere(monkeypatch, simd):
    from trailkit.engines import scan

    if not simd:
        monkeypatch.setitem(sys.modules, "stringzilla", None)  # import fails: the fallback
    contains = scan._finder()
    key = KEY.encode()
    filler = b'{"eventVersion":"1.08","x":"AKIA3PARTNERSYNC000"}' * 20_000  # a near miss, ~1 MB
    for data, expected in [(key + filler, True), (filler + key, True), (filler[:5000] + key + filler, True),
                           (filler, False), (b"", False), (key[:-1], False)]:
        assert contains(data, key) is expected


@pytest.mark.parametrize("libdeflate", [True, False], ids=["libdeflate", "ISA-L"])
def test_the_inflater_reads_every_member_and_refuses_damage(monkeypatch, libdeflate):
    from trailkit.engines import inflate

    if not libdeflate:
        monkeypatch.setitem(sys.modules, "deflate", None)
    gunzip = inflate.inflater()
    one, two = b'{"Records":[]}' * 500, b"\n".join([b'{"eventVersion":"1.08"}'] * 50)
    assert gunzip(gzip.compress(one)) == one
    assert gunzip(gzip.compress(one) + gzip.compress(two)) == one + two  # Firehose: several members
    assert gunzip(gzip.compress(two) + gzip.compress(one)) == two + one
    damaged = bytearray(gzip.compress(one))
    damaged[-8] ^= 1  # the CRC no longer matches
    for bad in (bytes(damaged), gzip.compress(one)[:-6], gzip.compress(one) + b"junk", b"\x00" * 100):
        with pytest.raises(inflate.CorruptGzip, match="not a readable gzip file"):  # a reason to name it with
            gunzip(bad)


def _count_walks(monkeypatch) -> list:
    from trailkit.engines import layout

    calls, walk = [], layout._walk
    monkeypatch.setattr(layout, "_walk", lambda path, rel, *a: (calls.append(path) if rel == "" else None,
                                                               walk(path, rel, *a))[1])
    return calls


def test_an_unchanged_watched_folder_is_not_listed_again(monkeypatch, logs_copy, tmp_path):
    walks = _count_walks(monkeypatch)
    with trail(logs_copy, tmp_path) as t:
        first = t.ips(KEY)
        window = t.window("2026-10-23", "2026-10-24")
        assert len(walks) == 1  # one listing, kept: nothing changed
        pd.testing.assert_frame_equal(t.ips(KEY), first)
        assert len(walks) == 1 and t.last.files == 0
        # a new file: the watch reports it, the folder is listed again and the file read
        day = logs_copy / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "2026" / "10" / "23"
        record = dict(_partner_records(logs_copy)[0], eventID="watched-1", eventTime="2026-10-23T05:00:00Z")
        (day / "watched.json.gz").write_bytes(gzip.compress(json.dumps({"Records": [record]}).encode()))
        assert len(t.window("2026-10-23", "2026-10-24")) == len(window) + 1
        assert len(walks) == 2 and t.last.files == 1
        # touched (same bytes, new time): listed again, read again, same answer
        os.utime(day / "watched.json.gz", ns=(10**18, 10**18))
        assert len(t.window("2026-10-23", "2026-10-24")) == len(window) + 1
        assert len(walks) == 3 and t.last.files == 1


@pytest.mark.parametrize("why", ["network filesystem", "watch limit reached", "command line"])
def test_without_a_trustworthy_watch_every_question_lists_again(monkeypatch, logs_copy, tmp_path, why):
    from trailkit.engines import watch

    if why == "network filesystem":
        monkeypatch.setattr(watch, "filesystem_type", lambda path: "nfs4")
    elif why == "watch limit reached":
        def full(self, directory):
            self.broken = True  # what add() does when the kernel refuses a watch (ENOSPC)
        monkeypatch.setattr(watch.FolderWatch, "add", full)
    walks = _count_walks(monkeypatch)
    with trail(logs_copy, tmp_path, watch=why != "command line") as t:
        for _ in range(3):
            t.ips(KEY)
    assert len(walks) == 3


def test_the_filesystem_type_is_found_for_any_path(tmp_path):
    from trailkit.engines.watch import filesystem_type

    assert filesystem_type("/proc/self") == "proc"
    assert filesystem_type(str(tmp_path / "not" / "yet")) == filesystem_type(str(tmp_path))
    assert filesystem_type(str(tmp_path)) is not None


# Run in a fresh interpreter: pytest's own process has threads, where forking is (rightly) refused.
_FORKED = r"""
import gzip, json, sys
from trailkit.engines.layout import listing
from trailkit.engines.scan import ForkedScan, scan
from trailkit.inputs import Window

root, key, child_root = sys.argv[1], sys.argv[2], sys.argv[3]
# the child scans from 2026-10-24 on; the engine wants every file but one the child scanned
child = ForkedScan.start(child_root, Window.parse("2026-10-24", None), key)
if len(sys.argv) > 4:  # the child dies before answering
    import os, signal
    os.kill(child.pid, signal.SIGKILL)
files = listing(root).files
late = [f for f in files if f.day and f.day.isoformat() >= "2026-10-24"
        and key.encode() in gzip.decompress(open(f.path, "rb").read())]
wanted = [f for f in files if f != late[0]]
got = child.result(wanted, key) if child else None
plain = scan(wanted, key)
docs = lambda r: sorted(json.loads(d)["eventID"] for _, d in r.documents)
print(json.dumps({"excluded": late[0].path, "forked": child is not None, "result": got is not None,
                  "same": got is not None and docs(got) == docs(plain)
                          and sorted(f.path for f in got.whole_files) == sorted(f.path for f in plain.whole_files)
                          and sorted(got.unreadable) == sorted(plain.unreadable),
                  "events": len(docs(plain)), "early": any(f.day.isoformat() < "2026-10-24" for f in wanted if f.day)}))
"""


def test_a_forked_scan_gives_the_scan_s_answer_and_a_failed_one_gives_way(sample, tmp_path):
    def run(child_root, *kill):
        proc = subprocess.run([sys.executable, "-c", _FORKED, str(sample), KEY, str(child_root), *kill],
                              capture_output=True, text=True, check=True,
                              env={**os.environ, "TRAILKIT_CACHE": str(tmp_path)})
        return json.loads(proc.stdout)

    got = run(sample)  # files before the child's window are scanned by result(), the unwanted one dropped
    # every record whose text holds the key, in every file but the one the engine did not want
    want = sum(KEY in json.dumps(r) for path in sample.rglob("*.json.gz") if "Digest" not in str(path)
               and str(path) != got["excluded"] for r in json.loads(gzip.decompress(path.read_bytes()))["Records"])
    assert got == {"excluded": got["excluded"], "forked": True, "result": True, "same": True, "events": want,
                   "early": True}
    assert want > 0
    # the child fails (its folder is missing) or dies: no result, and the engine scans itself
    assert run(tmp_path / "missing")["result"] is False
    assert run(sample, "kill")["result"] is False


def test_the_command_line_answers_the_same_with_its_forked_scan(capsys, sample, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAILKIT_CACHE", str(tmp_path))
    # a fresh interpreter, as from the shell; it says on stderr whether its scan ran in a child
    code = ("import sys; from trailkit.engines import scan; start = scan.ForkedScan.start; forked = []\n"
            "scan.ForkedScan.start = lambda *a, **k: forked.append(start(*a, **k)) or forked[-1]\n"
            "from trailkit.cli import main; main(sys.argv[1:]); print(bool(forked and forked[0]), file=sys.stderr)")

    def cli(*args):
        argv = ["ips", KEY, "--logs", str(sample), "--format", "csv", *args]
        proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True)
        return proc.stdout, proc.stderr.split()[-1]

    assert main(["ips", KEY, "--logs", str(sample), "--format", "csv", "--no-cache"]) == 0
    in_process = capsys.readouterr().out
    assert cli("--no-cache") == (in_process, "True")
    assert cli() == (in_process, "True")  # no cache yet: forked, and the cache is built from its records
    assert cli() == (in_process, "False")  # the cache answers alone
    assert "203.0.113." in in_process


def test_the_forked_scan_names_an_unreadable_file(logs_copy, tmp_path):
    bad = logs_copy / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "2026" / "10" / "05" / "x.json.gz"
    bad.write_bytes(b"\x1f\x8b garbage")
    proc = subprocess.run([sys.executable, "-m", "trailkit", "ips", KEY, "--logs", str(logs_copy), "--no-cache",
                           "--format", "csv"], capture_output=True, text=True,
                          env={**os.environ, "TRAILKIT_CACHE": str(tmp_path)})
    assert proc.returncode == 0 and "203.0.113.10" in proc.stdout
    warnings_ = [line for line in proc.stderr.splitlines() if "skipped unreadable file" in line]
    assert len(warnings_) == 1 and "x.json.gz" in warnings_[0]


def _files_using(folder, key) -> set:
    """The log files whose records are made with ``key``, by plain gzip and json."""
    out = set()
    for path in folder.rglob("*.json.gz"):
        if "Digest" in str(path):
            continue
        if any(r["userIdentity"].get("accessKeyId") == key for r in json.loads(gzip.decompress(path.read_bytes()))["Records"]):
            out.add(str(path))
    return out


def test_after_one_question_another_key_reads_only_the_files_that_use_it(logs_copy, tmp_path, records):
    """The first scan notes each file's key ids; a key never asked before then reads only its own files, with
    files changed since, and files the index cannot vouch for (JSON escapes, exports), read anyway."""
    other = "ASIA3OPSADMINTMP0001"
    day = logs_copy / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "2026" / "10" / "24"
    escaped = json.dumps({"Records": [dict(records(logs_copy)[0], eventID="esc-1",
                                           userIdentity={"type": "AssumedRole", "accessKeyId": other})]})
    (day / "escaped.json.gz").write_bytes(gzip.compress(escaped.replace(f'"{other}"', '"\\u0041' + other[1:] + '"').encode()))
    (logs_copy / "export.jsonl").write_text(json.dumps(dict(records(logs_copy)[0], eventID="exp-1",
                                                             userIdentity={"accessKeyId": other})) + "\n")
    with Trail(LocalEngine(logs_copy, cache_dir=tmp_path / "c")) as trail:
        trail.ips(KEY)  # reads every file once, and notes their keys
        first = trail.last.files
        using = _files_using(logs_copy, other) | {str(day / "escaped.json.gz"), str(logs_copy / "export.jsonl")}
        got = trail.usage(other)
        assert trail.last.files == len(using) < first  # only the files that use it, and those not indexable
    want = {r["eventID"] for r in records(logs_copy) if r["userIdentity"].get("accessKeyId") == other}
    assert set(got["eventid"]) == want | {"esc-1", "exp-1"}
    # a file changed after it was indexed is read again
    (day / "late.json.gz").write_bytes(gzip.compress(json.dumps({"Records": [dict(records(logs_copy)[0], eventID="late-1",
                                                              userIdentity={"accessKeyId": "AKIALATEARRIVAL00001"})]}).encode()))
    with Trail(LocalEngine(logs_copy, cache_dir=tmp_path / "c")) as trail:
        assert list(trail.usage("AKIALATEARRIVAL00001")["eventid"]) == ["late-1"]


@pytest.mark.parametrize("shape", ["tab", "text"])
def test_files_the_index_cannot_vouch_for_are_always_read(tmp_path, records, sample, shape):
    """A key written with a tab after its colon, or records kept as text inside others: never indexed as absent."""
    first, second = "AKIAINDEXFIRST000001", "AKIAINDEXSECOND00002"
    base = records(sample)[0]
    recs = [dict(base, eventID=f"ix-{k}", userIdentity={"type": "IAMUser", "accessKeyId": k}) for k in (first, second)]
    if shape == "tab":
        text = json.dumps({"Records": recs}, separators=(",", ":")).replace(f'"accessKeyId":"{second}"',
                                                                             f'"accessKeyId":\t"{second}"')
    else:
        text = json.dumps({"Records": [{"CloudTrailEvent": json.dumps(r)} for r in recs]})
    day = tmp_path / "logs" / "AWSLogs" / "111122223333" / "CloudTrail" / "us-east-1" / "2026" / "10" / "24"
    day.mkdir(parents=True)
    (day / "odd.json.gz").write_bytes(gzip.compress(text.encode()))
    with Trail(LocalEngine(tmp_path / "logs", cache_dir=tmp_path / "c")) as trail:
        assert list(trail.usage(first)["eventid"]) == ["ix-" + first]
        assert list(trail.usage(second)["eventid"]) == ["ix-" + second]
