-- sigma: the events of a lineage's keys that match any of a folder's Sigma rules, one 0/1 column per rule
-- (trailkit.sigma converts each rule's detection to an SQL condition: the rules' columns stand in "tested", their
-- "any of them" in the last WHERE, and the rules' columns are added to the contract below).
-- An event delivered more than once (same eventid: CloudTrail retries, an organization trail beside the account's
-- own, overlapping exports) is tested once: "delivered" numbers each event's copies.
-- Times are compared as instants ("instant": an offset such as +02:00 is honoured); a record whose eventtime
-- does not parse is kept where no window is asked (its time then shows as empty) and left out of windows.
-- Lines tagged "-- if: NAME" are kept only when parameter NAME is given; {partitions} is where an engine with
-- partitions bounds them (Athena: date, account, region).
-- columns: accesskeyid:string eventid:string eventtime:time
WITH delivered AS (
  SELECT
    *,
    try(from_iso8601_timestamp(eventtime)) AS instant,
    row_number() OVER (PARTITION BY eventid ORDER BY eventtime) AS delivery
  FROM cloudtrail
  WHERE useridentity.accesskeyid IN (:keys)
    AND recipientaccountid IN (:accounts)                                         -- if: accounts
    AND awsregion IN (:regions)                                                   -- if: regions
    {partitions}
    AND try(from_iso8601_timestamp(eventtime)) >= from_iso8601_timestamp(:start)  -- if: start
    AND try(from_iso8601_timestamp(eventtime)) < from_iso8601_timestamp(:end)     -- if: end
),
tested AS (
  SELECT
    useridentity.accesskeyid AS accesskeyid,
    eventid,
    eventtime,
    instant,
{tests}
  FROM delivered
  WHERE delivery = 1 OR eventid IS NULL
)
SELECT * FROM tested
WHERE {any}
ORDER BY instant, eventid
