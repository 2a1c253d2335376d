"""One exception root for everything trailkit raises on purpose.

Messages are one line and say what to do next; they never carry credentials or frame locals.
"""
from __future__ import annotations


class TrailkitError(Exception):
    """Root of every error trailkit raises on purpose."""


class InvalidInput(TrailkitError, ValueError):
    """A value the user gave (key, time, identifier, folder) cannot be used as it is."""


class MissingDependency(TrailkitError, ImportError):
    """An optional package is needed for this feature and is not installed."""


class SkippedFile(UserWarning):
    """A log file could not be read and was left out of the answer (its path is in the message)."""


class ReadAs(UserWarning):
    """A file's records were read from an export's layout, or in part: the message says which and how."""


class Notice(UserWarning):
    """How a question was run, worth knowing (a scan that could not be estimated, results not reused)."""


class QueryFailed(TrailkitError):
    """A query did not complete. Carries the engine, the query id (Athena) and the SQL sent."""

    def __init__(self, message: str, *, engine: str, sql: str, query_id: str | None = None,
                 state: str | None = None):
        super().__init__(message)
        self.engine = engine
        self.sql = sql
        self.query_id = query_id
        self.state = state


def aws_error(e: Exception) -> dict:
    """The error an AWS service answered (botocore's parsed ``Code`` and ``Message``), or {} for an exception
    that is not a service's answer (no credentials, no network)."""
    response = getattr(e, "response", None)
    return response.get("Error", {}) if isinstance(response, dict) else {}


def require(module: str, extra: str = "trailkit"):
    """Import an optional heavy module, or say what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - exercised only on incomplete installs
        raise MissingDependency(
            f"{module} is needed for this feature; install it with: pip install '{extra}'"
        ) from e
