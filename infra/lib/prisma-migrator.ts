import {
  Annotations,
  Aws,
  CfnOutput,
  Duration,
  Fn,
  Lazy,
  Names,
  RemovalPolicy,
  Stack,
  Validations,
} from 'aws-cdk-lib';
import * as chatbot from 'aws-cdk-lib/aws-chatbot';
import * as cloudtrail from 'aws-cdk-lib/aws-cloudtrail';
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
import { CONFIRM_QUALIFIER, ChatActions } from './chat-actions';
import { DatabaseDescription, describeDatabase } from './database';
import { MigratorEndpoints } from './endpoints';
import { MigratorFleet, MigratorFleetProps } from './fleet';
import { LongMigrations } from './long-migrations';
import { nagFlatten } from './nag-util';
import { RecoveryPointProps, grantRecoveryPoint, recoveryEnvironment } from './recovery-point';
import {
  BlockOn,
  METRIC_NAMESPACE,
  MIGRATOR_CONTAINER_NAME,
  MigratorEngine,
  MigratorTrigger,
  NOT_APPLIED_METRIC,
  NOT_APPLIED_STATUSES,
} from './types';
import { ConditionedSnsTarget } from './sns-rule-target';
import { validateProps } from './validate';

export { BlockOn, MIGRATOR_CONTAINER_NAME, MigratorEngine, MigratorTrigger } from './types';
export { engineFamily } from './database';
export { FLEET_QUALIFIER, FleetIamLogin, FleetTarget, MigratorFleet, MigratorFleetProps } from './fleet';
export { RecoveryPointPolicy, RecoveryPointWhen } from './recovery-point';
export type { RecoveryPointProps } from './recovery-point';

export interface SlackChannelProps {
  /** The Slack workspace (team) id, as authorised once in the AWS Chatbot console, e.g. `T0123ABCD`. */
  readonly workspaceId: string;
  /** The Slack channel id, e.g. `C0123ABCD`. */
  readonly channelId: string;
  /**
   * Ceiling of what anyone in the channel can do through Chatbot. The buttons' own guardrail
   * (`lambda:InvokeFunction` on the `apply` alias only) is always added.
   * @default [CloudWatchReadOnlyAccess] (reads) and the buttons' guardrail
   */
  readonly guardrailPolicies?: iam.IManagedPolicy[];
  /**
   * Buttons on the messages ("Apply this plan", "Accept the findings and apply", "Mark rolled
   * back", "Mark applied"): AWS Chatbot custom actions that invoke the `apply` alias as the
   * channel's role. Off: the channel only reads, and the role may not invoke the alias.
   * @default true
   */
  readonly buttons?: boolean;
}

