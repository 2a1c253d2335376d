"""Validation: one place rejects bad keys, times, identifiers; messages say what to do."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from trailkit.errors import InvalidInput
from trailkit.inputs import Window, access_key, identifier, instant, key_fragment, like_escape, networks

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("key", ["AKIATFQR7NSC8Q4X20BJ", "ASIA3OPSADMINTMP0001", " AKIAIOSFODNN7EXAMPLE "])
def test_good_keys(key):
    assert access_key(key) == key.strip()


@pytest.mark.parametrize("key", ["AKIA123", "akiatfqr7nsc8q4x20bj", "XXXXTFQR7NSC8Q4X20BJ", "AKIATFQR7NSC8Q4X20B!",
                                 "AKIATFQR7NSC8Q4X20BJX", "", "AKIA' OR 1=1 --     "])
def test_bad_keys_name_the_value(key):
    with pytest.raises(InvalidInput, match="is not an access key id") as e:
        access_key(key)
    assert repr(key) in str(e.value) and "--fragment" in str(e.value)


def test_fragments_and_like_escaping():
    assert key_fragment("8q4x") == "%8Q4X%"
    assert like_escape("a_b%c\\") == "a\\_b\\%c\\\\"
    for bad in ("A_B", "%", "x" * 21, ""):
        with pytest.raises(InvalidInput):
            key_fragment(bad)


def test_times():
    assert instant("2023-08-26T20:50:00Z") == datetime(2023, 8, 26, 20, 50, tzinfo=timezone.utc)
    assert instant("2023-08-26") == datetime(2023, 8, 26, tzinfo=timezone.utc)
    assert instant("2023-08-26", end=True) == datetime(2023, 8, 27, tzinfo=timezone.utc)
    assert instant("2023-08-26T22:50:00+02:00") == datetime(2023, 8, 26, 20, 50, tzinfo=timezone.utc)
    assert instant("2023-08-26T20:50:00") == datetime(2023, 8, 26, 20, 50, tzinfo=timezone.utc)  # naive is UTC
    assert instant("24h", now=NOW) == datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    assert instant("7d", now=NOW) == datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    assert instant("now", now=NOW) == NOW
    for bad in ("yesterday", "2023-13-01", "26/08/2023", "5 parsecs"):
        with pytest.raises(InvalidInput, match="not a time"):
            instant(bad)


def test_window_order():
    assert Window.parse("7d", None, now=NOW).end is None
    w = Window.parse("2026-10-24", "2026-10-24")
    assert (w.end - w.start).days == 1
    with pytest.raises(InvalidInput, match="is not before end"):
        Window.parse("2026-10-25", "2026-10-24")
    with pytest.raises(InvalidInput):
        Window.parse("2026-10-24T10:00:00Z", "2026-10-24T10:00:00Z")


def test_identifiers_and_networks():
    assert identifier("cloudtrail_logs_2026") == "cloudtrail_logs_2026"
    for bad in ("a b", "1abc", 'x"', "x;y", "", "a.b"):
        with pytest.raises(InvalidInput):
            identifier(bad)
    assert [str(n) for n in networks("203.0.113.0/24, 198.51.100.7")] == ["203.0.113.0/24", "198.51.100.7/32"]
    with pytest.raises(InvalidInput, match="CIDR"):
        networks("10.0.0.0/33")


def test_an_investigation_parses_its_inputs_once_with_one_now():
    from trailkit.investigation import Case

    case = Case.parse("AKIA3PARTNERSYNC0001", "7d", "1d", allowed="203.0.113.0/24, 2001:db8::/32", now=NOW)
    assert case.window == Window(datetime(2026, 11, 20, 12, tzinfo=timezone.utc),
                                 datetime(2026, 11, 26, 12, tzinfo=timezone.utc))
    requests = case.requests()
    assert sorted(requests) == ["ips", "minted", "owner", "usage"]
    bounds = {(r.params["start"], r.params["end"]) for r in requests.values()}
    assert bounds == {("2026-11-20T12:00:00.000Z", "2026-11-26T12:00:00.000Z")}
    assert {r.hints.key for r in requests.values()} == {"AKIA3PARTNERSYNC0001"}
    assert [case.allowed.category(a) for a in ("203.0.113.9", "2001:db8::1", "198.51.100.1", "AWS Internal")] == \
        ["allowed", "allowed", "unexpected", "aws service"]


@pytest.mark.parametrize("given, needle", [
    ({"key": "AKIA1"}, "not an access key id"),
    ({"key": "AKIA3PARTNERSYNC0001", "start": "soon"}, "not a time"),
    ({"key": "AKIA3PARTNERSYNC0001", "allowed": "10.0.0.0/99"}, "not an IP address or CIDR"),
])
def test_a_case_refuses_bad_input_before_anything_runs(given, needle):
    from trailkit.investigation import Case

    with pytest.raises(InvalidInput, match=needle):
        Case.parse(**given)


def test_engine_settings_fall_back_to_the_environment_and_refuse_nonsense(monkeypatch, tmp_path):
    from trailkit.settings import DEFAULT_LOGS, EngineSettings

    monkeypatch.delenv("TRAILKIT_LOGS", raising=False)
    assert EngineSettings().log_folder == DEFAULT_LOGS
    monkeypatch.setenv("TRAILKIT_LOGS", str(tmp_path))
    assert EngineSettings().log_folder == str(tmp_path)
    assert EngineSettings(logs="given").log_folder == "given"
    with pytest.raises(InvalidInput, match="no CloudTrail files"):
        EngineSettings().check()  # an empty folder, said without opening an engine
    for bad, needle in [({"engine": "bigquery"}, "not one of local, athena"),
                        ({"engine": "athena", "athena": {"catalog": "x"}}, "unknown Athena setting"),
                        ({"athena": {"database": "security"}}, "without --athena")]:
        with pytest.raises(InvalidInput, match=needle):
            EngineSettings(**bad)


def test_the_first_release_names_are_aliases_of_the_questions():
    from trailkit import Trail

    assert (Trail.key_usage, Trail.time_window, Trail.distinct_ips, Trail.key_owner, Trail.minted_keys) == \
        (Trail.usage, Trail.window, Trail.ips, Trail.owner, Trail.minted)
