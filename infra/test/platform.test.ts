/**
 * What a platform team checks before adopting the construct: who may upload, plan and
 * confirm; guardrails; props refused; egress and KMS conditions; alarms that reach the
 * topic; EventBridge kept; removal and protection per stage; the long-migration path;
 * each variant's network wiring; stable outputs; the feature flags of a new app.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { describe, it } from 'node:test';
import { App, CfnParameter, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { CURRENTLY_RECOMMENDED_FLAGS } from 'aws-cdk-lib/cx-api';
import { migratorContainerImage, migratorLambdaCode } from '../lib/code';
import { APP_CONTEXT, CDK_JSON } from '../lib/context';
import { MigratorExampleStack } from '../lib/example-stack';
import { LOCK_POLL_SECONDS } from '../lib/long-migrations';
import { PrismaMigrator, PrismaMigratorProps } from '../lib/prisma-migrator';
import { BlockOn, MigratorTrigger } from '../lib/types';
import { addVariantStacks } from '../lib/variants';
import { exampleStack, migratorFunction, outputs, policyStatements, resource, template, testApp } from './support/helpers';

const join = (...parts: unknown[]) => ({ 'Fn::Join': ['', parts] });
const getAtt = (id: string, attr: string) => ({ 'Fn::GetAtt': [id, attr] });
const lid = (stack: Stack, c: any) => stack.getLogicalId((c.node.defaultChild ?? c) as any);

const code = exampleStack({ stage: 'CODE' }, 'P-CODE');
const prod = exampleStack({ stage: 'PROD' }, 'P-PROD');
const tCode = template(code);
const tProd = template(prod);
const long = exampleStack(
  { stage: 'PROD', migrator: { longMigrations: true, taskCpu: 1024, taskMemoryMiB: 4096, taskTimeout: Duration.hours(3) } },
  'P-Long',
);
const tLong = template(long);

function statementsOfPolicyFor(t: Template, roleId: string): any[] {
  return policyStatements(t, roleId);
}

describe('who may upload, plan and confirm', () => {
  it('the bucket policy denies PutObject and deletes of the artifact key to everyone but the uploaders, and allows the uploaders', () => {
    const m = prod.migrator;
    const policy = Object.values(tProd.findResources('AWS::S3::BucketPolicy')).find(
      (p: any) => p.Properties.Bucket.Ref === lid(prod, m.artifactBucket),
    ) as any;
    const deny = policy.Properties.PolicyDocument.Statement.find((s: any) => s.Sid === 'OnlyUploadersWriteTheArtifact');
    assert.deepEqual(deny, {
      Sid: 'OnlyUploadersWriteTheArtifact',
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:PutObject'],
      Resource: join(getAtt(lid(prod, m.artifactBucket), 'Arn'), '/deploy/PROD/my-app/prisma.zip'),
      Condition: { ArnNotEquals: { 'aws:PrincipalArn': [getAtt(lid(prod, prod.uploaderRole), 'Arn')] } },
    });
    const allow = policy.Properties.PolicyDocument.Statement.find((s: any) => s.Sid === 'UploadersWriteTheArtifact');
    assert.deepEqual(allow, {
      Sid: 'UploadersWriteTheArtifact',
      Effect: 'Allow',
      Principal: { AWS: getAtt(lid(prod, prod.uploaderRole), 'Arn') },
      Action: 's3:PutObject',
      Resource: join(getAtt(lid(prod, m.artifactBucket), 'Arn'), '/deploy/PROD/my-app/prisma.zip'),
    });
    // The uploader's own policy: PutObject on the key, nothing else.
    assert.deepEqual(statementsOfPolicyFor(tProd, lid(prod, prod.uploaderRole)), [
      { Action: 's3:PutObject', Effect: 'Allow', Resource: join(getAtt(lid(prod, m.artifactBucket), 'Arn'), '/deploy/PROD/my-app/prisma.zip') },
    ]);
  });

  it('grantUpload adds principals to the same deny (roles, users, ARNs); no uploader leaves only the account root', () => {
    const deny = (stack: Stack) =>
      (Object.values(template(stack).findResources('AWS::S3::BucketPolicy')) as any[])
        .flatMap((p) => p.Properties.PolicyDocument.Statement)
        .find((s: any) => s.Sid === 'OnlyUploadersWriteTheArtifact');
    const none = exampleStack({ stage: 'CODE', migrator: { uploaders: [] } }, 'NoUploaders');
    assert.deepEqual(deny(none).Condition.ArnNotEquals['aws:PrincipalArn'], [
      join('arn:', { Ref: 'AWS::Partition' }, ':iam::', { Ref: 'AWS::AccountId' }, ':root'),
    ]);
    const stack = exampleStack({ stage: 'CODE', migrator: { uploaders: [] } }, 'MoreUploaders');
    const user = new iam.User(stack, 'Releaser');
    stack.migrator.grantUpload(user);
    stack.migrator.grantUpload(iam.Role.fromRoleArn(stack, 'CiRole', 'arn:aws:iam::123456789012:role/ci/github-deploy'));
    assert.throws(() => stack.migrator.grantUpload(new iam.ServicePrincipal('codebuild.amazonaws.com')), /role, a user or an ArnPrincipal/);
    assert.deepEqual(deny(stack).Condition.ArnNotEquals['aws:PrincipalArn'], [getAtt(lid(stack, user), 'Arn'), 'arn:aws:iam::123456789012:role/ci/github-deploy']);
  });

  it('grantInvoke grants lambda:InvokeFunction on the unqualified function only; grantConfirm adds the apply alias and the state machine', () => {
    const stack = exampleStack({ stage: 'PROD' }, 'Invoke');
    const planner = new iam.Role(stack, 'Planner', { assumedBy: new iam.AccountRootPrincipal() });
    stack.migrator.grantInvoke(planner);
    const t = template(stack);
    const fnArn = getAtt(migratorFunction(t).id, 'Arn');
    const aliasArn = { Ref: lid(stack, stack.migrator.confirmAlias) };
    assert.deepEqual(policyStatements(t, lid(stack, planner)), [{ Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: fnArn }]);
    // The alias is `apply`, on the function's current version.
    t.hasResourceProperties('AWS::Lambda::Alias', { Name: 'apply', FunctionName: { Ref: migratorFunction(t).id } });
    assert.equal(migratorFunction(t).props.Environment.Variables.CONFIRM_QUALIFIER, 'apply');
    // The example's operator role confirms: the function (plans) and the alias (the door).
    assert.deepEqual(policyStatements(t, lid(stack, stack.operatorRole)), [{ Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: [fnArn, aliasArn] }]);
    const lm = long.migrator.longMigrations!;
    assert.deepEqual(policyStatements(tLong, lid(long, long.operatorRole)), [
      { Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: [getAtt(migratorFunction(tLong).id, 'Arn'), { Ref: lid(long, long.migrator.confirmAlias) }] },
      { Action: 'states:StartExecution', Effect: 'Allow', Resource: { Ref: lid(long, lm.stateMachine) } },
    ]);
    // Another account's confirmer: the alias's resource policy names it; a plain invoker of
    // another account only the unqualified function's.
    const cross = exampleStack({ stage: 'PROD' }, 'CrossConfirm');
    cross.migrator.grantConfirm(iam.Role.fromRoleArn(cross, 'Approver', 'arn:aws:iam::210987654321:role/approver'));
    cross.migrator.grantInvoke(iam.Role.fromRoleArn(cross, 'Viewer', 'arn:aws:iam::210987654321:role/viewer'));
    const tc = template(cross);
    const perms = (Object.values(tc.findResources('AWS::Lambda::Permission')) as any[]).map((p) => p.Properties);
    const aliasRef = { Ref: lid(cross, cross.migrator.confirmAlias) };
    assert.deepEqual(
      perms.filter((p) => JSON.stringify(p.FunctionName) === JSON.stringify(aliasRef)).map((p) => p.Principal),
      ['arn:aws:iam::210987654321:role/approver'],
    );
    // No resource policy lets anyone else in: only EventBridge may invoke the function.
    const permissions = Object.values(t.findResources('AWS::Lambda::Permission')) as any[];
    assert.deepEqual(
      permissions.filter((p) => JSON.stringify(p.Properties.FunctionName).includes(migratorFunction(t).id)).map((p) => p.Properties.Principal),
      ['events.amazonaws.com'],
    );
  });
});

describe('Chatbot guardrails', () => {
  it('sets read-only guardrails and the channel log retention (us-east-1, like Chatbot)', () => {
    const stack = exampleStack({ stage: 'PROD', migrator: { slack: { workspaceId: 'T0123ABCD', channelId: 'C0123ABCD' } } }, 'Guard');
    const t = template(stack);
    const channel = resource(t, 'AWS::Chatbot::SlackChannelConfiguration').props;
    assert.deepEqual(channel.GuardrailPolicies, [
      join('arn:', { Ref: 'AWS::Partition' }, ':iam::aws:policy/CloudWatchReadOnlyAccess'),
      { Ref: lid(stack, stack.migrator.node.findChild('SlackButtonsGuardrail') as any) },
    ]);
    t.hasResourceProperties('Custom::LogRetention', {
      LogGroupName: `/aws/chatbot/${channel.ConfigurationName}`,
      LogGroupRegion: 'us-east-1',
      RetentionInDays: 90,
    });
    const custom = exampleStack(
      {
        stage: 'CODE',
        migrator: {
          slack: {
            workspaceId: 'T0123ABCD',
            channelId: 'C0123ABCD',
            guardrailPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('ReadOnlyAccess')],
          },
        },
      },
      'Guard2',
    );
    const c2 = resource(template(custom), 'AWS::Chatbot::SlackChannelConfiguration').props;
    assert.deepEqual(c2.GuardrailPolicies, [
      join('arn:', { Ref: 'AWS::Partition' }, ':iam::aws:policy/ReadOnlyAccess'),
      { Ref: lid(custom, custom.migrator.node.findChild('SlackButtonsGuardrail') as any) },
    ]);
    template(custom).hasResourceProperties('Custom::LogRetention', { RetentionInDays: 30 });
  });
});

describe('props validation', () => {
  const base = (): { stack: MigratorExampleStack; props: PrismaMigratorProps } => {
    const stack = exampleStack({ stage: 'CODE' }, 'Validation');
    return {
      stack,
      props: {
        stage: 'CODE',
        production: false,
        artifactKey: 'deploy/CODE/x/prisma.zip',
        database: stack.database,
        databaseUser: 'migrator',
        databaseName: 'app',
        vpc: stack.vpc,
        vpcSubnets: { subnetGroupName: 'app' },
        endpoints: stack.endpoints,
        code: migratorLambdaCode(),
      },
    };
  };
  const accepts = (patch: Partial<PrismaMigratorProps>) => {
    const { stack, props } = base();
    new PrismaMigrator(stack, 'Ok', { ...props, ...patch });
    return stack;
  };
  const throws = (patch: Partial<PrismaMigratorProps> | ((p: PrismaMigratorProps) => PrismaMigratorProps), re: RegExp) => {
    const { stack, props } = base();
    const p = typeof patch === 'function' ? patch(props) : { ...props, ...patch };
    assert.throws(() => new PrismaMigrator(stack, 'Other', p), re);
  };

  it('timeouts: at most 15 minutes; the lock wait shorter than the function', () => {
    throws({ timeout: Duration.minutes(16) }, /timeout must be between/);
    Template.fromStack(accepts({ timeout: Duration.minutes(15) })).hasResourceProperties('AWS::Lambda::Function', { Timeout: 900 });
    throws({ lockTimeout: Duration.minutes(5) }, /lockTimeout \(300 s\) must be shorter than the function timeout \(300 s\)/);
    throws({ timeout: Duration.minutes(2), lockTimeout: Duration.minutes(10) }, /lockTimeout/);
    const env = (t: Template) => migratorFunction(t, 'OkFunction').props.Environment.Variables;
    assert.equal(env(Template.fromStack(accepts({ timeout: Duration.minutes(15) }))).LOCK_TIMEOUT, '840');
    assert.equal(env(Template.fromStack(accepts({ timeout: Duration.seconds(60) }))).LOCK_TIMEOUT, '30');
  });
  it('stage: any name, but a name', () => {
    accepts({ stage: 'staging', artifactKey: 'deploy/staging/x/prisma.zip' });
    throws({ stage: 'bad stage' }, /stage must be a name/);
  });
  it('artifactKey: relative, safe, containing the stage as a segment', () => {
    throws({ artifactKey: '/deploy/CODE/x/prisma.zip' }, /relative S3 key/);
    throws({ artifactKey: 'deploy/CODE/x/pri"sma.zip' }, /safe characters/);
    throws({ artifactKey: 'deploy/PROD/x/prisma.zip' }, /must contain the stage 'CODE'/);
    throws({ artifactKey: 'deploy/CODEX/x/prisma.zip' }, /must contain the stage 'CODE'/);
    throws({ artifactKey: 'deploy/CODE//prisma.zip' }, /empty/);
  });
  it('artifactKey patterns: only by opt-in, never in or before the stage segment, no **', () => {
    throws({ artifactKey: 'deploy/CODE/*' }, /is a pattern: one database would take every matching app's artifact; set allowKeyPattern/);
    accepts({ artifactKey: 'deploy/CODE/*/prisma.zip', allowKeyPattern: true });
    throws({ artifactKey: 'deploy/*/x/prisma.zip', allowKeyPattern: true }, /must contain the stage/);
    throws({ artifactKey: '*/CODE/x/prisma.zip', allowKeyPattern: true }, /up to and including the stage must be literal/);
    throws({ artifactKey: 'deploy/CODE/**/prisma.zip', allowKeyPattern: true }, /'\*\*' is not supported/);
  });
  it('databaseUser: an identifier, and not a master user unless allowed', () => {
    throws({ databaseUser: 'mig rator' }, /databaseUser must be a plain identifier/);
    for (const user of ['postgres', 'admin', 'root', 'rdsadmin', 'Postgres']) throws({ databaseUser: user }, /master\/superuser name/);
    accepts({ databaseUser: 'postgres', allowMasterUser: true });
  });
  it('databaseResourceId: db-… or cluster-…', () => {
    throws({ databaseResourceId: '*' }, /databaseResourceId must be a DbiResourceId/);
    throws({ databaseResourceId: 'db-*' }, /databaseResourceId/);
    accepts({ databaseResourceId: 'db-ABCDEFGHIJKLMNOPQRSTUVWXY0' });
    accepts({ databaseResourceId: 'cluster-ABCDEFGHIJKLMNOPQRSTUVWXY0' });
  });
  it('tokens are never matched by a regex: deploy-time values pass, a token key is refused outright', () => {
    const { stack } = base();
    const user = new CfnParameter(stack, 'User', { type: 'String' }).valueAsString;
    const resourceId = new CfnParameter(stack, 'Rid', { type: 'String' }).valueAsString;
    new PrismaMigrator(stack, 'Tokens', { ...base().props, database: stack.database, vpc: stack.vpc, endpoints: stack.endpoints, databaseUser: user, databaseResourceId: resourceId });
    assert.throws(
      () => new PrismaMigrator(stack, 'TokenKey', { ...base().props, database: stack.database, vpc: stack.vpc, endpoints: stack.endpoints, artifactKey: user }),
      /artifactKey must be a literal string/,
    );
    assert.throws(
      () => new PrismaMigrator(stack, 'TokenPrefix', { ...base().props, database: stack.database, vpc: stack.vpc, endpoints: stack.endpoints, outputPrefix: user }),
      /outputPrefix must be a literal string/,
    );
  });
  it('enums, memory, event age, Slack ids', () => {
    throws({ trigger: 'sqs' as MigratorTrigger }, /trigger must be one of eventbridge, s3-notification/);
    throws({ blockOn: 'sometimes' as BlockOn }, /blockOn must be one of error, warning, never/);
    throws({ memorySize: 64 }, /memorySize/);
    throws({ maxEventAge: Duration.hours(7) }, /maxEventAge/);
    throws({ slack: { workspaceId: 't-lower', channelId: 'C1' } }, /slack.workspaceId looks wrong/);
    throws({ engine: 'mysql' as any }, /does not match/);
  });
  it('long migrations: EventBridge trigger, an image, a Fargate size, a task deadline', () => {
    throws({ longMigrations: true, trigger: MigratorTrigger.S3_NOTIFICATION }, /longMigrations needs trigger: MigratorTrigger.EVENTBRIDGE/);
    throws({ longMigrations: true }, /longMigrations needs containerImage/);
    throws({ taskCpu: 300 }, /taskCpu must be one of/);
    throws({ taskCpu: 512, taskMemoryMiB: 8192 }, /not a Fargate size for 512 CPU units/);
    throws({ taskTimeout: Duration.days(2) }, /taskTimeout/);
  });
  it('network: isolated subnets need endpoints, and the endpoints must cover the configuration', () => {
    throws({ endpoints: undefined }, /vpcSubnets are isolated \(no NAT\): pass endpoints/);
    throws(
      (p) => ({
        ...p,
        databaseSecret: secretsmanager.Secret.fromSecretCompleteArn(Stack.of(p.vpc), 'S', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbCdEf'),
      }),
      /databaseSecret needs the secretsManager endpoint/,
    );
    throws({ longMigrations: true, containerImage: migratorContainerImage() }, /longMigrations needs the ecrApi, ecrDocker and logs endpoints/);
  });
  it('an imported instance without a resource id needs databaseResourceId for IAM auth', () =>
    throws(
      (p) => ({
        ...p,
        database: rds.DatabaseInstance.fromDatabaseInstanceAttributes(Stack.of(p.vpc), 'Imp', {
          instanceIdentifier: 'x',
          instanceEndpointAddress: 'x.example.com',
          port: 5432,
          securityGroups: [],
        }),
      }),
      /resource id/,
    ));
});

