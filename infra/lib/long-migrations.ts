/**
 * The long-migration path: a Fargate task running the same binary (`migrator handle-event`),
 * started one at a time by a Step Functions state machine that holds a lock (a DynamoDB
 * item written with a condition) while the task runs.
 */
import { Aws, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { nagFlatten } from './nag-util';
import { MIGRATOR_CONTAINER_NAME } from './types';

export interface LongMigrationsProps {
  readonly stage: string;
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly image: ecs.ContainerImage;
  /** The function's environment; the task adds MAX_DURATION. */
  readonly environment: Record<string, string>;
  /**
   * The `apply` alias's ARN, passed to every task as `MIGRATOR_INVOKED_FUNCTION_ARN`: the
   * confirm door of the long path is the state machine itself, which only the confirmers
   * (`grantConfirm`) and the upload rule may start.
   */
  readonly confirmArn: string;
  readonly cpu: number;
  readonly memoryMiB: number;
  /** The task's deadline (MAX_DURATION); the state machine stops the task a little after it. */
  readonly taskTimeout: Duration;
  /** How long an execution may wait for its turn. */
  readonly maxWait: Duration;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  /** Customer-managed key of the task and state-machine log groups. @default CloudWatch Logs' own encryption */
  readonly logsKey?: kms.IKey;
  /** Customer-managed key of the lock table. @default AWS-managed key (aws/dynamodb) */
  readonly lockTableKey?: kms.IKey;
}

/** Seconds between two attempts to take the lock. */
export const LOCK_POLL_SECONDS = 30;
/** Margin past the task's own deadline before the state machine stops it. */
const STOP_MARGIN = Duration.minutes(10);
const CONDITION_FAILED = 'DynamoDB.ConditionalCheckFailedException';
/**
 * Retries of every lock call: a failed condition is an answer, never retried (MaxAttempts 0);
 * anything else (throttling, a 5xx, a network error) is retried with exponential backoff and
 * full jitter, 2 s → 60 s, 8 times (about 4 minutes in all).
 */
export const LOCK_RETRY = [
  { ErrorEquals: [CONDITION_FAILED], MaxAttempts: 0 },
  { ErrorEquals: ['States.ALL'], IntervalSeconds: 2, BackoffRate: 2, MaxAttempts: 8, MaxDelaySeconds: 60, JitterStrategy: 'FULL' },
];
/** JSONata: the execution input is an S3 "Object Created" event (an upload), not a manual payload. */
const IS_UPLOAD = "$states.input.source = 'aws.s3' and $exists($states.input.time)";

export class LongMigrations extends Construct {
  public readonly cluster: ecs.Cluster;
  public readonly taskDefinition: ecs.FargateTaskDefinition;
  public readonly taskLogGroup: logs.LogGroup;
  public readonly lockTable: dynamodb.Table;
  public readonly stateMachine: sfn.StateMachine;
  /** The task's role: the caller adds the data-plane grants (artifact, topic, database). */
  public readonly taskRole: iam.Role;
  /** The execution's deadline (top-level `TimeoutSeconds` of the definition). */
  public readonly executionTimeout: Duration;

  constructor(scope: Construct, id: string, props: LongMigrationsProps) {
    super(scope, id);
    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: props.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    this.taskLogGroup = new logs.LogGroup(this, 'TaskLogGroup', {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
      encryptionKey: props.logsKey,
    });
    this.taskRole = new iam.Role(this, 'TaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: `prisma-migrator ${props.stage} ECS task role`,
    });
    this.taskDefinition = this.createTaskDefinition(props);
    this.lockTable = new dynamodb.Table(this, 'LockTable', {
      partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      ...(props.lockTableKey
        ? { encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED, encryptionKey: props.lockTableKey }
        : { encryption: dynamodb.TableEncryption.AWS_MANAGED }),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: props.removalPolicy,
    });
    this.executionTimeout = props.maxWait.plus(props.taskTimeout).plus(STOP_MARGIN).plus(Duration.minutes(5));
    this.stateMachine = this.createStateMachine(props);
  }

  private createTaskDefinition(props: LongMigrationsProps): ecs.FargateTaskDefinition {
    const taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      cpu: props.cpu,
      memoryLimitMiB: props.memoryMiB,
      taskRole: this.taskRole,
      runtimePlatform: {
        cpuArchitecture: ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    taskDefinition.addContainer(MIGRATOR_CONTAINER_NAME, {
      image: props.image,
      command: ['migrator', 'handle-event'],
      environment: { ...props.environment, MAX_DURATION: String(props.taskTimeout.toSeconds()) },
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.taskLogGroup, streamPrefix: 'migrator' }),
      readonlyRootFilesystem: false,
      essential: true,
    });
    Validations.of(taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds configuration only (host, port, names, ARNs, flags); credentials come from IAM auth tokens or Secrets Manager at run time.',
    });
    Validations.of(taskDefinition.obtainExecutionRole()).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken does not support resource-level permissions; AWS requires "*" (granted by CDK for pulling the image).',
    });
    return taskDefinition;
  }

  /**
   * One lock item (`id = migration`) in the table, taken with a conditional UpdateItem:
   *
   * - an upload (an S3 "Object Created" event) takes it only when it is free (or its lease
   *   expired) and no newer upload has run (`uploadedAt`, the event's time in ms, kept on the
   *   item): a newer upload having run, an older one ends as `Superseded` without running —
   *   so an older artifact never runs after a newer one;
   * - a manual payload (plan, confirm, resolve) only waits for the lock to be free;
   * - a busy lock is polled every LOCK_POLL_SECONDS until `maxWait` has passed since the
   *   execution started (then `LockWaitExpired`);
   * - RunTask.sync with the execution's input as MIGRATOR_EVENT → release (REMOVE owner,
   *   condition: still ours) → fail unless the container exited 0.
   *
   * Transient DynamoDB errors are retried with exponential backoff and jitter on every lock
   * call; a release that still fails fails the execution (`LockNotReleased`, alarmed) instead
   * of holding the lock silently until its lease expires. The lease covers one task's deadline,
   * so an execution stopped by hand cannot block the next ones for longer. The whole execution
   * has a deadline (`TimeoutSeconds`).
   */
  private createStateMachine(props: LongMigrationsProps): sfn.StateMachine {
    const stack = Stack.of(this);
    const taskSeconds = props.taskTimeout.toSeconds();
    const leaseMs = (taskSeconds + STOP_MARGIN.toSeconds() + 300) * 1000;
    const maxWaitMs = props.maxWait.toMilliseconds();
    const table = this.lockTable.tableName;
    const lockKey = { id: { S: 'migration' } };
    const subnets = props.vpc.selectSubnets(props.subnets).subnetIds;
    const me = '{% $states.context.Execution.Id %}';
    const dynamo = (action: string) => `arn:${Aws.PARTITION}:states:::dynamodb:${action}`;
    const keep = '{% $states.input %}';
    const lockFree = '(attribute_not_exists(#owner) OR #expiresAt < :now)';
    const acquire = (forUpload: boolean) => ({
      Type: 'Task',
      Resource: dynamo('updateItem'),
      Arguments: {
        TableName: table,
        Key: lockKey,
        UpdateExpression: forUpload ? 'SET #owner = :me, #expiresAt = :expires, #uploadedAt = :mine' : 'SET #owner = :me, #expiresAt = :expires',
        ConditionExpression: forUpload ? `${lockFree} AND (attribute_not_exists(#uploadedAt) OR #uploadedAt <= :mine)` : lockFree,
        ExpressionAttributeNames: { '#owner': 'owner', '#expiresAt': 'expiresAt', ...(forUpload ? { '#uploadedAt': 'uploadedAt' } : {}) },
        ExpressionAttributeValues: {
          ':me': { S: me },
          ':now': { N: '{% $string($millis()) %}' },
          ':expires': { N: `{% $string($millis() + ${leaseMs}) %}` },
          ...(forUpload ? { ':mine': { N: '{% $string($uploadedAt) %}' } } : {}),
        },
      },
      Output: keep,
      Retry: LOCK_RETRY,
      Catch: [{ ErrorEquals: [CONDITION_FAILED], Next: forUpload ? 'ReadLock' : 'StillInTime', Output: keep }],
      Next: 'RunTask',
    });
    const release = (next: string) => ({
      Type: 'Task',
      Resource: dynamo('updateItem'),
      Arguments: {
        TableName: table,
        Key: lockKey,
        UpdateExpression: 'REMOVE #owner, #expiresAt',
        ConditionExpression: '#owner = :me',
        ExpressionAttributeNames: { '#owner': 'owner', '#expiresAt': 'expiresAt' },
        ExpressionAttributeValues: { ':me': { S: me } },
      },
      Output: keep,
      Retry: LOCK_RETRY,
      Catch: [
        // The lease expired and another execution took the lock: nothing of ours to release.
        { ErrorEquals: [CONDITION_FAILED], Next: next, Output: keep },
        { ErrorEquals: ['States.ALL'], Next: 'LockNotReleased', Output: '{% $states.errorOutput %}' },
      ],
      Next: next,
    });
    const definition = {
      Comment: `prisma-migrator ${props.stage}: one long migration at a time, uploads in upload order`,
      QueryLanguage: 'JSONata',
      // The execution's deadline: waiting (maxWait), the task's deadline, the stop margin, slack.
      TimeoutSeconds: this.executionTimeout.toSeconds(),
      StartAt: 'Start',
      States: {
        Start: {
          Type: 'Pass',
          // The upload's time (ms) orders uploads; a manual payload has none (0).
          Assign: { uploadedAt: `{% (${IS_UPLOAD}) ? $toMillis($states.input.time) : 0 %}` },
          Output: keep,
          Next: 'IsUpload',
        },
        IsUpload: {
          Type: 'Choice',
          Choices: [{ Condition: '{% $uploadedAt > 0 %}', Next: 'AcquireForUpload' }],
          Default: 'AcquireForManual',
        },
        AcquireForUpload: acquire(true),
        AcquireForManual: acquire(false),
        ReadLock: {
          Type: 'Task',
          Resource: dynamo('getItem'),
          Arguments: { TableName: table, Key: lockKey, ConsistentRead: true },
          Assign: { newest: '{% $exists($states.result.Item.uploadedAt.N) ? $number($states.result.Item.uploadedAt.N) : 0 %}' },
          Output: keep,
          Retry: LOCK_RETRY,
          Next: 'NewerUploadRan',
        },
        NewerUploadRan: {
          Type: 'Choice',
          Choices: [{ Condition: '{% $newest > $uploadedAt %}', Next: 'Superseded' }],
          Default: 'StillInTime',
        },
        Superseded: {
          Type: 'Succeed',
          Comment: 'A newer upload already ran: this older artifact is not applied after it.',
        },
        StillInTime: {
          Type: 'Choice',
          Choices: [
            {
              Condition: `{% ($millis() - $toMillis($states.context.Execution.StartTime)) < ${maxWaitMs} %}`,
              Next: 'WaitForTurn',
            },
          ],
          Default: 'LockWaitExpired',
        },
        WaitForTurn: { Type: 'Wait', Seconds: LOCK_POLL_SECONDS, Next: 'IsUpload' },
        LockWaitExpired: {
          Type: 'Fail',
          Error: 'LockWaitExpired',
          Cause: 'Another migration held the lock for longer than maxEventAge: nothing ran; upload again or start the execution again.',
        },
        RunTask: {
          Type: 'Task',
          Resource: `arn:${Aws.PARTITION}:states:::ecs:runTask.sync`,
          Arguments: {
            Cluster: this.cluster.clusterArn,
            TaskDefinition: this.taskDefinition.taskDefinitionArn,
            LaunchType: 'FARGATE',
            PlatformVersion: 'LATEST',
            NetworkConfiguration: {
              AwsvpcConfiguration: {
                Subnets: subnets,
                SecurityGroups: [props.securityGroup.securityGroupId],
                AssignPublicIp: 'DISABLED',
              },
            },
            Overrides: {
              ContainerOverrides: [
                {
                  Name: MIGRATOR_CONTAINER_NAME,
                  // The whole event (S3 "Object Created" from the rule, or a manual payload).
                  // The door: only confirmers and the upload rule may start this state machine.
                  Environment: [
                    { Name: 'MIGRATOR_EVENT', Value: '{% $string($states.input) %}' },
                    { Name: 'MIGRATOR_INVOKED_FUNCTION_ARN', Value: props.confirmArn },
                  ],
                },
              ],
            },
          },
          TimeoutSeconds: taskSeconds + STOP_MARGIN.toSeconds(),
          Catch: [{ ErrorEquals: ['States.ALL'], Next: 'ReleaseAfterFailure', Output: '{% $states.errorOutput %}' }],
          Next: 'CheckExitCode',
        },
        CheckExitCode: {
          Type: 'Choice',
          Choices: [
            {
              Condition: '{% $exists($states.input.Containers[0].ExitCode) and $states.input.Containers[0].ExitCode = 0 %}',
              Next: 'Release',
            },
          ],
          Default: 'ReleaseAfterFailure',
        },
        Release: release('Done'),
        ReleaseAfterFailure: release('Failed'),
        Done: { Type: 'Succeed' },
        Failed: {
          Type: 'Fail',
          Error: 'MigrationTaskFailed',
          Cause: 'The migration task did not exit 0: its outcome is on the topic and in the task log group.',
        },
        LockNotReleased: {
          Type: 'Fail',
          Error: 'LockNotReleased',
          Cause:
            'The lock could not be released after retries: the next migration waits until its lease (expiresAt) ends, ' +
            'or delete the owner attribute of item id=migration in the lock table. The migration outcome is on the topic.',
        },
      },
    };
    const logGroup = new logs.LogGroup(this, 'StateMachineLogs', {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
      encryptionKey: props.logsKey,
    });
    // A string definition: CDK would drop a `timeout` prop here, so the deadline is the
    // definition's own top-level TimeoutSeconds (above).
    const stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      comment: `prisma-migrator ${props.stage}: long migrations, one at a time`,
      definitionBody: sfn.DefinitionBody.fromString(stack.toJsonString(definition)),
      stateMachineType: sfn.StateMachineType.STANDARD,
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
      tracingEnabled: true,
    });
    this.grantStateMachine(stateMachine, props);
    return stateMachine;
  }

  /** What the definition (a string CDK cannot inspect) needs, statement by statement. */
  private grantStateMachine(stateMachine: sfn.StateMachine, props: LongMigrationsProps): void {
    const add = (s: iam.PolicyStatement) => stateMachine.addToRolePolicy(s);
    add(new iam.PolicyStatement({ sid: 'Lock', actions: ['dynamodb:UpdateItem', 'dynamodb:GetItem'], resources: [this.lockTable.tableArn] }));
    if (props.lockTableKey) {
      add(
        new iam.PolicyStatement({
          sid: 'LockTableKey',
          actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'],
          resources: [props.lockTableKey.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${Aws.REGION}.amazonaws.com` } },
        }),
      );
    }
    add(
      new iam.PolicyStatement({
        sid: 'RunTask',
        actions: ['ecs:RunTask'],
        resources: [this.taskDefinition.taskDefinitionArn],
        conditions: { ArnEquals: { 'ecs:cluster': this.cluster.clusterArn } },
      }),
    );
    const taskArns = `arn:${Aws.PARTITION}:ecs:${Aws.REGION}:${Aws.ACCOUNT_ID}:task/${this.cluster.clusterName}/*`;
    add(new iam.PolicyStatement({ sid: 'WatchTask', actions: ['ecs:DescribeTasks', 'ecs:StopTask'], resources: [taskArns] }));
    const roles = [this.taskDefinition.taskRole.roleArn, this.taskDefinition.obtainExecutionRole().roleArn];
    add(
      new iam.PolicyStatement({
        sid: 'PassTaskRoles',
        actions: ['iam:PassRole'],
        resources: roles,
        conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
      }),
    );
    add(
      new iam.PolicyStatement({
        sid: 'SyncRule',
        actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
        resources: [`arn:${Aws.PARTITION}:events:${Aws.REGION}:${Aws.ACCOUNT_ID}:rule/StepFunctionsGetEventsForECSTaskRule`],
      }),
    );
    Validations.of(stateMachine.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagFlatten(this, taskArns)}]`,
      reason: 'RunTask.sync describes and, past the deadline, stops the task it started: task ids exist only at run time; limited to this cluster.',
    });
    Validations.of(stateMachine.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'CloudWatch Logs delivery (logs:CreateLogDelivery, …) and X-Ray (PutTraceSegments) for the state machine do not support resource-level permissions; AWS requires "*" (granted by CDK).',
    });
  }
}
