SELECT
  sourceipaddress,
  count(*) AS events,
  min(eventtime) AS first_seen,
  max(eventtime) AS last_seen,
  count(DISTINCT eventsource || ':' || eventname) AS apis,
  count_if(errorcode IS NOT NULL AND errorcode <> '') AS errors,
  count(DISTINCT awsregion) AS regions,
  count(DISTINCT useragent) AS useragents
FROM "security"."cloudtrail_logs"
WHERE TRUE
  AND useridentity.accesskeyid = 'AKIA3PARTNERSYNC0001'
  AND from_iso8601_timestamp(eventtime) >= from_iso8601_timestamp('2026-10-01T00:00:00.000Z')
  AND from_iso8601_timestamp(eventtime) < from_iso8601_timestamp('2026-10-29T00:00:00.000Z')
GROUP BY sourceipaddress
ORDER BY last_seen DESC, events DESC, sourceipaddress