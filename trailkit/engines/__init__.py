"""Engines run the authored Athena SQL: ``local`` (DuckDB over files, the default) and ``athena`` (pyathena)."""
from .base import Engine, QueryStats, ScanHints

__all__ = ["Engine", "QueryStats", "ScanHints"]
