import {
  ArnFormat,
  Aws,
  CfnOutput,
  Duration,
  Fn,
  Lazy,
  Names,
  RemovalPolicy,
  Stack,
  Token,
  Tokenization,
  Validations,
} from 'aws-cdk-lib';
import * as chatbot from 'aws-cdk-lib/aws-chatbot';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { MigratorEndpoints } from './endpoints';
import { LongMigrations } from './long-migrations';
import { nagFlatten } from './nag-util';
import {
  BlockOn,
  METRIC_NAMESPACE,
  MIGRATOR_CONTAINER_NAME,
  MigratorEngine,
  MigratorTrigger,
  NOT_APPLIED_METRIC,
  NOT_APPLIED_STATUSES,
} from './types';
import { validateProps } from './validate';

export { BlockOn, MIGRATOR_CONTAINER_NAME, MigratorEngine, MigratorTrigger } from './types';

export interface SlackChannelProps {
  /** The Slack workspace (team) id, as authorised once in the AWS Chatbot console, e.g. `T0123ABCD`. */
  readonly workspaceId: string;
  /** The Slack channel id, e.g. `C0123ABCD`. */
  readonly channelId: string;
  /**
   * Ceiling of what anyone in the channel can do through Chatbot.
   * @default [CloudWatchReadOnlyAccess] (the channel only receives notifications)
   */
  readonly guardrailPolicies?: iam.IManagedPolicy[];
}

