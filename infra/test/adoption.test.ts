/**
 * What a platform team needs before installing the construct as a library (issue 23), each
 * asserted on the synthesized template: the long path's execution deadline, production as an
 * explicit decision, alarms outside the failure domain they watch, conditioned service
 * principals, ENI grants limited to the function's subnets, cross-account uploaders and
 * confirmers, the lock's retries and upload order, the library's shape, and the encryption
 * and retention options.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { migratorLambdaCode } from '../lib/code';
import { MigratorExampleStack } from '../lib/example-stack';
import { LOCK_POLL_SECONDS, LOCK_RETRY } from '../lib/long-migrations';
import { PrismaMigrator, PrismaMigratorProps } from '../lib/prisma-migrator';
import { addVariantStacks } from '../lib/variants';
import { exampleStack, migratorFunction, policyStatements, resource, template, testApp } from './support/helpers';

const INFRA = path.resolve(__dirname, '..');
// asl-validator has no type declarations: (definition) => { isValid, errors }.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const validateAsl = require('asl-validator') as (definition: unknown) => { isValid: boolean; errors: unknown[] };
const join = (...parts: unknown[]) => ({ 'Fn::Join': ['', parts] });
const getAtt = (id: string, attr: string) => ({ 'Fn::GetAtt': [id, attr] });
const lid = (stack: Stack, c: any) => stack.getLogicalId((c.node.defaultChild ?? c) as any);

const prod = exampleStack({ stage: 'PROD' }, 'A-PROD');
const tProd = template(prod);
const long = exampleStack({ stage: 'PROD', migrator: { longMigrations: true, taskTimeout: Duration.hours(3), maxEventAge: Duration.minutes(45) } }, 'A-Long');
const tLong = template(long);
const variants = addVariantStacks(testApp());

/** The state machine definition as JSON, references replaced by `<LogicalId>` placeholders. */
function definition(t: Template): any {
  const sm = resource(t, 'AWS::StepFunctions::StateMachine').props;
  const parts = sm.DefinitionString['Fn::Join'][1] as unknown[];
  return JSON.parse(parts.map((p: any) => (typeof p === 'string' ? p : `<${p.Ref ?? p['Fn::GetAtt'].join('.')}>`)).join(''));
}

/** Every policy statement of a template (IAM, bucket, topic, queue, key policies, Lambda permissions as pseudo-statements). */
function allStatements(t: Template): { where: string; s: any }[] {
  const out: { where: string; s: any }[] = [];
  for (const [id, r] of Object.entries(t.toJSON().Resources ?? {}) as [string, any][]) {
    const doc = r.Properties?.PolicyDocument ?? r.Properties?.KeyPolicy;
    for (const s of doc?.Statement ?? []) out.push({ where: `${r.Type} ${id}`, s });
  }
  return out;
}

/** The props of a minimal migrator in an example stack (tests add to them). */
function minimal(stack: MigratorExampleStack, patch: Partial<PrismaMigratorProps> = {}): PrismaMigratorProps {
  return {
    stage: 'CODE',
    production: false,
    artifactKey: 'deploy/CODE/other/prisma.zip',
    database: stack.database,
    databaseUser: 'migrator',
    databaseName: 'app',
    vpc: stack.vpc,
    vpcSubnets: { subnetGroupName: 'app' },
    endpoints: stack.endpoints,
    code: migratorLambdaCode(),
    ...patch,
  } as PrismaMigratorProps;
}

