import * as path from 'node:path';
import {
  ArnFormat,
  Aws,
  CfnOutput,
  Duration,
  Fn,
  IgnoreMode,
  Names,
  RemovalPolicy,
  Stack,
  Token,
  Tokenization,
  Validations,
} from 'aws-cdk-lib';
import * as chatbot from 'aws-cdk-lib/aws-chatbot';
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
import { REPO_ROOT, migratorLambdaCode } from './code';

export const STAGES = ['CODE', 'PROD'] as const;
export type MigratorStage = (typeof STAGES)[number];
export type MigratorTrigger = 'eventbridge' | 's3-notification';
export type MigratorEngine = 'postgresql' | 'mysql';

/** Name of the container in the optional ECS task definition. */
export const MIGRATOR_CONTAINER_NAME = 'migrator';

export interface SlackChannelProps {
  /** The Slack workspace (team) id, as authorised once in the AWS Chatbot console, e.g. `T0123ABCD`. */
  readonly workspaceId: string;
  /** The Slack channel id, e.g. `C0123ABCD`. */
  readonly channelId: string;
}

export interface PrismaMigratorProps {
  /** `CODE` or `PROD`. Every name, grant and key of this construct is scoped to it. */
  readonly stage: MigratorStage;
  /**
   * Bucket the CI uploads `prisma.zip` to. An existing bucket must have
   * "Amazon EventBridge notifications" turned on for the default trigger.
   * @default a new bucket: versioned, SSE-S3, SSL-only, public access blocked,
   *          noncurrent versions expired after 30 days, access-logged.
   */
  readonly artifactBucket?: s3.IBucket;
  /** Object key of the artifact, e.g. `deploy/PROD/my-app/prisma.zip`, or a glob such as `deploy/PROD/*\/prisma.zip`. */
  readonly artifactKey: string;
  /** The database: an RDS instance (PostgreSQL, MySQL, MariaDB) or an Aurora cluster. */
  readonly database: rds.IDatabaseInstance | rds.IDatabaseCluster;
  /**
   * `DbiResourceId` (instance) or `DbClusterResourceId` (cluster) used in the
   * `rds-db:connect` ARN. Only needed for an imported instance created without `instanceResourceId`.
   * @default taken from `database`
   */
  readonly databaseResourceId?: string;
  /**
   * Database engine family.
   * @default inferred from `database.engine` when known, else `postgresql`
   */
  readonly engine?: MigratorEngine;
  /** Database user the function logs in as (IAM auth: a user granted `rds_iam` / created `IDENTIFIED WITH AWSAuthenticationPlugin`). */
  readonly databaseUser: string;
  /** Database name. */
  readonly databaseName: string;
  /**
   * Schema the migrations apply to (`DB_SCHEMA`).
   * @default `public` for PostgreSQL, `databaseName` for MySQL
   */
  readonly schema?: string;
  /**
   * Use Secrets Manager credentials (`DB_AUTH=secret`) instead of IAM authentication.
   * @default IAM authentication (`DB_AUTH=iam`)
   */
  readonly databaseSecret?: secretsmanager.ISecret;
  /** VPC of the database. */
  readonly vpc: ec2.IVpc;
  /**
   * Subnets of the function (and ECS task). They need a route to S3 and SNS
   * (NAT gateway or VPC endpoints).
   * @default private subnets with egress
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Topic for plan / apply / failure notifications.
   * @default a new topic encrypted with a new customer-managed KMS key (rotation on)
   */
  readonly topic?: sns.ITopic;
  /**
   * Apply migrations on upload (`AUTO_APPLY=true`); when false an upload only
   * publishes the plan and `{"action":"deploy","confirm":true}` applies it.
   * @default true for CODE, false for PROD
   */
  readonly autoApply?: boolean;
  /** @default Duration.minutes(5); at most 15 minutes */
  readonly timeout?: Duration;
  /** @default 256 */
  readonly memorySize?: number;
  /** @default 'eventbridge' */
  readonly trigger?: MigratorTrigger;
  /** Send the topic's messages to Slack through an AWS Chatbot Slack channel configuration. */
  readonly slack?: SlackChannelProps;
  /**
   * Add an ECS Fargate task running the same binary (`migrator handle-event`)
   * and make it the upload rule's target instead of the function (which stays
   * for manual plan / confirm). Needs `trigger: 'eventbridge'`.
   * @default false
   */
  readonly longMigrations?: boolean;
  /** How long to wait for the migration lock (`LOCK_TIMEOUT`). @default 600 seconds */
  readonly lockTimeout?: Duration;
  /** Per-statement lock timeout (`STATEMENT_LOCK_TIMEOUT`). @default not set */
  readonly statementLockTimeout?: Duration;
  /** @default 'info' */
  readonly logLevel?: string;
  /** @default logs.RetentionDays.ONE_MONTH (PROD: THREE_MONTHS) */
  readonly logRetention?: logs.RetentionDays;
  /** AWS X-Ray active tracing. @default false */
  readonly tracing?: boolean;
  /**
   * Maximum age of a queued asynchronous event (uploads wait behind a running
   * migration because reserved concurrency is 1). Older events go to the DLQ.
   * @default Duration.hours(1)
   */
  readonly maxEventAge?: Duration;
  /** Explicit function name (handy for `migrator invoke --function`). @default generated */
  readonly functionName?: string;
  /** Lambda code. @default `migratorLambdaCode()`: the `make package` zip, or the placeholder */
  readonly code?: lambda.Code;
  /**
   * ECS image. @default `ContainerImage.fromAsset(repo root, { file: 'functions/migrator/Dockerfile' })`
   * (staged at synth, built only by `cdk deploy`)
   */
  readonly containerImage?: ecs.ContainerImage;
}

