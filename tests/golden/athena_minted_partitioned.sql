WITH delivered AS (
  SELECT
    eventtime,
    eventname,
    sourceipaddress,
    json_extract_scalar(responseelements, '$.credentials.accessKeyId') AS mintedkeyid,
    json_extract_scalar(responseelements, '$.credentials.expiration') AS expiration,
    json_extract_scalar(responseelements, '$.assumedRoleUser.arn') AS assumedrolearn,
    json_extract_scalar(requestparameters, '$.roleSessionName') AS rolesessionname,
    eventid,
    try(from_iso8601_timestamp(eventtime)) AS instant,
    row_number() OVER (PARTITION BY eventid ORDER BY eventtime) AS delivery
  FROM "security"."cloudtrail_logs"
  WHERE eventsource = 'sts.amazonaws.com'
    AND json_extract_scalar(responseelements, '$.credentials.accessKeyId') IS NOT NULL
    AND useridentity.accesskeyid = 'AKIA3PARTNERSYNC0001'
    AND "timestamp" BETWEEN '2026/10/20' AND '2026/10/28'
    AND try(from_iso8601_timestamp(eventtime)) >= from_iso8601_timestamp('2026-10-20T00:00:00.000Z')
    AND try(from_iso8601_timestamp(eventtime)) < from_iso8601_timestamp('2026-10-28T00:00:00.000Z')
)
SELECT
  eventtime,
  eventname,
  sourceipaddress,
  mintedkeyid,
  expiration,
  assumedrolearn,
  rolesessionname,
  eventid
FROM delivered
WHERE delivery = 1 OR eventid IS NULL
ORDER BY instant NULLS LAST, eventid