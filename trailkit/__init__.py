"""trailkit: where, when, by whom and for what an AWS access key was used, from CloudTrail logs.

>>> from trailkit import Trail
>>> trail = Trail.local("data/sample")                 # or Trail.athena(database=..., table=...)
>>> trail.distinct_ips("AKIA...", start="7d")          # doctest: +SKIP
"""
from .errors import InvalidInput, QueryFailed, TrailkitError
from .inputs import Window
from .investigate import Trail
from .questions import classify_ips
from .settings import EngineSettings

__version__ = "0.1.0"

__all__ = ["Trail", "EngineSettings", "Window", "classify_ips", "TrailkitError", "InvalidInput", "QueryFailed", "__version__"]
