"""Which engine to open, from what the user gave: the one place the CLI, the widgets, the notebook and the
report turn settings into an engine.

Local: ``logs``, else ``$TRAILKIT_LOGS``, else ``data/sample``. Athena: each setting from the value given, else
its ``TRAILKIT_*`` variable, else AWS's own configuration chain (see ``AthenaConfig.resolve``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import InvalidInput
from .inputs import Scope

if TYPE_CHECKING:
    from .engines.base import Engine

DEFAULT_LOGS = "data/sample"
ENGINES = ("local", "athena")
#: the Athena settings, as ``AthenaConfig`` names them (and the panel and notebook parameters do)
ATHENA_FIELDS = ("database", "table", "workgroup", "output_location", "region", "profile", "partition_column",
                 "all_time", "max_scan", "timeout", "reuse_minutes")


@dataclass(frozen=True)
class EngineSettings:
    """Where the logs are and how to read them.

    Args:
        engine: ``local`` (files on disk) or ``athena``.
        logs: the local log folder (default ``$TRAILKIT_LOGS``, else ``data/sample``).
        cache: local: keep what questions read in the folder's cache.
        watch: local: keep the folder's listing between questions while inotify reports no change.
        athena: Athena settings by ``ATHENA_FIELDS`` name; empty values fall back to the environment.
        accounts, regions: keep every question to these accounts and regions (comma-separated text or a
            list; empty: all). Both engines filter the events; Athena also bounds its partitions.
    """

    engine: str = "local"
    logs: str | os.PathLike | None = None
    cache: bool = True
    watch: bool = True
    athena: dict = field(default_factory=dict)
    accounts: object = None
    regions: object = None

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise InvalidInput(f"engine {self.engine!r} is not one of {', '.join(ENGINES)}")
        unknown = sorted(set(self.athena) - set(ATHENA_FIELDS))
        if unknown:
            raise InvalidInput(f"unknown Athena setting(s) {', '.join(unknown)}; known: {', '.join(ATHENA_FIELDS)}")
        self.scope  # checked now: a bad account id is bad input before anything opens
        if self.engine == "local" and any(v not in (None, "", False) for v in self.athena.values()):
            raise InvalidInput("Athena options were given without --athena; add --athena, or drop them to query local files")

    @property
    def log_folder(self) -> str:
        """The local folder, with the environment fallbacks applied."""
        return os.fspath(self.logs or os.environ.get("TRAILKIT_LOGS") or DEFAULT_LOGS)

    @property
    def athena_given(self) -> dict:
        """The Athena settings that were given (empty ones left to the environment)."""
        return {k: v for k, v in self.athena.items() if v not in (None, "", False)}

    @property
    def scope(self) -> Scope:
        """The accounts and regions every question is kept to."""
        return Scope.parse(self.accounts, self.regions)

    def check(self) -> None:
        """Raise InvalidInput now if the engine cannot be opened (a missing or empty folder, a bad Athena
        identifier or location), without reading any log file."""
        if self.engine == "local":
            from .engines.layout import require_log_files

            require_log_files(self.log_folder)
        else:
            from .engines.athena import AthenaConfig

            AthenaConfig.resolve(**self.athena_given)

    def open(self) -> Engine:
        if self.engine == "athena":
            from .engines.athena import AthenaConfig, AthenaEngine

            return AthenaEngine(AthenaConfig.resolve(**self.athena_given))
        from .engines.local import LocalEngine

        return LocalEngine(self.log_folder, cache=self.cache, watch=self.watch)
