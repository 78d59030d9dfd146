/**
 * A fleet: one artifact, many databases. A second function (the same code, `FLEET_QUALIFIER`
 * set, its own role with the targets' logins only) behind an alias `fleet` that only the
 * state machine may invoke, and the state machine of a rollout:
 *
 *   Prepare (pin the artifact and the targets object, check every line)
 *   → Plan: a Distributed Map over every target (read-only; a target that cannot be applied raises the halt flag)
 *   → stop with the plan where the stage does not apply uploads (one plan message) or the plan halted
 *   → Canary: an inline Map over the first `canary` targets; a failure raises the halt flag
 *   → the halt flag read again: up → the rollup
 *   → Waves: a Distributed Map over the targets object (item reader, `MaxConcurrency`,
 *     `ToleratedFailureCount` 0); each child reads the halt flag before it starts and raises
 *     it when its target fails
 *   → Rollup: every target's status in one message on the rollout's thread.
 *
 * JSONPath, not JSONata: the local interpreter the tests execute this definition with
 * (aws-local-stepfunctions) reads JSONPath only. A result that replaces the state's input
 * leaves `ResultPath` out (the default, `$`): that interpreter 3.0.0 writes `ResultPath: "$"`
 * to a key named `$` instead.
 */
import { ArnFormat, Aws, Duration, Names, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3deploy from 'aws-cdk-lib/aws-s3-deployment';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { fleetLogins, fleetSecrets, MigratorFleetProps, targetLines } from './fleet-targets';
import { nagFlatten } from './nag-util';

export { FleetIamLogin, FleetTarget, MigratorFleetProps, MAX_FLEET_TARGETS } from './fleet-targets';

/** The fleet's door: the alias only the fleet's state machine may invoke. */
export const FLEET_QUALIFIER = 'fleet';
/** The halt flag's table key. */
export const HALT_KEY = 'execution';

export interface FleetProps {
  readonly stage: string;
  readonly fleet: MigratorFleetProps;
  readonly code: lambda.Code;
  /** The stage function's environment (the fleet function adds FLEET_QUALIFIER, FLEET_TARGETS). */
  readonly environment: Record<string, string>;
  readonly timeout: Duration;
  readonly memorySize: number;
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly artifactBucket: s3.IBucket;
  readonly artifactKey: string;
  readonly topic: sns.ITopic;
  readonly topicKey?: kms.IKey;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  readonly logsKey?: kms.IKey;
}

const LAMBDA_RETRY = [
  {
    ErrorEquals: ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException'],
    IntervalSeconds: 2,
    BackoffRate: 2,
    MaxAttempts: 6,
    MaxDelaySeconds: 60,
    JitterStrategy: 'FULL',
  },
];

export class MigratorFleet extends Construct {
  public readonly function: lambda.Function;
  public readonly role: iam.Role;
  /** The fleet's door: `fleet` on the fleet function's current version. */
  public readonly alias: lambda.Alias;
  public readonly haltTable: dynamodb.Table;
  public readonly stateMachine: sfn.StateMachine;
  /** The definition as synthesized (a JSONPath state machine). */
  public readonly definition: Record<string, unknown>;
  public readonly canary: number;
  public readonly maxConcurrency: number;
  /** Every child's deadline (its Task's TimeoutSeconds): the function's timeout and a minute. */
  public readonly childTimeoutSeconds: number;
  /** The execution's deadline. */
  public readonly executionTimeout: Duration;
  /** With `targets`: the S3 deployment that writes them as the targets object. */
  public readonly targetsDeployment?: s3deploy.BucketDeployment;

  constructor(scope: Construct, id: string, props: FleetProps) {
    super(scope, id);
    const f = props.fleet;
    this.canary = f.canary ?? 1;
    this.maxConcurrency = f.maxConcurrency ?? 10;
    this.childTimeoutSeconds = props.timeout.toSeconds() + 60;
    // Plan and waves each run at most MAX_FLEET_TARGETS / maxConcurrency rounds of children.
    const rounds = Math.ceil(1000 / this.maxConcurrency);
    this.executionTimeout = Duration.seconds(Math.min(2 * rounds * this.childTimeoutSeconds + this.canary * this.childTimeoutSeconds + 3600, 365 * 86400));
    const logGroup = new logs.LogGroup(this, 'FunctionLogGroup', { retention: props.logRetention, removalPolicy: props.removalPolicy, encryptionKey: props.logsKey });
    this.role = this.createRole(props, logGroup);
    if (f.targets) {
      // The targets given to the construct become the targets object: a new version of it at
      // each deploy that changes them. Not pruned: nothing else in the bucket is touched.
      this.targetsDeployment = new s3deploy.BucketDeployment(this, 'TargetsObject', {
        sources: [s3deploy.Source.data(f.targetsKey, targetLines(f.targets))],
        destinationBucket: f.targetsBucket,
        prune: false,
        retainOnDelete: true,
      });
    }
    this.function = new lambda.Function(this, 'Function', {
      description: `prisma-migrator ${props.stage} fleet: one target per invocation, chosen by the fleet's state machine`,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.X86_64,
      handler: 'bootstrap',
      code: props.code,
      timeout: props.timeout,
      memorySize: props.memorySize,
      role: this.role,
      environment: {
        // The stage's recovery point names the stage's RDS database, not a target's: a fleet's
        // targets take none (their identifiers are not known to the construct).
        ...withoutStageRecoveryPoint(props.environment),
        FLEET_QUALIFIER,
        FLEET_TARGETS: `s3://${f.targetsBucket.bucketName}/${f.targetsKey}`,
      },
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [props.securityGroup],
      // The waves' (and the plan's) concurrency: more would only be throttled.
      reservedConcurrentExecutions: this.maxConcurrency,
      retryAttempts: 0,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
    });
    this.alias = new lambda.Alias(this, 'FleetAlias', {
      aliasName: FLEET_QUALIFIER,
      version: this.function.currentVersion,
      description: "The fleet's door: a target is honoured only through this alias, which only the fleet's state machine may invoke",
    });
    this.haltTable = new dynamodb.Table(this, 'HaltTable', {
      partitionKey: { name: HALT_KEY, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: props.removalPolicy,
    });
    this.definition = this.buildDefinition(props);
    const smName = Names.uniqueResourceName(this, { maxLength: 80, separator: '-' });
    const smLogs = new logs.LogGroup(this, 'StateMachineLogs', { retention: props.logRetention, removalPolicy: props.removalPolicy, encryptionKey: props.logsKey });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: smName,
      comment: `prisma-migrator ${props.stage}: fleet rollouts (canary, waves, halt, rollup)`,
      definitionBody: sfn.DefinitionBody.fromString(Stack.of(this).toJsonString(this.definition)),
      stateMachineType: sfn.StateMachineType.STANDARD,
      logs: { destination: smLogs, level: sfn.LogLevel.ALL, includeExecutionData: false },
      tracingEnabled: true,
    });
    this.grantStateMachine(props, smName);
  }

  /** `arn:aws:states:::lambda:invoke` of the fleet alias with `payload`. */
  private invoke(payload: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
    return {
      Type: 'Task',
      Resource: `arn:${Aws.PARTITION}:states:::lambda:invoke`,
      Parameters: { FunctionName: this.alias.functionArn, Payload: { fleet: payload } },
      TimeoutSeconds: this.childTimeoutSeconds,
      Retry: LAMBDA_RETRY,
      ...extra,
    };
  }

  private buildDefinition(props: FleetProps): Record<string, unknown> {
    const table = this.haltTable.tableName;
    const dynamo = (action: string) => `arn:${Aws.PARTITION}:states:::dynamodb:${action}`;
    const haltKey = (path: string) => ({ [HALT_KEY]: { 'S.$': path } });
    const readHalt = (next: string) => ({
      Type: 'Task',
      Resource: dynamo('getItem'),
      Parameters: { TableName: table, Key: haltKey('$.execution'), ConsistentRead: true },
      ResultPath: '$.halt',
      Retry: [{ ErrorEquals: ['States.ALL'], IntervalSeconds: 1, BackoffRate: 2, MaxAttempts: 5 }],
      Next: next,
    });
    const raiseHalt = (next: string) => ({
      Type: 'Task',
      Resource: dynamo('putItem'),
      Parameters: {
        TableName: table,
        Item: { ...haltKey('$.execution'), index: { 'N.$': 'States.Format(\'{}\', $.index)' }, id: { 'S.$': '$.result.id' } },
      },
      ResultPath: null,
      Retry: [{ ErrorEquals: ['States.ALL'], IntervalSeconds: 1, BackoffRate: 2, MaxAttempts: 5 }],
      Next: next,
    });
    const targetPayload = (action: string) => ({ step: 'target', action, 'index.$': '$.index', 'target.$': '$.target', 'rollout.$': '$.rollout' });
    const child = (action: string, prefix: string, start?: Record<string, unknown>) => ({
      StartAt: start ? `${prefix}InCanary` : `${prefix}CheckHalt`,
      States: {
        ...(start ?? {}),
        [`${prefix}CheckHalt`]: readHalt(`${prefix}Halted`),
        [`${prefix}Halted`]: {
          Type: 'Choice',
          Choices: [{ Variable: '$.halt.Item', IsPresent: true, Next: `${prefix}Skipped` }],
          Default: `${prefix}Target`,
        },
        [`${prefix}Skipped`]: {
          Type: 'Pass',
          Parameters: { 'index.$': '$.index', 'id.$': '$.target.id', status: 'skipped', ok: true },
          End: true,
        },
        [`${prefix}Target`]: this.invoke(targetPayload(action), {
          ResultSelector: { 'result.$': '$.Payload' },
          ResultPath: '$.out',
          Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: `${prefix}HaltOnError` }],
          Next: `${prefix}Ok`,
        }),
        [`${prefix}Ok`]: {
          Type: 'Choice',
          Choices: [{ Variable: '$.out.result.ok', BooleanEquals: true, Next: `${prefix}Done` }],
          Default: `${prefix}Halt`,
        },
        [`${prefix}Done`]: { Type: 'Pass', OutputPath: '$.out.result', End: true },
        [`${prefix}Halt`]: { ...raiseHalt(`${prefix}Done`), Parameters: { TableName: table, Item: { ...haltKey('$.execution'), index: { 'N.$': "States.Format('{}', $.index)" }, id: { 'S.$': '$.out.result.id' } } } },
        [`${prefix}HaltOnError`]: { ...raiseHalt(`${prefix}Error`), Parameters: { TableName: table, Item: { ...haltKey('$.execution'), index: { 'N.$': "States.Format('{}', $.index)" }, id: { 'S.$': '$.target.id' } } } },
        [`${prefix}Error`]: { Type: 'Fail', Error: 'TargetError', Cause: 'The child could not run its target (see the execution history); the halt flag is up.' },
      },
    });
    const itemReader = {
      Resource: `arn:${Aws.PARTITION}:states:::s3:getObject`,
      ReaderConfig: { InputType: 'JSONL' },
      Parameters: { 'Bucket.$': '$.prepare.items.bucket', 'Key.$': '$.prepare.items.key', 'VersionId.$': '$.prepare.items.versionId' },
    };
    const selector = {
      'index.$': '$$.Map.Item.Index',
      'target.$': '$$.Map.Item.Value',
      'rollout.$': '$.prepare.rollout',
      'execution.$': '$$.Execution.Id',
      'canary.$': '$.prepare.rollout.canary',
    };
    const distributed = { ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' } };
    return {
      Comment: `prisma-migrator ${props.stage}: one artifact, a fleet of databases (plan, canary, waves with a halt flag, rollup)`,
      QueryLanguage: 'JSONPath',
      TimeoutSeconds: this.executionTimeout.toSeconds(),
      StartAt: 'Prepare',
      States: {
        Prepare: this.invoke(
          { step: 'prepare', 'input.$': '$', canary: this.canary },
          { ResultSelector: { 'prepare.$': '$.Payload' }, Next: 'Prepared' },
        ),
        Prepared: {
          Type: 'Choice',
          Choices: [{ Variable: '$.prepare.ok', BooleanEquals: true, Next: 'Plan' }],
          Default: 'Rollup',
        },
        Plan: {
          Type: 'Map',
          ItemReader: itemReader,
          ItemSelector: selector,
          MaxConcurrency: this.maxConcurrency,
          ToleratedFailureCount: 0,
          ItemProcessor: { ...distributed, ...child('plan', 'Plan') },
          ResultPath: '$.plan',
          Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.wavesError', Next: 'Rollup' }],
          Next: 'PlanHaltFlag',
        },
        PlanHaltFlag: { ...readHalt('PlanVerdict'), Parameters: { TableName: table, Key: haltKey('$$.Execution.Id'), ConsistentRead: true } },
        PlanVerdict: {
          Type: 'Choice',
          Choices: [
            { Variable: '$.halt.Item', IsPresent: true, Next: 'Rollup' },
            { Variable: '$.prepare.rollout.apply', BooleanEquals: false, Next: 'Rollup' },
          ],
          Default: 'ForgetPlan',
        },
        // The plan was clean and the rollout applies: its results would only crowd the state.
        ForgetPlan: { Type: 'Pass', Parameters: { 'prepare.$': '$.prepare' }, Next: 'Canary' },
        Canary: {
          Type: 'Map',
          ItemsPath: '$.prepare.canary',
          ItemSelector: {
            'index.$': '$$.Map.Item.Value.index',
            'target.$': '$$.Map.Item.Value.target',
            'rollout.$': '$.prepare.rollout',
            'execution.$': '$$.Execution.Id',
          },
          MaxConcurrency: Math.min(this.canary, this.maxConcurrency),
          ItemProcessor: { ProcessorConfig: { Mode: 'INLINE' }, ...child('deploy', 'Canary') },
          ResultPath: '$.canary',
          Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.wavesError', Next: 'Rollup' }],
          Next: 'CanaryHaltFlag',
        },
        CanaryHaltFlag: { ...readHalt('CanaryVerdict'), Parameters: { TableName: table, Key: haltKey('$$.Execution.Id'), ConsistentRead: true } },
        CanaryVerdict: {
          Type: 'Choice',
          Choices: [{ Variable: '$.halt.Item', IsPresent: true, Next: 'Rollup' }],
          Default: 'Waves',
        },
        Waves: {
          Type: 'Map',
          ItemReader: itemReader,
          ItemSelector: selector,
          MaxConcurrency: this.maxConcurrency,
          ToleratedFailureCount: 0,
          ItemProcessor: {
            ...distributed,
            ...child('deploy', 'Wave', {
              WaveInCanary: {
                Type: 'Choice',
                Choices: [{ Variable: '$.index', NumericLessThanPath: '$.canary', Next: 'WaveCanaryLine' }],
                Default: 'WaveCheckHalt',
              },
              WaveCanaryLine: { Type: 'Pass', Parameters: { 'index.$': '$.index', 'id.$': '$.target.id', status: 'canary', ok: true }, End: true },
            }),
          },
          ResultPath: '$.waves',
          Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.wavesError', Next: 'WavesHaltFlag' }],
          Next: 'WavesHaltFlag',
        },
        WavesHaltFlag: { ...readHalt('Rollup'), Parameters: { TableName: table, Key: haltKey('$$.Execution.Id'), ConsistentRead: true } },
        Rollup: this.invoke({ step: 'rollup', 'run.$': '$' }, { ResultSelector: { 'ok.$': '$.Payload.ok', 'rollup.$': '$.Payload.rollup' }, Next: 'Verdict' }),
        Verdict: {
          Type: 'Choice',
          Choices: [{ Variable: '$.ok', BooleanEquals: true, Next: 'Done' }],
          Default: 'NotApplied',
        },
        Done: { Type: 'Succeed' },
        NotApplied: { Type: 'Fail', Error: 'RolloutNotApplied', Cause: 'The rollout was rejected, halted or failed: the rollup on the topic lists every target.' },
      },
    };
  }

  /** The fleet function's role: the artifact, the targets object, the topic, the targets' logins only. */
  private createRole(props: FleetProps, logGroup: logs.ILogGroup): iam.Role {
    const f = props.fleet;
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `prisma-migrator ${props.stage} fleet function role`,
    });
    const add = (s: iam.PolicyStatement) => role.addToPolicy(s);
    add(new iam.PolicyStatement({ sid: 'Logs', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }));
    add(new iam.PolicyStatement({ sid: 'DescribeNetwork', actions: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'], resources: ['*'] }));
    const stack = Stack.of(this);
    const ec2Arn = (resource: string, name: string) => stack.formatArn({ service: 'ec2', resource, resourceName: name });
    const subnetArns = props.vpc.selectSubnets(props.subnets).subnetIds.map((id) => ec2Arn('subnet', id));
    const enis = ec2Arn('network-interface', '*');
    add(new iam.PolicyStatement({ sid: 'CreateNetworkInterfaces', actions: ['ec2:CreateNetworkInterface'], resources: [...subnetArns, ec2Arn('security-group', props.securityGroup.securityGroupId)] }));
    add(
      new iam.PolicyStatement({
        sid: 'ManageNetworkInterfaces',
        actions: ['ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
        resources: [enis],
        conditions: { ArnEquals: { 'ec2:Subnet': subnetArns } },
      }),
    );
    add(new iam.PolicyStatement({ sid: 'ReadArtifact', actions: ['s3:GetObject', 's3:GetObjectVersion'], resources: [props.artifactBucket.arnForObjects(props.artifactKey)] }));
    add(new iam.PolicyStatement({ sid: 'ReadTargets', actions: ['s3:GetObject', 's3:GetObjectVersion'], resources: [f.targetsBucket.arnForObjects(f.targetsKey)] }));
    for (const [sid, bucket] of [['DecryptArtifact', props.artifactBucket], ['DecryptTargets', f.targetsBucket]] as const) {
      if (bucket.encryptionKey) {
        add(new iam.PolicyStatement({ sid, actions: ['kms:Decrypt'], resources: [bucket.encryptionKey.keyArn], conditions: { StringEquals: { 'kms:ViaService': `s3.${Aws.REGION}.amazonaws.com` } } }));
      }
    }
    add(new iam.PolicyStatement({ sid: 'PublishRollup', actions: ['sns:Publish'], resources: [props.topic.topicArn] }));
    if (props.topicKey) {
      add(new iam.PolicyStatement({ sid: 'EncryptRollup', actions: ['kms:Decrypt', 'kms:GenerateDataKey'], resources: [props.topicKey.keyArn], conditions: { StringEquals: { 'kms:ViaService': `sns.${Aws.REGION}.amazonaws.com` } } }));
    }
    const logins = fleetLogins(f);
    if (logins.length > 0) {
      add(
        new iam.PolicyStatement({
          sid: 'ConnectAsTheTargetsUsers',
          actions: ['rds-db:connect'],
          resources: logins.map((l) => stack.formatArn({ service: 'rds-db', resource: 'dbuser', resourceName: `${l.resourceId}/${l.user}`, arnFormat: ArnFormat.COLON_RESOURCE_NAME })),
        }),
      );
    }
    const secrets = fleetSecrets(f);
    if (secrets.length > 0) {
      add(new iam.PolicyStatement({ sid: 'ReadTheTargetsSecrets', actions: ['secretsmanager:GetSecretValue'], resources: secrets.map((s) => s.secretFullArn ?? `${s.secretArn}-??????`) }));
      secrets.forEach((s, i) => {
        if (s.encryptionKey) {
          add(new iam.PolicyStatement({ sid: `DecryptTargetSecret${i}`, actions: ['kms:Decrypt'], resources: [s.encryptionKey.keyArn], conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${Aws.REGION}.amazonaws.com` } } }));
        }
      });
    }
    Validations.of(role).acknowledge({ id: 'AwsSolutions-IAM5[Resource::*]', reason: 'ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets (Lambda VPC ENI management) do not support resource-level permissions.' });
    Validations.of(role).acknowledge({ id: `AwsSolutions-IAM5[Resource::${nagFlatten(this, enis)}]`, reason: "Lambda manages the fleet function's ENIs with this role: ids exist only at run time; limited by ec2:Subnet to the function's subnets." });
    for (const s of secrets.filter((s) => !s.secretFullArn)) {
      Validations.of(role).acknowledge({ id: `AwsSolutions-IAM5[Resource::${nagFlatten(this, `${s.secretArn}-??????`)}]`, reason: 'A secret named by its partial ARN: the six-character suffix Secrets Manager adds.' });
    }
    return role;
  }

  /** What the definition (a string CDK cannot inspect) needs: the alias only, the halt table, the targets object, its own child executions. */
  private grantStateMachine(props: FleetProps, name: string): void {
    const f = props.fleet;
    const add = (s: iam.PolicyStatement) => this.stateMachine.addToRolePolicy(s);
    add(new iam.PolicyStatement({ sid: 'InvokeTheFleetAlias', actions: ['lambda:InvokeFunction'], resources: [this.alias.functionArn] }));
    add(new iam.PolicyStatement({ sid: 'HaltFlag', actions: ['dynamodb:GetItem', 'dynamodb:PutItem'], resources: [this.haltTable.tableArn] }));
    add(new iam.PolicyStatement({ sid: 'ItemReader', actions: ['s3:GetObject', 's3:GetObjectVersion'], resources: [f.targetsBucket.arnForObjects(f.targetsKey)] }));
    if (f.targetsBucket.encryptionKey) {
      add(new iam.PolicyStatement({ sid: 'ItemReaderDecrypt', actions: ['kms:Decrypt'], resources: [f.targetsBucket.encryptionKey.keyArn], conditions: { StringEquals: { 'kms:ViaService': `s3.${Aws.REGION}.amazonaws.com` } } }));
    }
    const stack = Stack.of(this);
    const own = stack.formatArn({ service: 'states', resource: 'stateMachine', resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    const runs = stack.formatArn({ service: 'states', resource: 'execution', resourceName: `${name}/*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    add(new iam.PolicyStatement({ sid: 'DistributedMapChildren', actions: ['states:StartExecution'], resources: [own] }));
    add(new iam.PolicyStatement({ sid: 'DistributedMapChildRuns', actions: ['states:DescribeExecution', 'states:StopExecution'], resources: [runs] }));
    Validations.of(this.stateMachine.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagFlatten(this, runs)}]`,
      reason: "A Distributed Map describes and stops its own child executions, whose names exist only at run time; limited to this state machine's executions.",
    });
    Validations.of(this.stateMachine.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'CloudWatch Logs delivery and X-Ray for the state machine do not support resource-level permissions (granted by CDK).',
    });
  }
}

/** The stage's environment without its recovery point (`RECOVERY_POINT*`, `DB_INSTANCE_ID`, `DB_CLUSTER_ID`). */
function withoutStageRecoveryPoint(environment: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(environment)) {
    if (!/^(RECOVERY_POINT|RECOVERY_POINT_WHEN|DB_INSTANCE_ID|DB_CLUSTER_ID)$/.test(name)) out[name] = value;
  }
  return out;
}