describe('1. the long path has an execution deadline', () => {
  it('the synthesized definition carries a top-level TimeoutSeconds: maxEventAge + task deadline + stop margin + 5 min', () => {
    const d = definition(tLong);
    assert.equal(d.TimeoutSeconds, 45 * 60 + 3 * 3600 + 10 * 60 + 5 * 60);
    assert.equal(long.migrator.longMigrations!.executionTimeout.toSeconds(), d.TimeoutSeconds);
  });

  it('waiting for the lock ends at maxEventAge (LockWaitExpired), so the wait loop is bounded on its own too', () => {
    const { StillInTime, WaitForTurn, LockWaitExpired } = definition(tLong).States;
    assert.equal(StillInTime.Choices[0].Condition, `{% ($millis() - $toMillis($states.context.Execution.StartTime)) < ${45 * 60 * 1000} %}`);
    assert.equal(StillInTime.Choices[0].Next, 'WaitForTurn');
    assert.equal(StillInTime.Default, 'LockWaitExpired');
    assert.equal(WaitForTurn.Seconds, LOCK_POLL_SECONDS);
    assert.equal(LockWaitExpired.Type, 'Fail');
    // The timed-out alarm can now fire: it watches this state machine.
    const timedOut = (Object.values(tLong.findResources('AWS::CloudWatch::Alarm')) as any[]).find((a) => a.Properties.MetricName === 'ExecutionsTimedOut')!;
    assert.deepEqual(timedOut.Properties.Dimensions, [{ Name: 'StateMachineArn', Value: { Ref: lid(long, long.migrator.longMigrations!.stateMachine) } }]);
  });
});

describe('2. production is an explicit decision', () => {
  const build = (patch: Partial<PrismaMigratorProps>) => {
    const stack = exampleStack({ stage: 'CODE' }, `Prod-${Math.random().toString(36).slice(2, 8)}`);
    new PrismaMigrator(stack, 'M', minimal(stack, patch));
    return template(stack);
  };

  it('a stage without production (a JavaScript caller) is refused at synth', () => {
    assert.throws(() => build({ production: undefined as unknown as boolean }), /production must be set explicitly to true or false for stage 'CODE'/);
  });

  it('a stage named like production, in any case or as a part, is refused when production is false', () => {
    for (const stage of ['prod', 'PROD', 'Production', 'prod-eu', 'eu_PRD', 'live']) {
      assert.throws(
        () => build({ stage, artifactKey: `deploy/${stage}/x/prisma.zip`, production: false }),
        new RegExp(`stage '${stage}' is named like production but production is false`),
        stage,
      );
    }
    build({ stage: 'preprod', artifactKey: 'deploy/preprod/x/prisma.zip', production: false });
  });

  it('the template follows the decision, not the name: `Production` plans only, keeps logs 90 days and retains them', () => {
    const t = build({ stage: 'Production', artifactKey: 'deploy/Production/x/prisma.zip', production: true });
    const fn = migratorFunction(t, 'MFunction');
    assert.equal(fn.props.Environment.Variables.AUTO_APPLY, 'false');
    const logGroup = resource(t, 'AWS::Logs::LogGroup', 'MLogGroup');
    assert.equal(logGroup.props.RetentionInDays, 90);
    assert.equal(logGroup.raw.DeletionPolicy, 'Retain');
    const codeLike = migratorFunction(build({ production: false }), 'MFunction');
    assert.equal(codeLike.props.Environment.Variables.AUTO_APPLY, 'true');
  });
});

