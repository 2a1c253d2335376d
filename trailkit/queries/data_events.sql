-- data_events: whether the logs hold S3 data events at all (object reads and writes are logged only by trails
-- that select them): one such event, or none. Asked beside "objects", so that an empty answer is not read as
-- "nothing was read". LIMIT 1 lets an engine stop at the first one it meets.
-- Lines tagged "-- if: NAME" are kept only when parameter NAME is given; {partitions} is where an engine with
-- partitions bounds them (Athena: date, account, region).
-- columns: eventsource:string eventname:string eventtime:time
SELECT eventsource, eventname, eventtime
FROM cloudtrail
WHERE eventsource = 's3.amazonaws.com'
  AND (eventcategory = 'Data'
       OR eventname IN ('GetObject', 'PutObject', 'HeadObject', 'DeleteObject', 'DeleteObjects', 'CopyObject',
                        'GetObjectAcl', 'PutObjectAcl', 'SelectObjectContent', 'UploadPart',
                        'CreateMultipartUpload', 'CompleteMultipartUpload', 'RestoreObject', 'GetObjectTagging',
                        'ListObjects', 'ListObjectsV2', 'ListObjectVersions'))
  AND recipientaccountid IN (:accounts)                                         -- if: accounts
  AND awsregion IN (:regions)                                                   -- if: regions
  {partitions}
  AND try(from_iso8601_timestamp(eventtime)) >= from_iso8601_timestamp(:start)  -- if: start
  AND try(from_iso8601_timestamp(eventtime)) < from_iso8601_timestamp(:end)     -- if: end
LIMIT 1
