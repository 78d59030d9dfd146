/**
 * A fleet's targets as the construct knows them: where the JSON Lines object lives (checked
 * at synth) and which logins the fleet's function may use (IAM: `rds-db:connect` on exactly
 * these users; secrets: exactly these). The lines themselves are checked by the function at
 * run time with the stage's own rules (functions/migrator/src/fleet/targets.rs).
 */
import { Token } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { IDENTIFIER_RE, MASTER_USER_NAMES, RESOURCE_ID_RE } from './validate';

/** One IAM login of a target: `rds-db:connect` on `dbuser:<resourceId>/<user>`. */
export interface FleetIamLogin {
  /** `DbiResourceId` (`db-…`) or `DbClusterResourceId` (`cluster-…`) of the target's server. */
  readonly resourceId: string;
  /** The database user the function logs in as on that server. */
  readonly user: string;
}

export interface MigratorFleetProps {
  /** Bucket of the targets object; versioned (each rollout pins the version it read). */
  readonly targetsBucket: s3.IBucket;
  /** Key of the targets object: JSON Lines, one target a line (see the book's Fleets chapter). */
  readonly targetsKey: string;
  /** The targets' IAM logins (each gets `rds-db:connect`, nothing else). @default none */
  readonly iamLogins?: FleetIamLogin[];
  /** The targets' secrets (each gets `secretsmanager:GetSecretValue`, nothing else). @default none */
  readonly secrets?: secretsmanager.ISecret[];
  /** How many of the first targets form the canary group, applied before any wave. @default 1 */
  readonly canary?: number;
  /** How many targets the plan and the waves run at once (also the fleet function's reserved concurrency). @default 10 */
  readonly maxConcurrency?: number;
}

/** The most targets a fleet takes (the function refuses more: results travel in the 256 KiB state). */
export const MAX_FLEET_TARGETS = 1000;
/** Step Functions' highest Distributed Map concurrency. */
export const MAX_DISTRIBUTED_CONCURRENCY = 10000;

const KEY_RE = /^[A-Za-z0-9!_.'()\-/]+$/;
const known = (s: string | undefined): s is string => s !== undefined && !Token.isUnresolved(s);

/** Refuses what cannot work, naming the prop (the same rules as the stage's `databaseUser`). */
export function validateFleet(props: MigratorFleetProps, fail: (msg: string) => never): void {
  if (known(props.targetsKey) && (!KEY_RE.test(props.targetsKey) || props.targetsKey.startsWith('/'))) {
    fail(`fleet.targetsKey must be a literal S3 key of safe characters (no pattern), got '${props.targetsKey}'`);
  }
  const canary = props.canary ?? 1;
  const concurrency = props.maxConcurrency ?? 10;
  if (!Number.isInteger(canary) || canary < 1 || canary > 40) fail(`fleet.canary must be an integer from 1 to 40 (the canary is an inline Map), got ${canary}`);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1000) {
    fail(`fleet.maxConcurrency must be an integer from 1 to 1000 (it is the fleet function's reserved concurrency too), got ${concurrency}`);
  }
  (props.iamLogins ?? []).forEach((login, i) => {
    if (known(login.resourceId) && !RESOURCE_ID_RE.test(login.resourceId)) {
      fail(`fleet.iamLogins[${i}].resourceId must be a DbiResourceId (db-…) or DbClusterResourceId (cluster-…), got '${login.resourceId}'`);
    }
    if (known(login.user) && !IDENTIFIER_RE.test(login.user)) fail(`fleet.iamLogins[${i}].user must be a plain identifier, got '${login.user}'`);
    if (known(login.user) && MASTER_USER_NAMES.includes(login.user.toLowerCase())) {
      fail(`fleet.iamLogins[${i}].user '${login.user}' is a master/superuser name: create a migrator user on that server`);
    }
  });
}
