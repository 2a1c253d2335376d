-- minted: temporary keys (ASIA...) that calls signed with this key obtained from STS
-- (AssumeRole, GetSessionToken, GetFederationToken, ...), read from the call's responseElements.
-- Lines tagged "-- if: NAME" are kept only when parameter NAME is given.
-- columns: eventtime:time eventname:string sourceipaddress:string mintedkeyid:string expiration:string
--          assumedrolearn:string rolesessionname:string eventid:string
SELECT
  eventtime,
  eventname,
  sourceipaddress,
  json_extract_scalar(responseelements, '$.credentials.accessKeyId') AS mintedkeyid,
  json_extract_scalar(responseelements, '$.credentials.expiration') AS expiration,
  json_extract_scalar(responseelements, '$.assumedRoleUser.arn') AS assumedrolearn,
  json_extract_scalar(requestparameters, '$.roleSessionName') AS rolesessionname,
  eventid
FROM cloudtrail
WHERE eventsource = 'sts.amazonaws.com'
  AND json_extract_scalar(responseelements, '$.credentials.accessKeyId') IS NOT NULL
  AND useridentity.accesskeyid = :key                                             -- if: key
  AND useridentity.accesskeyid LIKE :key_pattern ESCAPE '\'                       -- if: key_pattern
  AND {partition} BETWEEN :partition_start AND :partition_end                     -- if: partition_start
  AND from_iso8601_timestamp(eventtime) >= from_iso8601_timestamp(:start)         -- if: start
  AND from_iso8601_timestamp(eventtime) < from_iso8601_timestamp(:end)            -- if: end
ORDER BY eventtime, eventid
