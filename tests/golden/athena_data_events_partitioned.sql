SELECT eventsource, eventname, eventtime
FROM "security"."cloudtrail_logs"
WHERE eventsource = 's3.amazonaws.com'
  AND (eventcategory = 'Data'
       OR eventname IN ('GetObject', 'PutObject', 'HeadObject', 'DeleteObject', 'DeleteObjects', 'CopyObject',
                        'GetObjectAcl', 'PutObjectAcl', 'SelectObjectContent', 'UploadPart',
                        'CreateMultipartUpload', 'CompleteMultipartUpload', 'RestoreObject', 'GetObjectTagging',
                        'ListObjects', 'ListObjectsV2', 'ListObjectVersions'))
  AND "timestamp" BETWEEN '2023/07/10' AND '2023/07/12'
  AND try(from_iso8601_timestamp(eventtime)) >= from_iso8601_timestamp('2023-07-10T00:00:00.000Z')
  AND try(from_iso8601_timestamp(eventtime)) < from_iso8601_timestamp('2023-07-12T00:00:00.000Z')
LIMIT 1