export interface PrismaMigratorProps {
  /** Stage name, e.g. `CODE` or `PROD`. Every name, grant, key and the artifact key are scoped to it. */
  readonly stage: string;
  /**
   * Whether this stage is production: decides the defaults of `autoApply` (false),
   * `logRetention` (3 months) and `removalPolicy` (RETAIN).
   * @default stage === 'PROD'
   */
  readonly production?: boolean;
  /**
   * Bucket the CI uploads `prisma.zip` to. An existing bucket must have
   * "Amazon EventBridge notifications" turned on for the default trigger, and its
   * bucket policy is not managed here (restrict uploads yourself).
   * @default a new bucket: versioned, SSE-S3, SSL-only, public access blocked,
   *          noncurrent versions expired after 30 days, access-logged, uploads only by `uploaders`
   */
  readonly artifactBucket?: s3.IBucket;
  /**
   * Object key of the artifact, containing the stage as a path segment, e.g.
   * `deploy/PROD/my-app/prisma.zip`. A pattern (`deploy/PROD/*\/prisma.zip`, `*` within one
   * segment) needs `allowKeyPattern`.
   */
  readonly artifactKey: string;
  /** Accept a `*` pattern as `artifactKey` (one database then takes every matching app's artifact). @default false */
  readonly allowKeyPattern?: boolean;
  /**
   * Principals (roles or users) allowed to upload the artifact; everyone else is denied
   * `s3:PutObject` on the key by the bucket policy. More can be added with `grantUpload()`.
   * @default none (only the account root can upload)
   */
  readonly uploaders?: iam.IGrantable[];
  /** The database: an RDS instance (PostgreSQL, MySQL, MariaDB) or an Aurora cluster. */
  readonly database: rds.IDatabaseInstance | rds.IDatabaseCluster;
  /**
   * `DbiResourceId` (`db-…`, instance) or `DbClusterResourceId` (`cluster-…`) used in the
   * `rds-db:connect` ARN. Only needed for an imported instance created without `instanceResourceId`.
   * @default taken from `database`
   */
  readonly databaseResourceId?: string;
  /** @default inferred from `database.engine` when known, else POSTGRESQL */
  readonly engine?: MigratorEngine;
  /** Database user the function logs in as (IAM auth: granted `rds_iam` / `IDENTIFIED WITH AWSAuthenticationPlugin`). Master user names are refused. */
  readonly databaseUser: string;
  /** Accept a master/superuser name as `databaseUser`. @default false */
  readonly allowMasterUser?: boolean;
  readonly databaseName: string;
  /** Schema the migrations apply to (`DB_SCHEMA`). @default `public` (PostgreSQL), `databaseName` (MySQL) */
  readonly schema?: string;
  /** Use Secrets Manager credentials (`DB_AUTH=secret`) instead of IAM authentication. @default IAM authentication */
  readonly databaseSecret?: secretsmanager.ISecret;
  readonly vpc: ec2.IVpc;
  /** Subnets of the function (and task). Isolated subnets need `endpoints`. @default private subnets with egress */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Interface endpoints to reach AWS through (isolated subnets). The security group then
   * allows HTTPS to these endpoints only.
   * @default none: HTTPS to 0.0.0.0/0 (through the subnets' NAT gateway)
   */
  readonly endpoints?: MigratorEndpoints;
  /** @default a new security group (egress: the database port and HTTPS to AWS) */
  readonly securityGroup?: ec2.ISecurityGroup;
  /** @default a new role with inline least-privilege grants */
  readonly role?: iam.IRole;
  /** Topic for plan / apply / failure notifications and the alarms. @default a new topic, new KMS key */
  readonly topic?: sns.ITopic;
  /** @default a new SQS queue (SSE-SQS, SSL only, 14 days) */
  readonly deadLetterQueue?: sqs.IQueue;
  /** The function's log group (the metric filter is added to it). @default a new one with `logRetention` */
  readonly logGroup?: logs.ILogGroup;
  /** Apply on upload (`AUTO_APPLY`); otherwise an upload only plans. @default !production */
  readonly autoApply?: boolean;
  /** Which preflight findings block an upload-triggered deploy (`BLOCK_ON`). @default BlockOn.ERROR */
  readonly blockOn?: BlockOn;
  /** @default Duration.minutes(5); at most 15 minutes */
  readonly timeout?: Duration;
  /** @default 256 */
  readonly memorySize?: number;
  /** @default MigratorTrigger.EVENTBRIDGE */
  readonly trigger?: MigratorTrigger;
  /** Send the topic's messages to Slack through an AWS Chatbot channel configuration. */
  readonly slack?: SlackChannelProps;
  /**
   * Uploads start a Fargate task (one at a time, through a state machine) instead of the
   * function; the function stays for short manual plans. Needs `containerImage`.
   * @default false
   */
  readonly longMigrations?: boolean;
  /** Image running `migrator handle-event`; needed with `longMigrations`. */
  readonly containerImage?: ecs.ContainerImage;
  /** Fargate CPU units of the task. @default 512 */
  readonly taskCpu?: number;
  /** Fargate memory of the task (MiB). @default 1024 */
  readonly taskMemoryMiB?: number;
  /** The task's deadline (`MAX_DURATION`). @default Duration.hours(2) */
  readonly taskTimeout?: Duration;
  /** How long to wait for the migration lock (`LOCK_TIMEOUT`); shorter than `timeout`. @default timeout − 60 s (at least half the timeout) */
  readonly lockTimeout?: Duration;
  /** Per-statement lock timeout (`STATEMENT_LOCK_TIMEOUT`). @default not set */
  readonly statementLockTimeout?: Duration;
  /** @default 'info' */
  readonly logLevel?: string;
  /** Retention of every log group of the construct. @default ONE_MONTH (production: THREE_MONTHS) */
  readonly logRetention?: logs.RetentionDays;
  /** Removal policy of log groups, the DLQ, the topic key and the lock table. @default RETAIN in production, else DESTROY */
  readonly removalPolicy?: RemovalPolicy;
  /** @default false */
  readonly tracing?: boolean;
  /** Maximum age of a queued event (uploads wait behind a running migration). @default Duration.hours(1) */
  readonly maxEventAge?: Duration;
  /** @default generated */
  readonly functionName?: string;
  /** The Lambda code (`provided.al2023` zip with `bootstrap`). */
  readonly code: lambda.Code;
  /** Prefix of the outputs' logical ids and export names (`<prefix>FunctionName`). @default the construct id */
  readonly outputPrefix?: string;
}

/**
 * S3-triggered Prisma Migrate runner for one stage:
 * upload → S3 → EventBridge rule (or S3 notification) → Lambda in the VPC (or a Fargate task) →
 * database; outcome → SNS → AWS Chatbot → Slack; failures → alarms on the same topic.
 */
export class PrismaMigrator extends Construct {
  public readonly stage: string;
  public readonly production: boolean;
  public readonly engine: MigratorEngine;
  public readonly function: lambda.Function;
  public readonly role: iam.IRole;
  public readonly securityGroup: ec2.ISecurityGroup;
  public readonly artifactBucket: s3.IBucket;
  public readonly artifactKey: string;
  public readonly topic: sns.ITopic;
  public readonly deadLetterQueue: sqs.IQueue;
  public readonly logGroup: logs.ILogGroup;
  /** The upload rule (EventBridge trigger only). */
  public readonly rule?: events.Rule;
  public readonly slackChannel?: chatbot.SlackChannelConfiguration;
  public readonly longMigrations?: LongMigrations;
  /** Every alarm of the construct (all notify the topic). */
  public readonly alarms: cloudwatch.Alarm[] = [];
  /** The environment given to the function (the task adds MAX_DURATION). */
  public readonly environment: Record<string, string>;

  private readonly props: PrismaMigratorProps;
  private readonly db: DatabaseDescription;
  private readonly topicKey?: kms.IKey;
  private readonly uploaderArns: string[] = [];
  private readonly removalPolicy: RemovalPolicy;
  private readonly logRetention: logs.RetentionDays;
  private readonly subnets: ec2.SubnetSelection;

  constructor(scope: Construct, id: string, props: PrismaMigratorProps) {
    super(scope, id);
    validateProps(this, props);
    this.props = props;
    this.stage = props.stage;
    this.production = props.production ?? props.stage === 'PROD';
    this.artifactKey = props.artifactKey;
    this.removalPolicy = props.removalPolicy ?? (this.production ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY);
    this.logRetention = props.logRetention ?? (this.production ? logs.RetentionDays.THREE_MONTHS : logs.RetentionDays.ONE_MONTH);
    this.subnets = props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };
    this.db = describeDatabase(this, props);
    this.engine = this.db.engine;

