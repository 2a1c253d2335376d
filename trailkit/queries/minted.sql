-- minted: temporary keys (ASIA...) that calls signed with this key obtained from STS
-- (AssumeRole, GetSessionToken, GetFederationToken, ...), read from the call's responseElements.
-- An event delivered more than once (same eventid: CloudTrail retries, an organization trail beside the account's
-- own, overlapping exports) is counted once: "delivered" numbers each event's copies.
-- Times are compared as instants ("instant": an offset such as +02:00 is honoured); a record whose eventtime
-- does not parse is kept where no window is asked (its time then shows as empty) and left out of windows.
-- Lines tagged "-- if: NAME" are kept only when parameter NAME is given; {partitions} is where an engine with
-- partitions bounds them (Athena: date, account, region).
-- columns: eventtime:time eventname:string sourceipaddress:string mintedkeyid:string expiration:time
--          assumedrolearn:string rolesessionname:string eventid:string
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
  FROM cloudtrail
  WHERE eventsource = 'sts.amazonaws.com'
    AND json_extract_scalar(responseelements, '$.credentials.accessKeyId') IS NOT NULL
    AND useridentity.accesskeyid = :key                                           -- if: key
    AND useridentity.accesskeyid LIKE :key_pattern ESCAPE '\'                     -- if: key_pattern
    AND recipientaccountid IN (:accounts)                                         -- if: accounts
    AND awsregion IN (:regions)                                                   -- if: regions
    {partitions}
    AND try(from_iso8601_timestamp(eventtime)) >= from_iso8601_timestamp(:start)  -- if: start
    AND try(from_iso8601_timestamp(eventtime)) < from_iso8601_timestamp(:end)     -- if: end
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
