WITH delivered AS (
  SELECT
    eventtime,
    eventsource,
    eventname,
    nullif(errorcode, '') AS errorcode,
    useridentity.accesskeyid AS accesskeyid,
    requestparameters,
    additionaleventdata,
    eventid,
    try(from_iso8601_timestamp(eventtime)) AS instant,
    row_number() OVER (PARTITION BY eventid ORDER BY eventtime) AS delivery
  FROM "security"."cloudtrail_logs"
  WHERE useridentity.accesskeyid IN ('AKIATFQR7NSC8Q4X20BJ')
    AND eventsource IN ('s3.amazonaws.com', 'secretsmanager.amazonaws.com', 'ssm.amazonaws.com', 'ec2.amazonaws.com',
                        'rds.amazonaws.com', 'dynamodb.amazonaws.com')
    AND "timestamp" BETWEEN '2023/07/10' AND '2023/07/12'
    AND try(from_iso8601_timestamp(eventtime)) >= from_iso8601_timestamp('2023-07-10T00:00:00.000Z')
    AND try(from_iso8601_timestamp(eventtime)) < from_iso8601_timestamp('2023-07-12T00:00:00.000Z')
),
touched AS (
  SELECT
    *,
    CASE
      WHEN eventsource = 's3.amazonaws.com' AND json_extract_scalar(requestparameters, '$.bucketName') IS NOT NULL
        THEN 's3://' || json_extract_scalar(requestparameters, '$.bucketName')
             || coalesce('/' || json_extract_scalar(requestparameters, '$.key'), '')
      WHEN eventsource = 'secretsmanager.amazonaws.com'
        THEN coalesce(json_extract_scalar(requestparameters, '$.secretId'),
                      json_extract_scalar(requestparameters, '$.name'),
                      json_format(json_extract(requestparameters, '$.secretIdList')))
      WHEN eventsource = 'ssm.amazonaws.com' AND eventname LIKE '%Parameter%'
        THEN coalesce(json_extract_scalar(requestparameters, '$.name'),
                      json_extract_scalar(requestparameters, '$.path'),
                      json_format(json_extract(requestparameters, '$.names')))
      WHEN eventname IN ('ModifySnapshotAttribute', 'CreateSnapshot', 'CopySnapshot', 'DeleteSnapshot',
                         'ResetSnapshotAttribute')
        THEN coalesce(json_extract_scalar(requestparameters, '$.snapshotId'),
                      json_extract_scalar(requestparameters, '$.sourceSnapshotId'))
      WHEN eventname IN ('ModifyImageAttribute', 'CopyImage', 'DeregisterImage', 'ResetImageAttribute')
        THEN coalesce(json_extract_scalar(requestparameters, '$.imageId'),
                      json_extract_scalar(requestparameters, '$.sourceImageId'))
      WHEN eventsource = 'rds.amazonaws.com' AND eventname LIKE '%Snapshot%'
        THEN coalesce(json_extract_scalar(requestparameters, '$.dBSnapshotIdentifier'),
                      json_extract_scalar(requestparameters, '$.dBClusterSnapshotIdentifier'))
      WHEN eventsource = 'dynamodb.amazonaws.com'
        THEN coalesce(json_extract_scalar(requestparameters, '$.tableName'),
                      json_extract_scalar(requestparameters, '$.tableArn'))
    END AS resource,
    CASE
      WHEN eventname = 'ModifySnapshotAttribute'
        THEN json_format(json_extract(requestparameters, '$.createVolumePermission'))
      WHEN eventname = 'ModifyImageAttribute' THEN json_format(json_extract(requestparameters, '$.launchPermission'))
      WHEN eventname IN ('ModifyDBSnapshotAttribute', 'ModifyDBClusterSnapshotAttribute')
        THEN json_format(json_extract(requestparameters, '$.valuesToAdd'))
    END AS shared
  FROM delivered
  WHERE delivery = 1 OR eventid IS NULL
)
SELECT
  accesskeyid,
  eventsource,
  eventname,
  resource,
  count(*) AS events,
  count_if(errorcode IS NOT NULL) AS errors,
  min_by(eventtime, instant) AS first_seen,
  max_by(eventtime, instant) AS last_seen,
  CAST(sum(try_cast(json_extract_scalar(additionaleventdata, '$.bytesTransferredOut') AS double)) AS bigint) AS bytes,
  array_join(array_distinct(array_agg(shared)), ' ') AS detail
FROM touched
WHERE resource IS NOT NULL  -- and the calls on secrets and parameters that name none (refused, throttled, listed)
   OR eventsource = 'secretsmanager.amazonaws.com' OR eventsource = 'ssm.amazonaws.com' AND eventname LIKE '%Parameter%'
GROUP BY accesskeyid, eventsource, eventname, resource
ORDER BY min(instant), accesskeyid, eventsource, eventname, resource