"""Engines answer requests written in Athena SQL: ``local`` (DuckDB over files, the default) and ``athena``
(pyathena). ``trailkit.settings`` opens the right one from a user's settings."""
from .base import Engine, QueryStats

__all__ = ["Engine", "QueryStats"]

#: Set by the ``trailkit`` command, whose process ends at once (``os._exit``) when the command is done: an engine
#: then leaves what only memory holds to that end, in ``left_open`` (closing DuckDB's in-memory database costs
#: ~5 ms, to free what the process's end frees anyway; one that spilled to disk is closed, which removes its
#: files). Library users leave it False.
process_ends = False
left_open: list = []
