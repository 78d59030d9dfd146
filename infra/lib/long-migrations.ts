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
  readonly cpu: number;
  readonly memoryMiB: number;
  /** The task's deadline (MAX_DURATION); the state machine stops the task a little after it. */
  readonly taskTimeout: Duration;
  /** How long an execution may wait for its turn. */
  readonly maxWait: Duration;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  /** Adds the data-plane grants (artifact, topic, database) to the task role. */
  readonly grantDataPlane: (grantee: iam.IGrantable) => void;
}

/** Seconds between two attempts to take the lock. */
export const LOCK_POLL_SECONDS = 30;
/** Margin past the task's own deadline before the state machine stops it. */
const STOP_MARGIN = Duration.minutes(10);

export class LongMigrations extends Construct {
  public readonly cluster: ecs.Cluster;
  public readonly taskDefinition: ecs.FargateTaskDefinition;
  public readonly taskLogGroup: logs.LogGroup;
  public readonly lockTable: dynamodb.Table;
  public readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: LongMigrationsProps) {
    super(scope, id);
    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: props.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    this.taskLogGroup = new logs.LogGroup(this, 'TaskLogGroup', {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    this.taskDefinition = this.createTaskDefinition(props);
    this.lockTable = new dynamodb.Table(this, 'LockTable', {
      partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: props.removalPolicy,
    });
    this.stateMachine = this.createStateMachine(props);
  }

  private createTaskDefinition(props: LongMigrationsProps): ecs.FargateTaskDefinition {
    const taskRole = new iam.Role(this, 'TaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: `prisma-migrator ${props.stage} ECS task role`,
    });
    props.grantDataPlane(taskRole);
    const taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      cpu: props.cpu,
      memoryLimitMiB: props.memoryMiB,
      taskRole,
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
   * Acquire (conditional PutItem; on ConditionalCheckFailed wait and retry) → RunTask.sync with
   * the execution's input as MIGRATOR_EVENT → release (DeleteItem of our own lock) → fail
   * unless the container exited 0. The lock carries an expiry, so an execution stopped by
   * hand cannot block the next ones for longer than one task's deadline.
   */
  private createStateMachine(props: LongMigrationsProps): sfn.StateMachine {
    const stack = Stack.of(this);
    const taskSeconds = props.taskTimeout.toSeconds();
    const leaseMs = (taskSeconds + STOP_MARGIN.toSeconds() + 300) * 1000;
    const table = this.lockTable.tableName;
    const lockKey = { id: { S: 'migration' } };
    const subnets = props.vpc.selectSubnets(props.subnets).subnetIds;
    const release = (next: string) => ({
      Type: 'Task',
      Resource: `arn:${Aws.PARTITION}:states:::dynamodb:deleteItem`,
      Arguments: {
        TableName: table,
        Key: lockKey,
        ConditionExpression: '#owner = :me',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':me': { S: '{% $states.context.Execution.Id %}' } },
      },
      Output: '{% $states.input %}',
      // The lock already expired and was taken over: nothing of ours to release.
      Catch: [{ ErrorEquals: ['States.ALL'], Next: next, Output: '{% $states.input %}' }],
      Next: next,
    });
    const definition = {
      Comment: `prisma-migrator ${props.stage}: one long migration at a time`,
      QueryLanguage: 'JSONata',
      StartAt: 'Acquire',
      States: {
        Acquire: {
          Type: 'Task',
          Resource: `arn:${Aws.PARTITION}:states:::dynamodb:putItem`,
          Arguments: {
            TableName: table,
            Item: {
              ...lockKey,
              owner: { S: '{% $states.context.Execution.Id %}' },
              expiresAt: { N: `{% $string($millis() + ${leaseMs}) %}` },
            },
            ConditionExpression: 'attribute_not_exists(#id) OR #expiresAt < :now',
            ExpressionAttributeNames: { '#id': 'id', '#expiresAt': 'expiresAt' },
            ExpressionAttributeValues: { ':now': { N: '{% $string($millis()) %}' } },
          },
          Output: '{% $states.input %}',
          Catch: [{ ErrorEquals: ['DynamoDB.ConditionalCheckFailedException'], Next: 'WaitForTurn', Output: '{% $states.input %}' }],
          Next: 'RunTask',
        },
        WaitForTurn: { Type: 'Wait', Seconds: LOCK_POLL_SECONDS, Next: 'Acquire' },
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
                  Environment: [{ Name: 'MIGRATOR_EVENT', Value: '{% $string($states.input) %}' }],
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
      },
    };
    const logGroup = new logs.LogGroup(this, 'StateMachineLogs', {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    const stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      comment: `prisma-migrator ${props.stage}: long migrations, one at a time`,
      definitionBody: sfn.DefinitionBody.fromString(stack.toJsonString(definition)),
      stateMachineType: sfn.StateMachineType.STANDARD,
      timeout: props.maxWait.plus(props.taskTimeout).plus(STOP_MARGIN).plus(Duration.minutes(5)),
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
      tracingEnabled: true,
    });
    this.grantStateMachine(stateMachine);
    return stateMachine;
  }

  /** What the definition (a string CDK cannot inspect) needs, statement by statement. */
  private grantStateMachine(stateMachine: sfn.StateMachine): void {
    const add = (s: iam.PolicyStatement) => stateMachine.addToRolePolicy(s);
    add(new iam.PolicyStatement({ sid: 'Lock', actions: ['dynamodb:PutItem', 'dynamodb:DeleteItem'], resources: [this.lockTable.tableArn] }));
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