describe('egress and KMS', () => {
  it('the function reaches AWS only through the endpoints (HTTPS to their security groups), no 0.0.0.0/0', () => {
    const m = prod.migrator;
    const sgId = lid(prod, m.securityGroup);
    const egress = (Object.values(tProd.findResources('AWS::EC2::SecurityGroupEgress')) as any[])
      .map((r) => r.Properties)
      .filter((p) => JSON.stringify(p.GroupId) === JSON.stringify(getAtt(sgId, 'GroupId')));
    const endpointSg = (e: ec2.InterfaceVpcEndpoint) => getAtt(lid(prod, e.connections.securityGroups[0]), 'GroupId');
    assert.deepEqual(
      egress.filter((p) => p.FromPort === 443),
      [
        { Description: 'HTTPS to the S3 endpoint', DestinationSecurityGroupId: endpointSg(prod.endpoints.s3!), FromPort: 443, GroupId: getAtt(sgId, 'GroupId'), IpProtocol: 'tcp', ToPort: 443 },
        { Description: 'HTTPS to the SNS endpoint', DestinationSecurityGroupId: endpointSg(prod.endpoints.sns), FromPort: 443, GroupId: getAtt(sgId, 'GroupId'), IpProtocol: 'tcp', ToPort: 443 },
        { Description: 'HTTPS to the RDS endpoint', DestinationSecurityGroupId: endpointSg(prod.endpoints.rds), FromPort: 443, GroupId: getAtt(sgId, 'GroupId'), IpProtocol: 'tcp', ToPort: 443 },
      ],
    );
    assert.equal(egress.length, 4, 'the three endpoints and the database');
    assert.ok(!JSON.stringify(tProd.toJSON()).includes('"HTTPS to AWS APIs'), 'no HTTPS-anywhere rule');
    // The endpoints accept HTTPS from the migrator only (not from the whole VPC).
    for (const e of [prod.endpoints.s3!, prod.endpoints.sns, prod.endpoints.rds]) {
      const sg = tProd.toJSON().Resources[lid(prod, e.connections.securityGroups[0])].Properties;
      assert.equal(sg.SecurityGroupIngress, undefined);
      assert.deepEqual(sg.SecurityGroupEgress, [
        { CidrIp: '255.255.255.255/32', Description: 'Disallow all traffic', FromPort: 252, IpProtocol: 'icmp', ToPort: 86 },
      ], 'an endpoint has no egress');
      tProd.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
        GroupId: endpointSg(e),
        SourceSecurityGroupId: getAtt(sgId, 'GroupId'),
        FromPort: 443,
        ToPort: 443,
      });
    }
  });

  it('without endpoints (subnets with NAT) the function gets HTTPS to 0.0.0.0/0', () => {
    const aurora = addVariantStacks(testApp()).aurora;
    const m = aurora.node.findChild('Migrator') as PrismaMigrator;
    const sg = template(aurora).toJSON().Resources[lid(aurora, m.securityGroup)].Properties;
    assert.deepEqual(sg.SecurityGroupEgress, [
      { CidrIp: '0.0.0.0/0', Description: 'HTTPS to AWS APIs (through NAT)', FromPort: 443, IpProtocol: 'tcp', ToPort: 443 },
    ]);
  });

  it('the alarm topic (its own key) lets CloudWatch alarms and EventBridge rules of this account publish; the outcome topic lets no service in', () => {
    const alarmKeyId = lid(prod, prod.migrator.node.findChild('AlarmTopicKey'));
    const key = tProd.toJSON().Resources[alarmKeyId].Properties;
    const statement = key.KeyPolicy.Statement.find((s: any) => s.Sid === 'AlarmsAndRulesPublishToTheTopic');
    assert.deepEqual(statement, {
      Sid: 'AlarmsAndRulesPublishToTheTopic',
      Effect: 'Allow',
      Principal: { Service: ['cloudwatch.amazonaws.com', 'events.amazonaws.com'] },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      Resource: '*',
      Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
    });
    const policyOf = (t: Template, topicId: string) =>
      (Object.values(t.findResources('AWS::SNS::TopicPolicy')) as any[]).find((p) => p.Properties.Topics.some((x: any) => x.Ref === topicId))!.Properties
        .PolicyDocument.Statement as any[];
    const alarmTopicId = lid(prod, prod.migrator.alarmTopic);
    assert.deepEqual(
      policyOf(tProd, alarmTopicId).find((s: any) => s.Sid === 'AlarmsPublish'),
      {
        Sid: 'AlarmsPublish',
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: 'sns:Publish',
        Resource: { Ref: alarmTopicId },
        Condition: {
          StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
          ArnLike: { 'aws:SourceArn': join('arn:', { Ref: 'AWS::Partition' }, ':cloudwatch:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':alarm:*') },
        },
      },
    );
    // The outcome topic: only the SSL deny (the function and task publish by their roles).
    const outcome = policyOf(tProd, lid(prod, prod.migrator.topic));
    assert.deepEqual(outcome.map((s) => s.Effect), ['Deny']);
    const outcomeKey = tProd.toJSON().Resources[lid(prod, prod.migrator.node.findChild('TopicKey'))].Properties;
    assert.ok(!JSON.stringify(outcomeKey.KeyPolicy).includes('amazonaws.com'), 'no service principal on the outcome key');
  });
});

