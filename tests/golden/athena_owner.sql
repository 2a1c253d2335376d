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
  FROM "security"."cloudtrail_logs"
  WHERE TRUE
    AND useridentity.accesskeyid = 'AKIA3PARTNERSYNC0001'
    AND try(from_iso8601_timestamp(eventtime)) >= from_iso8601_timestamp('2026-09-01T00:00:00.000Z')
    AND try(from_iso8601_timestamp(eventtime)) < from_iso8601_timestamp('2026-10-29T00:00:00.000Z')
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