export interface PrismaMigratorProps {
  /** Stage name, e.g. `CODE` or `PROD`. Every name, grant, key and the artifact key are scoped to it. */
  readonly stage: string;
  /**
   * Whether this stage is production — an explicit decision, never inferred from the stage's
   * name. Decides the defaults of `autoApply` (false), `logRetention` (3 months),
   * `removalPolicy` (RETAIN) and `artifactVersionRetention` (1 year). A stage named like
   * production (`prod`, `Production`, `prd`, `live`, also as a `-`/`_` part such as `prod-eu`)
   * with `production: false` is refused at synth.
   */
  readonly production: boolean;
  /**
   * Bucket the CI uploads `prisma.zip` to. An existing bucket must have
   * "Amazon EventBridge notifications" turned on for the default trigger, and its
   * bucket policy is not managed here (restrict uploads yourself).
   * @default a new bucket: versioned, SSE-S3 (or `artifactBucketKey`), SSL-only, public access
   *          blocked, noncurrent versions kept `artifactVersionRetention`, access-logged to a
   *          versioned log bucket, uploads and deletes of the artifact only by `uploaders`
   */
  readonly artifactBucket?: s3.IBucket;
  /**
   * Customer-managed key of the new artifact bucket (SSE-KMS with an S3 Bucket Key). A key of
   * this app gets the key-policy statements uploaders from other accounts need; an imported
   * key's policy is yours. Ignored with `artifactBucket` (its own encryption applies).
   * @default SSE-S3
   */
  readonly artifactBucketKey?: kms.IKey;
  /**
   * How long superseded versions of the artifact stay in the new bucket (what a later
   * investigation or a rollback reads). At least 1 day.
   * @default production: 365 days; otherwise 30 days (the 5 newest are always kept)
   */
  readonly artifactVersionRetention?: Duration;
  /**
   * S3 Object Lock on the new bucket: every artifact version is locked in GOVERNANCE mode for
   * this long (nobody without `s3:BypassGovernanceRetention` can delete or overwrite it).
   * Object Lock can only be turned on when a bucket is created.
   * @default no Object Lock
   */
  readonly artifactObjectLockRetention?: Duration;
  /**
   * Customer-managed key of every log group the construct creates (the function's, the task's,
   * the state machine's). A key of this app gets the CloudWatch Logs statement in its policy;
   * an imported key's policy must allow `logs.REGION.amazonaws.com` itself.
   * @default CloudWatch Logs' own encryption
   */
  readonly logsKey?: kms.IKey;
  /** Customer-managed key of the lock table (`longMigrations`). @default AWS-managed key (aws/dynamodb) */
  readonly lockTableKey?: kms.IKey;
  /**
   * Object key of the artifact, containing the stage as a path segment, e.g.
   * `deploy/PROD/my-app/prisma.zip`. A pattern (`deploy/PROD/*\/prisma.zip`, `*` within one
   * segment) needs `allowKeyPattern`.
   */
  readonly artifactKey: string;
  /** Accept a `*` pattern as `artifactKey` (one database then takes every matching app's artifact). @default false */
  readonly allowKeyPattern?: boolean;
  /**
   * Principals (roles or users, of this account or another) allowed to upload the artifact;
   * everyone else is denied `s3:PutObject`, `s3:DeleteObject` and `s3:DeleteObjectVersion`
   * on the key by the bucket policy. More can be added with `grantUpload()`.
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
  /**
   * Add the ingress rule (the database port from the migrator's security group) to the
   * database's security groups. `false` for an imported database whose security group is
   * managed elsewhere: then only the migrator's egress rule is added, and the database's
   * owner must allow the migrator's security group (output `SecurityGroupId`).
   * @default true
   */
  readonly databaseIngress?: boolean;
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
   * VPC endpoints to reach AWS through (isolated subnets): interface endpoints, and S3 as an
   * interface endpoint or a gateway endpoint (its prefix list). The security group then
   * allows HTTPS to these endpoints only.
   * @default none: HTTPS to 0.0.0.0/0 (through the subnets' NAT gateway)
   */
  readonly endpoints?: MigratorEndpoints;
  /** @default a new security group (egress: the database port and HTTPS to AWS) */
  readonly securityGroup?: ec2.ISecurityGroup;
  /** @default a new role with inline least-privilege grants */
  readonly role?: iam.IRole;
  /** Topic for the outcomes (plan / apply / failure notifications). @default a new topic, new KMS key */
  readonly topic?: sns.ITopic;
  /**
   * Topic of the alarms and of the task-stopped events: a separate failure domain from the
   * outcome topic (which it watches: `NumberOfNotificationsFailed`). Give your team's
   * existing alarm topic here; it must let CloudWatch and EventBridge of this account publish.
   * @default a new topic with its own new KMS key
   */
  readonly alarmTopic?: sns.ITopic;
  /** @default a new SQS queue (SSE-SQS, SSL only, 14 days) */
  readonly deadLetterQueue?: sqs.IQueue;
  /** The function's log group (the metric filter is added to it). @default a new one with `logRetention` */
  readonly logGroup?: logs.ILogGroup;
  /** Apply on upload (`AUTO_APPLY`); otherwise an upload only plans. @default !production */
  readonly autoApply?: boolean;
  /**
   * The way back taken before a deploy's first write (`RECOVERY_POINT`): point-in-time recovery
   * confirmed, or a manual snapshot; see recovery-point.ts for the grants.
   * @default PITR on a production stage, NONE elsewhere (always the given `when`: ALWAYS)
   */
  readonly recoveryPoint?: RecoveryPointProps;
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
   * A trail of yours to record who confirmed: the construct adds a Lambda data-event selector
   * for the `apply` alias only (presses and `migrator invoke --confirm`; CloudTrail charges
   * data events, about USD 0.10 per 100,000). Its `Invoke` records name the caller (a Slack
   * press: the role session `chatbot-session-slack-…`) and the request id of the outcome.
   * @default no data events
   */
  readonly confirmTrail?: cloudtrail.Trail;
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
  /**
   * One artifact, a fleet of databases: uploads start the fleet's state machine (plan every
   * target, a canary group, waves with a halt flag, one rollup on the topic) instead of the
   * function. See `MigratorFleet` and the book's Fleets chapter.
   * @default no fleet
   */
  readonly fleet?: MigratorFleetProps;
  /** Prefix of the outputs' logical ids and export names (`<prefix>FunctionName`). @default the construct id */
  readonly outputPrefix?: string;
}

/**
 * S3-triggered Prisma Migrate runner for one stage:
 * upload → S3 → EventBridge rule (or S3 notification) → Lambda in the VPC (or a Fargate task) →
 * database; outcome → SNS → AWS Chatbot → Slack; failures → alarms on a separate alarm topic.
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
  /** Where every alarm (and the task-stopped rule) notifies. */
  public readonly alarmTopic: sns.ITopic;
  public readonly deadLetterQueue: sqs.IQueue;
  public readonly logGroup: logs.ILogGroup;
  /** The upload rule (EventBridge trigger only). */
  public readonly rule?: events.Rule;
  public readonly slackChannel?: chatbot.SlackChannelConfiguration;
  /**
   * The confirm door: the alias `apply` on the function's current version. A confirmed deploy
   * or resolve is honoured only when invoked through it (`CONFIRM_QUALIFIER`); `grantConfirm`
   * and the Slack buttons may invoke it, `grantInvoke` only the unqualified function.
   */
  public readonly confirmAlias: lambda.Alias;
  /** The Slack buttons (with `slack` and `buttons` not false). */
  public readonly chatActions?: ChatActions;
  public readonly longMigrations?: LongMigrations;
  /** The fleet (with `fleet`): its function, alias, halt table and state machine. */
  public readonly fleet?: MigratorFleet;
  /** Every alarm of the construct (all notify `alarmTopic`). */
  public readonly alarms: cloudwatch.Alarm[] = [];
  /** The environment given to the function (the task adds MAX_DURATION). */
  public readonly environment: Record<string, string>;

