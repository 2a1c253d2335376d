"""Engines answer requests written in Athena SQL: ``local`` (DuckDB over files, the default) and ``athena``
(pyathena). ``trailkit.settings`` opens the right one from a user's settings."""
from .base import Engine, QueryStats

__all__ = ["Engine", "QueryStats"]