describe('3. alarms do not share the failure domain they watch', () => {
  it('every alarm notifies a separate alarm topic with its own key; the outcome topic is watched for failed notifications', () => {
    const m = prod.migrator;
    assert.notEqual(m.alarmTopic, m.topic);
    const alarmTopic = resource(tProd, 'AWS::SNS::Topic', 'MigratorAlarmTopic').props;
    const outcomeTopic = resource(tProd, 'AWS::SNS::Topic', 'MigratorTopic').props;
    assert.notDeepEqual(alarmTopic.KmsMasterKeyId, outcomeTopic.KmsMasterKeyId, 'another key');
    const alarms = (Object.values(tProd.findResources('AWS::CloudWatch::Alarm')) as any[]).map((a) => a.Properties);
    for (const a of alarms) assert.deepEqual(a.AlarmActions, [{ Ref: lid(prod, m.alarmTopic) }]);
    const failed = alarms.find((a) => a.MetricName === 'NumberOfNotificationsFailed')!;
    assert.equal(failed.Namespace, 'AWS/SNS');
    assert.deepEqual(failed.Dimensions, [{ Name: 'TopicName', Value: getAtt(lid(prod, m.topic), 'TopicName') }]);
  });

  it("the team's own alarm topic is used as given (no topic, no key created)", () => {
    const t = template(variants.existingResources);
    t.resourceCountIs('AWS::SNS::Topic', 0);
    const alarms = (Object.values(t.findResources('AWS::CloudWatch::Alarm')) as any[]).map((a) => a.Properties);
    assert.ok(alarms.length >= 6);
    for (const a of alarms) assert.deepEqual(a.AlarmActions, ['arn:aws:sns:eu-west-1:123456789012:platform-alarms']);
  });

  it('the task-stopped rule publishes to the alarm topic with retries and the dead-letter queue', () => {
    const stopped = (Object.values(tLong.findResources('AWS::Events::Rule')) as any[]).map((r) => r.Properties).find((p) => p.EventPattern.source[0] === 'aws.ecs');
    assert.deepEqual(stopped.Targets[0].Arn, { Ref: lid(long, long.migrator.alarmTopic) });
    assert.deepEqual(stopped.Targets[0].DeadLetterConfig, { Arn: getAtt(lid(long, long.migrator.deadLetterQueue), 'Arn') });
    assert.deepEqual(stopped.Targets[0].RetryPolicy, { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 7200 });
  });

  it('a `rejected` outcome raises the not-applied alarm on the Lambda path, as the ECS path exits non-zero on it', () => {
    const filter = resource(tProd, 'AWS::Logs::MetricFilter').props.FilterPattern as string;
    assert.match(filter, /\(\$\.fields\.status = "rejected"\)/);
    const taskFilters = (Object.values(tLong.findResources('AWS::Logs::MetricFilter')) as any[]).map((f) => f.Properties.FilterPattern);
    assert.deepEqual(new Set(taskFilters), new Set([filter]), 'the function and the task log groups use the same pattern');
  });

  it('uploads that matched the rule but started nothing raise an alarm (function invocations; executions on the long path)', () => {
    for (const [t, stack, started] of [
      [tProd, prod, 'Invocations'],
      [tLong, long, 'ExecutionsStarted'],
    ] as const) {
      const a = (Object.values(t.findResources('AWS::CloudWatch::Alarm')) as any[]).map((x) => x.Properties).find((x) => x.Metrics)!;
      assert.equal(a.Metrics[0].Expression, 'IF(uploads > 0 AND FILL(started, 0) == 0, 1, 0)');
      assert.equal(a.Metrics.find((q: any) => q.MetricStat).MetricStat.Period, 1800, 'longer than two runs of a function at its 15-minute maximum');
      const byId = Object.fromEntries(a.Metrics.filter((q: any) => q.MetricStat).map((q: any) => [q.Id, q.MetricStat.Metric]));
      assert.equal(byId.uploads.MetricName, 'TriggeredRules');
      assert.deepEqual(byId.uploads.Dimensions, [{ Name: 'RuleName', Value: { Ref: lid(stack, stack.migrator.rule!) } }]);
      assert.equal(byId.started.MetricName, started);
    }
  });
});

describe('4. service principals carry conditions', () => {
  it('every events.amazonaws.com / cloudwatch.amazonaws.com statement (topic, key, queue policies) names the account, and the rules their ARN', () => {
    const stacks: [string, Template][] = [
      ['long', tLong],
      ['prod', tProd],
      ['slack+long', template(variants.slackAndLong)],
    ];
    let seen = 0;
    for (const [name, t] of stacks) {
      for (const { where, s } of allStatements(t)) {
        const services = [s.Principal?.Service ?? []].flat();
        if (!services.some((x: string) => x === 'events.amazonaws.com' || x === 'cloudwatch.amazonaws.com')) continue;
        if (where.startsWith('AWS::SQS::QueuePolicy')) {
          assert.ok(s.Condition?.ArnEquals?.['aws:SourceArn'], `${name} ${where}: SourceArn`);
        } else {
          assert.deepEqual(s.Condition?.StringEquals?.['aws:SourceAccount'], { Ref: 'AWS::AccountId' }, `${name} ${where}: SourceAccount`);
        }
        seen += 1;
      }
    }
    assert.ok(seen >= 6);
  });

  it("the task-stopped rule's publish statement on the alarm topic names that rule", () => {
    const ruleId = Object.entries(tLong.findResources('AWS::Events::Rule')).find(([, r]: any) => r.Properties.EventPattern.source[0] === 'aws.ecs')![0];
    const policy = (Object.values(tLong.findResources('AWS::SNS::TopicPolicy')) as any[]).find((p) =>
      p.Properties.Topics.some((x: any) => x.Ref === lid(long, long.migrator.alarmTopic)),
    )!;
    const fromEvents = policy.Properties.PolicyDocument.Statement.filter((s: any) => s.Principal?.Service === 'events.amazonaws.com');
    assert.deepEqual(fromEvents, [
      {
        Sid: 'TaskStoppedRulePublishes',
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Action: 'sns:Publish',
        Resource: { Ref: lid(long, long.migrator.alarmTopic) },
        Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } }, ArnEquals: { 'aws:SourceArn': getAtt(ruleId, 'Arn') } },
      },
    ]);
  });
});