  private readonly props: PrismaMigratorProps;
  private readonly db: DatabaseDescription;
  private readonly topicKey?: kms.IKey;
  private readonly uploaderArns: string[] = [];
  private uploadAllow?: iam.PolicyStatement;
  private bucketPolicyManaged = false;
  private invokers = 0;
  private confirmers = 0;
  private readonly removalPolicy: RemovalPolicy;
  private readonly logRetention: logs.RetentionDays;
  private readonly subnets: ec2.SubnetSelection;

  constructor(scope: Construct, id: string, props: PrismaMigratorProps) {
    super(scope, id);
    validateProps(this, props);
    this.props = props;
    this.stage = props.stage;
    this.production = props.production;
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
    this.alarmTopic = props.alarmTopic ?? this.createAlarmTopic();
    this.deadLetterQueue = props.deadLetterQueue ?? this.createDeadLetterQueue();
    this.environment = this.buildEnvironment();
    this.securityGroup = props.securityGroup ?? this.createSecurityGroup();
    this.db.allowFrom(this.securityGroup, props.databaseIngress ?? true);
    if (props.logsKey) allowLogsToUse(props.logsKey);
    this.logGroup =
      props.logGroup ??
      new logs.LogGroup(this, 'LogGroup', { retention: this.logRetention, removalPolicy: this.removalPolicy, encryptionKey: props.logsKey });
    this.role = props.role ?? this.createRole();
    this.grantDataPlane(this.role);
    this.function = this.createFunction();
    this.confirmAlias = new lambda.Alias(this, 'ConfirmAlias', {
      aliasName: CONFIRM_QUALIFIER,
      version: this.function.currentVersion,
      description: 'The confirm door: confirmed deploys and resolves are honoured only through this alias',
    });
    // Who confirmed: data events of the confirm door only (off unless a trail is given).
    props.confirmTrail?.addEventSelector(cloudtrail.DataResourceType.LAMBDA_FUNCTION, [this.confirmAlias.functionArn], {
      readWriteType: cloudtrail.ReadWriteType.ALL,
      includeManagementEvents: false,
    });
    this.rule = this.addTrigger();
    if (props.longMigrations) this.longMigrations = this.addLongMigrations(this.requireRule());
    if (props.fleet) this.fleet = this.addFleet(props.fleet, this.requireRule());
    if (props.slack) {
      const buttons = props.slack.buttons ?? true;
      const guardrail = buttons ? ChatActions.guardrail(this, 'SlackButtonsGuardrail', this.confirmAlias) : undefined;
      this.slackChannel = this.addSlack(props.slack, guardrail);
      if (buttons) this.chatActions = this.addButtons(this.slackChannel);
    }
    for (const uploader of props.uploaders ?? []) this.grantUpload(uploader);
    this.addAlarms();
    this.addOutputs();
  }

  // ------------------------------------------------------------------ grants (public)

