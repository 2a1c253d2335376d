"""Where trailkit keeps its own files: the local engine's caches and the store of transpiled SQL."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$TRAILKIT_CACHE``, else ``$XDG_CACHE_HOME/trailkit``, else ``~/.cache/trailkit``."""
    base = os.environ.get("TRAILKIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "trailkit")
    return Path(base)
