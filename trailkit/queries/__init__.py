"""The questions' SQL, authored once in Athena SQL (Trino dialect), each beside its column contract.

Each ``<name>.sql`` file beside this module holds one query with named placeholders (``:key``), a header line
``-- columns: name:kind ...`` declaring the result contract (see ``trailkit.contract``), and optional lines
tagged ``-- if: PARAM`` that are kept only when PARAM is given. A line ``{partitions}`` is where an engine with
partitions (Athena) bounds them; other engines drop it. Values are never formatted into the text: they travel as bound
parameters to the engine.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from ..contract import FREE, Contract
from ..errors import TrailkitError

_TAG_RE = re.compile(r"\s*--\s*if:\s*(\w+)\s*$")


@dataclass(frozen=True)
class Query:
    """One question: its authored SQL and the contract its answer keeps (``FREE`` for free SQL)."""

    name: str
    text: str
    contract: Contract

    @classmethod
    def free(cls, text: str) -> "Query":
        """Free SQL (``trailkit sql``): sent as written, its columns whatever it selects."""
        return cls("sql", text.strip().rstrip(";") + "\n", FREE)

    def render(self, params: dict, partitions: str = "") -> tuple[str, dict]:
        """SQL with the tagged lines of absent parameters removed, and the parameters it uses.

        Args:
            params: values by placeholder name; ``None`` (or an empty list) means absent. A list or tuple binds
                one placeholder per item (``IN (:accounts)`` becomes ``IN (:accounts_0, :accounts_1)``).
            partitions: predicates on the table's partition columns (``AND "date" BETWEEN ...``) put where the
                query says ``{partitions}``; empty on engines without partitions.
        """
        if self.contract.free:
            return self.text, dict(params)
        given = {k: v for k, v in params.items() if v is not None and v != () and v != []}
        lines = []
        for line in self.text.splitlines():
            tag = _TAG_RE.search(line)
            if tag:
                if tag.group(1) not in given:
                    continue
                line = line[: tag.start()].rstrip()
            if "{partitions}" in line:
                if not partitions:
                    continue
                line = line.replace("{partitions}", partitions)
            lines.append(line)
        sql = "\n".join(l for l in lines if not l.lstrip().startswith("--")).strip() + "\n"
        used = {}
        for k, v in given.items():
            if not re.search(rf":{k}\b", sql):
                continue
            if isinstance(v, (list, tuple)):
                names = [f"{k}_{i}" for i in range(len(v))]
                sql = re.sub(rf":{k}\b", ", ".join(":" + n for n in names), sql)
                used.update(zip(names, v))
            else:
                used[k] = v
        return sql, used


def _parse(name: str, text: str) -> Query:
    header, seen = [], False
    for line in text.splitlines():
        if line.startswith("-- columns:"):
            seen = True
            header.append(line.removeprefix("-- columns:"))
        elif seen and line.startswith("--  "):
            header.append(line.removeprefix("--"))
        elif seen:
            break
    try:
        contract = Contract.of(dict(item.split(":") for item in " ".join(header).split()))
    except ValueError as e:
        raise TrailkitError(f"{name}.sql: bad or missing '-- columns:' header ({e})") from None
    return Query(name, text, contract)


@cache
def get(name: str) -> Query:
    """The query named ``name`` (the .sql file's stem)."""
    from importlib import resources  # here, not at start-up: it brings tempfile and more (~6 ms)

    try:
        text = resources.files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TrailkitError(f"no query named {name!r}; known: {', '.join(names())}") from None
    return _parse(name, text)


def names() -> list[str]:
    from importlib import resources

    return sorted(p.name[:-4] for p in resources.files(__package__).iterdir() if p.name.endswith(".sql"))
