WITH delivered AS (
  SELECT
    sourceipaddress,
    eventtime,
    eventsource,
    eventname,
    errorcode,
    awsregion,
    useragent,
    eventid,
    try(from_iso8601_timestamp(eventtime)) AS instant,
    row_number() OVER (PARTITION BY eventid ORDER BY eventtime) AS delivery
  FROM "security"."cloudtrail_logs"
  WHERE TRUE
    AND useridentity.accesskeyid = 'AKIA3PARTNERSYNC0001'
    AND "timestamp" BETWEEN '2026/10/01' AND '2026/10/29'
    AND try(from_iso8601_timestamp(eventtime)) >= from_iso8601_timestamp('2026-10-01T00:00:00.000Z')
    AND try(from_iso8601_timestamp(eventtime)) < from_iso8601_timestamp('2026-10-29T00:00:00.000Z')
)
SELECT
  sourceipaddress,
  count(*) AS events,
  min_by(eventtime, instant) AS first_seen,
  max_by(eventtime, instant) AS last_seen,
  count(DISTINCT eventsource || ':' || eventname) AS apis,
  count_if(errorcode IS NOT NULL AND errorcode <> '') AS errors,
  count(DISTINCT awsregion) AS regions,
  count(DISTINCT useragent) AS useragents
FROM delivered
WHERE delivery = 1 OR eventid IS NULL
GROUP BY sourceipaddress
ORDER BY max(instant) DESC, events DESC, sourceipaddress