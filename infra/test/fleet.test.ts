import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { Fn } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { FLEET_QUALIFIER } from '../lib/fleet';
import { targetLines } from '../lib/fleet-targets';
import { FleetStackOptions, fleetStack } from './support/fleet-stack';
import { policyStatements, resource } from './support/helpers';

function synth(options: FleetStackOptions = {}) {
  const { stack, migrator } = fleetStack(options);
  const t = Template.fromStack(stack);
  const sm = resource(t, 'AWS::StepFunctions::StateMachine', 'MigratorFleet');
  return { t, stack, migrator, sm, definition: migrator.fleet!.definition as any };
}

test('fleet: plan, canary before waves, the rollup last', () => {
  const { definition } = synth();
  const s = definition.States;
  assert.equal(definition.QueryLanguage, 'JSONPath');
  assert.equal(definition.StartAt, 'Prepare');
  assert.equal(s.Prepared.Choices[0].Next, 'Plan');
  assert.equal(s.Plan.Next, 'PlanHaltFlag');
  assert.equal(s.PlanVerdict.Default, 'ForgetPlan');
  assert.equal(s.ForgetPlan.Next, 'Canary');
  assert.equal(s.Canary.Next, 'CanaryHaltFlag');
  assert.equal(s.CanaryVerdict.Choices[0].Next, 'Rollup', 'a raised halt flag after the canary goes to the rollup, never to the waves');
  assert.equal(s.CanaryVerdict.Default, 'Waves');
  assert.equal(s.Waves.Next, 'WavesHaltFlag');
  assert.equal(s.WavesHaltFlag.Next, 'Rollup');
  // The canary: an inline Map over Prepare's first lines; the waves: a Distributed Map with an item reader.
  assert.equal(s.Canary.ItemProcessor.ProcessorConfig.Mode, 'INLINE');
  assert.equal(s.Canary.ItemsPath, '$.prepare.canary');
  assert.equal(s.Waves.ItemProcessor.ProcessorConfig.Mode, 'DISTRIBUTED');
  assert.equal(s.Waves.ItemReader.ReaderConfig.InputType, 'JSONL');
  assert.equal(s.Waves.ItemReader.Parameters['VersionId.$'], '$.prepare.items.versionId', 'the waves read the version Prepare pinned');
  // The waves skip the canary's lines.
  assert.equal(s.Waves.ItemProcessor.StartAt, 'WaveInCanary');
  assert.equal(s.Waves.ItemProcessor.States.WaveInCanary.Choices[0].NumericLessThanPath, '$.canary');
  // Where the stage does not apply uploads, the rollout stops with the plan.
  assert.deepEqual(s.PlanVerdict.Choices[1], { Variable: '$.prepare.rollout.apply', BooleanEquals: false, Next: 'Rollup' });
});

test('fleet: MaxConcurrency, ToleratedFailureCount 0, TimeoutSeconds', () => {
  const { definition, migrator, t } = synth({ canary: 3, maxConcurrency: 7 });
  const s = definition.States;
  assert.equal(s.Waves.MaxConcurrency, 7);
  assert.equal(s.Plan.MaxConcurrency, 7);
  assert.equal(s.Canary.MaxConcurrency, 3);
  assert.equal(s.Waves.ToleratedFailureCount, 0);
  assert.equal(s.Plan.ToleratedFailureCount, 0);
  assert.equal(definition.TimeoutSeconds, migrator.fleet!.executionTimeout.toSeconds());
  assert.ok(definition.TimeoutSeconds > 0 && definition.TimeoutSeconds <= 365 * 86400);
  const child = s.Waves.ItemProcessor.States.WaveTarget;
  assert.equal(child.TimeoutSeconds, 300 + 60, 'every child: the function timeout and a minute');
  assert.equal(s.Canary.ItemProcessor.States.CanaryTarget.TimeoutSeconds, 360);
  // The fleet function's reserved concurrency is the waves' concurrency.
  const fn = resource(t, 'AWS::Lambda::Function', 'MigratorFleetFunction');
  assert.equal(fn.props.ReservedConcurrentExecutions, 7);
  assert.equal(fn.props.Environment.Variables.FLEET_QUALIFIER, FLEET_QUALIFIER);
});