  /**
   * Lets `grantee` (a role or user, of this account or another) upload the artifact. The
   * bucket policy (a bucket this construct creates) allows its ARN `s3:PutObject` on the key
   * and stops denying it puts and deletes; with a key of this app on the bucket, the key policy
   * lets it encrypt through S3. A role or user created in this app also gets the identity
   * policy here. Nothing is attached to an imported role or user: it may belong to another
   * account (its own account must allow `s3:PutObject` on the key), and a policy attached by
   * name would land on a same-named role of this account.
   */
  public grantUpload(grantee: iam.IGrantable): iam.Grant {
    const arn = principalArn(grantee);
    this.uploaderArns.push(arn);
    const objectArn = this.artifactBucket.arnForObjects(this.artifactKey);
    if (!this.uploadAllow) {
      this.uploadAllow = new iam.PolicyStatement({
        sid: 'UploadersWriteTheArtifact',
        actions: ['s3:PutObject'],
        resources: [objectArn],
      });
      this.bucketPolicyManaged = this.artifactBucket.addToResourcePolicy(this.uploadAllow).statementAdded;
    }
    this.uploadAllow.addArnPrincipal(arn);
    const key = this.artifactBucket.encryptionKey;
    // What an upload to an SSE-KMS bucket needs of the key, only through S3.
    const encryptActions = ['kms:GenerateDataKey', 'kms:Encrypt'];
    const throughS3 = { StringEquals: { 'kms:ViaService': `s3.${Aws.REGION}.amazonaws.com` } };
    if (ownedByThisApp(grantee)) {
      if (key) iam.Grant.addToPrincipal({ grantee, actions: encryptActions, resourceArns: [key.keyArn], conditions: throughS3 });
      return iam.Grant.addToPrincipal({ grantee, actions: ['s3:PutObject'], resourceArns: [objectArn] });
    }
    // (No encryption-context condition naming the bucket here: the bucket already names the
    // key, and the key naming the bucket back would be a circular dependency.)
    key?.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: `UploaderEncrypts${this.uploaderArns.length}`,
        principals: [new iam.ArnPrincipal(arn)],
        actions: encryptActions,
        resources: ['*'],
        conditions: throughS3,
      }),
    );
    if (!this.bucketPolicyManaged) {
      Annotations.of(this).addWarningV2(
        'prisma-migrator:upload-existing-bucket',
        `grantUpload(${arn}): the existing bucket's policy is not managed here: allow this principal s3:PutObject on ${this.artifactKey} in it yourself.`,
      );
    }
    return iam.Grant.drop(grantee, `upload ${this.artifactKey} (allowed by the bucket policy; the principal's own account must allow s3:PutObject on it)`);
  }

  /**
   * Lets `grantee` invoke the unqualified function: plan and status payloads. A confirmed deploy
   * or resolve sent this way is refused (`rejected`, naming the `apply` alias): confirming is a
   * separate door, `grantConfirm`. Keep `lambda:InvokeFunction` on `*` (or `function:*`) out
   * of other policies: it would open the door too. A role or user of this app gets
   * an identity policy; an imported one (another account's) gets a statement in the function's
   * resource policy naming its ARN, and nothing attached.
   */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    if (ownedByThisApp(grantee)) {
      // The unqualified function only (no `:*` versions/aliases: none are published).
      return iam.Grant.addToPrincipal({ grantee, actions: ['lambda:InvokeFunction'], resourceArns: [this.function.functionArn] });
    }
    const arn = principalArn(grantee);
    this.invokers += 1;
    // On purpose on the unqualified function, not on a version or alias: a plain invoker may
    // plan, never confirm (the `apply` alias is grantConfirm's).
    Annotations.of(this.function).acknowledgeWarning(
      '@aws-cdk/aws-lambda:addPermissionsToVersionOrAlias',
      'grantInvoke allows the unqualified function only; the apply alias (the confirm door) is granted by grantConfirm',
    );
    this.function.addPermission(`InvokedBy${this.invokers}`, { principal: new iam.ArnPrincipal(arn), action: 'lambda:InvokeFunction' });
    return iam.Grant.drop(grantee, `invoke ${this.node.path} (allowed by the function's resource policy)`);
  }

  /**
   * Lets `grantee` confirm (apply) a plan or record a resolve: invoke the function (plans) and
   * its `apply` alias (the confirm door) and, with `longMigrations`, start the state machine.
   * Step Functions has no resource policy: a principal of another account can confirm through
   * the function only (a warning says so), or through a role of this account.
   */
  public grantConfirm(grantee: iam.IGrantable): iam.Grant {
    let grant = this.grantInvoke(grantee).combine(this.grantConfirmAlias(grantee));
    // A fleet rollout is confirmed as a whole: {"action":"deploy","confirm":true} as the execution's input.
    if (this.fleet && ownedByThisApp(grantee)) grant = grant.combine(this.fleet.stateMachine.grantStartExecution(grantee));
    if (!this.longMigrations) return grant;
    if (!ownedByThisApp(grantee)) {
      Annotations.of(this).addWarningV2(
        'prisma-migrator:confirm-long-cross-account',
        `grantConfirm(${principalArn(grantee)}): not a role of this app, so it may invoke the function (resource policy) but cannot be ` +
          'granted states:StartExecution here (Step Functions has no resource policy): give it a role in this account for long migrations.',
      );
      return grant;
    }
    return grant.combine(this.longMigrations.stateMachine.grantStartExecution(grantee));
  }

  /** `lambda:InvokeFunction` on the `apply` alias: an identity policy, or the alias's resource policy for another account's principal. */
  private grantConfirmAlias(grantee: iam.IGrantable): iam.Grant {
    if (ownedByThisApp(grantee)) {
      return iam.Grant.addToPrincipal({ grantee, actions: ['lambda:InvokeFunction'], resourceArns: [this.confirmAlias.functionArn] });
    }
    this.confirmers += 1;
    this.confirmAlias.addPermission(`ConfirmedBy${this.confirmers}`, { principal: new iam.ArnPrincipal(principalArn(grantee)), action: 'lambda:InvokeFunction' });
    return iam.Grant.drop(grantee, `invoke ${this.node.path}'s apply alias (allowed by the alias's resource policy)`);
  }

  /** Outcomes that were not applied (status failed, blocked, rejected or incomplete), from the JSON outcome log line. */
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

  /**
   * New artifact bucket: versioned, SSE-S3 or SSE-KMS, SSL only, no public access, old versions
   * kept `artifactVersionRetention` (optionally object-locked), puts and deletes of the artifact
   * only by uploaders.
   */
  private createArtifactBucket(): s3.Bucket {
    const p = this.props;
    const accessLogs = new s3.Bucket(this, 'AccessLogsBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // Versioned: an overwritten or deleted log object stays recoverable for 90 days.
      versioned: true,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(365), noncurrentVersionExpiration: Duration.days(90) }],
      // Buckets with objects cannot be deleted by CloudFormation: kept by `cdk destroy`.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const retention = p.artifactVersionRetention ?? Duration.days(this.production ? 365 : 30);
    const bucket = new s3.Bucket(this, 'ArtifactBucket', {
      versioned: true,
      ...(p.artifactBucketKey
        ? { encryption: s3.BucketEncryption.KMS, encryptionKey: p.artifactBucketKey, bucketKeyEnabled: true }
        : { encryption: s3.BucketEncryption.S3_MANAGED }),
      ...(p.artifactObjectLockRetention
        ? { objectLockEnabled: true, objectLockDefaultRetention: s3.ObjectLockRetention.governance(p.artifactObjectLockRetention) }
        : {}),
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        {
          id: 'expire-old-artifact-versions',
          noncurrentVersionExpiration: retention,
          noncurrentVersionsToRetain: 5,
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
      // The L2 flag (not a raw CfnBucket property): CDK's notifications custom resource then
      // keeps EventBridge on when anyone adds a notification to this bucket later.
      eventBridgeEnabled: (this.props.trigger ?? MigratorTrigger.EVENTBRIDGE) === MigratorTrigger.EVENTBRIDGE,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // Server access logs, delivered under the log bucket's policy (not its ACL): written here
    // rather than through `serverAccessLogsBucket`, whose behaviour depends on the app's
    // feature flag (@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy) — a library cannot rely on it.
    const logPrefix = 'artifact-bucket/';
    (bucket.node.defaultChild as s3.CfnBucket).loggingConfiguration = { destinationBucketName: accessLogs.bucketName, logFilePrefix: logPrefix };
    accessLogs.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'S3ServerAccessLogs',
        principals: [new iam.ServicePrincipal('logging.s3.amazonaws.com')],
        actions: ['s3:PutObject'],
        resources: [accessLogs.arnForObjects(`${logPrefix}*`)],
        conditions: { ArnLike: { 'aws:SourceArn': bucket.bucketArn }, StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
    );
    // Deleting the current version changes what a later plan reads: deletes are uploads too.
    bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'OnlyUploadersWriteTheArtifact',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:PutObject', 's3:DeleteObject', 's3:DeleteObjectVersion'],
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

  /** New outcome topic, encrypted with a new key; only the function and the task publish to it. */
  private createTopic(): { topic: sns.Topic; key: kms.Key } {
    const key = new kms.Key(this, 'TopicKey', {
      description: `prisma-migrator ${this.stage} notifications topic`,
      enableKeyRotation: true,
      removalPolicy: this.removalPolicy,
      pendingWindow: Duration.days(7),
    });
    const topic = new sns.Topic(this, 'Topic', {
      displayName: `prisma-migrator ${this.stage}`,
      masterKey: key,
      enforceSSL: true,
    });
    return { topic, key };
  }

  /**
   * New alarm topic with its own key (a failure of the outcome topic or its key is then still
   * heard). CloudWatch alarms of this account and the construct's EventBridge rules may publish:
   * the topic policy names the alarms' account (`aws:SourceAccount`) and the rules' ARNs
   * (`aws:SourceArn`, added with each rule); the key policy names the account (`aws:SourceAccount`).
   */
  private createAlarmTopic(): sns.Topic {
    const key = new kms.Key(this, 'AlarmTopicKey', {
      description: `prisma-migrator ${this.stage} alarm topic`,
      enableKeyRotation: true,
      removalPolicy: this.removalPolicy,
      pendingWindow: Duration.days(7),
    });
    const sameAccount = { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } };
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AlarmsAndRulesPublishToTheTopic',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com'), new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: sameAccount,
      }),
    );
    const topic = new sns.Topic(this, 'AlarmTopic', {
      displayName: `prisma-migrator ${this.stage} alarms`,
      masterKey: key,
      enforceSSL: true,
    });
    topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: {
          ...sameAccount,
          ArnLike: { 'aws:SourceArn': `arn:${Aws.PARTITION}:cloudwatch:${Aws.REGION}:${Aws.ACCOUNT_ID}:alarm:*` },
        },
      }),
    );
    return topic;
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
      CONFIRM_QUALIFIER,
      ...recoveryEnvironment(p.database, p.recoveryPoint, this.production),
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
        ['RDS', endpoints.rds],
        ['Secrets Manager', endpoints.secretsManager],
        ['ECR API', endpoints.ecrApi],
        ['ECR Docker', endpoints.ecrDocker],
        ['CloudWatch Logs', endpoints.logs],
      ];
      for (const [name, endpoint] of named) {
        if (endpoint) sg.connections.allowTo(endpoint, ec2.Port.tcp(443), `HTTPS to the ${name} endpoint`);
      }
      if (endpoints.s3GatewayPrefixListId) {
        sg.addEgressRule(ec2.Peer.prefixList(endpoints.s3GatewayPrefixListId), ec2.Port.tcp(443), 'HTTPS to S3 (gateway endpoint prefix list)');
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
    const subnetArns = this.props.vpc.selectSubnets(this.subnets).subnetIds.map((id) => ec2Arn('subnet', id));
    // Lambda manages the function's (Hyperplane) ENIs with this role: it creates them when the
    // function's VPC configuration is set, and deletes them when it changes or the function is
    // deleted. Their ids exist only at run time, so the network-interface resource is `*` —
    // but only ENIs in the function's own subnets (`ec2:Subnet`), never others of the account.
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'CreateNetworkInterfacesInTheFunctionSubnets',
        actions: ['ec2:CreateNetworkInterface'],
        resources: [...subnetArns, ec2Arn('security-group', this.securityGroup.securityGroupId)],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ManageNetworkInterfacesInTheFunctionSubnets',
        actions: [
          'ec2:CreateNetworkInterface',
          'ec2:DeleteNetworkInterface',
          'ec2:AssignPrivateIpAddresses',
          'ec2:UnassignPrivateIpAddresses',
        ],
        resources: [networkInterfaces],
        conditions: { ArnEquals: { 'ec2:Subnet': subnetArns } },
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
      reason:
        "Lambda creates and deletes the function's ENIs with this role: their ids only exist at run time; limited by the ec2:Subnet condition to ENIs in the function's own subnets.",
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
    grantRecoveryPoint(this, grantee, this.stage, this.props.database, this.props.recoveryPoint, this.production);
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
    if (!this.props.longMigrations && !this.props.fleet) {
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
      confirmArn: this.confirmAlias.functionArn,
      cpu: p.taskCpu ?? 512,
      memoryMiB: p.taskMemoryMiB ?? 1024,
      taskTimeout: p.taskTimeout ?? Duration.hours(2),
      maxWait: p.maxEventAge ?? Duration.hours(1),
      logRetention: this.logRetention,
      removalPolicy: this.removalPolicy,
      logsKey: p.logsKey,
      lockTableKey: p.lockTableKey,
    });
    this.grantDataPlane(long.taskRole);
    rule.addTarget(
      new targets.SfnStateMachine(long.stateMachine, {
        deadLetterQueue: this.deadLetterQueue,
        retryAttempts: 2,
        maxEventAge: Duration.hours(2),
      }),
    );
    return long;
  }

  private addFleet(fleet: MigratorFleetProps, rule: events.Rule): MigratorFleet {
    const p = this.props;
    const created = new MigratorFleet(this, 'Fleet', {
      stage: this.stage,
      fleet,
      code: p.code,
      environment: this.environment,
      timeout: p.timeout ?? Duration.minutes(5),
      memorySize: p.memorySize ?? 256,
      vpc: p.vpc,
      subnets: this.subnets,
      securityGroup: this.securityGroup,
      artifactBucket: this.artifactBucket,
      artifactKey: this.artifactKey,
      topic: this.topic,
      topicKey: this.topicKey,
      logRetention: this.logRetention,
      removalPolicy: this.removalPolicy,
      logsKey: p.logsKey,
    });
    rule.addTarget(new targets.SfnStateMachine(created.stateMachine, { deadLetterQueue: this.deadLetterQueue, retryAttempts: 2, maxEventAge: Duration.hours(2) }));
    return created;
  }

  private addSlack(slack: SlackChannelProps, buttonsGuardrail?: iam.IManagedPolicy): chatbot.SlackChannelConfiguration {
    const channel = new chatbot.SlackChannelConfiguration(this, 'Slack', {
      slackChannelConfigurationName: Names.uniqueResourceName(this, { maxLength: 128, separator: '-' }),
      slackWorkspaceId: slack.workspaceId,
      slackChannelId: slack.channelId,
      // The construct's own alarm topic too; a team's own alarm topic keeps its own routing.
      notificationTopics: this.props.alarmTopic ? [this.topic] : [this.topic, this.alarmTopic],
      loggingLevel: chatbot.LoggingLevel.ERROR,
      // Without guardrails AWS applies AdministratorAccess as the channel's ceiling.
      guardrailPolicies: [
        ...(slack.guardrailPolicies ?? [iam.ManagedPolicy.fromAwsManagedPolicyName('CloudWatchReadOnlyAccess')]),
        ...(buttonsGuardrail ? [buttonsGuardrail] : []),
      ],
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
   * The Slack buttons: custom actions attached to the channel (whose guardrails include the
   * buttons', see addSlack), and the channel's role allowed to invoke the `apply` alias (and nothing of the
   * function else).
   */
  private addButtons(channel: chatbot.SlackChannelConfiguration): ChatActions {
    const actions = new ChatActions(this, 'ChatActions', { channel });
    if (channel.role) this.grantConfirmAlias(channel.role);
    return actions;
  }

  /**
   * Alarms on everything that needs a person, all notifying `alarmTopic` (not the outcome
   * topic they partly watch): outcomes not applied (metric filter on the JSON outcome log
   * line), function errors, async events dropped, messages in the DLQ, outcome notifications
   * SNS could not deliver, uploads that started nothing; with long migrations: failed and
   * timed-out executions, and tasks stopping non-zero (an EventBridge rule, with retries and the DLQ).
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
      a.addAlarmAction(new cwActions.SnsAction(this.alarmTopic));
      this.alarms.push(a);
    };
    alarm(
      'NotAppliedAlarm',
      this.metricMigrationsNotApplied({ period }),
      `a migration was not applied (status ${NOT_APPLIED_STATUSES.join(', ')}; see the outcome on the topic)`,
    );
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
    if (this.alarmTopic !== this.topic) {
      alarm(
        'OutcomeNotificationsFailedAlarm',
        this.topic.metricNumberOfNotificationsFailed({ period, statistic: cloudwatch.Stats.SUM }),
        'SNS could not deliver an outcome notification (a subscription, Chatbot or the topic key failed)',
      );
    }
    if (this.rule) {
      // Uploads matched by the rule, yet nothing started in the same window (the target failed
      // or was throttled past its retries): the upload is in the DLQ or lost. 30 minutes: a
      // busy function (reserved concurrency 1, at most 15 minutes a run) starts a queued
      // invocation at least every 15 minutes, so a window with an upload always holds a start
      // unless nothing ran.
      const window = Duration.minutes(30);
      const started = this.longMigrations
        ? this.longMigrations.stateMachine.metricStarted({ period: window, statistic: cloudwatch.Stats.SUM })
        : this.function.metricInvocations({ period: window, statistic: cloudwatch.Stats.SUM });
      const matched = new cloudwatch.Metric({
        namespace: 'AWS/Events',
        metricName: 'TriggeredRules',
        dimensionsMap: { RuleName: this.rule.ruleName },
        statistic: cloudwatch.Stats.SUM,
        period: window,
      });
      alarm(
        'UploadsNotRunAlarm',
        new cloudwatch.MathExpression({
          expression: 'IF(uploads > 0 AND FILL(started, 0) == 0, 1, 0)',
          usingMetrics: { uploads: matched, started },
          period: window,
          label: 'uploads that started nothing',
        }),
        'an upload matched the rule but nothing started in the same 30 minutes (see the DLQ)',
      );
    }
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
        // The event as is (AWS Chatbot renders ECS task state changes), retried, then the DLQ.
        targets: [new ConditionedSnsTarget(this.alarmTopic, { deadLetterQueue: this.deadLetterQueue })],
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
    out('TopicArn', this.topic.topicArn, 'Outcome notifications topic ARN');
    out('AlarmTopicArn', this.alarmTopic.topicArn, 'Alarms topic ARN (subscribe the on-call here)');
    out('SecurityGroupId', this.securityGroup.securityGroupId, 'Security group of the function and task (allow it on the database port)');
    out('ArtifactBucketName', this.artifactBucket.bucketName, 'Artifact bucket');
    out('ArtifactKey', this.artifactKey, 'Artifact key the CI uploads prisma.zip to');
    out('DeadLetterQueueUrl', this.deadLetterQueue.queueUrl, 'Failed invocations');
    out('PlanCommand', invokeCommand(fn, `'{"action":"deploy"}' out.json`), 'Plan only; out.json gets the outcome and its confirmPayload');
    out(
      'ApplyCommand',
      invokeCommand(fn, `"$(jq -c .confirmPayload out.json)" applied.json`),
      'Apply exactly the plan PlanCommand wrote to out.json (its confirmPayload carries the planHash)',
    );
    out(
      'CliPlanCommand',
      Fn.join('', ['migrator invoke --function ', fn]),
      'Plan with the migrator CLI; it prints the command that applies exactly this plan',
    );
    if (this.fleet) {
      out('FleetStateMachineArn', this.fleet.stateMachine.stateMachineArn, "The fleet's rollouts (an upload starts one; confirm with {\"action\":\"deploy\",\"confirm\":true})");
    }
    if (this.longMigrations) {
      const sm = this.longMigrations.stateMachine.stateMachineArn;
      out('EcsClusterName', this.longMigrations.cluster.clusterName, 'ECS cluster of the long-migration task');
      out('StateMachineArn', sm, 'Starts the long-migration task, one at a time');
      out('LongPlanCommand', startExecutionCommand(sm, `'{"action":"deploy"}'`), 'Plan in the long-migration task (the outcome goes to the topic)');
      out(
        'LongApplyCommand',
        startExecutionCommand(sm, '"$(jq -c .confirmPayload out.json)"'),
        'Apply in the long-migration task exactly the plan PlanCommand wrote to out.json',
      );
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

/**
 * A role or user created in this app (`new iam.Role`, `new iam.User`): an identity policy can
 * be attached to it. An imported one (`fromRoleArn`, `fromUserArn`, an `ArnPrincipal`) may
 * live in another account, where a policy attached by name would land on a same-named
 * principal of this account.
 */
function ownedByThisApp(grantee: iam.IGrantable): boolean {
  return grantee instanceof iam.Role || grantee instanceof iam.User;
}

/**
 * Lets CloudWatch Logs of this account and region use a key of this app for the construct's
 * log groups (an imported key's policy is not ours to change: the statement is dropped).
 */
function allowLogsToUse(key: kms.IKey): void {
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchLogsEncrypt',
      principals: [new iam.ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
      actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      resources: ['*'],
      conditions: {
        ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:*` },
      },
    }),
  );
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
 * `aws lambda invoke` with a (shell-quoted) payload and the response file. The CLI's read
 * timeout (60 s by default) would give up and retry, which with reserved concurrency 1 is a
 * throttle or a second run: wait 900 s.
 */
export function invokeCommand(functionName: string, payloadAndOutfile: string): string {
  return Fn.join('', [
    'aws lambda invoke --cli-read-timeout 900 --function-name ',
    functionName,
    ` --cli-binary-format raw-in-base64-out --payload ${payloadAndOutfile}`,
  ]);
}

/** `aws stepfunctions start-execution` of the long-migration state machine with a (shell-quoted) input. */
export function startExecutionCommand(stateMachineArn: string, input: string): string {
  return Fn.join('', ['aws stepfunctions start-execution --state-machine-arn ', stateMachineArn, ` --input ${input}`]);
}