/**
 * The JSON line `tracing_subscriber::fmt().json()` writes for handler.rs's `tracing::info!(…, "outcome")`:
 * the event's fields nested under `fields` (the shape tests/tests/function.rs asserts on the real
 * bootstrap's stderr under the Lambda emulator: `fields.message == "outcome"`, `fields.status`).
 */
const OUTCOME_LINE = {
  timestamp: '2026-11-21T10:00:00.000000Z',
  level: 'INFO',
  fields: { message: 'outcome', stage: 'PROD', status: 'failed', artifact: 's3://b/deploy/PROD/my-app/prisma.zip', applied: 0, pending: 2, error: 'P3018' },
  target: 'migrator::handler',
  span: { request_id: 'r-1', name: 'invocation' },
  spans: [{ request_id: 'r-1', name: 'invocation' }],
};

/** Evaluates the `{ ($.a = "x") && (($.b = "y") || …) }` patterns the construct writes. */
function patternMatches(pattern: string, event: unknown): boolean {
  const get = (path: string) => path.split('.').slice(1).reduce<any>((o, k) => (o == null ? undefined : o[k]), event);
  const expr = pattern
    .replace(/^\{\s*|\s*\}$/g, '')
    .replace(/\(\$\.([\w.]+) = "([^"]*)"\)/g, (_m, p, v) => String(get(`$.${p}`) === v));
  assert.match(expr, /^[truefals()&| ]+$/, `unsupported pattern: ${pattern}`);
  return Function(`return (${expr});`)() as boolean;
}

