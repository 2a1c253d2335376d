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
FROM "security"."cloudtrail_logs"
WHERE TRUE
  AND useridentity.accesskeyid = 'AKIA3PARTNERSYNC0001'
GROUP BY 1, 2, 3, 4, 5, 6, 7
ORDER BY events DESC, principalarn