    this.artifactBucket = props.artifactBucket ?? this.createArtifactBucket();
    const topic = props.topic ? { topic: props.topic, key: props.topic.masterKey } : this.createTopic();
    this.topic = topic.topic;
    this.topicKey = topic.key;
    this.deadLetterQueue = props.deadLetterQueue ?? this.createDeadLetterQueue();
    this.environment = this.buildEnvironment();
    this.securityGroup = props.securityGroup ?? this.createSecurityGroup();
    this.db.allowFrom(this.securityGroup);
    this.logGroup = props.logGroup ?? new logs.LogGroup(this, 'LogGroup', { retention: this.logRetention, removalPolicy: this.removalPolicy });
    this.role = props.role ?? this.createRole();
    this.grantDataPlane(this.role);
    this.function = this.createFunction();
    this.rule = this.addTrigger();
    if (props.longMigrations) this.longMigrations = this.addLongMigrations(this.requireRule());
    if (props.slack) this.slackChannel = this.addSlack(props.slack);
    for (const uploader of props.uploaders ?? []) this.grantUpload(uploader);
    this.addAlarms();
    this.addOutputs();
  }

  // ------------------------------------------------------------------ grants (public)

  /**
   * Lets `grantee` (a role or user) upload the artifact: `s3:PutObject` on the key, and the
   * bucket policy stops denying it. Only principals granted here can upload.
   */
  public grantUpload(grantee: iam.IGrantable): iam.Grant {
    this.uploaderArns.push(principalArn(grantee));
    const grant = iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:PutObject'],
      resourceArns: [this.artifactBucket.arnForObjects(this.artifactKey)],
    });
    this.artifactBucket.encryptionKey?.grantEncrypt(grantee);
    return grant;
  }

  /**
   * Lets `grantee` invoke the function: plan, status and resolve payloads. The payload is not
   * an IAM condition, so Lambda itself cannot tell a plan from a confirm: whoever may invoke
   * may also send `"confirm": true`. Use `grantConfirm` for the people meant to confirm, and
   * keep `lambda:InvokeFunction` on `*` out of other policies.
   */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    // The unqualified function only (no `:*` versions/aliases: none are published).
    return iam.Grant.addToPrincipal({ grantee, actions: ['lambda:InvokeFunction'], resourceArns: [this.function.functionArn] });
  }

  /** Lets `grantee` confirm (apply) a plan: invoke the function and, with `longMigrations`, start the state machine. */
  public grantConfirm(grantee: iam.IGrantable): iam.Grant {
    const grant = this.grantInvoke(grantee);
    return this.longMigrations ? grant.combine(this.longMigrations.stateMachine.grantStartExecution(grantee)) : grant;
  }

  /** Outcomes that were not applied (status failed, blocked or incomplete), from the JSON outcome log line. */
  public metricMigrationsNotApplied(props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRIC_NAMESPACE,
      metricName: NOT_APPLIED_METRIC,
      dimensionsMap: { Stage: this.stage },
      statistic: cloudwatch.Stats.SUM,
      period: Duration.minutes(5),
      ...props,
    });
  }

  // ------------------------------------------------------------------ resources

  /** New artifact bucket: versioned, SSE-S3, SSL only, no public access, old versions expire, uploads only by uploaders. */
  private createArtifactBucket(): s3.Bucket {
    const accessLogs = new s3.Bucket(this, 'AccessLogsBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: false,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(365) }],
      // Buckets with objects cannot be deleted by CloudFormation: kept by `cdk destroy`.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const bucket = new s3.Bucket(this, 'ArtifactBucket', {
      versioned: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'artifact-bucket/',
      lifecycleRules: [
        {
          id: 'expire-old-artifact-versions',
          noncurrentVersionExpiration: Duration.days(30),
          noncurrentVersionsToRetain: 5,
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
      // The L2 flag (not a raw CfnBucket property): CDK's notifications custom resource then
      // keeps EventBridge on when anyone adds a notification to this bucket later.
      eventBridgeEnabled: (this.props.trigger ?? MigratorTrigger.EVENTBRIDGE) === MigratorTrigger.EVENTBRIDGE,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'OnlyUploadersWriteTheArtifact',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:PutObject'],
        resources: [bucket.arnForObjects(this.artifactKey)],
        conditions: {
          ArnNotEquals: {
            'aws:PrincipalArn': Lazy.list({
              produce: () => (this.uploaderArns.length > 0 ? this.uploaderArns : [`arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:root`]),
            }),
          },
        },
      }),
    );
    this.acknowledgeBucketNotificationsHandler();
    return bucket;
  }

  /** New topic, encrypted with a new key that alarms (CloudWatch) and rules (EventBridge) of this account may use. */
  private createTopic(): { topic: sns.Topic; key: kms.Key } {
    const key = new kms.Key(this, 'TopicKey', {
      description: `prisma-migrator ${this.stage} notifications topic`,
      enableKeyRotation: true,
      removalPolicy: this.removalPolicy,
      pendingWindow: Duration.days(7),
    });
    const sameAccount = { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } };
    const services = [new iam.ServicePrincipal('cloudwatch.amazonaws.com'), new iam.ServicePrincipal('events.amazonaws.com')];
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AlarmsAndRulesPublishToTheTopic',
        principals: services,
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: sameAccount,
      }),
    );
    const topic = new sns.Topic(this, 'Topic', {
      displayName: `prisma-migrator ${this.stage}`,
      masterKey: key,
      enforceSSL: true,
    });
    topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AlarmsAndRulesPublish',
        principals: services,
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: sameAccount,
      }),
    );
    return { topic, key };
  }

  private createDeadLetterQueue(): sqs.Queue {
    const queue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy: this.removalPolicy,
    });
    // cdk-nag SQS3 only recognises SQS redrive policies, not Lambda/EventBridge DLQs.
    Validations.of(queue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is the dead-letter destination itself (Lambda async on-failure destination and EventBridge target DLQ).',
    });
    return queue;
  }

  private buildEnvironment(): Record<string, string> {
    const p = this.props;
    const timeout = (p.timeout ?? Duration.minutes(5)).toSeconds();
    const lockTimeout = p.lockTimeout?.toSeconds() ?? Math.max(Math.ceil(timeout / 2), timeout - 60);
    return {
      STAGE: p.stage,
      DB_ENGINE: this.db.engine,
      DB_HOST: this.db.host,
      DB_PORT: this.db.port,
      DB_NAME: p.databaseName,
      DB_USER: p.databaseUser,
      DB_SCHEMA: p.schema ?? (this.db.engine === MigratorEngine.POSTGRESQL ? 'public' : p.databaseName),
      DB_AUTH: p.databaseSecret ? 'secret' : 'iam',
      ...(p.databaseSecret ? { DB_SECRET_ARN: p.databaseSecret.secretArn } : {}),
      ARTIFACT_BUCKET: this.artifactBucket.bucketName,
      ARTIFACT_KEY: p.artifactKey,
      TOPIC_ARN: this.topic.topicArn,
      AUTO_APPLY: (p.autoApply ?? !this.production) ? 'true' : 'false',
      BLOCK_ON: p.blockOn ?? BlockOn.ERROR,
      LOCK_TIMEOUT: String(lockTimeout),
      ...(p.statementLockTimeout ? { STATEMENT_LOCK_TIMEOUT: String(p.statementLockTimeout.toSeconds()) } : {}),
      RUST_LOG: p.logLevel ?? 'info',
    };
  }

  /** Egress: the database port (added by the database), HTTPS to the endpoints or, without them, through NAT. */
  private createSecurityGroup(): ec2.SecurityGroup {
    const sg = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: this.props.vpc,
      description: `prisma-migrator ${this.stage}: egress to the database and to AWS APIs (HTTPS)`,
      allowAllOutbound: false,
    });
    const endpoints = this.props.endpoints;
    if (endpoints) {
      const named: [string, ec2.IInterfaceVpcEndpoint | undefined][] = [
        ['S3', endpoints.s3],
        ['SNS', endpoints.sns],
        ['Secrets Manager', endpoints.secretsManager],
        ['ECR API', endpoints.ecrApi],
        ['ECR Docker', endpoints.ecrDocker],
        ['CloudWatch Logs', endpoints.logs],
      ];
      for (const [name, endpoint] of named) {
        if (endpoint) sg.connections.allowTo(endpoint, ec2.Port.tcp(443), `HTTPS to the ${name} endpoint`);
      }
    } else {
      // Public AWS endpoints through the subnets' NAT gateway have no fixed addresses.
      sg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS APIs (through NAT)');
    }
    return sg;
  }

  private createRole(): iam.Role {
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `prisma-migrator ${this.stage} function role`,
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'Logs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DescribeNetwork',
        actions: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'],
        resources: ['*'],
      }),
    );
    const stack = Stack.of(this);
    const ec2Arn = (resource: string, name: string) => stack.formatArn({ service: 'ec2', resource, resourceName: name });
    const networkInterfaces = ec2Arn('network-interface', '*');
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ManageNetworkInterfaces',
        actions: [
          'ec2:CreateNetworkInterface',
          'ec2:DeleteNetworkInterface',
          'ec2:AssignPrivateIpAddresses',
          'ec2:UnassignPrivateIpAddresses',
        ],
        // Only in the function's subnets, with its security group.
        resources: [
          networkInterfaces,
          ...this.props.vpc.selectSubnets(this.subnets).subnetIds.map((id) => ec2Arn('subnet', id)),
          ec2Arn('security-group', this.securityGroup.securityGroupId),
        ],
      }),
    );
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets (Lambda VPC ENI management) do not support resource-level permissions; AWS requires "*"' +
        (this.props.tracing ? '. Same for X-Ray PutTraceSegments/PutTelemetryRecords.' : '.'),
    });
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagFlatten(this, networkInterfaces)}]`,
      reason: "Lambda creates and deletes the function's ENIs itself: their ids only exist at run time (this account and region; subnets and security group are named exactly).",
    });
    return role;
  }

  /** Data-plane grants shared by the function role and the task role, scoped to this stage. */
  private grantDataPlane(grantee: iam.IGrantable): void {
    const add = (statement: iam.PolicyStatement) => grantee.grantPrincipal.addToPrincipalPolicy(statement);
    const region = Aws.REGION;
    add(
      new iam.PolicyStatement({
        sid: 'ReadArtifact',
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resources: [this.artifactBucket.arnForObjects(this.artifactKey)],
      }),
    );
    if (this.artifactBucket.encryptionKey) {
      add(
        new iam.PolicyStatement({
          sid: 'DecryptArtifact',
          actions: ['kms:Decrypt'],
          resources: [this.artifactBucket.encryptionKey.keyArn],
          conditions: {
            StringEquals: { 'kms:ViaService': `s3.${region}.amazonaws.com` },
            StringLike: {
              'kms:EncryptionContext:aws:s3:arn': [this.artifactBucket.bucketArn, this.artifactBucket.arnForObjects(this.artifactKey)],
            },
          },
        }),
      );
    }
    add(new iam.PolicyStatement({ sid: 'PublishNotifications', actions: ['sns:Publish'], resources: [this.topic.topicArn] }));
    if (this.topicKey) {
      add(
        new iam.PolicyStatement({
          sid: 'EncryptNotifications',
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [this.topicKey.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `sns.${region}.amazonaws.com` } },
        }),
      );
    }
    const secret = this.props.databaseSecret;
    if (secret) {
      add(
        new iam.PolicyStatement({
          sid: 'ReadDatabaseSecret',
          actions: ['secretsmanager:GetSecretValue'],
          resources: [secret.secretFullArn ?? `${secret.secretArn}-??????`],
        }),
      );
      if (secret.encryptionKey) {
        add(
          new iam.PolicyStatement({
            sid: 'DecryptDatabaseSecret',
            actions: ['kms:Decrypt'],
            resources: [secret.encryptionKey.keyArn],
            conditions: {
              StringEquals: {
                'kms:ViaService': `secretsmanager.${region}.amazonaws.com`,
                'kms:EncryptionContext:SecretARN': secret.secretFullArn ?? secret.secretArn,
              },
            },
          }),
        );
      }
    } else {
      add(
        new iam.PolicyStatement({
          sid: 'ConnectAsDatabaseUser',
          actions: ['rds-db:connect'],
          resources: [this.db.dbUserArn(this.props.databaseUser)],
        }),
      );
    }
    if (this.artifactKey.includes('*')) {
      Validations.of(grantee.grantPrincipal as unknown as Construct).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${nagFlatten(this, this.artifactBucket.arnForObjects(this.artifactKey))}]`,
        reason: "artifactKey is a pattern by configuration (allowKeyPattern: one artifact per app under the stage's prefix); the grant is read-only and limited to that stage's keys.",
      });
    }
  }

  private createFunction(): lambda.Function {
    const p = this.props;
    return new lambda.Function(this, 'Function', {
      functionName: p.functionName,
      description: `prisma-migrator ${this.stage}: applies Prisma Migrate artifacts from s3://<bucket>/${p.artifactKey}`,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.X86_64,
      handler: 'bootstrap',
      code: p.code,
      timeout: p.timeout ?? Duration.minutes(5),
      memorySize: p.memorySize ?? 256,
      role: this.role,
      environment: this.environment,
      vpc: p.vpc,
      vpcSubnets: this.subnets,
      securityGroups: [this.securityGroup],
      // One migration at a time per stage: further uploads queue (async invocations are
      // retried on throttle until maxEventAge) instead of racing.
      reservedConcurrentExecutions: 1,
      // A failed migration does not fail the invocation (the function reports it on the
      // topic and in its outcome log line, which the MigrationsNotApplied alarm watches):
      // retrying would re-run a failed migration, which Prisma's rules refuse (P3009) anyway.
      // What fails the invocation is a function error (e.g. the outcome could not be
      // published); those are not retried either and go to the DLQ.
      retryAttempts: 0,
      maxEventAge: p.maxEventAge ?? Duration.hours(1),
      onFailure: new destinations.SqsDestination(this.deadLetterQueue),
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      tracing: p.tracing ? lambda.Tracing.ACTIVE : lambda.Tracing.DISABLED,
    });
  }

  /** The upload trigger: an EventBridge rule (returned) or an S3 notification to the function. */
  private addTrigger(): events.Rule | undefined {
    const key = this.artifactKey;
    if ((this.props.trigger ?? MigratorTrigger.EVENTBRIDGE) === MigratorTrigger.S3_NOTIFICATION) {
      const { prefix, suffix } = notificationFilter(key);
      this.artifactBucket.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.LambdaDestination(this.function), { prefix, suffix });
      this.acknowledgeBucketNotificationsHandler();
      return undefined;
    }
    const rule = new events.Rule(this, 'UploadRule', {
      description: `prisma-migrator ${this.stage}: artifact uploaded to ${key}`,
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: [this.artifactBucket.bucketName] },
          object: { key: key.includes('*') ? events.Match.wildcard(key) : [key] },
        },
      },
    });
    if (!this.props.longMigrations) {
      rule.addTarget(
        new targets.LambdaFunction(this.function, {
          deadLetterQueue: this.deadLetterQueue,
          retryAttempts: 2,
          maxEventAge: Duration.hours(2),
        }),
      );
    }
    return rule;
  }

  private requireRule(): events.Rule {
    if (!this.rule) throw new Error(`PrismaMigrator (${this.node.path}): longMigrations needs the EventBridge trigger`);
    return this.rule;
  }

  private addLongMigrations(rule: events.Rule): LongMigrations {
    const p = this.props;
    if (!p.containerImage) throw new Error(`PrismaMigrator (${this.node.path}): longMigrations needs containerImage`);
    const long = new LongMigrations(this, 'Long', {
      stage: this.stage,
      vpc: p.vpc,
      subnets: this.subnets,
      securityGroup: this.securityGroup,
      image: p.containerImage,
      environment: this.environment,
      cpu: p.taskCpu ?? 512,
      memoryMiB: p.taskMemoryMiB ?? 1024,
      taskTimeout: p.taskTimeout ?? Duration.hours(2),
      maxWait: p.maxEventAge ?? Duration.hours(1),
      logRetention: this.logRetention,
      removalPolicy: this.removalPolicy,
      grantDataPlane: (grantee) => this.grantDataPlane(grantee),
    });
    rule.addTarget(
      new targets.SfnStateMachine(long.stateMachine, {
        deadLetterQueue: this.deadLetterQueue,
        retryAttempts: 2,
        maxEventAge: Duration.hours(2),
      }),
    );
    return long;
  }

  private addSlack(slack: SlackChannelProps): chatbot.SlackChannelConfiguration {
    const channel = new chatbot.SlackChannelConfiguration(this, 'Slack', {
      slackChannelConfigurationName: Names.uniqueResourceName(this, { maxLength: 128, separator: '-' }),
      slackWorkspaceId: slack.workspaceId,
      slackChannelId: slack.channelId,
      notificationTopics: [this.topic],
      loggingLevel: chatbot.LoggingLevel.ERROR,
      // Without guardrails AWS applies AdministratorAccess as the channel's ceiling.
      guardrailPolicies: slack.guardrailPolicies ?? [iam.ManagedPolicy.fromAwsManagedPolicyName('CloudWatchReadOnlyAccess')],
      // Chatbot writes to /aws/chatbot/<name> in us-east-1; CDK sets its retention there.
      logRetention: this.logRetention,
    });
    const retention = Stack.of(this).node.tryFindChild('LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a');
    if (retention) {
      Validations.of(retention).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: "CDK's LogRetention handler (sets the Chatbot log group's retention in us-east-1): CDK attaches the basic execution managed policy; not configurable.",
      });
      Validations.of(retention).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: "CDK's LogRetention handler: logs:PutRetentionPolicy/DeleteRetentionPolicy on the Chatbot log group in another region, which CDK grants on \"*\".",
      });
    }
    return channel;
  }

  /**
   * Alarms on everything that needs a person, all notifying the topic: outcomes not applied
   * (metric filter on the JSON outcome log line), function errors, async events dropped,
   * messages in the DLQ; with long migrations: failed executions and tasks stopping non-zero.
   */
  private addAlarms(): void {
    const pattern = logs.FilterPattern.all(
      logs.FilterPattern.stringValue('$.fields.message', '=', 'outcome'),
      logs.FilterPattern.any(...NOT_APPLIED_STATUSES.map((s) => logs.FilterPattern.stringValue('$.fields.status', '=', s))),
    );
    const logGroups: [string, logs.ILogGroup][] = [['NotAppliedFilter', this.logGroup]];
    if (this.longMigrations) logGroups.push(['TaskNotAppliedFilter', this.longMigrations.taskLogGroup]);
    for (const [id, logGroup] of logGroups) {
      new logs.MetricFilter(this, id, {
        logGroup,
        filterPattern: pattern,
        metricNamespace: METRIC_NAMESPACE,
        metricName: NOT_APPLIED_METRIC,
        metricValue: '1',
        dimensions: { Stage: '$.fields.stage' },
        unit: cloudwatch.Unit.COUNT,
      });
    }
    const period = Duration.minutes(5);
    const alarm = (id: string, metric: cloudwatch.IMetric, description: string) => {
      const a = new cloudwatch.Alarm(this, id, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `prisma-migrator ${this.stage}: ${description}`,
      });
      a.addAlarmAction(new cwActions.SnsAction(this.topic));
      this.alarms.push(a);
    };
    alarm('NotAppliedAlarm', this.metricMigrationsNotApplied({ period }), 'a migration failed, was blocked or is incomplete (see the outcome on the topic)');
    alarm('ErrorsAlarm', this.function.metricErrors({ period, statistic: cloudwatch.Stats.SUM }), 'the function failed (e.g. the outcome could not be published); the event is in the DLQ');
    alarm(
      'AsyncEventsDroppedAlarm',
      this.function.metric('AsyncEventsDropped', { period, statistic: cloudwatch.Stats.SUM }),
      'an upload event was dropped before it ran (too old, or throttled)',
    );
    alarm(
      'DeadLetterQueueAlarm',
      this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: cloudwatch.Stats.MAXIMUM }),
      'events are waiting in the dead-letter queue',
    );
    if (this.longMigrations) {
      const sm = this.longMigrations.stateMachine;
      alarm('LongFailedAlarm', sm.metricFailed({ period, statistic: cloudwatch.Stats.SUM }), 'a long migration execution failed');
      alarm('LongTimedOutAlarm', sm.metricTimedOut({ period, statistic: cloudwatch.Stats.SUM }), 'a long migration execution timed out');
      new events.Rule(this, 'TaskStoppedRule', {
        description: `prisma-migrator ${this.stage}: a migration task stopped with a non-zero exit code`,
        eventPattern: {
          source: ['aws.ecs'],
          detailType: ['ECS Task State Change'],
          detail: {
            clusterArn: [this.longMigrations.cluster.clusterArn],
            lastStatus: ['STOPPED'],
            containers: { name: [MIGRATOR_CONTAINER_NAME], exitCode: [{ 'anything-but': 0 }] },
          },
        },
        // The event as is: AWS Chatbot renders ECS task state changes.
        targets: [new targets.SnsTopic(this.topic)],
      });
    }
  }

  /** Outputs with stable logical ids and export names (`<prefix><Name>`). */
  private addOutputs(): void {
    const prefix = (this.props.outputPrefix ?? this.node.id).replace(/[^A-Za-z0-9]/g, '');
    const stackName = Stack.of(this).stackName;
    const out = (name: string, value: string, description: string) => {
      const output = new CfnOutput(this, name, { value, description, exportName: `${stackName}-${prefix}${name}` });
      output.overrideLogicalId(`${prefix}${name}`);
    };
    const fn = this.function.functionName;
    out('FunctionName', fn, 'Migrator Lambda function name');
    out('TopicArn', this.topic.topicArn, 'Notifications and alarms topic ARN');
    out('ArtifactBucketName', this.artifactBucket.bucketName, 'Artifact bucket');
    out('ArtifactKey', this.artifactKey, 'Artifact key the CI uploads prisma.zip to');
    out('DeadLetterQueueUrl', this.deadLetterQueue.queueUrl, 'Failed invocations');
    out('PlanCommand', invokeCommand(fn, '{"action":"deploy"}'), 'Show the plan only (no confirm)');
    out('ApplyCommand', invokeCommand(fn, '{"action":"deploy","confirm":true}'), 'Apply the pending migrations');
    out('CliPlanCommand', Fn.join('', ['migrator invoke --function ', fn]), 'Plan, with the migrator CLI');
    out('CliApplyCommand', Fn.join('', ['migrator invoke --function ', fn, ' --confirm']), 'Apply, with the migrator CLI');
    if (this.longMigrations) {
      const sm = this.longMigrations.stateMachine.stateMachineArn;
      out('EcsClusterName', this.longMigrations.cluster.clusterName, 'ECS cluster of the long-migration task');
      out('StateMachineArn', sm, 'Starts the long-migration task, one at a time');
      out('LongPlanCommand', startExecutionCommand(sm, '{"action":"deploy"}'), 'Plan in the long-migration task');
      out('LongApplyCommand', startExecutionCommand(sm, '{"action":"deploy","confirm":true}'), 'Apply in the long-migration task');
    }
  }

  /**
   * CDK's BucketNotifications custom resource (a singleton Lambda per stack that calls
   * PutBucketNotificationConfiguration): its findings are acknowledged on that construct.
   */
  private acknowledgeBucketNotificationsHandler(): void {
    const handler = Stack.of(this).node.tryFindChild('BucketNotificationsHandler050a0587b7544547bf325f094a3db834');
    if (!handler) return;
    Validations.of(handler).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: "CDK-internal BucketNotifications handler (keeps the bucket's EventBridge / S3 notification configuration): CDK attaches the basic execution managed policy; not configurable.",
    });
  }
}

