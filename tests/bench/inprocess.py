"""Warm questions inside one process (what a notebook sees): median milliseconds over 5 runs each."""
import json
import statistics
import sys
import time

from trailkit import Trail
from trailkit.investigation import Case, investigate

logs, key, day = sys.argv[1:4]
trail = Trail.local(logs)
questions = {
    "key usage": lambda: trail.usage(key),
    "distinct IPs": lambda: trail.ips(key),
    "key usage, one day": lambda: trail.usage(key, start=day, end=day),
    "one-day window (every event)": lambda: trail.window(day, day),
    "full investigation with the 5-key lineage": lambda: investigate(trail, Case.parse(key)),
}
out = {}
for name, ask in questions.items():
    ask()  # fill the cache if a previous run did not
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        ask()
        runs.append((time.perf_counter() - start) * 1000)
    out[name] = statistics.median(runs)
print(json.dumps(out))