/**
 * S3-triggered Prisma Migrate runner for one stage:
 * upload → S3 → EventBridge rule (or S3 notification) → Lambda in the VPC →
 * database, and → SNS → AWS Chatbot → Slack; failures → SQS DLQ.
 */
export class PrismaMigrator extends Construct {
  public readonly stage: MigratorStage;
  public readonly engine: MigratorEngine;
  public readonly function: lambda.Function;
  public readonly role: iam.Role;
  public readonly securityGroup: ec2.SecurityGroup;
  public readonly artifactBucket: s3.IBucket;
  public readonly artifactKey: string;
  public readonly topic: sns.ITopic;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly logGroup: logs.LogGroup;
  public readonly rule?: events.Rule;
  public readonly slackChannel?: chatbot.SlackChannelConfiguration;
  public readonly cluster?: ecs.Cluster;
  public readonly taskDefinition?: ecs.FargateTaskDefinition;
  /** The environment given to the function (and the ECS container). */
  public readonly environment: Record<string, string>;

  constructor(scope: Construct, id: string, props: PrismaMigratorProps) {
    super(scope, id);
    validateProps(this, props);

    this.stage = props.stage;
    this.artifactKey = props.artifactKey;
    const trigger: MigratorTrigger = props.trigger ?? 'eventbridge';
    const autoApply = props.autoApply ?? props.stage === 'CODE';
    const timeout = props.timeout ?? Duration.minutes(5);
    const isGlobKey = props.artifactKey.includes('*');

    // ---------------------------------------------------------------- database
    const db = describeDatabase(this, props);
    this.engine = db.engine;
    const schema = props.schema ?? (db.engine === 'postgresql' ? 'public' : props.databaseName);

    // ---------------------------------------------------------------- artifact bucket
    if (props.artifactBucket) {
      this.artifactBucket = props.artifactBucket;
    } else {
      this.artifactBucket = this.createArtifactBucket(trigger);
    }

    // ---------------------------------------------------------------- topic
    let topicKey: kms.IKey | undefined;
    if (props.topic) {
      this.topic = props.topic;
      topicKey = props.topic.masterKey;
    } else {
      const key = new kms.Key(this, 'TopicKey', {
        description: `prisma-migrator ${props.stage} notifications topic`,
        enableKeyRotation: true,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      topicKey = key;
      this.topic = new sns.Topic(this, 'Topic', {
        displayName: `prisma-migrator ${props.stage}`,
        masterKey: key,
        enforceSSL: true,
      });
    }

    // ---------------------------------------------------------------- DLQ
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    // cdk-nag SQS3 wants every queue to have a DLQ or be one; this queue *is*
    // the dead-letter destination (Lambda on-failure + rule target DLQ), which
    // the rule cannot see because it only recognises SQS redrive policies.
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is the dead-letter destination itself (Lambda async on-failure destination and EventBridge target DLQ).',
    });

    // ---------------------------------------------------------------- environment
    this.environment = {
      STAGE: props.stage,
      DB_ENGINE: db.engine,
      DB_HOST: db.host,
      DB_PORT: db.port,
      DB_NAME: props.databaseName,
      DB_USER: props.databaseUser,
      DB_SCHEMA: schema,
      DB_AUTH: props.databaseSecret ? 'secret' : 'iam',
      ...(props.databaseSecret ? { DB_SECRET_ARN: props.databaseSecret.secretArn } : {}),
      ARTIFACT_BUCKET: this.artifactBucket.bucketName,
      ARTIFACT_KEY: props.artifactKey,
      TOPIC_ARN: this.topic.topicArn,
      AUTO_APPLY: autoApply ? 'true' : 'false',
      LOCK_TIMEOUT: String((props.lockTimeout ?? Duration.seconds(600)).toSeconds()),
      ...(props.statementLockTimeout
        ? { STATEMENT_LOCK_TIMEOUT: String(props.statementLockTimeout.toSeconds()) }
        : {}),
      RUST_LOG: props.logLevel ?? 'info',
    };

    // ---------------------------------------------------------------- network
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: `prisma-migrator ${props.stage}: egress to the database and to AWS APIs (HTTPS)`,
      allowAllOutbound: false,
    });
    // AWS APIs (S3, SNS, Secrets Manager, STS) via NAT or interface endpoints.
    this.securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS APIs');
    // Database port, both directions (egress here, ingress on the database's SG).
    db.allowFrom(this.securityGroup);

    // ---------------------------------------------------------------- logs
    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention:
        props.logRetention ??
        (props.stage === 'PROD' ? logs.RetentionDays.THREE_MONTHS : logs.RetentionDays.ONE_MONTH),
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // ---------------------------------------------------------------- role (inline, least privilege)
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `prisma-migrator ${props.stage} function role`,
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'Logs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'VpcNetworkInterfaces',
        actions: [
          'ec2:CreateNetworkInterface',
          'ec2:DescribeNetworkInterfaces',
          'ec2:DescribeSubnets',
          'ec2:DeleteNetworkInterface',
          'ec2:AssignPrivateIpAddresses',
          'ec2:UnassignPrivateIpAddresses',
        ],
        // AWS requires "*": these EC2 actions do not support resource-level
        // permissions for the ENIs Lambda manages in the VPC (this is what the
        // AWS managed AWSLambdaVPCAccessExecutionRole grants).
        resources: ['*'],
      }),
    );
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Lambda VPC ENI management (ec2:CreateNetworkInterface, Describe*, Delete*, Assign/UnassignPrivateIpAddresses) does not support resource-level permissions; AWS requires "*"' +
        (props.tracing ? '. Same for X-Ray PutTraceSegments/PutTelemetryRecords.' : '.'),
    });
    this.grantMigrator(this.role, props, db, topicKey);
    if (isGlobKey) {
      Validations.of(this.role).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${globObjectArnForNag(this.artifactBucket, props.artifactKey)}]`,
        reason: 'artifactKey is a glob by configuration (one artifact per app under the stage prefix); the grant is read-only and limited to that stage\'s keys.',
      });
    }

    // ---------------------------------------------------------------- function
    this.function = new lambda.Function(this, 'Function', {
      functionName: props.functionName,
      description: `prisma-migrator ${props.stage}: applies Prisma Migrate artifacts from s3://<bucket>/${props.artifactKey}`,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.X86_64,
      handler: 'bootstrap',
      code: props.code ?? migratorLambdaCode(),
      timeout,
      memorySize: props.memorySize ?? 256,
      role: this.role,
      environment: this.environment,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [this.securityGroup],
      // One migration at a time per stage: further uploads queue (async
      // invocations are retried on throttle until maxEventAge) instead of racing.
      reservedConcurrentExecutions: 1,
      // A failed migration is not retried blindly: it goes to the DLQ and is
      // reported on the topic by the function itself.
      retryAttempts: 0,
      maxEventAge: props.maxEventAge ?? Duration.hours(1),
      onFailure: new destinations.SqsDestination(this.deadLetterQueue),
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      tracing: props.tracing ? lambda.Tracing.ACTIVE : lambda.Tracing.DISABLED,
    });

    // ---------------------------------------------------------------- trigger
    if (trigger === 'eventbridge') {
      this.rule = new events.Rule(this, 'UploadRule', {
        description: `prisma-migrator ${props.stage}: artifact uploaded to ${props.artifactKey}`,
        eventPattern: {
          source: ['aws.s3'],
          detailType: ['Object Created'],
          detail: {
            bucket: { name: [this.artifactBucket.bucketName] },
            object: {
              key: isGlobKey ? events.Match.wildcard(props.artifactKey) : [props.artifactKey],
            },
          },
        },
      });
      if (!props.longMigrations) {
        this.rule.addTarget(
          new targets.LambdaFunction(this.function, {
            deadLetterQueue: this.deadLetterQueue,
            retryAttempts: 2,
            maxEventAge: Duration.hours(2),
          }),
        );
      }
    } else {
      const { prefix, suffix } = notificationFilter(props.artifactKey);
      this.artifactBucket.addEventNotification(
        s3.EventType.OBJECT_CREATED,
        new s3n.LambdaDestination(this.function),
        { prefix, suffix },
      );
      this.acknowledgeBucketNotificationsHandler();
    }

    // ---------------------------------------------------------------- Slack
    if (props.slack) {
      this.slackChannel = new chatbot.SlackChannelConfiguration(this, 'Slack', {
        slackChannelConfigurationName: Names.uniqueResourceName(this, { maxLength: 128, separator: '-' }),
        slackWorkspaceId: props.slack.workspaceId,
        slackChannelId: props.slack.channelId,
        notificationTopics: [this.topic],
        loggingLevel: chatbot.LoggingLevel.ERROR,
      });
    }

    // ---------------------------------------------------------------- long migrations (ECS)
    if (props.longMigrations) {
      const rule = this.rule!;
      const ecsParts = this.addEcsTask(props, db, topicKey, rule);
      this.cluster = ecsParts.cluster;
      this.taskDefinition = ecsParts.taskDefinition;
    }

    // ---------------------------------------------------------------- outputs
    const fn = this.function.functionName;
    const out = (name: string, value: string, description: string) =>
      new CfnOutput(this, name, { value, description });
    out('FunctionName', fn, 'Migrator Lambda function name');
    out('TopicArn', this.topic.topicArn, 'Notifications topic ARN');
    out('ArtifactBucketName', this.artifactBucket.bucketName, 'Artifact bucket');
    out('ArtifactKey', props.artifactKey, 'Artifact key the CI uploads prisma.zip to');
    out('DeadLetterQueueUrl', this.deadLetterQueue.queueUrl, 'Failed invocations');
    out('PlanCommand', planCommand(fn), 'Show the plan only (no confirm)');
    out('ApplyCommand', applyCommand(fn), 'Apply the pending migrations');
    out('MigratorPlanCommand', Fn.join('', ['migrator invoke --function ', fn]), 'Plan, with the migrator CLI');
    out('MigratorApplyCommand', Fn.join('', ['migrator invoke --function ', fn, ' --confirm']), 'Apply, with the migrator CLI');
  }

  /** New artifact bucket: versioned, SSE-S3, SSL only, no public access, old versions expire. */
  private createArtifactBucket(trigger: MigratorTrigger): s3.Bucket {
    const accessLogs = new s3.Bucket(this, 'AccessLogsBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: false,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // (cdk-nag S1 recognises this bucket as a log destination: no finding.)
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
      removalPolicy: RemovalPolicy.RETAIN,
    });
    if (trigger === 'eventbridge') {
      // Set on the bucket itself rather than with `eventBridgeEnabled: true`,
      // which would add CDK's BucketNotifications custom resource (a Lambda
      // function) only to flip this flag.
      const cfn = bucket.node.defaultChild as s3.CfnBucket;
      cfn.notificationConfiguration = { eventBridgeConfiguration: { eventBridgeEnabled: true } };
    }
    return bucket;
  }

  /**
   * Grants of the function role and the ECS task role, scoped to this stage.
   * Returns the statements added (for tests / callers).
   */
  private grantMigrator(
    role: iam.Role,
    props: PrismaMigratorProps,
    db: DatabaseDescription,
    topicKey: kms.IKey | undefined,
  ): iam.PolicyStatement[] {
    const statements: iam.PolicyStatement[] = [];
    const add = (s: iam.PolicyStatement) => {
      role.addToPolicy(s);
      statements.push(s);
    };
    add(
      new iam.PolicyStatement({
        sid: 'ReadArtifact',
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resources: [this.artifactBucket.arnForObjects(props.artifactKey)],
      }),
    );
    if (this.artifactBucket.encryptionKey) {
      add(
        new iam.PolicyStatement({
          sid: 'DecryptArtifact',
          actions: ['kms:Decrypt'],
          resources: [this.artifactBucket.encryptionKey.keyArn],
        }),
      );
    }
    add(
      new iam.PolicyStatement({
        sid: 'PublishNotifications',
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
      }),
    );
    if (topicKey) {
      add(
        new iam.PolicyStatement({
          sid: 'EncryptNotifications',
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [topicKey.keyArn],
        }),
      );
    }
    if (props.databaseSecret) {
      const secret = props.databaseSecret;
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
          }),
        );
      }
    } else {
      add(
        new iam.PolicyStatement({
          sid: 'ConnectAsDatabaseUser',
          actions: ['rds-db:connect'],
          resources: [db.dbUserArn(props.databaseUser)],
        }),
      );
    }
    return statements;
  }

  /**
   * `s3-notification` mode uses CDK's BucketNotifications custom resource
   * (a singleton Lambda per stack that calls PutBucketNotificationConfiguration).
   * Its findings are acknowledged on that exact construct.
   */
  private acknowledgeBucketNotificationsHandler(): void {
    const stack = Stack.of(this);
    const handler = stack.node.tryFindChild('BucketNotificationsHandler050a0587b7544547bf325f094a3db834');
    if (!handler) return;
    const ack = (id: string, reason: string) => Validations.of(handler).acknowledge({ id, reason });
    ack(
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'CDK-internal BucketNotifications handler (s3-notification trigger only): CDK attaches the basic execution managed policy; not configurable.',
    );
  }

  private addEcsTask(
    props: PrismaMigratorProps,
    db: DatabaseDescription,
    topicKey: kms.IKey | undefined,
    rule: events.Rule,
  ): { cluster: ecs.Cluster; taskDefinition: ecs.FargateTaskDefinition } {
    const cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: props.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    const taskRole = new iam.Role(this, 'TaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: `prisma-migrator ${props.stage} ECS task role`,
    });
    this.grantMigrator(taskRole, props, db, topicKey);
    if (props.artifactKey.includes('*')) {
      Validations.of(taskRole).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${globObjectArnForNag(this.artifactBucket, props.artifactKey)}]`,
        reason: 'artifactKey is a glob by configuration; read-only grant limited to that stage\'s keys.',
      });
    }
    const taskLogGroup = new logs.LogGroup(this, 'TaskLogGroup', {
      retention: props.stage === 'PROD' ? logs.RetentionDays.THREE_MONTHS : logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      cpu: 512,
      memoryLimitMiB: 1024,
      taskRole,
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    taskDefinition.addContainer(MIGRATOR_CONTAINER_NAME, {
      image:
        props.containerImage ??
        ecs.ContainerImage.fromAsset(REPO_ROOT, {
          file: path.join('functions', 'migrator', 'Dockerfile'),
          // The build context is the repository root (the Dockerfile builds the
          // workspace). Docker would only read <root>/.dockerignore, so the
          // exclusions that keep the staged context small live here.
          exclude: DOCKER_CONTEXT_EXCLUDE,
          ignoreMode: IgnoreMode.DOCKER,
        }),
      command: ['migrator', 'handle-event'],
      environment: this.environment,
      logging: ecs.LogDrivers.awsLogs({ logGroup: taskLogGroup, streamPrefix: 'migrator' }),
      readonlyRootFilesystem: false,
      essential: true,
    });
    Validations.of(taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds configuration only (host, port, names, ARNs, flags); credentials come from IAM auth tokens or Secrets Manager at run time.',
    });
    const executionRole = taskDefinition.obtainExecutionRole();
    Validations.of(executionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken does not support resource-level permissions; AWS requires "*" (granted by CDK for pulling the image asset).',
    });

    const taskSecurityGroup = this.securityGroup; // same egress rules as the function

    // The event reaches the container in MIGRATOR_EVENT. An ECS container
    // override value must be a string, and EventBridge cannot stringify a whole
    // JSON object into one, so the template rebuilds the S3 "Object Created"
    // event from its string fields (bucket and key are fixed by the rule
    // pattern; id, time, version-id, etag are safe characters).
    const migratorEvent = JSON.stringify({
      version: '0',
      id: events.EventField.fromPath('$.id'),
      'detail-type': 'Object Created',
      source: 'aws.s3',
      account: events.EventField.fromPath('$.account'),
      time: events.EventField.fromPath('$.time'),
      region: events.EventField.fromPath('$.region'),
      detail: {
        bucket: { name: events.EventField.fromPath('$.detail.bucket.name') },
        object: {
          key: events.EventField.fromPath('$.detail.object.key'),
          'version-id': events.EventField.fromPath('$.detail.object.version-id'),
          etag: events.EventField.fromPath('$.detail.object.etag'),
        },
      },
    });
    rule.addTarget(
      new targets.EcsTask({
        cluster,
        taskDefinition,
        launchType: ecs.LaunchType.FARGATE,
        platformVersion: ecs.FargatePlatformVersion.LATEST,
        subnetSelection: props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        securityGroups: [taskSecurityGroup],
        assignPublicIp: false,
        containerOverrides: [
          {
            containerName: MIGRATOR_CONTAINER_NAME,
            environment: [{ name: 'MIGRATOR_EVENT', value: migratorEvent }],
          },
        ],
        deadLetterQueue: this.deadLetterQueue,
        retryAttempts: 2,
        maxEventAge: Duration.hours(2),
      }),
    );
    // CDK's EcsTask target lets EventBridge tag the tasks it starts
    // (ecs:TagResource on arn:…:ecs:REGION:*:task/CLUSTER/*): task ids only
    // exist at run time, and the statement is limited to this cluster.
    const eventsRole = taskDefinition.node.tryFindChild('EventsRole');
    if (eventsRole) {
      const taskArns = nagFlatten(this, `arn:${Aws.PARTITION}:ecs:${Aws.REGION}:*:task/${cluster.clusterName}/*`);
      Validations.of(eventsRole).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${taskArns}]`,
        reason: 'Granted by CDK\'s EcsTask target so EventBridge can tag the tasks it starts: task ids are only known at run time; limited to this cluster\'s tasks.',
      });
    }
    new CfnOutput(this, 'EcsClusterName', { value: cluster.clusterName, description: 'ECS cluster for long migrations' });
    new CfnOutput(this, 'EcsTaskDefinitionArn', {
      value: taskDefinition.taskDefinitionArn,
      description: 'Run with: aws ecs run-task --launch-type FARGATE --overrides containerOverrides[0].environment MIGRATOR_EVENT={"action":"deploy","confirm":true}',
    });
    return { cluster, taskDefinition };
  }
}

/** Exclusions of the Docker build context (the repository root). */
export const DOCKER_CONTEXT_EXCLUDE = [
  '.git',
  'target',
  'infra',
  '**/node_modules',
  '**/cdk.out',
  '**/.venv',
  'examples/**/node_modules',
  '.ci',
];

