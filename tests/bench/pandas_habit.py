"""The pandas habit: json.load every file, json_normalize, filter, groupby."""
import glob
import gzip
import json
import sys

import pandas as pd

root, key = sys.argv[1], sys.argv[2]
records = []
for path in glob.glob(root + "/AWSLogs/**/*.json.gz", recursive=True):
    with gzip.open(path) as fh:
        records.extend(json.load(fh)["Records"])
df = pd.json_normalize(records)
mine = df[df["userIdentity.accessKeyId"] == key]
out = mine.groupby("sourceIPAddress")["eventTime"].agg(["count", "min", "max"]).reset_index()
for row in out.itertuples(index=False):
    print(f"{row[0]},{row[1]},{row[2]},{row[3]}")
