/**
 * Issue 25: the recovery-point policy (default PITR on production, NONE elsewhere), the
 * database identifier from the construct, and the exact least-privilege grants (never
 * Restore* or Delete*).
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Stack } from 'aws-cdk-lib';
import { PrismaMigrator } from '../lib/prisma-migrator';
import { RecoveryPointPolicy, RecoveryPointWhen, snapshotPrefix } from '../lib/recovery-point';
import { addVariantStacks } from '../lib/variants';
import { exampleStack, migratorFunction, policyStatements, template, testApp } from './support/helpers';

const join = (...parts: unknown[]) => ({ 'Fn::Join': ['', parts] });
const partition = { Ref: 'AWS::Partition' };
const rdsArn = (resource: string, name: unknown) =>
  join('arn:', partition, ':rds:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:${resource}:`, name);
const rdsArnLiteral = (resource: string, name: string) =>
  join('arn:', partition, ':rds:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:${resource}:${name}`);

function statementsOf(stack: Stack, m: PrismaMigrator) {
  return policyStatements(template(stack), stack.getLogicalId(m.role.node.defaultChild as any));
}

describe('recovery point (issue 25)', () => {
  it('names snapshots with the stage prefix the function uses', () => {
    assert.equal(snapshotPrefix('PROD'), 'migrator-prod-');
    assert.equal(snapshotPrefix('prod_eu-1'), 'migrator-prod-eu-1-');
  });

  it('snapshot policy on an instance: create, tag and describe its own snapshots only, exactly', () => {
    const stack = exampleStack(
      { stage: 'PROD', migrator: { recoveryPoint: { policy: RecoveryPointPolicy.SNAPSHOT, when: RecoveryPointWhen.ERROR } } },
      'Snap',
    );
    const db = { Ref: stack.getLogicalId(stack.database.node.defaultChild as any) };
    const env = migratorFunction(template(stack)).props.Environment.Variables;
    assert.equal(env.RECOVERY_POINT, 'snapshot');
    assert.equal(env.RECOVERY_POINT_WHEN, 'error');
    assert.deepEqual(env.DB_INSTANCE_ID, db);
    assert.ok(!('DB_CLUSTER_ID' in env));
    const statements = statementsOf(stack, stack.migrator);
    const rds = statements.filter((s) => [s.Action].flat().some((a: string) => a.startsWith('rds:')));
    const snapshots = rdsArnLiteral('snapshot', 'migrator-prod-*');
    assert.deepEqual(rds, [
      { Sid: 'DescribeTheDatabase', Effect: 'Allow', Action: 'rds:DescribeDBInstances', Resource: rdsArn('db', db) },
      { Sid: 'DescribeBlueGreenDeployments', Effect: 'Allow', Action: 'rds:DescribeBlueGreenDeployments', Resource: rdsArnLiteral('deployment', '*') },
      { Sid: 'CreateRecoverySnapshot', Effect: 'Allow', Action: 'rds:CreateDBSnapshot', Resource: [rdsArn('db', db), snapshots] },
      { Sid: 'TagRecoverySnapshot', Effect: 'Allow', Action: 'rds:AddTagsToResource', Resource: snapshots },
      { Sid: 'DescribeRecoverySnapshots', Effect: 'Allow', Action: 'rds:DescribeDBSnapshots', Resource: [rdsArn('db', db), snapshots] },
    ]);
  });

  it('an Aurora cluster: the cluster identifier and the cluster-snapshot forms', () => {
    const app = testApp();
    const v = addVariantStacks(app);
    const stack = v.aurora;
    const m = stack.node.findChild('Migrator') as PrismaMigrator;
    const env = migratorFunction(template(stack)).props.Environment.Variables;
    const cluster = { Ref: stack.getLogicalId(stack.node.findChild('Cluster').node.defaultChild as any) };
    assert.deepEqual(env.DB_CLUSTER_ID, cluster);
    assert.ok(!('DB_INSTANCE_ID' in env));
    const describe = statementsOf(stack, m).find((s) => s.Sid === 'DescribeTheDatabase');
    assert.deepEqual(describe, { Sid: 'DescribeTheDatabase', Effect: 'Allow', Action: 'rds:DescribeDBClusters', Resource: rdsArn('cluster', cluster) });
  });

  it('the default: PITR on production, NONE elsewhere; no snapshot grants under either', () => {
    for (const [stage, policy] of [
      ['PROD', 'pitr'],
      ['CODE', 'none'],
    ] as const) {
      const stack = exampleStack({ stage }, `Default${stage}`);
      assert.equal(migratorFunction(template(stack)).props.Environment.Variables.RECOVERY_POINT, policy);
      const sids = statementsOf(stack, stack.migrator).map((s) => s.Sid);
      assert.ok(!sids.includes('CreateRecoverySnapshot'), `${stage}: ${sids}`);
    }
  });

  it('never grants Restore* or Delete* on RDS, in any variant', () => {
    const app = testApp();
    const stacks = [...Object.values(addVariantStacks(app)), exampleStack({ stage: 'PROD', migrator: { recoveryPoint: { policy: RecoveryPointPolicy.SNAPSHOT } } }, 'Never')];
    for (const stack of stacks) {
      const text = JSON.stringify(template(stack as Stack).toJSON());
      assert.ok(!/rds:(Restore|Delete)/.test(text), `${(stack as Stack).stackName} grants a restore or delete`);
    }
  });

  it('refuses an unknown policy', () => {
    assert.throws(
      () => exampleStack({ stage: 'PROD', migrator: { recoveryPoint: { policy: 'daily' as RecoveryPointPolicy } } }, 'Bad'),
      /recoveryPoint.policy must be one of none, pitr, snapshot/,
    );
  });
});
