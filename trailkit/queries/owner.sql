-- owner: who the key belongs to, as CloudTrail recorded the caller on each of its events.
-- Lines tagged "-- if: NAME" are kept only when parameter NAME is given.
-- columns: accesskeyid:string identitytype:string principalarn:string username:string accountid:string
--          principalid:string issuerarn:string events:int first_seen:time last_seen:time
SELECT
  useridentity.accesskeyid AS accesskeyid,
  useridentity.type AS identitytype,
  useridentity.arn AS principalarn,
  useridentity.username AS username,
  useridentity.accountid AS accountid,
  useridentity.principalid AS principalid,
  useridentity.sessioncontext.sessionissuer.arn AS issuerarn,
  count(*) AS events,
  min(eventtime) AS first_seen,
  max(eventtime) AS last_seen
FROM cloudtrail
WHERE TRUE
  AND useridentity.accesskeyid = :key                                             -- if: key
  AND useridentity.accesskeyid LIKE :key_pattern ESCAPE '\'                       -- if: key_pattern
  AND {partition} BETWEEN :partition_start AND :partition_end                     -- if: partition_start
  AND from_iso8601_timestamp(eventtime) >= from_iso8601_timestamp(:start)         -- if: start
  AND from_iso8601_timestamp(eventtime) < from_iso8601_timestamp(:end)            -- if: end
GROUP BY 1, 2, 3, 4, 5, 6, 7
ORDER BY events DESC, principalarn
