-- usage: one access key's events, newest first.
-- An event delivered more than once (same eventid: CloudTrail retries, an organization trail beside the account's
-- own, overlapping exports) is counted once: "delivered" numbers each event's copies.
-- Times are compared as instants ("instant": an offset such as +02:00 is honoured); a record whose eventtime
-- does not parse is kept where no window is asked (its time then shows as empty) and left out of windows.
-- Lines tagged "-- if: NAME" are kept only when parameter NAME is given; {partitions} is where an engine with
-- partitions bounds them (Athena: date, account, region).
-- columns: eventtime:time eventsource:string eventname:string awsregion:string sourceipaddress:string
--          useragent:string errorcode:string errormessage:string accesskeyid:string principalarn:string
--          identitytype:string username:string accountid:string readonly:string eventtype:string
--          requestparameters:json eventid:string
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
  FROM cloudtrail
  WHERE TRUE
    AND useridentity.accesskeyid = :key                                           -- if: key
    AND useridentity.accesskeyid LIKE :key_pattern ESCAPE '\'                     -- if: key_pattern
    AND useridentity.accesskeyid IN (:keys)                                       -- if: keys
    AND recipientaccountid IN (:accounts)                                         -- if: accounts
    AND awsregion IN (:regions)                                                   -- if: regions
    {partitions}
    AND try(from_iso8601_timestamp(eventtime)) >= from_iso8601_timestamp(:start)  -- if: start
    AND try(from_iso8601_timestamp(eventtime)) < from_iso8601_timestamp(:end)     -- if: end
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
LIMIT :limit                                                                      -- if: limit
