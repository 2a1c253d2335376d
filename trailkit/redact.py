"""Reports safe to pass on: account ids, IP addresses, access key ids and the names in ARNs masked, the same
value always by the same mask, so the story still reads ("IP-2 used AKIA-KEY-1 of ACCOUNT-1, then ...").

Secrets (session tokens, passwords) are masked in every answer already (``contract.SECRET_KEYS``); this goes
further, for a report that leaves the team: ``trailkit report --redact``, the notebook's ``redact`` parameter,
``Investigation.redacted()``.
"""
from __future__ import annotations

import ipaddress
import re

from .inputs import KEY_PREFIXES

_ARN = re.compile(r"\barn:(aws[a-z-]*):([a-z0-9-]*):([a-z0-9-]*):(\d{12})?:([^\s\"',;)}\]]+)")
# access key ids (20 characters) and the other unique ids AWS writes with the same prefixes (principal ids)
_KEY = re.compile(r"\b(" + "|".join(KEY_PREFIXES) + r")[A-Z0-9]{12,24}\b(?::[\w.@+=,-]+)?")
# names inside request parameters that are identities too (the user, the role, the session)
_NAMED = re.compile(r'("(?:userName|roleName|roleSessionName|groupName|instanceProfileName)"\s*:\s*")([^"\\]+)"')
#: columns holding a bare name that also appears inside ARNs (masked alike)
NAME_COLUMNS = ("username", "rolesessionname")
_ACCOUNT = re.compile(r"(?<![\d.:-])\d{12}(?![\d.:])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


class Redactor:
    """Masks identities in text, each value by one mask for the whole report."""

    def __init__(self):
        self.masks: dict[tuple[str, str], str] = {}

    def _mask(self, kind: str, value: str, label: str) -> str:
        if (kind, value) not in self.masks:
            count = sum(1 for k, _ in self.masks if k == kind) + 1
            self.masks[(kind, value)] = f"{label}-{count}"
        return self.masks[(kind, value)]

    def text(self, value):
        """``value`` with every account id, IP, key id and ARN name masked (non-text is returned as it is)."""
        if not isinstance(value, str):
            return value
        value = _ARN.sub(self._arn, value)
        value = _NAMED.sub(lambda m: m.group(1) + self._mask("name", m.group(2), "NAME") + '"', value)
        value = _KEY.sub(lambda m: self._mask("key", m.group(), m.group(1) + (
            "-KEY" if len(m.group()) == 20 and m.group(1) in ("AKIA", "ASIA") else "-ID")), value)
        value = _ACCOUNT.sub(lambda m: self._mask("account", m.group(), "ACCOUNT"), value)
        value = _IPV4.sub(lambda m: self._address(m.group()), value)
        return _IPV6.sub(lambda m: self._address(m.group()), value)

    def known(self, value):
        """``value`` with every name masked elsewhere in the report (a user, a role, a session) masked alike where it
        stands alone (a finding's sentence lists the users it created by name)."""
        if not isinstance(value, str):
            return value
        names = sorted((v for k, v in self.masks if k == "name" and len(v) >= 3), key=len, reverse=True)
        if not names:
            return value
        alone = re.compile(r"(?<![\w.@+=,/-])(" + "|".join(map(re.escape, names)) + r")(?![\w.@+=,/-])")
        return alone.sub(lambda m: self.masks[("name", m.group(1))], value)

    def _arn(self, m) -> str:
        partition, service, region, account, resource = m.groups()
        kind, sep, name = resource.partition("/") if "/" in resource else ("", "", resource)
        # each name of the path alone (role, then session), so each matches its own column's mask
        masked = kind + sep + "/".join(self._mask("name", part, "NAME") for part in name.split("/")) if name \
            else resource
        account = self._mask("account", account, "ACCOUNT") if account else ""
        return f"arn:{partition}:{service}:{region}:{account}:{masked}"

    def _address(self, text: str) -> str:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            return text
        return self._mask("ip", text, "IP")

    def frame(self, df):
        """A copy of ``df`` with every text cell masked."""
        out = df.copy()
        for col in out.columns:
            if out[col].dtype == "string" or out[col].dtype == object:
                mask = (lambda v: self._mask("name", v, "NAME")) if col in NAME_COLUMNS else self.text
                out[col] = out[col].map(mask, na_action="ignore").astype(out[col].dtype)
        return out