describe('alarms and metric filters', () => {
  const filter = resource(tProd, 'AWS::Logs::MetricFilter').props;

  it('counts outcomes with status failed, blocked, rejected or incomplete per stage, from the function log group', () => {
    assert.deepEqual(filter.LogGroupName, { Ref: lid(prod, prod.migrator.logGroup) });
    assert.equal(
      filter.FilterPattern,
      '{ ($.fields.message = "outcome") && (($.fields.status = "failed") || ($.fields.status = "blocked") || ($.fields.status = "rejected") || ($.fields.status = "incomplete")) }',
    );
    assert.deepEqual(filter.MetricTransformations, [
      { MetricNamespace: 'PrismaMigrator', MetricName: 'MigrationsNotApplied', MetricValue: '1', Unit: 'Count', Dimensions: [{ Key: 'Stage', Value: '$.fields.stage' }] },
    ]);
  });

  it('the pattern matches the outcome line of every status the ECS path exits non-zero on (failed, blocked, rejected, incomplete) and nothing else', () => {
    // shared/src/outcome.rs: Status::is_success is applied | up-to-date | planned; the task exits non-zero otherwise.
    for (const status of ['failed', 'blocked', 'rejected', 'incomplete']) {
      assert.ok(patternMatches(filter.FilterPattern, { ...OUTCOME_LINE, fields: { ...OUTCOME_LINE.fields, status } }), status);
    }
    for (const status of ['applied', 'up-to-date', 'planned']) {
      assert.ok(!patternMatches(filter.FilterPattern, { ...OUTCOME_LINE, fields: { ...OUTCOME_LINE.fields, status } }), status);
    }
    assert.ok(!patternMatches(filter.FilterPattern, { ...OUTCOME_LINE, fields: { message: 'published the outcome', status: 'failed' } }));
    assert.ok(!patternMatches(filter.FilterPattern, { message: 'outcome', status: 'failed' }), 'fields are nested under `fields`');
  });

  it('alarms on not-applied outcomes, function errors, dropped events, the DLQ, failed outcome notifications and uploads that ran nothing, each notifying the alarm topic', () => {
    const m = prod.migrator;
    const topic = { Ref: lid(prod, m.alarmTopic) };
    const fn = { Ref: migratorFunction(tProd).id };
    const alarms = (Object.values(tProd.findResources('AWS::CloudWatch::Alarm')) as any[]).map((a) => a.Properties);
    const summary = alarms.map((a) => [a.Namespace, a.MetricName, a.Statistic, JSON.stringify(a.Dimensions)]);
    assert.deepEqual(summary, [
      ['PrismaMigrator', 'MigrationsNotApplied', 'Sum', JSON.stringify([{ Name: 'Stage', Value: 'PROD' }])],
      ['AWS/Lambda', 'Errors', 'Sum', JSON.stringify([{ Name: 'FunctionName', Value: fn }])],
      ['AWS/Lambda', 'AsyncEventsDropped', 'Sum', JSON.stringify([{ Name: 'FunctionName', Value: fn }])],
      ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'Maximum', JSON.stringify([{ Name: 'QueueName', Value: getAtt(lid(prod, m.deadLetterQueue), 'QueueName') }])],
      ['AWS/SNS', 'NumberOfNotificationsFailed', 'Sum', JSON.stringify([{ Name: 'TopicName', Value: getAtt(lid(prod, m.topic), 'TopicName') }])],
      [undefined, undefined, undefined, undefined], // UploadsNotRunAlarm: a metric-math alarm
    ]);
    for (const a of alarms) {
      assert.deepEqual(a.AlarmActions, [topic]);
      assert.equal(a.Threshold, 1);
      assert.equal(a.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
      assert.equal(a.TreatMissingData, 'notBreaching');
      if (a.Metrics === undefined) assert.equal(a.Period, 300);
    }
    assert.equal(m.alarms.length, 6);
    assert.deepEqual(prod.resolve(m.metricMigrationsNotApplied().toMetricConfig().metricStat?.dimensions), [{ name: 'Stage', value: 'PROD' }]);
  });

  it('with long migrations: the task log group is filtered too; failed/timed-out executions and non-zero task exits alarm', () => {
    const lm = long.migrator.longMigrations!;
    const filters = (Object.values(tLong.findResources('AWS::Logs::MetricFilter')) as any[]).map((f) => f.Properties.LogGroupName);
    assert.deepEqual(filters, [{ Ref: lid(long, long.migrator.logGroup) }, { Ref: lid(long, lm.taskLogGroup) }]);
    const alarms = (Object.values(tLong.findResources('AWS::CloudWatch::Alarm')) as any[]).map((a) => `${a.Properties.Namespace}/${a.Properties.MetricName}`);
    assert.deepEqual(alarms.slice(6), ['AWS/States/ExecutionsFailed', 'AWS/States/ExecutionsTimedOut']);
    const stopped = Object.values(tLong.findResources('AWS::Events::Rule')).map((r: any) => r.Properties).find((p: any) => p.EventPattern.source[0] === 'aws.ecs');
    assert.deepEqual(stopped.EventPattern, {
      source: ['aws.ecs'],
      'detail-type': ['ECS Task State Change'],
      detail: {
        clusterArn: [getAtt(lid(long, lm.cluster), 'Arn')],
        lastStatus: ['STOPPED'],
        containers: { name: ['migrator'], exitCode: [{ 'anything-but': 0 }] },
      },
    });
    assert.deepEqual(stopped.Targets.map((t: any) => t.Arn), [{ Ref: lid(long, long.migrator.alarmTopic) }]);
    assert.equal(stopped.Targets[0].Input, undefined, 'the event as is (Chatbot renders it)');
  });
});

