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
