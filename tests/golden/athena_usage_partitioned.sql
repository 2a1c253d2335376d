WITH delivered AS (
  SELECT
    eventtime,
    eventsource,
    eventname,
    awsregion,
    sourceipaddress,
    useragent,
    errorcode,
    errormessage,
    useridentity.accesskeyid AS accesskeyid,
    useridentity.arn AS principalarn,
    useridentity.type AS identitytype,
    useridentity.username AS username,
    useridentity.accountid AS accountid,
    readonly,
    eventtype,
    requestparameters,
    eventid,
    try(from_iso8601_timestamp(eventtime)) AS instant,
    row_number() OVER (PARTITION BY eventid ORDER BY eventtime) AS delivery
  FROM "security"."cloudtrail_logs"
  WHERE TRUE
    AND useridentity.accesskeyid = 'AKIA3PARTNERSYNC0001'
    AND "timestamp" BETWEEN '2026/10/24' AND '2026/10/25'
    AND try(from_iso8601_timestamp(eventtime)) >= from_iso8601_timestamp('2026-10-24T00:00:00.000Z')
    AND try(from_iso8601_timestamp(eventtime)) < from_iso8601_timestamp('2026-10-25T00:00:00.000Z')
)
SELECT
  eventtime,
  eventsource,
  eventname,
  awsregion,
  sourceipaddress,
  useragent,
  errorcode,
  errormessage,
  accesskeyid,
  principalarn,
  identitytype,
  username,
  accountid,
  readonly,
  eventtype,
  requestparameters,
  eventid
FROM delivered
WHERE delivery = 1 OR eventid IS NULL
ORDER BY instant DESC NULLS LAST, eventid
LIMIT 100