// ---------------------------------------------------------------------------- helpers

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

/** postgres / aurora-postgresql → postgresql; mysql / mariadb / aurora-mysql → mysql. */
export function engineFamily(engineType: string | undefined): MigratorEngine | undefined {
  if (!engineType) return undefined;
  if (engineType.includes('postgres')) return 'postgresql';
  if (engineType.includes('mysql') || engineType.includes('mariadb')) return 'mysql';
  return undefined;
}

function describeDatabase(scope: Construct, props: PrismaMigratorProps): DatabaseDescription {
  const database = props.database;
  const inferred = engineFamily(database.engine?.engineType);
  if (props.engine && inferred && props.engine !== inferred) {
    throw new Error(
      `PrismaMigrator: engine '${props.engine}' does not match the database's engine '${database.engine?.engineType}'`,
    );
  }
  const engine = props.engine ?? inferred ?? 'postgresql';

  let host: string;
  let port: string;
  let portNumber: number;
  let resourceId: string | undefined;
  if (isCluster(database)) {
    host = database.clusterEndpoint.hostname;
    portNumber = database.clusterEndpoint.port;
    port = Token.isUnresolved(portNumber) ? Tokenization.stringifyNumber(portNumber) : String(portNumber);
    resourceId = props.databaseResourceId ?? database.clusterResourceIdentifier;
  } else {
    host = database.dbInstanceEndpointAddress;
    port = database.dbInstanceEndpointPort;
    portNumber = database.instanceEndpoint.port;
    resourceId = props.databaseResourceId ?? database.instanceResourceId;
  }
  if (!props.databaseSecret && !resourceId) {
    throw new Error(
      'PrismaMigrator: IAM authentication needs the database resource id (DbiResourceId / DbClusterResourceId): ' +
        'import the instance with `instanceResourceId` or pass `databaseResourceId`',
    );
  }
  return {
    engine,
    host,
    port,
    allowFrom(peer: ec2.IConnectable) {
      if (database.connections.defaultPort) {
        database.connections.allowDefaultPortFrom(peer, 'prisma-migrator');
      } else {
        database.connections.allowFrom(peer, ec2.Port.tcp(portNumber), 'prisma-migrator');
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

/** S3 notifications filter by prefix/suffix only: split a key (or glob) around its wildcards. */
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
 * The object ARN as cdk-nag prints it in an IAM5 finding id
 * (its flattenCfnReference: Ref → <X>, GetAtt → <X.Attr>, Fn::Join joined),
 * so the acknowledgement matches exactly that one finding.
 */
function globObjectArnForNag(bucket: s3.IBucket, key: string): string {
  return nagFlatten(bucket, bucket.arnForObjects(key));
}

/** A (possibly tokenized) string rendered the way cdk-nag renders it in finding ids. */
function nagFlatten(scope: Construct, value: string): string {
  const flatten = (node: unknown): string => {
    if (node === undefined) return '';
    if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/}/g, '>');
    const o = node as Record<string, any>;
    if (o['Fn::Join']) return (o['Fn::Join'][1] as unknown[]).map(flatten).join(o['Fn::Join'][0]);
    if (o['Fn::Sub']) return flatten(o['Fn::Sub']);
    if (o['Fn::GetAtt']) return `<${flatten(o['Fn::GetAtt'][0])}.${flatten(o['Fn::GetAtt'][1])}>`;
    if (o['Fn::ImportValue']) return flatten(o['Fn::ImportValue']);
    if (o.Ref) return `<${flatten(o.Ref)}>`;
    return JSON.stringify(node);
  };
  return flatten(Stack.of(scope).resolve(value));
}

export function planCommand(functionName: string): string {
  return Fn.join('', [
    'aws lambda invoke --function-name ',
    functionName,
    ` --cli-binary-format raw-in-base64-out --payload '{"action":"deploy"}' out.json`,
  ]);
}

export function applyCommand(functionName: string): string {
  return Fn.join('', [
    'aws lambda invoke --function-name ',
    functionName,
    ` --cli-binary-format raw-in-base64-out --payload '{"action":"deploy","confirm":true}' out.json`,
  ]);
}

const KEY_RE = /^[A-Za-z0-9!_.*'()\-/]+$/;

function validateProps(scope: Construct, props: PrismaMigratorProps): void {
  const fail = (msg: string): never => {
    throw new Error(`PrismaMigrator (${scope.node.path}): ${msg}`);
  };
  if (!(STAGES as readonly string[]).includes(props.stage)) {
    fail(`stage must be one of ${STAGES.join(', ')}, got '${props.stage}'`);
  }
  const key = props.artifactKey;
  if (!key || key.startsWith('/') || !KEY_RE.test(key)) {
    fail(`artifactKey must be a relative S3 key of safe characters (letters, digits, !_.*'()-/), got '${key}'`);
  }
  if (props.timeout) {
    const s = props.timeout.toSeconds();
    if (s < 1 || s > 900) fail(`timeout must be between 1 second and 15 minutes, got ${s} seconds`);
  }
  if (props.memorySize !== undefined) {
    if (!Number.isInteger(props.memorySize) || props.memorySize < 128 || props.memorySize > 10240) {
      fail(`memorySize must be an integer between 128 and 10240 MB, got ${props.memorySize}`);
    }
  }
  if (props.trigger && props.trigger !== 'eventbridge' && props.trigger !== 's3-notification') {
    fail(`trigger must be 'eventbridge' or 's3-notification', got '${props.trigger}'`);
  }
  if (props.engine && props.engine !== 'postgresql' && props.engine !== 'mysql') {
    fail(`engine must be 'postgresql' or 'mysql', got '${props.engine}'`);
  }
  if (props.longMigrations && (props.trigger ?? 'eventbridge') !== 'eventbridge') {
    fail("longMigrations needs trigger: 'eventbridge' (an S3 notification cannot start an ECS task)");
  }
  for (const [name, value] of [
    ['databaseUser', props.databaseUser],
    ['databaseName', props.databaseName],
  ] as const) {
    if (!value || !/^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/.test(value)) {
      fail(`${name} must be a plain identifier, got '${value}'`);
    }
  }
  if (props.lockTimeout && props.lockTimeout.toSeconds() < 1) fail('lockTimeout must be at least 1 second');
  if (props.maxEventAge) {
    const s = props.maxEventAge.toSeconds();
    if (s < 60 || s > 21600) fail(`maxEventAge must be between 1 minute and 6 hours, got ${s} seconds`);
  }
  if (props.slack) {
    if (!/^[A-Z0-9]+$/.test(props.slack.workspaceId)) fail(`slack.workspaceId looks wrong: '${props.slack.workspaceId}'`);
    if (!/^[A-Z0-9]+$/.test(props.slack.channelId)) fail(`slack.channelId looks wrong: '${props.slack.channelId}'`);
  }
}
