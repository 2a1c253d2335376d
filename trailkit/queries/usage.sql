-- usage: one access key's events, newest first.
-- Lines tagged "-- if: NAME" are kept only when parameter NAME is given.
-- columns: eventtime:time eventsource:string eventname:string awsregion:string sourceipaddress:string
--          useragent:string errorcode:string errormessage:string accesskeyid:string principalarn:string
--          identitytype:string username:string accountid:string readonly:string eventtype:string
--          requestparameters:string eventid:string
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
FROM cloudtrail
WHERE TRUE
  AND useridentity.accesskeyid = :key                                             -- if: key
  AND useridentity.accesskeyid LIKE :key_pattern ESCAPE '\'                       -- if: key_pattern
  AND {partition} BETWEEN :partition_start AND :partition_end                     -- if: partition_start
  AND from_iso8601_timestamp(eventtime) >= from_iso8601_timestamp(:start)         -- if: start
  AND from_iso8601_timestamp(eventtime) < from_iso8601_timestamp(:end)            -- if: end
ORDER BY eventtime DESC, eventid
LIMIT :limit                                                                      -- if: limit
