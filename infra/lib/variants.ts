/**
 * Variant stacks used by the tests (cdk-nag and cfn-lint run over them too): every
 * optional feature of the construct in at least one synthesized template, each wired so it
 * would work as written (a route to S3 and SNS from the function's subnets).
 */
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import { migratorLambdaCode } from './code';
import { MigratorVpcEndpoints } from './endpoints';
import { MigratorExampleStack } from './example-stack';
import { PrismaMigrator } from './prisma-migrator';
import { BlockOn, MigratorEngine, MigratorTrigger } from './types';

export interface Variants {
  readonly mysql: MigratorExampleStack;
  readonly s3Notification: MigratorExampleStack;
  readonly slackAndLong: MigratorExampleStack;
  readonly secretAuth: MigratorExampleStack;
  readonly existingResources: Stack;
  readonly aurora: Stack;
  readonly fleet: Stack;
}

export function addVariantStacks(app: App): Variants {
  const mysql = new MigratorExampleStack(app, 'Variant-MySQL', { stage: 'CODE', engine: MigratorEngine.MYSQL });

  const s3Notification = new MigratorExampleStack(app, 'Variant-S3Notification', {
    stage: 'CODE',
    migrator: { trigger: MigratorTrigger.S3_NOTIFICATION, tracing: true, blockOn: BlockOn.WARNING },
  });

  // PROD with Slack, long migrations, one customer-managed key (bucket, logs, lock table),
  // Object Lock, and an uploader and a planner from a tooling account.
  const slackAndLong = new MigratorExampleStack(app, 'Variant-SlackLong', {
    stage: 'PROD',
    customerManagedKeys: true,
    migrator: {
      slack: { workspaceId: 'T0123ABCD', channelId: 'C0123ABCD' },
      longMigrations: true,
      statementLockTimeout: Duration.seconds(30),
      taskCpu: 1024,
      taskMemoryMiB: 4096,
      taskTimeout: Duration.hours(4),
    },
  });

  slackAndLong.migrator.grantUpload(iam.Role.fromRoleArn(slackAndLong, 'ToolingCi', 'arn:aws:iam::210987654321:role/ci-deploy'));
  slackAndLong.migrator.grantInvoke(iam.Role.fromRoleArn(slackAndLong, 'ToolingPlanner', 'arn:aws:iam::210987654321:role/migration-planner'));

  // Secret auth: the database secret lives in this stack, encrypted with a CMK.
  const secretAuth = new MigratorExampleStack(app, 'Variant-SecretAuth', { stage: 'CODE', secretsManagerEndpoint: true });
  const secretKey = new kms.Key(secretAuth, 'SecretKey', { enableKeyRotation: true });
  const secret = secretsmanager.Secret.fromSecretAttributes(secretAuth, 'DbSecret', {
    secretCompleteArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:migrator/code/db-AbCdEf',
    encryptionKey: secretKey,
  });
  const secretMigrator = new PrismaMigrator(secretAuth, 'SecretMigrator', {
    stage: 'CODE',
    production: false,
    artifactKey: 'deploy/CODE/other-app/prisma.zip',
    database: secretAuth.database,
    databaseUser: 'migrator_secret',
    databaseName: 'app',
    databaseSecret: secret,
    vpc: secretAuth.vpc,
    vpcSubnets: { subnetGroupName: 'app' },
    endpoints: secretAuth.endpoints,
    uploaders: [secretAuth.uploaderRole],
    code: migratorLambdaCode(),
  });
  secretMigrator.grantConfirm(secretAuth.operatorRole);

  // Existing bucket (KMS), topic (KMS) and an imported PostgreSQL instance, in isolated
  // subnets reached through endpoints.
  const existingResources = new Stack(app, 'Variant-Existing');
  const vpc = new ec2.Vpc(existingResources, 'Vpc', {
    maxAzs: 2,
    natGateways: 0,
    subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
    flowLogs: { all: {} },
  });
  // S3 through the free gateway endpoint (eu-west-1's S3 prefix list), SNS through an interface endpoint.
  const endpoints = new MigratorVpcEndpoints(existingResources, 'Endpoints', {
    vpc,
    subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    s3GatewayPrefixListId: 'pl-6da54004',
  });
  const bucketKey = kms.Key.fromKeyArn(
    existingResources,
    'BucketKey',
    'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555',
  );
  const bucket = s3.Bucket.fromBucketAttributes(existingResources, 'Bucket', {
    bucketName: 'acme-prisma-artifacts',
    encryptionKey: bucketKey,
  });
  const topic = sns.Topic.fromTopicAttributes(existingResources, 'Topic', {
    topicArn: 'arn:aws:sns:eu-west-1:123456789012:deployments',
    keyArn: 'arn:aws:kms:eu-west-1:123456789012:key/66666666-7777-8888-9999-000000000000',
  });
  const alarmTopic = sns.Topic.fromTopicArn(existingResources, 'AlarmTopic', 'arn:aws:sns:eu-west-1:123456789012:platform-alarms');
  const dbSg = ec2.SecurityGroup.fromSecurityGroupId(existingResources, 'DbSg', 'sg-0123456789abcdef0');
  const imported = rds.DatabaseInstance.fromDatabaseInstanceAttributes(existingResources, 'Db', {
    instanceIdentifier: 'acme-prod',
    instanceEndpointAddress: 'acme-prod.abcdefghijkl.eu-west-1.rds.amazonaws.com',
    port: 5432,
    securityGroups: [dbSg],
    instanceResourceId: 'db-ABCDEFGHIJKLMNOPQRSTUVWXY0',
    engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_16_13 }),
  });
  new PrismaMigrator(existingResources, 'Migrator', {
    stage: 'PROD',
    production: true,
    artifactBucket: bucket,
    artifactKey: 'deploy/PROD/*/prisma.zip',
    allowKeyPattern: true,
    topic,
    alarmTopic,
    database: imported,
    // The database team manages its security group: only the migrator's egress is added.
    databaseIngress: false,
    databaseUser: 'migrator',
    databaseName: 'acme',
    schema: 'app',
    vpc,
    vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    endpoints,
    autoApply: false,
    timeout: Duration.minutes(15),
    memorySize: 512,
    code: migratorLambdaCode(),
  });

  // Aurora MySQL cluster (engine and port inferred; cluster resource id), private subnets
  // with a NAT gateway: HTTPS egress goes out through NAT.
  const aurora = new Stack(app, 'Variant-Aurora');
  const avpc = new ec2.Vpc(aurora, 'Vpc', { maxAzs: 2, natGateways: 1, flowLogs: { all: {} } });
  const cluster = new rds.DatabaseCluster(aurora, 'Cluster', {
    engine: rds.DatabaseClusterEngine.auroraMysql({ version: rds.AuroraMysqlEngineVersion.VER_3_08_0 }),
    writer: rds.ClusterInstance.serverlessV2('writer'),
    vpc: avpc,
    iamAuthentication: true,
    storageEncrypted: true,
    deletionProtection: true,
    port: 3307,
    backtrackWindow: Duration.hours(24),
    credentials: rds.Credentials.fromUsername('admin'),
    manageMasterUserPassword: true,
    cloudwatchLogsExports: [],
  });
  new PrismaMigrator(aurora, 'Migrator', {
    stage: 'CODE',
    production: false,
    artifactKey: 'deploy/CODE/my-app/prisma.zip',
    database: cluster,
    databaseUser: 'migrator',
    databaseName: 'app',
    vpc: avpc,
    code: migratorLambdaCode(),
  });

  // A fleet: uploads start the fleet's state machine (canary, waves, halt flag, rollup); the
  // targets object in an existing versioned bucket; IAM logins on two servers and one secret.
  const fleet = new Stack(app, 'Variant-Fleet');
  const fvpc = new ec2.Vpc(fleet, 'Vpc', { maxAzs: 2, natGateways: 1, flowLogs: { all: {} } });
  const fleetDb = rds.DatabaseInstance.fromDatabaseInstanceAttributes(fleet, 'Db', {
    instanceIdentifier: 'tenants-control',
    instanceEndpointAddress: 'tenants-control.abcdefghijkl.eu-west-1.rds.amazonaws.com',
    port: 5432,
    securityGroups: [ec2.SecurityGroup.fromSecurityGroupId(fleet, 'DbSg', 'sg-0fedcba9876543210')],
    instanceResourceId: 'db-CONTROL0000000000000000000',
    engine: rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_16_13 }),
  });
  new PrismaMigrator(fleet, 'Migrator', {
    stage: 'CODE',
    production: false,
    artifactKey: 'deploy/CODE/tenants/prisma.zip',
    database: fleetDb,
    databaseIngress: false,
    databaseUser: 'migrator',
    databaseName: 'control',
    vpc: fvpc,
    code: migratorLambdaCode(),
    fleet: {
      targetsBucket: s3.Bucket.fromBucketName(fleet, 'Targets', 'acme-fleet-targets'),
      targetsKey: 'fleets/CODE/tenants.jsonl',
      canary: 2,
      maxConcurrency: 20,
      iamLogins: [
        { resourceId: 'db-TENANTSEU00000000000000000', user: 'migrator' },
        { resourceId: 'cluster-TENANTSUS000000000000000', user: 'migrator' },
      ],
      secrets: [secretsmanager.Secret.fromSecretCompleteArn(fleet, 'TenantSecret', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:tenants/legacy-AbCdEf')],
    },
  });

  return { mysql, s3Notification, slackAndLong, secretAuth, existingResources, aurora, fleet };
}
