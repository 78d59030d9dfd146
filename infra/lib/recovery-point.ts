/**
 * The recovery point taken before a deploy's first write (issue 25): the policy as data, the
 * function's environment for it, and its least-privilege grants. Never `Restore*` or
 * `Delete*`: restoring is a person's decision, with the command the outcome prints.
 */
import { ArnFormat, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as rds from 'aws-cdk-lib/aws-rds';
import { Construct } from 'constructs';
import { nagFlatten } from './nag-util';

/** What is taken before the first write of a deploy with something pending (`RECOVERY_POINT`). */
export enum RecoveryPointPolicy {
  /** Nothing. */
  NONE = 'none',
  /** Automated backups must be on (else the run is blocked); the outcome names the point in time to restore to. */
  PITR = 'pitr',
  /** A manual DB (or DB cluster) snapshot, `available` before the first write. */
  SNAPSHOT = 'snapshot',
}

/** When the policy applies (`RECOVERY_POINT_WHEN`). */
export enum RecoveryPointWhen {
  ALWAYS = 'always',
  /** Only when the plan has a preflight finding of at least `warning` (or one that will fail). */
  WARNING = 'warning',
  /** Only when the plan has a preflight `error` finding (a drop, a rewrite, an accepted `willFail`). */
  ERROR = 'error',
}

export interface RecoveryPointProps {
  /** @default PITR on a production stage, NONE elsewhere */
  readonly policy?: RecoveryPointPolicy;
  /** @default ALWAYS */
  readonly when?: RecoveryPointWhen;
}

type Database = rds.IDatabaseInstance | rds.IDatabaseCluster;

function isCluster(db: Database): db is rds.IDatabaseCluster {
  return 'clusterEndpoint' in db;
}

/** The policy in force: the prop, else PITR for production and NONE elsewhere. */
export function recoveryPolicy(props: RecoveryPointProps | undefined, production: boolean): RecoveryPointPolicy {
  return props?.policy ?? (production ? RecoveryPointPolicy.PITR : RecoveryPointPolicy.NONE);
}

/** The prefix of the stage's snapshots, as the function names them (`recovery::snapshot_prefix`). */
export function snapshotPrefix(stage: string): string {
  const slug = stage
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, 24)
    .replace(/-+$/, '');
  return `migrator-${slug}-`;
}

/** The function's variables: the policy, when, and the database as RDS names it (from the construct, never the hostname). */
export function recoveryEnvironment(database: Database, props: RecoveryPointProps | undefined, production: boolean): Record<string, string> {
  return {
    RECOVERY_POINT: recoveryPolicy(props, production),
    RECOVERY_POINT_WHEN: props?.when ?? RecoveryPointWhen.ALWAYS,
    ...(isCluster(database) ? { DB_CLUSTER_ID: database.clusterIdentifier } : { DB_INSTANCE_ID: database.instanceIdentifier }),
  };
}

/**
 * The grants: describing the stage's database (backups, Blue/Green deployments) always; with
 * `snapshot`, creating and tagging snapshots named with the stage's prefix, of that database only.
 */
export function grantRecoveryPoint(
  scope: Construct,
  grantee: iam.IGrantable,
  stage: string,
  database: Database,
  props: RecoveryPointProps | undefined,
  production: boolean,
): void {
  const stack = Stack.of(scope);
  const arn = (resource: string, name: string) =>
    stack.formatArn({ service: 'rds', resource, resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
  const cluster = isCluster(database);
  const dbArn = cluster ? arn('cluster', database.clusterIdentifier) : arn('db', database.instanceIdentifier);
  const snapshots = arn(cluster ? 'cluster-snapshot' : 'snapshot', `${snapshotPrefix(stage)}*`);
  const deployments = arn('deployment', '*');
  const add = (statement: iam.PolicyStatement) => grantee.grantPrincipal.addToPrincipalPolicy(statement);
  add(
    new iam.PolicyStatement({
      sid: 'DescribeTheDatabase',
      actions: [cluster ? 'rds:DescribeDBClusters' : 'rds:DescribeDBInstances'],
      resources: [dbArn],
    }),
  );
  add(
    new iam.PolicyStatement({
      sid: 'DescribeBlueGreenDeployments',
      actions: ['rds:DescribeBlueGreenDeployments'],
      resources: [deployments],
    }),
  );
  const acknowledge = (resource: string, reason: string) =>
    Validations.of(grantee.grantPrincipal as unknown as Construct).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagFlatten(scope, resource)}]`,
      reason,
    });
  acknowledge(
    deployments,
    'Read-only: the function lists Blue/Green deployments to refuse the green side of one; their ids are not known in advance.',
  );
  if (recoveryPolicy(props, production) !== RecoveryPointPolicy.SNAPSHOT) return;
  add(
    new iam.PolicyStatement({
      sid: 'CreateRecoverySnapshot',
      actions: [cluster ? 'rds:CreateDBClusterSnapshot' : 'rds:CreateDBSnapshot'],
      resources: [dbArn, snapshots],
    }),
  );
  add(
    new iam.PolicyStatement({
      sid: 'TagRecoverySnapshot',
      actions: ['rds:AddTagsToResource'],
      resources: [snapshots],
    }),
  );
  add(
    new iam.PolicyStatement({
      sid: 'DescribeRecoverySnapshots',
      actions: [cluster ? 'rds:DescribeDBClusterSnapshots' : 'rds:DescribeDBSnapshots'],
      resources: [dbArn, snapshots],
    }),
  );
  acknowledge(
    snapshots,
    "Snapshots the function takes are named with the stage's prefix and a time stamp only known at run time; create, tag and describe only, never restore or delete.",
  );
}