// ---------------------------------------------------------------------------- helpers

/** The ARN `aws:PrincipalArn` carries for a role or user (a role session carries its role's ARN). */
function principalArn(grantee: iam.IGrantable): string {
  const p = grantee.grantPrincipal as unknown as Record<string, unknown>;
  if (typeof p.roleArn === 'string') return p.roleArn;
  if (typeof p.userArn === 'string') return p.userArn;
  if (grantee.grantPrincipal instanceof iam.ArnPrincipal) return grantee.grantPrincipal.arn;
  throw new Error('PrismaMigrator.grantUpload: the grantee must be a role, a user or an ArnPrincipal (its ARN goes into the bucket policy)');
}

interface DatabaseDescription {
  readonly engine: MigratorEngine;
  readonly host: string;
  readonly port: string;
  allowFrom(peer: ec2.IConnectable): void;
  dbUserArn(user: string): string;
}

function isCluster(db: rds.IDatabaseInstance | rds.IDatabaseCluster): db is rds.IDatabaseCluster {
  return 'clusterEndpoint' in db;
}

/** postgres / aurora-postgresql → POSTGRESQL; mysql / mariadb / aurora-mysql → MYSQL. */
export function engineFamily(engineType: string | undefined): MigratorEngine | undefined {
  if (!engineType) return undefined;
  if (engineType.includes('postgres')) return MigratorEngine.POSTGRESQL;
  if (engineType.includes('mysql') || engineType.includes('mariadb')) return MigratorEngine.MYSQL;
  return undefined;
}

