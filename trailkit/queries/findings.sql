-- findings: what a lineage's keys did that a responder acts on, aggregated where the data is (trailkit.findings
-- judges these few rows against its rules, see README "Findings"). One row per
--   call      (key, API, detail): the watched calls (:watched), with what each was about ("detail", "extra");
--   burst     (key, burst): many read-only APIs (List/Describe/Get/Head...), or many calls denied across several
--             APIs, in a 10-minute slice; slices are cut on two grids five minutes apart, so a burst of up to five
--             minutes is always seen whole; the calls of such slices with no gap over 10 minutes are one burst;
--   region    a region the lineage first used a day or more after its first event in these logs;
--   agent     a user-agent family (the agent's first word, up to a / _ space or bracket) first used a day or more
--             after that;
--   suspect   (key, tool) user agents naming a tool of :suspect_agents (offensive distributions, attack tools);
--   ip        (source address): every address the lineage called from, for the allowlist and network context.
-- An event delivered more than once (same eventid: CloudTrail retries, an organization trail beside the account's
-- own, overlapping exports) is counted once: "delivered" numbers each event's copies.
-- Times are compared as instants ("instant": an offset such as +02:00 is honoured); a record whose eventtime
-- does not parse is kept where no window is asked (its time then shows as empty) and left out of windows.
-- Lines tagged "-- if: NAME" are kept only when parameter NAME is given; {partitions} is where an engine with
-- partitions bounds them (Athena: date, account, region).
-- columns: rule:string accesskeyid:string eventsource:string eventname:string detail:string extra:string
--          account:string first_seen:time last_seen:time events:int errors:int apis:int services:int ips:int
--          eventids:string
WITH delivered AS (
  SELECT
    eventtime,
    eventsource,
    eventname,
    awsregion,
    sourceipaddress,
    useragent,
    nullif(errorcode, '') AS errorcode,
    useridentity.accesskeyid AS accesskeyid,
    recipientaccountid AS account,
    requestparameters,
    responseelements,
    additionaleventdata,
    eventid,
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
events AS (
  SELECT
    *,
    regexp_replace(eventname, '20[0-9]{6}(v[0-9]+)?$', '') AS api,
    errorcode IS NOT NULL AS failed,
    (errorcode LIKE '%AccessDenied%' OR errorcode LIKE '%Unauthorized%' OR errorcode LIKE '%Forbidden%'
     OR errorcode IN ('AuthorizationError', 'AuthFailure', 'InvalidClientTokenId', 'OptInRequired')) AS denied
  FROM delivered
  WHERE delivery = 1 OR eventid IS NULL
),
span AS (
  SELECT min(instant) AS began FROM events
),
sliced AS (  -- read-only and denied calls in 10-minute slices, on two grids five minutes apart
  SELECT e.*, g.shift, floor((to_unixtime(instant) + g.shift) / 600) AS slice_of,
         regexp_like(eventname, '^(List|Describe|Get|Head|Search|Lookup|Scan|BatchGet)') AS readonly_call
  FROM events AS e CROSS JOIN (VALUES 0, 300) AS g(shift)
  WHERE instant IS NOT NULL
),
hot AS (  -- the slices over a threshold
  SELECT accesskeyid, shift, slice_of
  FROM sliced
  WHERE readonly_call OR denied
  GROUP BY accesskeyid, shift, slice_of
  HAVING count(DISTINCT CASE WHEN readonly_call THEN eventname END) >= :burst_apis
      OR count_if(denied) >= :burst_denied AND count(DISTINCT CASE WHEN denied THEN eventname END) >= :burst_denied_apis
),
probing AS (  -- each read-only or denied call of a hot slice, once (a call lies in a slice of each grid)
  SELECT DISTINCT s.accesskeyid, s.eventid, s.eventtime, s.instant, s.eventsource, s.eventname, s.sourceipaddress,
         s.failed, s.denied, s.readonly_call
  FROM sliced AS s
  JOIN hot AS h ON s.accesskeyid = h.accesskeyid AND s.shift = h.shift AND s.slice_of = h.slice_of
  WHERE s.readonly_call OR s.denied
),
bursts AS (  -- a burst: such calls with no gap of more than 10 minutes between them
  SELECT *, sum(CASE WHEN gap THEN 1 ELSE 0 END)
              OVER (PARTITION BY accesskeyid ORDER BY instant, eventid ROWS UNBOUNDED PRECEDING) AS burst
  FROM (
    SELECT *, coalesce(instant > date_add('minute', 10, lag(instant)
                         OVER (PARTITION BY accesskeyid ORDER BY instant, eventid)), true) AS gap
    FROM probing
  ) AS gaps
),
calls AS (
  SELECT
    *,
    CASE
      WHEN eventname IN ('AttachUserPolicy', 'AttachRolePolicy', 'AttachGroupPolicy', 'CreatePolicyVersion',
                         'SetDefaultPolicyVersion')
        THEN json_extract_scalar(requestparameters, '$.policyArn')
      WHEN eventname IN ('PutUserPolicy', 'PutRolePolicy', 'PutGroupPolicy')
        THEN json_extract_scalar(requestparameters, '$.policyName')
      WHEN eventname = 'AddUserToGroup' THEN json_extract_scalar(requestparameters, '$.groupName')
      WHEN eventname IN ('CreateRole', 'UpdateAssumeRolePolicy') THEN json_extract_scalar(requestparameters, '$.roleName')
      WHEN eventname = 'RunInstances' THEN json_extract_scalar(requestparameters, '$.instanceType')
      WHEN eventname = 'ModifySnapshotAttribute' THEN json_extract_scalar(requestparameters, '$.snapshotId')
      WHEN eventname = 'ModifyImageAttribute' THEN json_extract_scalar(requestparameters, '$.imageId')
      WHEN eventname IN ('ModifyDBSnapshotAttribute', 'ModifyDBClusterSnapshotAttribute')
        THEN coalesce(json_extract_scalar(requestparameters, '$.dBSnapshotIdentifier'),
                      json_extract_scalar(requestparameters, '$.dBClusterSnapshotIdentifier'))
      WHEN eventname IN ('GetSecretValue', 'DeleteSecret')
        THEN json_extract_scalar(requestparameters, '$.secretId')
      WHEN eventname IN ('GetParameter', 'DeleteParameter') THEN json_extract_scalar(requestparameters, '$.name')
      WHEN eventname = 'GetParametersByPath' THEN json_extract_scalar(requestparameters, '$.path')
      WHEN eventname IN ('GetParameters', 'DeleteParameters') THEN json_format(json_extract(requestparameters, '$.names'))
      WHEN eventname = 'BatchGetSecretValue' THEN json_format(json_extract(requestparameters, '$.secretIdList'))
      WHEN eventname IN ('StopLogging', 'DeleteTrail', 'UpdateTrail', 'PutEventSelectors', 'PutInsightSelectors')
        THEN json_extract_scalar(requestparameters, '$.name')
      WHEN eventname IN ('InvokeModel', 'InvokeModelWithResponseStream', 'Converse', 'ConverseStream')
        THEN json_extract_scalar(requestparameters, '$.modelId')
      WHEN eventname IN ('SendSSHPublicKey', 'SendSerialConsoleSSHPublicKey', 'GetPasswordData',
                         'DescribeInstanceAttribute', 'ModifyInstanceAttribute')
        THEN json_extract_scalar(requestparameters, '$.instanceId')
      WHEN eventname = 'SendCommand' THEN json_extract_scalar(requestparameters, '$.documentName')
      WHEN eventname = 'StartSession' THEN json_extract_scalar(requestparameters, '$.target')
      WHEN eventname = 'AuthorizeSecurityGroupIngress' THEN json_extract_scalar(requestparameters, '$.groupId')
      WHEN eventname = 'ConsoleLogin' THEN json_extract_scalar(responseelements, '$.ConsoleLogin')
      WHEN eventsource = 'lambda.amazonaws.com' AND json_extract_scalar(requestparameters, '$.functionName') IS NOT NULL THEN json_extract_scalar(requestparameters, '$.functionName')
      WHEN eventname = 'CreateTrustAnchor' THEN json_extract_scalar(requestparameters, '$.name')
      WHEN eventname = 'GetFederationToken' THEN json_extract_scalar(requestparameters, '$.name')
      WHEN eventname IN ('UpdateDetector', 'DeleteDetector') THEN json_extract_scalar(requestparameters, '$.detectorId')
      ELSE coalesce(json_extract_scalar(requestparameters, '$.userName'),
                    json_extract_scalar(requestparameters, '$.roleName'),
                    json_extract_scalar(requestparameters, '$.bucketName'),
                    json_extract_scalar(requestparameters, '$.name'))
    END AS detail,
    CASE
      WHEN eventname IN ('CreateRole', 'UpdateAssumeRolePolicy')
        THEN coalesce(json_extract_scalar(requestparameters, '$.assumeRolePolicyDocument'),
                      json_extract_scalar(requestparameters, '$.policyDocument'))
      WHEN eventname = 'ModifySnapshotAttribute'
        THEN json_format(json_extract(requestparameters, '$.createVolumePermission'))
      WHEN eventname = 'ModifyImageAttribute' THEN json_format(json_extract(requestparameters, '$.launchPermission'))
      WHEN eventname IN ('ModifyDBSnapshotAttribute', 'ModifyDBClusterSnapshotAttribute')
        THEN json_format(json_extract(requestparameters, '$.valuesToAdd'))
      WHEN eventname = 'AuthorizeSecurityGroupIngress' THEN requestparameters
      WHEN eventname IN ('GetParameter', 'GetParameters', 'GetParametersByPath')
        THEN json_format(json_extract(requestparameters, '$.withDecryption'))
      WHEN eventname = 'ConsoleLogin' THEN json_extract_scalar(additionaleventdata, '$.MFAUsed')
      WHEN eventname = 'DescribeInstanceAttribute' THEN json_extract_scalar(requestparameters, '$.attribute')
      WHEN eventname = 'ModifyInstanceAttribute'
        THEN CASE WHEN json_extract(requestparameters, '$.userData') IS NOT NULL THEN 'userData' END
      WHEN eventname = 'UpdateDetector' THEN json_format(json_extract(requestparameters, '$.enable'))
      WHEN eventname IN ('PutBucketPolicy', 'PutBucketAcl', 'PutObjectAcl')
        THEN coalesce(json_format(json_extract(requestparameters, '$.bucketPolicy')),
                      json_format(json_extract(requestparameters, '$.AccessControlPolicy')), '')
             || coalesce(' ' || json_format(json_extract(requestparameters, '$["x-amz-acl"]')), '')
             || coalesce(' ' || json_format(json_extract(requestparameters, '$["x-amz-grant-read"]')), '')
      WHEN api IN ('CreateFunctionUrlConfig', 'UpdateFunctionUrlConfig')
        THEN json_extract_scalar(requestparameters, '$.authType')
      WHEN api = 'AddPermission' THEN json_extract_scalar(requestparameters, '$.principal')
    END AS extra
  FROM events
  WHERE api IN (:watched)
)
SELECT 'call' AS rule, accesskeyid, eventsource, eventname, detail, extra, account,
       min_by(eventtime, instant) AS first_seen, max_by(eventtime, instant) AS last_seen,
       count(*) AS events, count_if(failed) AS errors, 1 AS apis, 1 AS services,
       count(DISTINCT sourceipaddress) AS ips,
       array_join(slice(array_agg(eventid ORDER BY instant, eventid), 1, :evidence), ' ') AS eventids
FROM calls
GROUP BY accesskeyid, eventsource, eventname, detail, extra, account
UNION ALL
SELECT 'burst' AS rule, accesskeyid, CAST(NULL AS varchar) AS eventsource, CAST(NULL AS varchar) AS eventname,
       CAST(count(DISTINCT CASE WHEN readonly_call THEN eventname END) AS varchar) AS detail,
       CAST(count_if(denied) AS varchar) AS extra, CAST(NULL AS varchar) AS account,
       min_by(eventtime, instant) AS first_seen, max_by(eventtime, instant) AS last_seen,
       count(*) AS events, count_if(failed) AS errors,
       count(DISTINCT eventsource || ':' || eventname) AS apis, count(DISTINCT eventsource) AS services,
       count(DISTINCT sourceipaddress) AS ips,
       array_join(slice(array_agg(eventid ORDER BY instant, eventid), 1, :evidence), ' ') AS eventids
FROM bursts
GROUP BY accesskeyid, burst
UNION ALL
SELECT 'region' AS rule, min_by(accesskeyid, instant) AS accesskeyid, CAST(NULL AS varchar) AS eventsource,
       min_by(eventname, instant) AS eventname, awsregion AS detail,
       array_join(array_distinct(array_agg(accesskeyid)), ' ') AS extra, min_by(account, instant) AS account,
       min_by(eventtime, instant) AS first_seen, max_by(eventtime, instant) AS last_seen,
       count(*) AS events, count_if(failed) AS errors,
       count(DISTINCT eventsource || ':' || eventname) AS apis, count(DISTINCT eventsource) AS services,
       count(DISTINCT sourceipaddress) AS ips,
       array_join(slice(array_agg(eventid ORDER BY instant, eventid), 1, :evidence), ' ') AS eventids
FROM events CROSS JOIN span
WHERE instant IS NOT NULL
GROUP BY awsregion
HAVING min(instant) >= date_add('day', 1, min(began))
UNION ALL
SELECT 'agent' AS rule, min_by(accesskeyid, instant) AS accesskeyid, CAST(NULL AS varchar) AS eventsource,
       min_by(eventname, instant) AS eventname, family AS detail, min_by(useragent, instant) AS extra,
       min_by(account, instant) AS account,
       min_by(eventtime, instant) AS first_seen, max_by(eventtime, instant) AS last_seen,
       count(*) AS events, count_if(failed) AS errors,
       count(DISTINCT eventsource || ':' || eventname) AS apis, count(DISTINCT eventsource) AS services,
       count(DISTINCT sourceipaddress) AS ips,
       array_join(slice(array_agg(eventid ORDER BY instant, eventid), 1, :evidence), ' ') AS eventids
FROM (SELECT *, coalesce(nullif(regexp_extract(useragent, '^\[?([A-Za-z0-9.-]+)', 1), ''), substr(useragent, 1, 32), '') AS family FROM events) AS e
     CROSS JOIN span
WHERE instant IS NOT NULL
GROUP BY family
HAVING min(instant) >= date_add('day', 1, min(began))
UNION ALL
SELECT 'suspect' AS rule, accesskeyid, CAST(NULL AS varchar) AS eventsource, CAST(NULL AS varchar) AS eventname,
       tool AS detail, min_by(useragent, instant) AS extra, CAST(NULL AS varchar) AS account,
       min_by(eventtime, instant) AS first_seen, max_by(eventtime, instant) AS last_seen,
       count(*) AS events, count_if(failed) AS errors,
       count(DISTINCT eventsource || ':' || eventname) AS apis, count(DISTINCT eventsource) AS services,
       count(DISTINCT sourceipaddress) AS ips,
       array_join(slice(array_agg(eventid ORDER BY instant, eventid), 1, :evidence), ' ') AS eventids
FROM (SELECT *, regexp_extract(lower(useragent), :suspect_agents, 2) AS tool FROM events) AS e
WHERE tool IS NOT NULL AND tool <> ''
GROUP BY accesskeyid, tool
UNION ALL
SELECT 'ip' AS rule, min_by(accesskeyid, instant) AS accesskeyid, CAST(NULL AS varchar) AS eventsource,
       CAST(NULL AS varchar) AS eventname, sourceipaddress AS detail,
       array_join(array_distinct(array_agg(accesskeyid)), ' ') AS extra, CAST(NULL AS varchar) AS account,
       min_by(eventtime, instant) AS first_seen, max_by(eventtime, instant) AS last_seen,
       count(*) AS events, count_if(failed) AS errors,
       count(DISTINCT eventsource || ':' || eventname) AS apis, count(DISTINCT eventsource) AS services,
       1 AS ips,
       array_join(slice(array_agg(eventid ORDER BY instant, eventid), 1, :evidence), ' ') AS eventids
FROM events
GROUP BY sourceipaddress
ORDER BY rule, accesskeyid, first_seen, detail, extra, eventids
