/**
 * Validation of `PrismaMigratorProps`: the one place that decides which props are refused.
 * Every check on a string skips values that are unresolved tokens (they are only known at
 * deploy time); a regex never sees a token.
 */
import { RecoveryPointPolicy, RecoveryPointWhen } from './recovery-point';
import { Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import type { PrismaMigratorProps } from './prisma-migrator';
import { validateFleet } from './fleet-targets';
import { BlockOn, MigratorEngine, MigratorTrigger } from './types';

/** Login names that are a database's master / superuser account on RDS, Aurora and the engines' defaults. */
export const MASTER_USER_NAMES = ['postgres', 'admin', 'root', 'rdsadmin', 'master', 'mysql', 'rdsmaster', 'sa', 'superuser'];

const KEY_RE = /^[A-Za-z0-9!_.*'()\-/]+$/;
const STAGE_RE = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
export const IDENTIFIER_RE = /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/;
export const RESOURCE_ID_RE = /^(db|cluster)-[A-Z0-9]{1,64}$/;
const SLACK_ID_RE = /^[A-Z0-9]+$/;
/** Fargate CPU units → allowed memory (MiB) range. */
const FARGATE: Record<number, [number, number]> = {
  256: [512, 2048],
  512: [1024, 4096],
  1024: [2048, 8192],
  2048: [4096, 16384],
  4096: [8192, 30720],
  8192: [16384, 61440],
  16384: [32768, 122880],
};

const known = (s: string | undefined): s is string => s !== undefined && !Token.isUnresolved(s);

export function validateProps(scope: Construct, props: PrismaMigratorProps): void {
  const fail = (msg: string): never => {
    throw new Error(`PrismaMigrator (${scope.node.path}): ${msg}`);
  };
  const trigger = props.trigger ?? MigratorTrigger.EVENTBRIDGE;

  if (known(props.stage) && !STAGE_RE.test(props.stage)) {
    fail(`stage must be a name of letters, digits, '-' or '_' (at most 32, starting with a letter), got '${props.stage}'`);
  }
  validateProduction(props, fail);
  validateRecoveryPoint(props, fail);
  validateKey(props, fail);
  // The prefix names the outputs' logical ids and export names: it must be known at synth time.
  if (props.outputPrefix !== undefined && !known(props.outputPrefix)) fail('outputPrefix must be a literal string (it names the outputs and their exports)');

  if (!Object.values(MigratorTrigger).includes(trigger)) fail(`trigger must be one of ${Object.values(MigratorTrigger).join(', ')}, got '${trigger}'`);
  if (props.engine !== undefined && !Object.values(MigratorEngine).includes(props.engine)) {
    fail(`engine must be one of ${Object.values(MigratorEngine).join(', ')}, got '${props.engine}'`);
  }
  if (props.blockOn !== undefined && !Object.values(BlockOn).includes(props.blockOn)) {
    fail(`blockOn must be one of ${Object.values(BlockOn).join(', ')}, got '${props.blockOn}'`);
  }

  for (const [name, value] of [
    ['databaseUser', props.databaseUser],
    ['databaseName', props.databaseName],
  ] as const) {
    if (known(value) && !IDENTIFIER_RE.test(value)) fail(`${name} must be a plain identifier, got '${value}'`);
  }
  if (known(props.databaseUser) && MASTER_USER_NAMES.includes(props.databaseUser.toLowerCase()) && !props.allowMasterUser) {
    fail(
      `databaseUser '${props.databaseUser}' is a master/superuser name: create a migrator user with only the privileges the migrations need, ` +
        'or set allowMasterUser: true',
    );
  }
  if (known(props.databaseResourceId) && !RESOURCE_ID_RE.test(props.databaseResourceId)) {
    fail(`databaseResourceId must be a DbiResourceId (db-…) or DbClusterResourceId (cluster-…), got '${props.databaseResourceId}'`);
  }

  const timeout = props.timeout?.toSeconds() ?? 300;
  if (timeout < 1 || timeout > 900) fail(`timeout must be between 1 second and 15 minutes, got ${timeout} seconds`);
  if (props.memorySize !== undefined && (!Number.isInteger(props.memorySize) || props.memorySize < 128 || props.memorySize > 10240)) {
    fail(`memorySize must be an integer between 128 and 10240 MB, got ${props.memorySize}`);
  }
  if (props.lockTimeout) {
    const s = props.lockTimeout.toSeconds();
    if (s < 1) fail('lockTimeout must be at least 1 second');
    if (s >= timeout) fail(`lockTimeout (${s} s) must be shorter than the function timeout (${timeout} s), or the function is killed while it waits`);
  }
  if (props.maxEventAge) {
    const s = props.maxEventAge.toSeconds();
    if (s < 60 || s > 21600) fail(`maxEventAge must be between 1 minute and 6 hours, got ${s} seconds`);
  }
  if (props.slack) {
    for (const [name, value] of [
      ['slack.workspaceId', props.slack.workspaceId],
      ['slack.channelId', props.slack.channelId],
    ] as const) {
      if (known(value) && !SLACK_ID_RE.test(value)) fail(`${name} looks wrong: '${value}'`);
    }
  }

  if (props.longMigrations) {
    if (trigger !== MigratorTrigger.EVENTBRIDGE) fail("longMigrations needs trigger: MigratorTrigger.EVENTBRIDGE (an S3 notification cannot start a task)");
    if (!props.containerImage) fail('longMigrations needs containerImage (the image running `migrator handle-event`)');
  }
  const cpu = props.taskCpu ?? 512;
  const memory = props.taskMemoryMiB ?? 1024;
  const range = FARGATE[cpu];
  if (!range) fail(`taskCpu must be one of ${Object.keys(FARGATE).join(', ')}, got ${cpu}`);
  else if (memory < range[0] || memory > range[1] || (cpu > 256 && memory % 1024 !== 0) || (cpu === 256 && ![512, 1024, 2048].includes(memory))) {
    fail(`taskMemoryMiB ${memory} is not a Fargate size for ${cpu} CPU units (${range[0]}–${range[1]} MiB)`);
  }
  if (props.taskTimeout) {
    const s = props.taskTimeout.toSeconds();
    if (s < 60 || s > 86400) fail(`taskTimeout must be between 1 minute and 24 hours, got ${s} seconds`);
  }
  if (props.artifactVersionRetention && props.artifactVersionRetention.toDays({ integral: false }) < 1) {
    fail('artifactVersionRetention must be at least 1 day');
  }
  if (props.artifactObjectLockRetention && props.artifactObjectLockRetention.toDays({ integral: false }) < 1) {
    fail('artifactObjectLockRetention must be at least 1 day');
  }
  if (props.artifactBucket && (props.artifactBucketKey || props.artifactVersionRetention || props.artifactObjectLockRetention)) {
    fail('artifactBucketKey, artifactVersionRetention and artifactObjectLockRetention apply to the bucket the construct creates, not to artifactBucket');
  }
  if (props.fleet) {
    if (trigger !== MigratorTrigger.EVENTBRIDGE) fail('fleet needs trigger: MigratorTrigger.EVENTBRIDGE (the upload rule starts the rollout)');
    if (props.longMigrations) fail('fleet and longMigrations both take the upload rule: choose one');
    validateFleet(props.fleet, fail);
  }
  validateNetwork(props, fail);
}

/** Stage-name parts that say "production" (any case): prod, production, prd, live. */
const PRODUCTION_WORDS = ['prod', 'production', 'prd', 'live'];

/** Whether a stage name reads as production (`PROD`, `Production`, `prod-eu`, `live_1`; not `preprod`). */
export function looksLikeProduction(stage: string): boolean {
  return stage
    .toLowerCase()
    .split(/[-_]/)
    .some((part) => PRODUCTION_WORDS.includes(part));
}

/**
 * Production is a decision, not a spelling: `production` must be a boolean, and a stage named
 * like production must not be declared non-production (that is a typo or a copied config).
 */
function validateProduction(props: PrismaMigratorProps, fail: (msg: string) => never): void {
  const production = (props as { production?: unknown }).production;
  if (typeof production !== 'boolean') {
    fail(
      `production must be set explicitly to true or false for stage '${props.stage}' (it decides autoApply, log retention, ` +
        'removal policy and artifact retention, and is never inferred from the stage name)',
    );
  }
  if (production === false && known(props.stage) && looksLikeProduction(props.stage)) {
    fail(`stage '${props.stage}' is named like production but production is false: rename the stage or set production: true`);
  }
}

/** The artifact key: safe characters, the stage as one path segment, patterns only by opt-in. */
function validateKey(props: PrismaMigratorProps, fail: (msg: string) => never): void {
  const key = props.artifactKey;
  if (!known(key)) fail('artifactKey must be a literal string (it decides the IAM grants and the trigger filter)');
  if (!key || key.startsWith('/') || !KEY_RE.test(key)) {
    fail(`artifactKey must be a relative S3 key of safe characters (letters, digits, !_.*'()-/), got '${key}'`);
  }
  const segments = key.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) fail(`artifactKey has an empty, '.' or '..' segment: '${key}'`);
  const stageAt = known(props.stage) ? segments.indexOf(props.stage) : 0;
  if (known(props.stage) && stageAt < 0) {
    fail(`artifactKey must contain the stage '${props.stage}' as a path segment (e.g. deploy/${props.stage}/my-app/prisma.zip), got '${key}'`);
  }
  if (key.includes('*')) {
    if (!props.allowKeyPattern) {
      fail(`artifactKey '${key}' is a pattern: one database would take every matching app's artifact; set allowKeyPattern: true if that is meant`);
    }
    if (key.includes('**')) fail(`artifactKey '${key}': '**' is not supported ('*' matches within one path segment)`);
    if (segments.slice(0, stageAt + 1).some((s) => s.includes('*'))) {
      fail(`artifactKey '${key}': the segments up to and including the stage must be literal`);
    }
  }
}

/**
 * Subnets without a route out (isolated) need the endpoints; the endpoints given must cover
 * what the configuration uses.
 */
function validateNetwork(props: PrismaMigratorProps, fail: (msg: string) => never): void {
  const e = props.endpoints;
  if (e) {
    if (!e.s3 === !e.s3GatewayPrefixListId) fail('endpoints: give S3 either as an interface endpoint (s3) or as a gateway endpoint (s3GatewayPrefixListId), exactly one');
    if (!e.rds) fail("endpoints: the rds endpoint is needed: before a deploy writes, the function asks RDS about the stage's database (backups, the recovery point, Blue/Green deployments)");
    if (props.databaseSecret && !e.secretsManager) fail('endpoints: databaseSecret needs the secretsManager endpoint');
    if (props.longMigrations && !(e.ecrApi && e.ecrDocker && e.logs)) {
      fail('endpoints: longMigrations needs the ecrApi, ecrDocker and logs endpoints (the task pulls its image and writes logs)');
    }
    return;
  }
  const selection = props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS };
  let selected: ec2.ISubnet[];
  try {
    selected = props.vpc.selectSubnets(selection).subnets;
  } catch {
    return; // the VPC has no such subnets: CDK reports it where the function selects them
  }
  const isolated = new Set(props.vpc.isolatedSubnets.map((s) => s.node.path));
  if (selected.length > 0 && selected.every((s) => isolated.has(s.node.path))) {
    fail('vpcSubnets are isolated (no NAT): pass endpoints (S3 and SNS, see MigratorVpcEndpoints) so the function can reach AWS');
  }
}

/** `recoveryPoint`: known values only (the function refuses anything else at start). */
function validateRecoveryPoint(props: PrismaMigratorProps, fail: (msg: string) => never): void {
  const r = props.recoveryPoint;
  if (!r) return;
  if (r.policy !== undefined && !Object.values(RecoveryPointPolicy).includes(r.policy)) {
    fail(`recoveryPoint.policy must be one of ${Object.values(RecoveryPointPolicy).join(', ')}, got '${r.policy}'`);
  }
  if (r.when !== undefined && !Object.values(RecoveryPointWhen).includes(r.when)) {
    fail(`recoveryPoint.when must be one of ${Object.values(RecoveryPointWhen).join(', ')}, got '${r.when}'`);
  }
}