function describeDatabase(scope: Construct, props: PrismaMigratorProps): DatabaseDescription {
  const database = props.database;
  const inferred = engineFamily(database.engine?.engineType);
  if (props.engine && inferred && props.engine !== inferred) {
    throw new Error(`PrismaMigrator: engine '${props.engine}' does not match the database's engine '${database.engine?.engineType}'`);
  }
  const engine = props.engine ?? inferred ?? MigratorEngine.POSTGRESQL;
  const endpoint = isCluster(database)
    ? {
        host: database.clusterEndpoint.hostname,
        portNumber: database.clusterEndpoint.port,
        port: Token.isUnresolved(database.clusterEndpoint.port)
          ? Tokenization.stringifyNumber(database.clusterEndpoint.port)
          : String(database.clusterEndpoint.port),
        resourceId: props.databaseResourceId ?? database.clusterResourceIdentifier,
      }
    : {
        host: database.dbInstanceEndpointAddress,
        portNumber: database.instanceEndpoint.port,
        port: database.dbInstanceEndpointPort,
        resourceId: props.databaseResourceId ?? database.instanceResourceId,
      };
  const resourceId = endpoint.resourceId;
  if (!props.databaseSecret && !resourceId) {
    throw new Error(
      'PrismaMigrator: IAM authentication needs the database resource id (DbiResourceId / DbClusterResourceId): ' +
        'import the instance with `instanceResourceId` or pass `databaseResourceId`',
    );
  }
  return {
    engine,
    host: endpoint.host,
    port: endpoint.port,
    allowFrom(peer: ec2.IConnectable) {
      if (database.connections.defaultPort) {
        database.connections.allowDefaultPortFrom(peer, 'prisma-migrator');
      } else {
        database.connections.allowFrom(peer, ec2.Port.tcp(endpoint.portNumber), 'prisma-migrator');
      }
    },
    dbUserArn(user: string) {
      // arn:aws:rds-db:REGION:ACCOUNT:dbuser:RESOURCE_ID/USER
      return Stack.of(scope).formatArn({
        service: 'rds-db',
        resource: 'dbuser',
        resourceName: `${resourceId}/${user}`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      });
    },
  };
}

