WITH delivered AS (
  SELECT
    *,
    try(from_iso8601_timestamp(eventtime)) AS instant,
    row_number() OVER (PARTITION BY eventid ORDER BY eventtime) AS delivery
  FROM "security"."cloudtrail_logs"
  WHERE useridentity.accesskeyid IN ('AKIATFQR7NSC8Q4X20BJ')
    AND "timestamp" BETWEEN '2023/07/10' AND '2023/07/12'
    AND try(from_iso8601_timestamp(eventtime)) >= from_iso8601_timestamp('2023-07-10T00:00:00.000Z')
    AND try(from_iso8601_timestamp(eventtime)) < from_iso8601_timestamp('2023-07-12T00:00:00.000Z')
),
tested AS (
  SELECT
    useridentity.accesskeyid AS accesskeyid,
    eventid,
    eventtime,
    instant,
    CASE WHEN coalesce(lower(eventname) = 'deleteguardrail', false) AND coalesce(lower(eventsource) = 'bedrock.amazonaws.com', false) THEN 1 ELSE 0 END AS r0,
    CASE WHEN coalesce(lower(eventname) = 'updateguardrail', false) AND coalesce(lower(eventsource) = 'bedrock.amazonaws.com', false) THEN 1 ELSE 0 END AS r1,
    CASE WHEN coalesce(lower(eventname) = 'deletebucket', false) AND (coalesce(lower(errorcode) = 'success', false) OR errorcode IS NULL) THEN 1 ELSE 0 END AS r2,
    CASE WHEN coalesce(lower(eventname) = 'consolelogin', false) AND coalesce(lower(errormessage) = 'failed authentication', false) THEN 1 ELSE 0 END AS r3,
    CASE WHEN coalesce(lower(eventname) = 'consolelogin', false) AND coalesce(lower(coalesce(json_extract_scalar(additionaleventdata, '$.MFAUsed'), json_format(json_extract(additionaleventdata, '$.MFAUsed')))) = 'no', false) AND coalesce(lower(coalesce(json_extract_scalar(responseelements, '$.ConsoleLogin'), json_format(json_extract(responseelements, '$.ConsoleLogin')))) = 'success', false) THEN 1 ELSE 0 END AS r4,
    CASE WHEN coalesce(lower(eventsource) = 'cloudtrail.amazonaws.com', false) AND (coalesce(lower(eventname) IN ('stoplogging', 'updatetrail', 'deletetrail'), false)) THEN 1 ELSE 0 END AS r5,
    CASE WHEN coalesce(lower(eventsource) = 'guardduty.amazonaws.com', false) AND (coalesce(lower(eventname) = 'deletedetector', false) OR coalesce(lower(eventname) = 'updatedetector', false) AND coalesce(lower(coalesce(json_extract_scalar(requestparameters, '$.enable'), json_format(json_extract(requestparameters, '$.enable')))) = 'false', false)) AND (coalesce(lower(errorcode) = 'success', false) OR errorcode IS NULL) THEN 1 ELSE 0 END AS r6,
    CASE WHEN coalesce(regexp_like(useridentity.arn, '.+:assumed-role/aws:.+'), false) AND NOT (coalesce(lower(eventsource) = 'ssm.amazonaws.com', false) OR coalesce(lower(eventname) = 'registermanagedinstance', false) OR coalesce(lower(sourceipaddress) = 'aws internal', false)) THEN 1 ELSE 0 END AS r7,
    CASE WHEN coalesce(lower(eventsource) = 'ec2.amazonaws.com', false) AND coalesce(lower(eventname) = 'createnetworkaclentry', false) THEN 1 ELSE 0 END AS r8,
    CASE WHEN coalesce(lower(eventsource) = 'ec2.amazonaws.com', false) AND coalesce(lower(eventname) = 'createroute', false) THEN 1 ELSE 0 END AS r9,
    CASE WHEN coalesce(lower(useragent) = 'trufflehog', false) THEN 1 ELSE 0 END AS r10,
    CASE WHEN coalesce(lower(eventname) = 'enableregion', false) AND coalesce(lower(eventsource) = 'account.amazonaws.com', false) THEN 1 ELSE 0 END AS r11,
    CASE WHEN coalesce(lower(eventsource) = 'ec2.amazonaws.com', false) AND (coalesce(lower(eventname) IN ('authorizesecuritygroupegress', 'authorizesecuritygroupingress', 'revokesecuritygroupegress', 'revokesecuritygroupingress'), false)) THEN 1 ELSE 0 END AS r12,
    CASE WHEN coalesce(lower(eventsource) = 'elasticloadbalancing.amazonaws.com', false) AND (coalesce(lower(eventname) IN ('applysecuritygroupstoloadbalancer', 'setsecuritygroups'), false)) THEN 1 ELSE 0 END AS r13,
    CASE WHEN coalesce(lower(eventsource) = 'rds.amazonaws.com', false) AND (coalesce(lower(eventname) IN ('authorizedbsecuritygroupingress', 'createdbsecuritygroup', 'deletedbsecuritygroup', 'revokedbsecuritygroupingress'), false)) THEN 1 ELSE 0 END AS r14,
    CASE WHEN coalesce(lower(eventname) = 'sendcommand', false) AND coalesce(lower(eventsource) = 'ssm.amazonaws.com', false) AND (coalesce(lower(errorcode) = 'success', false) OR errorcode IS NULL) THEN 1 ELSE 0 END AS r15,
    CASE WHEN coalesce(lower(eventname) = 'deleteflowlogs', false) AND (coalesce(lower(errorcode) = 'success', false) OR errorcode IS NULL) THEN 1 ELSE 0 END AS r16,
    CASE WHEN coalesce(lower(eventsource) = 'config.amazonaws.com', false) AND (coalesce(lower(eventname) IN ('deletedeliverychannel', 'stopconfigurationrecorder'), false)) THEN 1 ELSE 0 END AS r17,
    CASE WHEN coalesce(lower(eventsource) = 'signin.amazonaws.com', false) AND coalesce(lower(eventname) = 'getsignintoken', false) AND NOT coalesce(lower(useragent) LIKE '%jersey/${project.version}%' ESCAPE '\', false) THEN 1 ELSE 0 END AS r18,
    CASE WHEN coalesce(lower(eventsource) = 'ses.amazonaws.com', false) AND coalesce(lower(eventname) = 'deleteidentity', false) THEN 1 ELSE 0 END AS r19,
    CASE WHEN coalesce(lower(eventsource) = 's3.amazonaws.com', false) AND coalesce(lower(eventname) = 'putbucketversioning', false) AND coalesce(lower(requestparameters) LIKE '%suspended%' ESCAPE '\', false) THEN 1 ELSE 0 END AS r20,
    CASE WHEN coalesce(lower(eventsource) = 'ec2.amazonaws.com', false) AND coalesce(lower(eventname) = 'disableebsencryptionbydefault', false) THEN 1 ELSE 0 END AS r21,
    CASE WHEN coalesce(lower(eventsource) = 'ec2.amazonaws.com', false) AND coalesce(lower(eventname) = 'importkeypair', false) THEN 1 ELSE 0 END AS r22,
    CASE WHEN coalesce(lower(eventsource) = 'ec2.amazonaws.com', false) AND coalesce(lower(coalesce(json_extract_scalar(requestparameters, '$.attribute'), json_format(json_extract(requestparameters, '$.attribute')))) = 'userdata', false) AND coalesce(lower(eventname) = 'modifyinstanceattribute', false) THEN 1 ELSE 0 END AS r23,
    CASE WHEN coalesce(lower(eventname) = 'createinstanceexporttask', false) AND coalesce(lower(eventsource) = 'ec2.amazonaws.com', false) AND NOT (errormessage IS NOT NULL OR errorcode IS NOT NULL OR coalesce(lower(responseelements) LIKE '%failure%' ESCAPE '\', false)) THEN 1 ELSE 0 END AS r24,
    CASE WHEN coalesce(lower(eventsource) = 'ecs.amazonaws.com', false) AND (coalesce(lower(eventname) IN ('describetaskdefinition', 'registertaskdefinition', 'runtask'), false)) AND coalesce(lower(coalesce(json_extract_scalar(requestparameters, '$.containerDefinitions.command'), json_format(json_extract(requestparameters, '$.containerDefinitions.command')))) LIKE '%$aws\_container\_credentials\_relative\_uri%' ESCAPE '\', false) THEN 1 ELSE 0 END AS r25,
    CASE WHEN coalesce(lower(eventsource) = 'elasticfilesystem.amazonaws.com', false) AND coalesce(lower(eventname) = 'deletefilesystem', false) THEN 1 ELSE 0 END AS r26,
    CASE WHEN coalesce(lower(eventsource) = 'elasticfilesystem.amazonaws.com', false) AND coalesce(lower(eventname) = 'deletemounttarget', false) THEN 1 ELSE 0 END AS r27,
    CASE WHEN coalesce(lower(eventsource) = 'eks.amazonaws.com', false) AND (coalesce(lower(eventname) IN ('createcluster', 'deletecluster'), false)) THEN 1 ELSE 0 END AS r28,
    CASE WHEN coalesce(lower(eventsource) = 'elasticache.amazonaws.com', false) AND coalesce(lower(eventname) = 'createcachesecuritygroup', false) THEN 1 ELSE 0 END AS r29,
    CASE WHEN coalesce(lower(eventsource) = 'elasticache.amazonaws.com', false) AND (coalesce(lower(eventname) IN ('deletecachesecuritygroup', 'authorizecachesecuritygroupingress', 'revokecachesecuritygroupingress', 'authorizecachesecuritygroupegress', 'revokecachesecuritygroupegress'), false)) THEN 1 ELSE 0 END AS r30,
    CASE WHEN coalesce(lower(eventsource) = 's3.amazonaws.com', false) AND coalesce(lower(eventname) = 'listbuckets', false) AND NOT coalesce(lower(useridentity.type) = 'assumedrole', false) THEN 1 ELSE 0 END AS r31,
    CASE WHEN coalesce(lower(eventsource) = 'guardduty.amazonaws.com', false) AND coalesce(lower(eventname) = 'createipset', false) THEN 1 ELSE 0 END AS r32,
    CASE WHEN coalesce(lower(eventsource) = 'iam.amazonaws.com', false) AND coalesce(lower(eventname) = 'createaccesskey', false) AND NOT coalesce(lower(useridentity.arn) LIKE '%responseelements.accesskey.username%' ESCAPE '\', false) THEN 1 ELSE 0 END AS r33,
    CASE WHEN coalesce(lower(eventsource) = 'iam.amazonaws.com', false) AND (coalesce(lower(eventname) IN ('getloginprofile', 'createloginprofile'), false)) AND coalesce(lower(useragent) LIKE '%s3 browser%' ESCAPE '\', false) THEN 1 ELSE 0 END AS r34,
    CASE WHEN coalesce(lower(eventsource) = 'iam.amazonaws.com', false) AND coalesce(lower(eventname) = 'putuserpolicy', false) AND coalesce(lower(useragent) LIKE '%s3 browser%' ESCAPE '\', false) AND coalesce(lower(requestparameters) LIKE '%"arn:aws:s3:::<your-bucket-name>/%"%' ESCAPE '\', false) AND coalesce(lower(requestparameters) LIKE '%"s3:getobject"%' ESCAPE '\', false) AND coalesce(lower(requestparameters) LIKE '%"allow"%' ESCAPE '\', false) THEN 1 ELSE 0 END AS r35,
    CASE WHEN coalesce(lower(eventsource) = 'iam.amazonaws.com', false) AND (coalesce(lower(eventname) IN ('createuser', 'createaccesskey'), false)) AND coalesce(lower(useragent) LIKE '%s3 browser%' ESCAPE '\', false) THEN 1 ELSE 0 END AS r36,
    CASE WHEN coalesce(lower(eventsource) = 'kms.amazonaws.com', false) AND (coalesce(lower(eventname) IN ('importkeymaterial', 'deleteimportedkeymaterial'), false)) THEN 1 ELSE 0 END AS r37,
    CASE WHEN coalesce(lower(eventsource) = 'lambda.amazonaws.com', false) AND coalesce(lower(eventname) = 'createfunctionurlconfig', false) THEN 1 ELSE 0 END AS r38,
    CASE WHEN coalesce(lower(eventsource) = 'lambda.amazonaws.com', false) AND coalesce(lower(eventname) LIKE 'updatefunctionconfiguration%' ESCAPE '\', false) AND coalesce(json_extract_scalar(requestparameters, '$.layers'), json_format(json_extract(requestparameters, '$.layers'))) IS NOT NULL THEN 1 ELSE 0 END AS r39,
    CASE WHEN coalesce(lower(eventsource) = 'glue.amazonaws.com', false) AND (coalesce(lower(eventname) IN ('createdevendpoint', 'deletedevendpoint', 'updatedevendpoint'), false)) THEN 1 ELSE 0 END AS r40,
    CASE WHEN coalesce(lower(eventsource) = 'rds.amazonaws.com', false) AND coalesce(json_extract_scalar(responseelements, '$.pendingModifiedValues.masterUserPassword'), json_format(json_extract(responseelements, '$.pendingModifiedValues.masterUserPassword'))) IS NOT NULL AND coalesce(lower(eventname) = 'modifydbinstance', false) THEN 1 ELSE 0 END AS r41,
    CASE WHEN coalesce(lower(eventsource) = 'rds.amazonaws.com', false) AND (coalesce(lower(eventname) IN ('modifydbcluster', 'deletedbcluster'), false)) THEN 1 ELSE 0 END AS r42,
    CASE WHEN coalesce(lower(eventsource) = 'rds.amazonaws.com', false) AND coalesce(lower(coalesce(json_extract_scalar(responseelements, '$.publiclyAccessible'), json_format(json_extract(responseelements, '$.publiclyAccessible')))) = 'true', false) AND coalesce(lower(eventname) = 'restoredbinstancefromdbsnapshot', false) THEN 1 ELSE 0 END AS r43,
    CASE WHEN coalesce(lower(useridentity.type) = 'root', false) AND NOT coalesce(lower(eventtype) = 'awsserviceevent', false) THEN 1 ELSE 0 END AS r44,
    CASE WHEN coalesce(lower(eventsource) = 'route53.amazonaws.com', false) AND coalesce(lower(eventname) = 'disabledomaintransferlock', false) THEN 1 ELSE 0 END AS r45,
    CASE WHEN coalesce(lower(eventsource) = 'route53.amazonaws.com', false) AND coalesce(lower(eventname) = 'transferdomaintoanotherawsaccount', false) THEN 1 ELSE 0 END AS r46,
    CASE WHEN coalesce(lower(eventsource) = 's3.amazonaws.com', false) AND (coalesce(lower(eventname) IN ('putbucketlogging', 'putbucketwebsite', 'putencryptionconfiguration', 'putlifecycleconfiguration', 'putreplicationconfiguration', 'replicateobject', 'restoreobject'), false)) THEN 1 ELSE 0 END AS r47,
    CASE WHEN coalesce(lower(eventsource) = 'securityhub.amazonaws.com', false) AND (coalesce(lower(eventname) IN ('batchupdatefindings', 'deleteinsight', 'updatefindings', 'updateinsight'), false)) THEN 1 ELSE 0 END AS r48,
    CASE WHEN coalesce(lower(eventsource) = 'ec2.amazonaws.com', false) AND coalesce(lower(eventname) = 'modifysnapshotattribute', false) THEN 1 ELSE 0 END AS r49,
    CASE WHEN (coalesce(lower(eventsource) IN ('sso-directory.amazonaws.com', 'sso.amazonaws.com'), false)) AND (coalesce(lower(eventname) IN ('associatedirectory', 'disableexternalidpconfigurationfordirectory', 'disassociatedirectory', 'enableexternalidpconfigurationfordirectory'), false)) THEN 1 ELSE 0 END AS r50,
    CASE WHEN coalesce(lower(useridentity.type) = 'assumedrole', false) AND coalesce(lower(useridentity.sessioncontext.sessionissuer.type) = 'role', false) THEN 1 ELSE 0 END AS r51,
    CASE WHEN coalesce(lower(eventsource) = 'sts.amazonaws.com', false) AND coalesce(lower(eventname) = 'getcalleridentity', false) AND coalesce(lower(useragent) LIKE '%trufflehog%' ESCAPE '\', false) THEN 1 ELSE 0 END AS r52,
    CASE WHEN coalesce(lower(eventsource) = 'sts.amazonaws.com', false) AND coalesce(lower(eventname) = 'getsessiontoken', false) AND coalesce(lower(useridentity.type) = 'iamuser', false) THEN 1 ELSE 0 END AS r53,
    CASE WHEN coalesce(lower(eventsource) = 'sts.amazonaws.com', false) AND coalesce(lower(eventname) = 'assumerolewithsaml', false) OR coalesce(lower(eventsource) = 'iam.amazonaws.com', false) AND coalesce(lower(eventname) = 'updatesamlprovider', false) THEN 1 ELSE 0 END AS r54,
    CASE WHEN coalesce(lower(eventsource) = 'iam.amazonaws.com', false) AND coalesce(lower(eventname) = 'updateloginprofile', false) AND NOT coalesce(lower(useridentity.arn) = lower(coalesce(json_extract_scalar(requestparameters, '$.userName'), json_format(json_extract(requestparameters, '$.userName')))), false) THEN 1 ELSE 0 END AS r55
  FROM delivered
  WHERE delivery = 1 OR eventid IS NULL
)
SELECT * FROM tested
WHERE r0 = 1 OR r1 = 1 OR r2 = 1 OR r3 = 1 OR r4 = 1 OR r5 = 1 OR r6 = 1 OR r7 = 1 OR r8 = 1 OR r9 = 1 OR r10 = 1 OR r11 = 1 OR r12 = 1 OR r13 = 1 OR r14 = 1 OR r15 = 1 OR r16 = 1 OR r17 = 1 OR r18 = 1 OR r19 = 1 OR r20 = 1 OR r21 = 1 OR r22 = 1 OR r23 = 1 OR r24 = 1 OR r25 = 1 OR r26 = 1 OR r27 = 1 OR r28 = 1 OR r29 = 1 OR r30 = 1 OR r31 = 1 OR r32 = 1 OR r33 = 1 OR r34 = 1 OR r35 = 1 OR r36 = 1 OR r37 = 1 OR r38 = 1 OR r39 = 1 OR r40 = 1 OR r41 = 1 OR r42 = 1 OR r43 = 1 OR r44 = 1 OR r45 = 1 OR r46 = 1 OR r47 = 1 OR r48 = 1 OR r49 = 1 OR r50 = 1 OR r51 = 1 OR r52 = 1 OR r53 = 1 OR r54 = 1 OR r55 = 1
ORDER BY instant, eventid