describe('5. ENI permissions are limited to the function subnets', () => {
  it('no statement lets the function delete or re-address a network interface outside its subnets', () => {
    for (const [stack, t] of [
      [prod, tProd],
      [variants.aurora, template(variants.aurora)],
    ] as const) {
      const m = stack.node.findAll().find((c): c is PrismaMigrator => c instanceof PrismaMigrator)!;
      const statements = policyStatements(t, lid(stack, m.role));
      const touching = statements.filter((s) =>
        [s.Action].flat().some((a: string) => ['ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'].includes(a)),
      );
      assert.equal(touching.length, 1);
      const subnets = migratorFunction(t, `${m.node.id}Function`).props.VpcConfig.SubnetIds;
      assert.deepEqual(
        touching[0].Condition.ArnEquals['ec2:Subnet'].map((arn: any) => arn['Fn::Join'][1].at(-1)),
        subnets,
        'exactly the function subnets',
      );
      assert.match(JSON.stringify(touching[0].Resource), /:network-interface\/\*"/);
    }
  });
});

describe('6. cross-account uploaders and confirmers', () => {
  const stack = exampleStack({ stage: 'PROD', migrator: { uploaders: [] } }, 'A-Cross');
  // A local role that happens to carry the same name as the tooling account's role.
  const local = new iam.Role(stack, 'LocalCi', { roleName: 'ci-deploy', assumedBy: new iam.AccountRootPrincipal() });
  const ci = iam.Role.fromRoleArn(stack, 'ToolingCi', 'arn:aws:iam::210987654321:role/ci-deploy');
  const approver = iam.Role.fromRoleArn(stack, 'ToolingApprover', 'arn:aws:iam::210987654321:role/ci-deploy-approver');
  stack.migrator.grantUpload(ci);
  stack.migrator.grantConfirm(approver);
  const t = template(stack);
  const bucketId = lid(stack, stack.migrator.artifactBucket);
  const bucketStatements = (Object.values(t.findResources('AWS::S3::BucketPolicy')) as any[]).find((p) => p.Properties.Bucket.Ref === bucketId)!.Properties.PolicyDocument
    .Statement as any[];

  it('the bucket policy allows the other account’s uploader and stops denying it puts and deletes', () => {
    const key = join(getAtt(bucketId, 'Arn'), '/deploy/PROD/my-app/prisma.zip');
    assert.deepEqual(
      bucketStatements.find((s) => s.Sid === 'UploadersWriteTheArtifact'),
      { Sid: 'UploadersWriteTheArtifact', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::210987654321:role/ci-deploy' }, Action: 's3:PutObject', Resource: key },
    );
    const deny = bucketStatements.find((s) => s.Sid === 'OnlyUploadersWriteTheArtifact');
    assert.deepEqual(deny.Action, ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:PutObject']);
    assert.deepEqual(deny.Condition.ArnNotEquals['aws:PrincipalArn'], ['arn:aws:iam::210987654321:role/ci-deploy']);
  });

  it('the function’s resource policy lets the other account’s confirmer invoke it', () => {
    const fnId = migratorFunction(t).id;
    const permissions = (Object.values(t.findResources('AWS::Lambda::Permission')) as any[]).map((p) => p.Properties).filter((p) => JSON.stringify(p.FunctionName).includes(fnId));
    assert.deepEqual(
      permissions.map((p) => [p.Principal, p.Action]).sort(),
      [
        ['arn:aws:iam::210987654321:role/ci-deploy-approver', 'lambda:InvokeFunction'],
        ['events.amazonaws.com', 'lambda:InvokeFunction'],
      ],
    );
  });

  it('nothing is attached to the same-named local role, or to any role by the name of an imported one', () => {
    const policies = (Object.values(t.findResources('AWS::IAM::Policy')) as any[]).map((p) => p.Properties);
    for (const p of policies) {
      for (const r of p.Roles ?? []) {
        assert.notEqual(r, 'ci-deploy');
        assert.notEqual(r, 'ci-deploy-approver');
        assert.notDeepEqual(r, { Ref: lid(stack, local) });
      }
    }
  });

  it('with long migrations, a cross-account confirmer is warned that only the function can be granted', () => {
    const s = exampleStack({ stage: 'PROD', migrator: { longMigrations: true } }, 'A-CrossLong');
    s.migrator.grantConfirm(iam.Role.fromRoleArn(s, 'Approver', 'arn:aws:iam::210987654321:role/approver'));
    const warnings = s.migrator.node.metadata.filter((m) => m.type === 'aws:cdk:warning').map((m) => String(m.data));
    assert.ok(warnings.some((w) => /cannot be granted states:StartExecution here/.test(w)), warnings.join('\n'));
  });

  it('with an existing bucket, an imported uploader is warned that the bucket policy is not managed here', () => {
    const v = addVariantStacks(testApp()).existingResources; // its own app: the shared one is already synthesized
    const m = v.node.findChild('Migrator') as PrismaMigrator;
    m.grantUpload(iam.Role.fromRoleArn(v, 'OtherCi', 'arn:aws:iam::210987654321:role/other-ci'));
    const warnings = m.node.metadata.filter((x) => x.type === 'aws:cdk:warning').map((x) => String(x.data));
    assert.ok(warnings.some((w) => /existing bucket's policy is not managed here: allow this principal s3:PutObject/.test(w)), warnings.join('\n'));
    assert.equal((Object.values(template(v).findResources('AWS::IAM::Policy')) as any[]).filter((p) => JSON.stringify(p).includes('other-ci')).length, 0);
  });

  it('with an artifact key of this app, the other account’s uploader may encrypt through S3 (key policy)', () => {
    const v = variants.slackAndLong;
    const key = template(v).toJSON().Resources[lid(v, v.dataKey!)].Properties.KeyPolicy.Statement as any[];
    assert.deepEqual(
      key.find((s) => s.Principal?.AWS === 'arn:aws:iam::210987654321:role/ci-deploy'),
      {
        Sid: 'UploaderEncrypts2',
        Effect: 'Allow',
        Principal: { AWS: 'arn:aws:iam::210987654321:role/ci-deploy' },
        Action: ['kms:Encrypt', 'kms:GenerateDataKey'],
        Resource: '*',
        Condition: { StringEquals: { 'kms:ViaService': join('s3.', { Ref: 'AWS::Region' }, '.amazonaws.com') } },
      },
    );
  });
});

describe('7. the lock of the long path', () => {
  const d = definition(tLong);
  it('acquire, read and release retry transient errors with exponential backoff and jitter; a failed condition is never retried', () => {
    for (const name of ['AcquireForUpload', 'AcquireForManual', 'ReadLock', 'Release', 'ReleaseAfterFailure']) {
      assert.deepEqual(d.States[name].Retry, LOCK_RETRY, name);
    }
    assert.deepEqual(LOCK_RETRY[0], { ErrorEquals: ['DynamoDB.ConditionalCheckFailedException'], MaxAttempts: 0 });
    assert.equal(LOCK_RETRY[1].BackoffRate, 2);
    assert.equal(LOCK_RETRY[1].JitterStrategy, 'FULL');
  });

  it('a release that still fails fails the execution (LockNotReleased, alarmed), instead of being swallowed', () => {
    for (const name of ['Release', 'ReleaseAfterFailure']) {
      const catchers = d.States[name].Catch.map((c: any) => [c.ErrorEquals, c.Next]);
      assert.deepEqual(catchers, [
        [['DynamoDB.ConditionalCheckFailedException'], name === 'Release' ? 'Done' : 'Failed'],
        [['States.ALL'], 'LockNotReleased'],
      ]);
    }
    assert.equal(d.States.LockNotReleased.Type, 'Fail');
  });

  it('uploads run in upload order: the lock keeps the newest upload time, an older upload ends as Superseded without running', () => {
    const { Start, IsUpload, AcquireForUpload, ReadLock, NewerUploadRan, Superseded } = d.States;
    assert.equal(d.StartAt, 'Start');
    assert.equal(Start.Assign.uploadedAt, "{% ($states.input.source = 'aws.s3' and $exists($states.input.time)) ? $toMillis($states.input.time) : 0 %}");
    assert.deepEqual(IsUpload.Choices, [{ Condition: '{% $uploadedAt > 0 %}', Next: 'AcquireForUpload' }]);
    assert.equal(AcquireForUpload.Arguments.UpdateExpression, 'SET #owner = :me, #expiresAt = :expires, #uploadedAt = :mine');
    assert.equal(
      AcquireForUpload.Arguments.ConditionExpression,
      '(attribute_not_exists(#owner) OR #expiresAt < :now) AND (attribute_not_exists(#uploadedAt) OR #uploadedAt <= :mine)',
    );
    assert.deepEqual(AcquireForUpload.Arguments.ExpressionAttributeValues[':mine'], { N: '{% $string($uploadedAt) %}' });
    assert.equal(AcquireForUpload.Catch[0].Next, 'ReadLock');
    assert.equal(ReadLock.Arguments.ConsistentRead, true);
    assert.deepEqual(NewerUploadRan.Choices, [{ Condition: '{% $newest > $uploadedAt %}', Next: 'Superseded' }]);
    assert.equal(NewerUploadRan.Default, 'StillInTime');
    assert.equal(Superseded.Type, 'Succeed');
    // A manual payload (plan, confirm) never touches the upload order.
    assert.ok(!JSON.stringify(d.States.AcquireForManual).includes('uploadedAt'));
  });
});

describe('the long path definition is valid Amazon States Language', () => {
  /** The definition with references replaced by literals (the partition by `aws`). */
  const literal = (t: Template) => {
    const sm = resource(t, 'AWS::StepFunctions::StateMachine').props;
    const parts = sm.DefinitionString['Fn::Join'][1] as unknown[];
    return JSON.parse(parts.map((p: any) => (typeof p === 'string' ? p : p.Ref === 'AWS::Partition' ? 'aws' : 'placeholder')).join(''));
  };
  it('asl-validator (JSONata, Assign, Retry, top-level TimeoutSeconds) accepts every synthesized definition, and refuses a broken copy', () => {
    for (const t of [tLong, template(variants.slackAndLong)]) {
      const d = literal(t);
      const result = validateAsl(d);
      assert.deepEqual(result.errors, []);
      assert.equal(result.isValid, true);
      const broken = structuredClone(d);
      broken.States.Release.Retry[1].BackoffRate = 'twice';
      delete broken.States.Done;
      assert.equal(validateAsl(broken).isValid, false, 'the validator can fail');
    }
  });
});

describe('8. an installable construct library', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(INFRA, 'package.json'), 'utf8'));

  it('package.json: public, main/types from the build, construct dependencies as peers, a changelog entry for its version', () => {
    assert.notEqual(pkg.private, true);
    assert.equal(pkg.main, 'dist/index.js');
    assert.equal(pkg.types, 'dist/index.d.ts');
    assert.deepEqual(Object.keys(pkg.peerDependencies).sort(), ['aws-cdk-lib', 'constructs']);
    assert.equal(pkg.dependencies, undefined, 'no bundled copy of aws-cdk-lib');
    assert.ok(pkg.files.includes('dist/'));
    const changelog = fs.readFileSync(path.join(INFRA, 'CHANGELOG.md'), 'utf8');
    assert.match(changelog, new RegExp(`^## ${pkg.version.replace(/\./g, '\\.')} `, 'm'));
  });

  it('index.ts exports the construct, its props, the enums and the endpoints, and nothing of the example app', async () => {
    const index = await import('../index');
    for (const name of ['PrismaMigrator', 'MigratorVpcEndpoints', 'LongMigrations', 'MigratorEngine', 'MigratorTrigger', 'BlockOn']) {
      assert.ok((index as Record<string, unknown>)[name], name);
    }
    for (const name of ['MigratorExampleStack', 'addVariantStacks', 'migratorLambdaCode']) assert.equal((index as Record<string, unknown>)[name], undefined, name);
    // Only classes and enums at run time (jsii carries no free functions or constants).
    for (const [name, value] of Object.entries(index)) {
      assert.ok(typeof value === 'function' ? /^class /.test(Function.prototype.toString.call(value)) : typeof value === 'object', `${name} is a class or an enum`);
    }
  });

  it('jsii-friendly props: no function-typed and no string-literal-union members in the exported interfaces', () => {
    for (const file of ['prisma-migrator.ts', 'long-migrations.ts', 'endpoints.ts', 'types.ts', 'sns-rule-target.ts']) {
      const text = fs.readFileSync(path.join(INFRA, 'lib', file), 'utf8');
      for (const block of text.match(/export interface \w+[^{]*\{[\s\S]*?\n\}/g) ?? []) {
        for (const line of block.split('\n').filter((l) => /^\s+readonly \w+\??:/.test(l))) {
          assert.doesNotMatch(line, /=>/, `${file}: ${line.trim()}`);
          assert.doesNotMatch(line, /:\s*'[^']*'\s*\|/, `${file}: ${line.trim()}`);
        }
      }
    }
  });

  it('the README usage snippet is the one the consumer project compiles (scripts/consumer.sh)', () => {
    const readme = fs.readFileSync(path.join(INFRA, 'README.md'), 'utf8');
    const snippet = readme.match(/<!-- usage:start -->\n```ts\n([\s\S]*?)```\n<!-- usage:end -->/)?.[1];
    assert.ok(snippet, 'README has the usage snippet between the markers');
    assert.match(snippet!, /new PrismaMigrator\(this, /);
    assert.match(snippet!, /from '@prisma-migrator\/cdk'/);
    assert.match(fs.readFileSync(path.join(INFRA, 'scripts', 'consumer.sh'), 'utf8'), /usage:start/);
  });

  it('S3 through a free gateway endpoint: routes to S3 and HTTPS to its prefix list, no S3 interface endpoint', () => {
    const t = template(variants.existingResources);
    t.resourceCountIs('AWS::EC2::VPCEndpoint', 3); // the S3 gateway, the SNS and RDS interface endpoints
    t.hasResourceProperties('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Gateway', ServiceName: join('com.amazonaws.', { Ref: 'AWS::Region' }, '.s3') });
    t.hasResourceProperties('AWS::EC2::SecurityGroupEgress', { DestinationPrefixListId: 'pl-6da54004', FromPort: 443, ToPort: 443 });
  });

  it('endpoints must include RDS: the function asks RDS about the database before it writes', () => {
    const stack = exampleStack({ stage: 'CODE' }, 'A-NoRds');
    assert.throws(
      () => new PrismaMigrator(stack, 'M', minimal(stack, { endpoints: { s3: stack.endpoints.s3, sns: stack.endpoints.sns } })),
      /the rds endpoint is needed/,
    );
  });

  it('endpoints must name S3 exactly once (interface or gateway)', () => {
    const stack = exampleStack({ stage: 'CODE' }, 'A-S3Twice');
    assert.throws(
      () => new PrismaMigrator(stack, 'M', minimal(stack, { endpoints: { ...stack.endpoints, s3: stack.endpoints.s3, s3GatewayPrefixListId: 'pl-1', sns: stack.endpoints.sns } })),
      /give S3 either as an interface endpoint \(s3\) or as a gateway endpoint \(s3GatewayPrefixListId\), exactly one/,
    );
  });

  it('databaseIngress: false adds no rule to an imported database security group (only our egress)', () => {
    const t = template(variants.existingResources);
    assert.equal(
      (Object.values(t.findResources('AWS::EC2::SecurityGroupIngress')) as any[]).filter((r) => r.Properties.GroupId === 'sg-0123456789abcdef0').length,
      0,
    );
  });
});

describe('9. encryption and retention options', () => {
  const v = variants.slackAndLong;
  const t = template(v);
  const keyArn = getAtt(lid(v, v.dataKey!), 'Arn');

  it('a customer-managed key for the artifact bucket (SSE-KMS, bucket key), every log group and the lock table', () => {
    const bucket = t.toJSON().Resources[lid(v, v.migrator.artifactBucket)].Properties;
    assert.deepEqual(bucket.BucketEncryption.ServerSideEncryptionConfiguration, [
      { BucketKeyEnabled: true, ServerSideEncryptionByDefault: { KMSMasterKeyID: keyArn, SSEAlgorithm: 'aws:kms' } },
    ]);
    for (const prefix of ['MigratorLogGroup', 'MigratorLongTaskLogGroup', 'MigratorLongStateMachineLogs']) {
      assert.deepEqual(resource(t, 'AWS::Logs::LogGroup', prefix).props.KmsKeyId, keyArn, prefix);
    }
    assert.deepEqual(resource(t, 'AWS::DynamoDB::Table').props.SSESpecification, { KMSMasterKeyId: keyArn, SSEEnabled: true, SSEType: 'KMS' });
    const logsStatement = (t.toJSON().Resources[lid(v, v.dataKey!)].Properties.KeyPolicy.Statement as any[]).find((s) => s.Sid === 'CloudWatchLogsEncrypt');
    assert.deepEqual(logsStatement.Principal, { Service: join('logs.', { Ref: 'AWS::Region' }, '.amazonaws.com') });
    // Without the options: SSE-S3 and the service defaults.
    const plain = tProd.toJSON().Resources[lid(prod, prod.migrator.artifactBucket)].Properties;
    assert.deepEqual(plain.BucketEncryption.ServerSideEncryptionConfiguration, [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }]);
  });

  it('PROD keeps artifact versions a year by default, CODE 30 days; Object Lock (governance) is an option', () => {
    const rule = (tt: Template, stack: MigratorExampleStack) =>
      tt.toJSON().Resources[lid(stack, stack.migrator.artifactBucket)].Properties.LifecycleConfiguration.Rules[0].NoncurrentVersionExpiration.NoncurrentDays;
    assert.equal(rule(tProd, prod), 365);
    const code = exampleStack({ stage: 'CODE' }, 'A-CODE');
    assert.equal(rule(template(code), code), 30);
    const custom = exampleStack({ stage: 'CODE', migrator: { artifactVersionRetention: Duration.days(90) } }, 'A-Ret');
    assert.equal(rule(template(custom), custom), 90);
    const bucket = t.toJSON().Resources[lid(v, v.migrator.artifactBucket)].Properties;
    assert.equal(bucket.ObjectLockEnabled, true);
    assert.deepEqual(bucket.ObjectLockConfiguration, { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 30 } } });
  });

  it('the access-log bucket is versioned, its old versions expire', () => {
    const logs = (Object.entries(tProd.findResources('AWS::S3::Bucket')) as [string, any][]).find(([id]) => id.startsWith('MigratorAccessLogsBucket'))![1].Properties;
    assert.deepEqual(logs.VersioningConfiguration, { Status: 'Enabled' });
    assert.deepEqual(logs.LifecycleConfiguration.Rules[0].NoncurrentVersionExpiration, { NoncurrentDays: 90 });
  });

  it('the bucket options are refused with an existing bucket (they would silently not apply)', () => {
    const stack = exampleStack({ stage: 'CODE' }, 'A-ExistingOpts');
    const key = new kms.Key(stack, 'K', { enableKeyRotation: true });
    assert.throws(
      () => new PrismaMigrator(stack, 'M', minimal(stack, { artifactBucket: stack.migrator.artifactBucket, artifactBucketKey: key })),
      /apply to the bucket the construct creates, not to artifactBucket/,
    );
  });
});