/** S3 notifications filter by prefix/suffix only: split a key (or pattern) around its wildcards. */
export function notificationFilter(key: string): { prefix: string; suffix?: string } {
  const first = key.indexOf('*');
  if (first < 0) {
    const slash = key.lastIndexOf('/');
    return { prefix: key, suffix: slash >= 0 ? key.slice(slash + 1) : key };
  }
  const last = key.lastIndexOf('*');
  const suffix = key.slice(last + 1);
  return { prefix: key.slice(0, first), ...(suffix ? { suffix } : {}) };
}

/**
 * `aws lambda invoke` for a payload. The CLI's read timeout (60 s by default) would give up
 * and retry, which with reserved concurrency 1 is a throttle or a second run: wait 900 s.
 */
export function invokeCommand(functionName: string, payload: string): string {
  return Fn.join('', [
    'aws lambda invoke --cli-read-timeout 900 --function-name ',
    functionName,
    ` --cli-binary-format raw-in-base64-out --payload '${payload}' out.json`,
  ]);
}

/** `aws stepfunctions start-execution` of the long-migration state machine for a payload. */
export function startExecutionCommand(stateMachineArn: string, payload: string): string {
  return Fn.join('', ['aws stepfunctions start-execution --state-machine-arn ', stateMachineArn, ` --input '${payload}'`]);
}
