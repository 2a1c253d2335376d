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
    import pyarrow as pa


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

    def conform(self, table: pa.Table) -> pa.Table:
        """Apply the column contract: declared order, UTC timestamps, integers, text with '' as NULL."""
        return conform(table, self.columns)


_TYPES = {"time": "timestamp[us, tz=UTC]", "int": "int64", "string": "string"}


def conform(table: pa.Table, columns: dict) -> pa.Table:
    """Give ``table`` exactly ``columns`` (name → kind) with one Arrow type per kind, whichever engine made it.

    This is the one place the contract is applied: the API turns the result into pandas with ``to_frame``,
    the CLI prints it as it is.
    """
    import pyarrow as pa

    arrays = []
    for name, kind in columns.items():
        values = table.column(name) if name in table.column_names else pa.nulls(table.num_rows)
        arrays.append(_convert(values, kind))
    return pa.Table.from_arrays(arrays, names=list(columns))  # (pa.table() would import pandas to sniff)


def _convert(values, kind: str):
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind == "time":
        if pa.types.is_timestamp(values.type):
            return values.cast(pa.timestamp("us", tz="UTC"))
        return values.cast(pa.string()).cast(pa.timestamp("us", tz="UTC"))  # ISO 8601, offsets honoured
    if kind == "int":
        return values.cast(pa.int64())  # whole numbers only: a fraction is an error, not a rounding
    text = values.cast(pa.string())
    # Athena's CSV results cannot tell NULL from '', and neither is worth telling apart to an investigator.
    # (Built from arrays only: turning a Python value into an Arrow scalar makes pyarrow import pandas.)
    empty = pc.invert(pc.cast(pc.utf8_length(text), pa.bool_()))
    return pc.if_else(empty, pa.nulls(len(text), pa.string()), text)


def printable(table: pa.Table) -> list[tuple]:
    """A (conformed) Arrow result as rows of Python values for printing; timestamps as ISO 8601 text in UTC
    with a Z (whole seconds, as CloudTrail writes them)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for col in table.columns:
        if pa.types.is_timestamp(col.type):
            # to UTC first: the Z written after it must be true whatever zone the engine returned
            seconds = pc.floor_temporal(col, unit="second").cast(pa.timestamp("s", tz="UTC"))
            col = pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%SZ")
        columns.append(col.to_pylist())
    return list(zip(*columns)) if columns else []


def to_frame(table: pa.Table) -> pd.DataFrame:
    """A result as pandas: timestamps as datetime64[us, UTC], integers as Int64, text as the string dtype."""
    import pandas as pd
    import pyarrow as pa

    mapping = {pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype(), pa.int64(): pd.Int64Dtype(),
               pa.int32(): pd.Int64Dtype()}
    return table.to_pandas(types_mapper=mapping.get)


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