describe('EventBridge stays on', () => {
  it("a consumer's addEventNotification on the artifact bucket keeps the EventBridge configuration", () => {
    const stack = exampleStack({ stage: 'CODE' }, 'Consumer');
    const queue = new sqs.Queue(stack, 'Audit', { enforceSSL: true });
    stack.migrator.artifactBucket.addEventNotification(s3.EventType.OBJECT_REMOVED, new s3n.SqsDestination(queue));
    const t = template(stack);
    t.resourceCountIs('Custom::S3BucketNotifications', 1);
    const config = resource(t, 'Custom::S3BucketNotifications').props.NotificationConfiguration;
    assert.deepEqual(config.EventBridgeConfiguration, {});
    assert.equal(config.QueueConfigurations.length, 1);
    assert.equal(resource(t, 'AWS::Events::Rule').props.EventPattern.source[0], 'aws.s3');
  });
});

describe('removal and protection per stage', () => {
  const policies = (t: Template, type: string) =>
    Object.entries(t.findResources(type))
      .filter(([id]) => id.startsWith('Migrator'))
      .map(([, r]: [string, any]) => r.DeletionPolicy);

  it('PROD keeps logs, DLQ and key (the audit trail); CODE deletes them; buckets are kept in both', () => {
    assert.deepEqual(policies(tProd, 'AWS::Logs::LogGroup'), ['Retain']);
    assert.deepEqual(policies(tProd, 'AWS::SQS::Queue'), ['Retain']);
    assert.deepEqual(policies(tProd, 'AWS::KMS::Key'), ['Retain', 'Retain']);
    assert.deepEqual(policies(tCode, 'AWS::Logs::LogGroup'), ['Delete']);
    assert.deepEqual(policies(tCode, 'AWS::SQS::Queue'), ['Delete']);
    assert.deepEqual(policies(tCode, 'AWS::KMS::Key'), ['Delete', 'Delete']);
    for (const t of [tCode, tProd]) assert.deepEqual(policies(t, 'AWS::S3::Bucket'), ['Retain', 'Retain']);
    const longPolicies = [
      ...policies(tLong, 'AWS::Logs::LogGroup'),
      ...policies(tLong, 'AWS::DynamoDB::Table'),
    ];
    assert.deepEqual(longPolicies, ['Retain', 'Retain', 'Retain', 'Retain'], 'function, task, state machine logs and the lock table');
  });

  it('PROD has termination protection, tags and a protected database; CODE can be destroyed', () => {
    assert.equal(prod.terminationProtection, true);
    assert.equal(code.terminationProtection, false);
    assert.deepEqual(prod.tags.tagValues(), { Application: 'prisma-migrator', Stage: 'PROD' });
    tProd.hasResourceProperties('AWS::RDS::DBInstance', { DeletionProtection: true });
    tCode.hasResourceProperties('AWS::RDS::DBInstance', { DeletionProtection: false });
    for (const t of [tCode, tProd]) assert.equal(resource(t, 'AWS::RDS::DBInstance').raw.DeletionPolicy, 'Snapshot');
  });

  it('removalPolicy and production can be set per stage name', () => {
    const stack = exampleStack({ stage: 'CODE', migrator: { production: true } }, 'ProdLike');
    const t = template(stack);
    assert.deepEqual(policies(t, 'AWS::Logs::LogGroup'), ['Retain']);
    assert.equal(resource(t, 'AWS::Logs::LogGroup', 'MigratorLogGroup').props.RetentionInDays, 90);
  });
});

