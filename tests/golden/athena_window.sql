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
  eventid
FROM "security"."cloudtrail_logs"
WHERE TRUE
  AND from_iso8601_timestamp(eventtime) >= from_iso8601_timestamp('2026-10-24T02:00:00.000Z')
  AND from_iso8601_timestamp(eventtime) < from_iso8601_timestamp('2026-10-24T03:00:00.000Z')
ORDER BY eventtime, eventid