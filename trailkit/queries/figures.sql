-- figures: each key's own events counted, for the keys given (a lineage's), and the keys of the federated
-- users given (a federated user's console session signs with keys no call returns: its ARN finds them).
-- An event delivered more than once (same eventid: CloudTrail retries, an organization trail beside the account's
-- own, overlapping exports) is counted once: "delivered" numbers each event's copies.
-- Times are compared as instants ("instant": an offset such as +02:00 is honoured); a record whose eventtime
-- does not parse is kept where no window is asked (its time then shows as empty) and left out of windows.
-- Lines tagged "-- if: NAME" are kept only when parameter NAME is given; {partitions} is where an engine with
-- partitions bounds them (Athena: date, account, region).
-- columns: accesskeyid:string principalarn:string username:string account:string events:int first_seen:time
--          last_seen:time sourceips:string
WITH delivered AS (
  SELECT
    useridentity.accesskeyid AS accesskeyid,
    useridentity.arn AS principalarn,
    useridentity.username AS username,
    recipientaccountid,
    eventtime,
    eventid,
    sourceipaddress,
    try(from_iso8601_timestamp(eventtime)) AS instant,
    row_number() OVER (PARTITION BY eventid ORDER BY eventtime) AS delivery
  FROM cloudtrail
  WHERE (FALSE
    OR useridentity.accesskeyid IN (:keys)                                        -- if: keys
    OR useridentity.arn IN (:federated)                                           -- if: federated
  )
    AND recipientaccountid IN (:accounts)                                         -- if: accounts
    AND awsregion IN (:regions)                                                   -- if: regions
    {partitions}
    AND try(from_iso8601_timestamp(eventtime)) >= from_iso8601_timestamp(:start)  -- if: start
    AND try(from_iso8601_timestamp(eventtime)) < from_iso8601_timestamp(:end)     -- if: end
)
SELECT
  accesskeyid,
  max(principalarn) AS principalarn,
  max(username) AS username,
  max(recipientaccountid) AS account,
  count(*) AS events,
  min_by(eventtime, instant) AS first_seen,
  max_by(eventtime, instant) AS last_seen,
  array_join(array_sort(array_agg(DISTINCT sourceipaddress)), ', ') AS sourceips
FROM delivered
WHERE (delivery = 1 OR eventid IS NULL) AND accesskeyid IS NOT NULL AND accesskeyid <> ''
GROUP BY accesskeyid
ORDER BY accesskeyid
