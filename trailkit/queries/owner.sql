-- owner: who the key belongs to, as CloudTrail recorded the caller on each of its events.
-- An event delivered more than once (same eventid: CloudTrail retries, an organization trail beside the account's
-- own, overlapping exports) is counted once: "delivered" numbers each event's copies.
-- Times are compared as instants ("instant": an offset such as +02:00 is honoured); a record whose eventtime
-- does not parse is kept where no window is asked (its time then shows as empty) and left out of windows.
-- Lines tagged "-- if: NAME" are kept only when parameter NAME is given; {partitions} is where an engine with
-- partitions bounds them (Athena: date, account, region).
-- columns: accesskeyid:string identitytype:string principalarn:string username:string accountid:string
--          principalid:string issuerarn:string events:int first_seen:time last_seen:time
WITH delivered AS (
  SELECT
    useridentity.accesskeyid AS accesskeyid,
    useridentity.type AS identitytype,
    useridentity.arn AS principalarn,
    useridentity.username AS username,
    useridentity.accountid AS accountid,
    useridentity.principalid AS principalid,
    useridentity.sessioncontext.sessionissuer.arn AS issuerarn,
    eventtime,
    eventid,
    try(from_iso8601_timestamp(eventtime)) AS instant,
    row_number() OVER (PARTITION BY eventid ORDER BY eventtime) AS delivery
  FROM cloudtrail
  WHERE TRUE
    AND useridentity.accesskeyid = :key                                           -- if: key
    AND useridentity.accesskeyid LIKE :key_pattern ESCAPE '\'                     -- if: key_pattern
    AND recipientaccountid IN (:accounts)                                         -- if: accounts
    AND awsregion IN (:regions)                                                   -- if: regions
    {partitions}
    AND try(from_iso8601_timestamp(eventtime)) >= from_iso8601_timestamp(:start)  -- if: start
    AND try(from_iso8601_timestamp(eventtime)) < from_iso8601_timestamp(:end)     -- if: end
)
SELECT
  accesskeyid,
  identitytype,
  principalarn,
  username,
  accountid,
  principalid,
  issuerarn,
  count(*) AS events,
  min_by(eventtime, instant) AS first_seen,
  max_by(eventtime, instant) AS last_seen
FROM delivered
WHERE delivery = 1 OR eventid IS NULL
GROUP BY 1, 2, 3, 4, 5, 6, 7
ORDER BY events DESC, principalarn
