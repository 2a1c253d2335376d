"""The questions' SQL, authored once in Athena SQL (Trino dialect), and their column contracts.

Each ``<name>.sql`` file beside this module holds one query with named placeholders (``:key``), a header line
``-- columns: name:kind ...`` declaring the result contract (kind is ``time``, ``int`` or ``string``), and
optional lines tagged ``-- if: PARAM`` that are kept only when PARAM is given. ``{partition}`` stands for the
Athena partition column and only appears on such a tagged line. Values are never formatted into the text:
they travel as bound parameters to the engine.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from ..errors import TrailkitError

if TYPE_CHECKING:
    import pandas as pd


_TAG_RE = re.compile(r"\s*--\s*if:\s*(\w+)\s*$")
_KINDS = ("time", "int", "string")


@dataclass(frozen=True)
class Query:
    """One question: its authored SQL and the columns (name → kind) its result always has."""

    name: str
    text: str
    columns: dict

    def render(self, params: dict, partition: str | None = None) -> tuple[str, dict]:
        """SQL with the tagged lines of absent parameters removed, and the parameters it uses.

        Args:
            params: values by placeholder name; ``None`` means absent.
            partition: the quoted partition column, required when ``partition_start`` is given.
        """
        given = {k: v for k, v in params.items() if v is not None}
        lines = []
        for line in self.text.splitlines():
            tag = _TAG_RE.search(line)
            if tag:
                if tag.group(1) not in given:
                    continue
                line = line[: tag.start()].rstrip()
            if "{partition}" in line:
                if partition is None:
                    raise TrailkitError(f"query {self.name}: a partition predicate needs the partition column")
                line = line.replace("{partition}", partition)
            lines.append(line)
        sql = "\n".join(l for l in lines if not l.lstrip().startswith("--")).strip() + "\n"
        used = {k: v for k, v in given.items() if re.search(rf":{k}\b", sql)}
        return sql, used

    def conform(self, df: pd.DataFrame) -> pd.DataFrame:
        """Apply the column contract: declared order, UTC datetimes, nullable ints, string dtype."""
        return conform(df, self.columns)


def conform(df: pd.DataFrame, columns: dict) -> pd.DataFrame:
    """Give ``df`` exactly ``columns`` (name → kind) with one dtype per kind, whichever engine made it."""
    import pandas as pd

    out = {}
    for name, kind in columns.items():
        values = df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index, dtype="object")
        out[name] = _convert(values, kind)
    return pd.DataFrame(out, index=pd.RangeIndex(len(df)))


def _convert(values: pd.Series, kind: str) -> pd.Series:
    import pandas as pd

    values = values.reset_index(drop=True)
    if kind == "time":
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            return values.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
        return pd.to_datetime(values.astype("string"), utc=True, format="ISO8601").astype("datetime64[us, UTC]")
    if kind == "int":
        return pd.to_numeric(values).astype("Int64")
    text = values.astype("string")
    # Athena's CSV results cannot tell NULL from '', and neither is worth telling apart to an investigator.
    return text.mask(text == "", pd.NA)


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
    columns = dict(item.split(":") for item in " ".join(header).split())
    bad = {k: v for k, v in columns.items() if v not in _KINDS}
    if not columns or bad:
        raise TrailkitError(f"{name}.sql: bad or missing '-- columns:' header ({bad or 'none'})")
    return Query(name, text, columns)


@cache
def get(name: str) -> Query:
    """The query named ``name`` (the .sql file's stem)."""
    try:
        text = resources.files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TrailkitError(f"no query named {name!r}; known: {', '.join(names())}") from None
    return _parse(name, text)


def names() -> list[str]:
    return sorted(p.name[:-4] for p in resources.files(__package__).iterdir() if p.name.endswith(".sql"))