test('fleet: every child reads the halt flag before it starts and raises it when its target fails', () => {
  const { definition } = synth();
  for (const [map, prefix] of [['Plan', 'Plan'], ['Canary', 'Canary'], ['Waves', 'Wave']]) {
    const states = definition.States[map].ItemProcessor.States;
    const check = states[`${prefix}CheckHalt`];
    assert.match(check.Resource, /dynamodb:getItem$/);
    assert.equal(check.Parameters.ConsistentRead, true);
    assert.equal(check.Next, `${prefix}Halted`);
    assert.equal(states[`${prefix}Halted`].Choices[0].Next, `${prefix}Skipped`);
    assert.equal(states[`${prefix}Halted`].Default, `${prefix}Target`);
    assert.equal(states[`${prefix}Ok`].Default, `${prefix}Halt`);
    assert.match(states[`${prefix}Halt`].Resource, /dynamodb:putItem$/);
    assert.equal(states[`${prefix}Target`].Catch[0].Next, `${prefix}HaltOnError`);
    assert.equal(states[`${prefix}HaltOnError`].Next, `${prefix}Error`);
  }
});

test('fleet: the door — only the state machine may invoke the fleet alias; the targets logins only', () => {
  const { t, stack, migrator } = synth();
  const fleet = migrator.fleet!;
  const smRole = stack.getLogicalId(fleet.stateMachine.role.node.defaultChild as any);
  const smStatements = policyStatements(t, smRole);
  const invoke = smStatements.find((s: any) => s.Sid === 'InvokeTheFleetAlias');
  assert.deepEqual(invoke.Action, 'lambda:InvokeFunction');
  assert.deepEqual(invoke.Resource, { Ref: stack.getLogicalId(fleet.alias.node.defaultChild as any) });
  // Nobody else is granted the fleet alias or function.
  const aliasRef = JSON.stringify({ Ref: stack.getLogicalId(fleet.alias.node.defaultChild as any) });
  const others = Object.entries(t.findResources('AWS::IAM::Policy')).filter(([, p]: any) => JSON.stringify(p).includes(aliasRef));
  assert.equal(others.length, 1, 'only the state machine policy names the fleet alias');
  assert.equal(Object.keys(t.findResources('AWS::Lambda::Permission')).filter((k) => k.includes('Fleet')).length, 0);
  // The fleet function: rds-db:connect on exactly the targets' users, the targets' secret only, not the stage's database.
  const fnRole = stack.getLogicalId(fleet.role.node.defaultChild as any);
  const statements = policyStatements(t, fnRole);
  const connect = statements.find((s: any) => s.Sid === 'ConnectAsTheTargetsUsers');
  const arns = JSON.stringify(connect.Resource);
  assert.match(arns, /dbuser:db-TENANTA000000000000000000A\/migrator_a/);
  assert.match(arns, /dbuser:cluster-TENANTB0000000000000000B\/migrator_b/);
  assert.equal(connect.Resource.length, 2);
  assert.ok(!JSON.stringify(statements).includes('db-STAGE0000000000000000000A'), "the fleet function may not log in to the stage's own database");
  const secrets = statements.find((s: any) => s.Sid === 'ReadTheTargetsSecrets');
  assert.deepEqual(secrets.Resource, 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:tenant-c-AbCdEf');
  // The stage's function is not the fleet's: it has no FLEET_QUALIFIER.
  const stageFn = resource(t, 'AWS::Lambda::Function', 'MigratorFunction');
  assert.equal(stageFn.props.Environment.Variables.FLEET_QUALIFIER, undefined);
  // The upload rule starts the fleet, not the stage function.
  const rule = resource(t, 'AWS::Events::Rule', 'MigratorUploadRule');
  assert.equal(rule.props.Targets.length, 1);
  assert.deepEqual(rule.props.Targets[0].Arn, { Ref: stack.getLogicalId(fleet.stateMachine.node.defaultChild as any) });
});

test('fleet: props refused at synth', () => {
  assert.throws(() => fleetStack({ canary: 0 }), /fleet.canary must be an integer from 1 to 40/);
  assert.throws(() => fleetStack({ maxConcurrency: 0 }), /fleet.maxConcurrency/);
});

test('fleet: targets given to the construct become the targets object, their logins granted', () => {
  const tenantD = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:tenant-d-GhIjKl';
  const { t, stack, migrator } = synth({
    targets: (s: any) => [
      { id: 'tenant-e', host: Fn.importValue('TenantEHost'), port: 5432, database: 'app', user: 'migrator_e', resourceId: 'db-TENANTE000000000000000000E' },
      { id: 'tenant-d', engine: 'mysql', host: 'tenant-d.example.com', database: 'app', secret: secretsmanager.Secret.fromSecretCompleteArn(s, 'TenantD', tenantD) },
    ],
  });
  const fleet = migrator.fleet!;
  // An S3 deployment writes the lines to the targets object, nothing pruned, kept on delete.
  const deployment = resource(t, 'Custom::CDKBucketDeployment');
  assert.deepEqual(deployment.props.DestinationBucketName, { Ref: stack.getLogicalId((fleet as any).node.scope.node.scope.node.findChild('Targets').node.defaultChild) });
  assert.equal(deployment.props.Prune, false);
  assert.equal(deployment.props.RetainOnDelete, true);
  assert.equal(deployment.props.SourceObjectKeys.length, 1);
  // The lines: the host token is resolved at deploy (a marker in the data, its value in SourceMarkers).
  const markers = JSON.stringify(deployment.props.SourceMarkers);
  assert.ok(markers.includes('"Fn::ImportValue":"TenantEHost"'), markers);
  // The function's role: the targets' own logins join iamLogins and secrets.
  const statements = policyStatements(t, stack.getLogicalId(fleet.role.node.defaultChild as any));
  const connect = statements.find((s: any) => s.Sid === 'ConnectAsTheTargetsUsers');
  assert.equal(connect.Resource.length, 3);
  assert.match(JSON.stringify(connect.Resource), /dbuser:db-TENANTE000000000000000000E\/migrator_e/);
  const secrets = statements.find((s: any) => s.Sid === 'ReadTheTargetsSecrets');
  assert.deepEqual(secrets.Resource, ['arn:aws:secretsmanager:eu-west-1:123456789012:secret:tenant-c-AbCdEf', tenantD]);
  assert.ok(fleet.targetsDeployment);
});

test('fleet: the lines written for targets are the lines the function reads', () => {
  const lines = targetLines([
    { id: 'a', host: 'h', database: 'app', user: 'migrator', schema: 'tenant' },
    { id: 'b', engine: 'mysql', host: 'h2', port: 3307, database: 'app', secret: { secretArn: 'arn:s' } as any },
  ]);
  assert.equal(
    lines,
    '{"id":"a","host":"h","database":"app","user":"migrator","schema":"tenant"}\n' +
      '{"id":"b","engine":"mysql","host":"h2","port":3307,"database":"app","auth":"secret","secretArn":"arn:s"}\n',
  );
});

test('fleet: targets refused at synth, named by their index and id', () => {
  const ok = { host: 'h', database: 'app', user: 'migrator' };
  const refused: [any[], RegExp][] = [
    [[], /fleet.targets must list 1 to 1000 targets, got 0/],
    [[{ id: 'a b', ...ok }], /fleet.targets\[0\] \(a b\): id must be 1 to 64 letters/],
    [[{ id: 'a', ...ok }, { id: 'a', ...ok }], /fleet.targets\[1\] \(a\): id is used by an earlier target/],
    [[{ id: 'a', host: 'h', database: 'app' }], /fleet.targets\[0\] \(a\): user is required with IAM/],
    [[{ id: 'a', ...ok, user: 'postgres' }], /user 'postgres' is a master\/superuser name/],
    [[{ id: 'a', ...ok, port: 0 }], /port must be a literal integer from 1 to 65535/],
    [[{ id: 'a', ...ok, engine: 'mysql', schema: 's' }], /schema: MySQL has no schema apart from the database/],
    [[{ id: 'a', ...ok, database: 'app;drop' }], /database must be a plain identifier/],
    [[{ id: 'a', ...ok, resourceId: 'i-123' }], /resourceId must be a DbiResourceId/],
    [[{ id: 'a', ...ok, engine: 'oracle' }], /engine must be postgresql or mysql/],
  ];
  for (const [targets, message] of refused) assert.throws(() => fleetStack({ targets: () => targets }), message);
  assert.throws(() => fleetStack({ targets: () => Array.from({ length: 1001 }, (_, i) => ({ id: `t${i}`, ...ok })) }), /1 to 1000 targets, got 1001/);
});
