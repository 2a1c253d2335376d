-- links: what connects keys: every call that produced an access key ("link": STS credentials in
-- responseElements.credentials, IAM's responseElements.accessKey) and every call on a key's life ("life":
-- UpdateAccessKey, DeleteAccessKey, AWS's quarantine policy attached to a user). trailkit walks them in Python
-- (trailkit.lineage), then counts the lineage's keys with figures.sql.
-- An event delivered more than once (same eventid: CloudTrail retries, an organization trail beside the account's
-- own, overlapping exports) is counted once: "delivered" numbers each event's copies.
-- Times are compared as instants ("instant": an offset such as +02:00 is honoured); a record whose eventtime
-- does not parse is kept where no window is asked (its time then shows as empty) and left out of windows.
-- Lines tagged "-- if: NAME" are kept only when parameter NAME is given; {partitions} is where an engine with
-- partitions bounds them (Athena: date, account, region).
-- columns: kind:string accesskeyid:string parent:string via:string via_time:time via_eventid:string
--          via_principal:string principalarn:string username:string expiration:time detail:string errorcode:string
--          sourceipaddress:string account:string
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
  FROM cloudtrail
  WHERE (responseelements LIKE '%"credentials"%' OR responseelements LIKE '%"accessKey"%'
         OR eventname IN ('UpdateAccessKey', 'DeleteAccessKey', 'AttachUserPolicy', 'PutUserPolicy'))
    AND recipientaccountid IN (:accounts)                                         -- if: accounts
    AND awsregion IN (:regions)                                                   -- if: regions
    {partitions}
    AND try(from_iso8601_timestamp(eventtime)) >= from_iso8601_timestamp(:start)  -- if: start
    AND try(from_iso8601_timestamp(eventtime)) < from_iso8601_timestamp(:end)     -- if: end
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