/** The state machine definition as JSON, with CloudFormation references replaced by readable placeholders. */
function definition(t: Template): any {
  const sm = resource(t, 'AWS::StepFunctions::StateMachine').props;
  const parts = sm.DefinitionString['Fn::Join'][1] as unknown[];
  const text = parts.map((p: any) => (typeof p === 'string' ? p : `<${p.Ref ?? p['Fn::GetAtt'].join('.')}>`)).join('');
  return JSON.parse(text);
}

describe('long migrations (ECS)', () => {
  const lm = long.migrator.longMigrations!;

  it('the task definition: sizes from props, `migrator handle-event`, the environment plus MAX_DURATION, logs with retention', () => {
    const td = resource(tLong, 'AWS::ECS::TaskDefinition').props;
    assert.equal(td.Cpu, '1024');
    assert.equal(td.Memory, '4096');
    assert.deepEqual(td.RequiresCompatibilities, ['FARGATE']);
    assert.deepEqual(td.RuntimePlatform, { CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' });
    const container = td.ContainerDefinitions[0];
    assert.equal(container.Name, 'migrator');
    assert.deepEqual(container.Command, ['migrator', 'handle-event']);
    const fnEnv = migratorFunction(tLong).props.Environment.Variables;
    // (The function's variables are sorted by name: CDK sorts them for the current version's hash.)
    const byName = (a: { Name: string }, b: { Name: string }) => a.Name.localeCompare(b.Name);
    assert.deepEqual(
      [...container.Environment].sort(byName),
      Object.entries({ ...fnEnv, MAX_DURATION: '10800' }).map(([Name, Value]) => ({ Name, Value })).sort(byName),
    );
    assert.equal(fnEnv.AUTO_APPLY, 'false', 'PROD uploads plan; a confirm applies');
    assert.deepEqual(container.LogConfiguration.Options['awslogs-group'], { Ref: lid(long, lm.taskLogGroup) });
    assert.equal(resource(tLong, 'AWS::Logs::LogGroup', 'MigratorLongTaskLogGroup').props.RetentionInDays, 90);
    const week = template(exampleStack({ stage: 'PROD', migrator: { longMigrations: true, logRetention: logs.RetentionDays.ONE_WEEK } }, 'Week'));
    for (const prefix of ['MigratorLogGroup', 'MigratorLongTaskLogGroup', 'MigratorLongStateMachineLogs']) {
      assert.equal(resource(week, 'AWS::Logs::LogGroup', prefix).props.RetentionInDays, 7, `${prefix} honours logRetention`);
    }
    const taskRole = lid(long, lm.taskDefinition.taskRole);
    assert.deepEqual(
      policyStatements(tLong, taskRole).map((s) => s.Sid),
      ['ReadArtifact', 'PublishNotifications', 'EncryptNotifications', 'ConnectAsDatabaseUser', 'DescribeTheDatabase', 'DescribeBlueGreenDeployments'],
    );
  });

  it('uploads start the state machine, which runs one task at a time behind a conditional lock', () => {
    const rule = (Object.values(tLong.findResources('AWS::Events::Rule')) as any[]).map((r) => r.Properties).find((p) => p.EventPattern.source[0] === 'aws.s3');
    assert.deepEqual(rule.Targets.map((t: any) => t.Arn), [{ Ref: lid(long, lm.stateMachine) }]);
    assert.equal(rule.Targets[0].Input, undefined, 'the whole event is the execution input');
    const d = definition(tLong);
    assert.equal(d.QueryLanguage, 'JSONata');
    assert.equal(d.StartAt, 'Start');
    const { AcquireForManual, WaitForTurn, RunTask, CheckExitCode, Release, ReleaseAfterFailure } = d.States;
    assert.equal(AcquireForManual.Resource, 'arn:<AWS::Partition>:states:::dynamodb:updateItem');
    assert.equal(AcquireForManual.Arguments.TableName, `<${lid(long, lm.lockTable)}>`);
    assert.equal(AcquireForManual.Arguments.ConditionExpression, '(attribute_not_exists(#owner) OR #expiresAt < :now)');
    assert.deepEqual(AcquireForManual.Catch, [{ ErrorEquals: ['DynamoDB.ConditionalCheckFailedException'], Next: 'StillInTime', Output: '{% $states.input %}' }]);
    assert.equal(AcquireForManual.Next, 'RunTask');
    assert.deepEqual(WaitForTurn, { Type: 'Wait', Seconds: LOCK_POLL_SECONDS, Next: 'IsUpload' });
    assert.equal(RunTask.Resource, 'arn:<AWS::Partition>:states:::ecs:runTask.sync');
    assert.equal(RunTask.TimeoutSeconds, 3 * 3600 + 600);
    assert.deepEqual(RunTask.Arguments.Overrides, {
      ContainerOverrides: [
        {
          Name: 'migrator',
          Environment: [
            { Name: 'MIGRATOR_EVENT', Value: '{% $string($states.input) %}' },
            // The long path's confirm door: only the confirmers and the upload rule may start it.
            { Name: 'MIGRATOR_INVOKED_FUNCTION_ARN', Value: `<${lid(long, long.migrator.confirmAlias)}>` },
          ],
        },
      ],
    });
    const vpcConfig = RunTask.Arguments.NetworkConfiguration.AwsvpcConfiguration;
    assert.equal(vpcConfig.AssignPublicIp, 'DISABLED');
    assert.deepEqual(vpcConfig.SecurityGroups, [`<${lid(long, long.migrator.securityGroup)}.GroupId>`]);
    assert.equal(vpcConfig.Subnets.length, 2);
    assert.deepEqual(RunTask.Catch.map((c: any) => c.Next), ['ReleaseAfterFailure']);
    assert.equal(CheckExitCode.Default, 'ReleaseAfterFailure');
    assert.equal(CheckExitCode.Choices[0].Next, 'Release');
    for (const r of [Release, ReleaseAfterFailure]) {
      assert.equal(r.Resource, 'arn:<AWS::Partition>:states:::dynamodb:updateItem');
      assert.equal(r.Arguments.UpdateExpression, 'REMOVE #owner, #expiresAt');
      assert.equal(r.Arguments.ConditionExpression, '#owner = :me', 'releases only its own lock');
    }
    assert.equal(d.States.Failed.Type, 'Fail');
  });

  it('the state machine role can do exactly what the definition does', () => {
    const role = lid(long, lm.stateMachine.role);
    const bySid = Object.fromEntries(policyStatements(tLong, role).filter((s) => s.Sid).map((s) => [s.Sid, s]));
    assert.deepEqual(bySid.Lock.Action, ['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    assert.deepEqual(bySid.RunTask.Resource, { Ref: lid(long, lm.taskDefinition) });
    assert.deepEqual(bySid.RunTask.Condition, { ArnEquals: { 'ecs:cluster': getAtt(lid(long, lm.cluster), 'Arn') } });
    assert.deepEqual(bySid.PassTaskRoles.Condition, { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } });
    assert.deepEqual(bySid.WatchTask.Action, ['ecs:DescribeTasks', 'ecs:StopTask']);
  });

  it('outputs the commands that plan and confirm through the state machine', () => {
    const out = outputs(tLong);
    const sm = { Ref: lid(long, lm.stateMachine) };
    assert.deepEqual(out.MigratorStateMachineArn.Value, sm);
    assert.deepEqual(out.MigratorLongPlanCommand.Value, join('aws stepfunctions start-execution --state-machine-arn ', sm, ` --input '{"action":"deploy"}'`));
    assert.deepEqual(
      out.MigratorLongApplyCommand.Value,
      join('aws stepfunctions start-execution --state-machine-arn ', sm, ' --input "$(jq -c .confirmPayload out.json)"'),
      'confirms exactly the plan PlanCommand wrote (planHash), in the task',
    );
    assert.deepEqual(out.MigratorEcsClusterName.Value, { Ref: lid(long, lm.cluster) });
    assert.equal(out.MigratorEcsTaskDefinitionArn, undefined, 'no run-task command that cannot run');
  });
});

describe('each variant is wired to reach AWS', () => {
  const app = testApp();
  const stacks: Stack[] = [...Object.values(addVariantStacks(app)), new MigratorExampleStack(app, 'W-CODE', { stage: 'CODE' }), new MigratorExampleStack(app, 'W-PROD', { stage: 'PROD', migrator: { longMigrations: true } })];
  const migrators = stacks.flatMap((s) => s.node.findAll().filter((c): c is PrismaMigrator => c instanceof PrismaMigrator));

  it('every migrator either sends HTTPS to private-DNS endpoints for each service it uses, or sits in subnets with a NAT route', () => {
    assert.equal(migrators.length, 10, 'eight in the variants (two in Variant-SecretAuth, one in Variant-Fleet), CODE, PROD with long migrations');
    for (const m of migrators) {
      const stack = Stack.of(m);
      const t = template(stack);
      const props = (m as any).props as PrismaMigratorProps;
      const sgGroupId = JSON.stringify(getAtt(lid(stack, m.securityGroup), 'GroupId'));
      const egressTo = (Object.values(t.findResources('AWS::EC2::SecurityGroupEgress')) as any[])
        .map((r) => r.Properties)
        .filter((p) => JSON.stringify(p.GroupId) === sgGroupId && p.FromPort === 443)
        .map((p) => JSON.stringify(p.DestinationSecurityGroupId));
      const where = `${m.node.path}`;
      if (props.endpoints) {
        const needed: ('s3' | 'sns' | 'rds' | 'secretsManager' | 'ecrApi' | 'ecrDocker' | 'logs')[] = props.endpoints.s3GatewayPrefixListId ? ['sns', 'rds'] : ['s3', 'sns', 'rds'];
        if (props.databaseSecret) needed.push('secretsManager');
        if (props.longMigrations) needed.push('ecrApi', 'ecrDocker', 'logs');
        for (const name of needed) {
          const e = props.endpoints[name] as ec2.InterfaceVpcEndpoint;
          assert.ok(e, `${where}: ${name} endpoint`);
          assert.ok(egressTo.includes(JSON.stringify(getAtt(lid(stack, e.connections.securityGroups[0]), 'GroupId'))), `${where}: HTTPS to ${name}`);
          assert.equal(t.toJSON().Resources[lid(stack, e)].Properties.PrivateDnsEnabled, true, `${where}: ${name} private DNS`);
        }
        if (props.endpoints.s3GatewayPrefixListId) {
          // A gateway endpoint: routes in the function's subnets, HTTPS to the S3 prefix list.
          const gateway = (Object.values(t.findResources('AWS::EC2::VPCEndpoint')) as any[]).find((r) => r.Properties.VpcEndpointType === 'Gateway')!;
          const functionSubnets = migratorFunction(t, `${m.node.id}Function`).props.VpcConfig.SubnetIds.map((s: any) => s.Ref);
          const tablesOf = (subnet: string) =>
            (Object.values(t.findResources('AWS::EC2::SubnetRouteTableAssociation')) as any[]).find((a) => a.Properties.SubnetId.Ref === subnet).Properties.RouteTableId;
          for (const subnet of functionSubnets) assert.ok(gateway.Properties.RouteTableIds.some((r: any) => JSON.stringify(r) === JSON.stringify(tablesOf(subnet))), `${where}: ${subnet} routes to S3`);
          assert.ok(
            (Object.values(t.findResources('AWS::EC2::SecurityGroupEgress')) as any[]).some(
              (r) => JSON.stringify(r.Properties.GroupId) === sgGroupId && r.Properties.DestinationPrefixListId === props.endpoints!.s3GatewayPrefixListId && r.Properties.FromPort === 443,
            ),
            `${where}: HTTPS to the S3 prefix list`,
          );
        } else {
          const s3e = t.toJSON().Resources[lid(stack, props.endpoints.s3)].Properties;
          assert.deepEqual(s3e.DnsOptions, { PrivateDnsOnlyForInboundResolverEndpoint: 'AllResolvers' }, `${where}: S3 private DNS for the VPC`);
        }
        t.resourceCountIs('AWS::EC2::NatGateway', 0);
      } else {
        const subnets = migratorFunction(t, `${m.node.id}Function`).props.VpcConfig.SubnetIds.map((s: any) => s.Ref);
        for (const subnet of subnets) {
          const assoc = (Object.values(t.findResources('AWS::EC2::SubnetRouteTableAssociation')) as any[]).find((a) => a.Properties.SubnetId.Ref === subnet);
          const routes = (Object.values(t.findResources('AWS::EC2::Route')) as any[]).filter(
            (r) => r.Properties.RouteTableId.Ref === assoc.Properties.RouteTableId.Ref && r.Properties.NatGatewayId,
          );
          assert.equal(routes.length, 1, `${where}: ${subnet} routes 0.0.0.0/0 through a NAT gateway`);
        }
      }
    }
  });
});

describe('BLOCK_ON', () => {
  it('defaults to error, is settable, and reaches the task too', () => {
    assert.equal(migratorFunction(tProd).props.Environment.Variables.BLOCK_ON, 'error');
    const t = template(addVariantStacks(testApp()).s3Notification);
    assert.equal(migratorFunction(t).props.Environment.Variables.BLOCK_ON, 'warning');
    const container = resource(tLong, 'AWS::ECS::TaskDefinition').props.ContainerDefinitions[0];
    assert.deepEqual(container.Environment.find((e: any) => e.Name === 'BLOCK_ON'), { Name: 'BLOCK_ON', Value: 'error' });
  });
});

describe('the app', () => {
  it("cdk.json carries every feature flag `cdk init` gives a new app of this aws-cdk-lib, and the tests use them", () => {
    const context = JSON.parse(fs.readFileSync(CDK_JSON, 'utf8')).context;
    for (const [flag, value] of Object.entries(CURRENTLY_RECOMMENDED_FLAGS)) assert.deepEqual(context[flag], value, flag);
    assert.deepEqual(APP_CONTEXT, context);
    assert.equal(testApp().node.tryGetContext('@aws-cdk/aws-ec2:restrictDefaultSecurityGroup'), true);
    tProd.resourceCountIs('Custom::VpcRestrictDefaultSG', 1);
  });

  it('refuses to synthesize the placeholder code unless allowPlaceholder is set', () => {
    const saved = process.env.MIGRATOR_LAMBDA_ZIP;
    process.env.MIGRATOR_LAMBDA_ZIP = '/nonexistent/bootstrap.zip';
    const app = new App({ context: APP_CONTEXT });
    const stack = new MigratorExampleStack(app, 'Placeholder', { stage: 'CODE' });
    if (saved === undefined) delete process.env.MIGRATOR_LAMBDA_ZIP;
    else process.env.MIGRATOR_LAMBDA_ZIP = saved;
    const errors = stack.node.metadata.filter((m) => m.type === 'aws:cdk:error').map((m) => String(m.data));
    assert.equal(errors.length, 1);
    assert.match(errors[0], /Lambda code is the placeholder .* run `make package`, or synthesize with -c allowPlaceholder=true/);
    assert.throws(() => app.synth(), /Validation failed/, 'synth (and so deploy) fails');
    Annotations.fromStack(code).hasNoError('*', Match.anyValue());
  });
});

describe('bring your own', () => {
  it('a role, security group, DLQ and log group given are used, and none is created', () => {
    const stack = exampleStack({ stage: 'CODE' }, 'Byo');
    const role = new iam.Role(stack, 'MyRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    const securityGroup = new ec2.SecurityGroup(stack, 'MySg', { vpc: stack.vpc, allowAllOutbound: false });
    const deadLetterQueue = new sqs.Queue(stack, 'MyDlq', { enforceSSL: true });
    const logGroup = new logs.LogGroup(stack, 'MyLogs', { retention: logs.RetentionDays.ONE_WEEK });
    const m = new PrismaMigrator(stack, 'Byo', {
      stage: 'CODE',
      production: false,
      artifactKey: 'deploy/CODE/byo/prisma.zip',
      database: stack.database,
      databaseUser: 'migrator',
      databaseName: 'app',
      vpc: stack.vpc,
      vpcSubnets: { subnetGroupName: 'app' },
      endpoints: stack.endpoints,
      code: migratorLambdaCode(),
      role,
      securityGroup,
      deadLetterQueue,
      logGroup,
    });
    const t = template(stack);
    const fn = migratorFunction(t, 'ByoFunction').props;
    assert.deepEqual(fn.Role, getAtt(lid(stack, role), 'Arn'));
    assert.deepEqual(fn.VpcConfig.SecurityGroupIds, [getAtt(lid(stack, securityGroup), 'GroupId')]);
    assert.deepEqual(fn.LoggingConfig.LogGroup, { Ref: lid(stack, logGroup) });
    t.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: migratorFunction(t, 'ByoFunction').id },
      DestinationConfig: { OnFailure: { Destination: getAtt(lid(stack, deadLetterQueue), 'Arn') } },
    });
    for (const child of ['Role', 'SecurityGroup', 'DeadLetterQueue', 'LogGroup']) assert.equal(m.node.tryFindChild(child), undefined, child);
    // The data-plane grants land on the given role; the metric filter on the given log group.
    assert.ok(policyStatements(t, lid(stack, role)).some((s) => s.Sid === 'ReadArtifact'));
    t.hasResourceProperties('AWS::Logs::MetricFilter', { LogGroupName: { Ref: lid(stack, logGroup) } });
  });
});
