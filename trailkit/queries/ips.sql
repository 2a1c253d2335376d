-- ips: per source IP of one key, how much, when, what and how often it failed; latest activity first.
-- An event delivered more than once (same eventid: CloudTrail retries, an organization trail beside the account's
-- own, overlapping exports) is counted once: "delivered" numbers each event's copies.
-- Times are compared as instants ("instant": an offset such as +02:00 is honoured); a record whose eventtime
-- does not parse is kept where no window is asked (its time then shows as empty) and left out of windows.
-- Lines tagged "-- if: NAME" are kept only when parameter NAME is given; {partitions} is where an engine with
-- partitions bounds them (Athena: date, account, region).
-- columns: sourceipaddress:string events:int first_seen:time last_seen:time apis:int errors:int
--          regions:int useragents:int
WITH delivered AS (
  SELECT
    sourceipaddress,
    eventtime,
    eventsource,
    eventname,
    errorcode,
    awsregion,
    useragent,
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
  sourceipaddress,
  count(*) AS events,
  min_by(eventtime, instant) AS first_seen,
  max_by(eventtime, instant) AS last_seen,
  count(DISTINCT eventsource || ':' || eventname) AS apis,
  count_if(errorcode IS NOT NULL AND errorcode <> '') AS errors,
  count(DISTINCT awsregion) AS regions,
  count(DISTINCT useragent) AS useragents
FROM delivered
WHERE delivery = 1 OR eventid IS NULL
GROUP BY sourceipaddress
ORDER BY max(instant) DESC, events DESC, sourceipaddress
