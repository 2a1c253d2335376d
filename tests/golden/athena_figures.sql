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
  FROM "security"."cloudtrail_logs"
  WHERE (FALSE
    OR useridentity.accesskeyid IN ('AKIAROOTROOTROOT0001', 'ASIAONEONEONEONE0001')
  )
    AND try(from_iso8601_timestamp(eventtime)) >= from_iso8601_timestamp('2026-10-24T00:00:00.000Z')
    AND try(from_iso8601_timestamp(eventtime)) < from_iso8601_timestamp('2026-10-26T00:00:00.000Z')
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