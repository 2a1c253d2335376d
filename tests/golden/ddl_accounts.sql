CREATE EXTERNAL TABLE `security`.`trail` (
  eventversion string,
  useridentity struct<type:string, principalid:string, arn:string, accountid:string, invokedby:string, accesskeyid:string, username:string, onbehalfof:struct<userid:string, identitystorearn:string>, sessioncontext:struct<attributes:struct<mfaauthenticated:string, creationdate:string>, sessionissuer:struct<type:string, principalid:string, arn:string, accountid:string, username:string>, ec2roledelivery:string, webidfederationdata:struct<federatedprovider:string, attributes:map<string,string>>, sourceidentity:string>>,
  eventtime string,
  eventsource string,
  eventname string,
  awsregion string,
  sourceipaddress string,
  useragent string,
  errorcode string,
  errormessage string,
  requestparameters string,
  responseelements string,
  additionaleventdata string,
  requestid string,
  eventid string,
  readonly string,
  resources array<struct<arn:string, accountid:string, type:string>>,
  eventtype string,
  apiversion string,
  recipientaccountid string,
  serviceeventdetails string,
  sharedeventid string,
  vpcendpointid string,
  vpcendpointaccountid string,
  eventcategory string,
  addendum struct<reason:string, updatedfields:string, originalrequestid:string, originaleventid:string>,
  sessioncredentialfromconsole string,
  edgedevicedetails string,
  tlsdetails struct<tlsversion:string, ciphersuite:string, clientprovidedhostheader:string>,
  managementevent string
)
PARTITIONED BY (`account` string, `region` string, `date` string)
ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'
STORED AS INPUTFORMAT 'com.amazon.emr.cloudtrail.CloudTrailInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://acme-trail/audit/AWSLogs/'
TBLPROPERTIES (
  'projection.enabled'='true',
  'projection.account.type'='enum',
  'projection.account.values'='111122223333,444455556666',
  'projection.region.type'='enum',
  'projection.region.values'='us-east-1,eu-west-1',
  'projection.date.format'='yyyy/MM/dd',
  'projection.date.interval'='1',
  'projection.date.interval.unit'='DAYS',
  'projection.date.range'='2023/01/15,NOW',
  'projection.date.type'='date',
  'storage.location.template'='s3://acme-trail/audit/AWSLogs/${account}/CloudTrail/${region}/${date}'
)
