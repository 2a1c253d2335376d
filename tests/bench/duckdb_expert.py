"""What a DuckDB expert writes by hand for "one key's source IPs with count, first and last seen"."""
import sys

import duckdb

root, key = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET threads = 2")
rows = con.execute("""
    WITH r AS (
      SELECT unnest(json_transform(json -> 'Records',
        '[{"eventTime":"VARCHAR","sourceIPAddress":"VARCHAR","userIdentity":{"accessKeyId":"VARCHAR"}}]')) AS r
      FROM read_json_objects($glob, format='auto', maximum_object_size=1073741824))
    SELECT r.sourceIPAddress AS ip, count(*) AS events, min(r.eventTime) AS first_seen, max(r.eventTime) AS last_seen
    FROM r WHERE r.userIdentity.accessKeyId = $key GROUP BY 1 ORDER BY 1
""", {"glob": root + "/AWSLogs/*/CloudTrail/*/*/*/*/*.json.gz", "key": key}).fetchall()
for ip, n, first, last in rows:
    print(f"{ip},{n},{first},{last}")
