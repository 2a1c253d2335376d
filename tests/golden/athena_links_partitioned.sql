WITH delivered AS (
  SELECT
    eventtime,
    eventname,
    eventid,
    sourceipaddress,
    errorcode,
    useridentity.accesskeyid AS accesskeyid,
    coalesce(useridentity.arn, useridentity.invokedby, useridentity.principalid, sourceipaddress) AS principal,
    coalesce(json_extract_scalar(responseelements, '$.credentials.accessKeyId'),
             json_extract_scalar(responseelements, '$.accessKey.accessKeyId')) AS produced,
    coalesce(json_extract_scalar(responseelements, '$.assumedRoleUser.arn'),
             json_extract_scalar(responseelements, '$.federatedUser.arn')) AS produced_arn,
    json_extract_scalar(responseelements, '$.accessKey.userName') AS produced_user,
    json_extract_scalar(responseelements, '$.credentials.expiration') AS expiration,
    json_extract_scalar(responseelements, '$.accessKey.status') AS produced_status,
    json_extract_scalar(requestparameters, '$.accessKeyId') AS changed,
    json_extract_scalar(requestparameters, '$.userName') AS changed_user,
    coalesce(json_extract_scalar(requestparameters, '$.status'),
             json_extract_scalar(requestparameters, '$.policyArn'),
             json_extract_scalar(requestparameters, '$.policyName')) AS change,
    requestparameters LIKE '%AWSCompromisedKeyQuarantine%' AS quarantine,
    recipientaccountid,
    row_number() OVER (PARTITION BY eventid ORDER BY eventtime) AS delivery
  FROM "security"."cloudtrail_logs"
  WHERE (responseelements LIKE '%"credentials"%' OR responseelements LIKE '%"accessKey"%'
         OR eventname IN ('UpdateAccessKey', 'DeleteAccessKey', 'AttachUserPolicy', 'PutUserPolicy'))
    AND "timestamp" BETWEEN '2026/10/24' AND '2026/10/26'
    AND try(from_iso8601_timestamp(eventtime)) >= from_iso8601_timestamp('2026-10-24T00:00:00.000Z')
    AND try(from_iso8601_timestamp(eventtime)) < from_iso8601_timestamp('2026-10-26T00:00:00.000Z')
)
SELECT
  'link' AS kind,
  produced AS accesskeyid,
  accesskeyid AS parent,
  eventname AS via,
  eventtime AS via_time,
  eventid AS via_eventid,
  principal AS via_principal,
  produced_arn AS principalarn,
  produced_user AS username,
  expiration,
  produced_status AS detail,
  errorcode,
  sourceipaddress,
  recipientaccountid AS account
FROM delivered
WHERE (delivery = 1 OR eventid IS NULL) AND produced IS NOT NULL
UNION ALL
SELECT
  'life' AS kind,
  changed AS accesskeyid,
  accesskeyid AS parent,
  eventname AS via,
  eventtime AS via_time,
  eventid AS via_eventid,
  principal AS via_principal,
  CAST(NULL AS varchar) AS principalarn,
  changed_user AS username,
  CAST(NULL AS varchar) AS expiration,
  change AS detail,
  errorcode,
  sourceipaddress,
  recipientaccountid AS account
FROM delivered
WHERE (delivery = 1 OR eventid IS NULL)
  AND (eventname IN ('UpdateAccessKey', 'DeleteAccessKey')
       OR eventname IN ('AttachUserPolicy', 'PutUserPolicy') AND quarantine)