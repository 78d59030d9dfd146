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

/**
 * A target given to the construct (instead of, or to write, the targets object by hand): the
 * line the construct writes for it, with the same fields and rules as a line of the object.
 * No `url` login: it would put a password in the template.
 */
export interface FleetTarget {
  /** 1 to 64 letters, digits, `.`, `_` or `-`; unique in the fleet. */
  readonly id: string;
  /** `postgresql` or `mysql`. @default postgresql */
  readonly engine?: 'postgresql' | 'mysql';
  /** The server's host name (a token such as `instance.dbInstanceEndpointAddress` is resolved at deploy). Required with IAM. */
  readonly host?: string;
  /** A literal port. @default the engine's */
  readonly port?: number;
  /** The database. Required with IAM. */
  readonly database?: string;
  /** The user the function logs in as. Required with IAM. */
  readonly user?: string;
  /** The PostgreSQL schema. @default public */
  readonly schema?: string;
  /** IAM login (the default): the server's `DbiResourceId` or `DbClusterResourceId`; the fleet's role gets `rds-db:connect` as `user` there (or list it in `iamLogins`). */
  readonly resourceId?: string;
  /** Log in with this secret instead (`auth: secret`); the fleet's role may read it. */
  readonly secret?: secretsmanager.ISecret;
}

export interface MigratorFleetProps {
  /** Bucket of the targets object; versioned (each rollout pins the version it read). */
  readonly targetsBucket: s3.IBucket;
  /** Key of the targets object: JSON Lines, one target a line (see the book's Fleets chapter). */
  readonly targetsKey: string;
  /**
   * The targets, given here: the construct writes them, one line each, as the targets object
   * (`targetsBucket`/`targetsKey`) at every deploy, with an S3 deployment (a new version of the
   * object each time it changes; each rollout pins the version it read). Checked at synth with
   * the rules of a line; a token is resolved at deploy. Leave it out to write the object yourself.
   * @default the object is yours to write
   */
  readonly targets?: FleetTarget[];
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
/** A target's id: the rule of `functions/migrator/src/fleet/targets.rs` (`is_target_id`). */
export const TARGET_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;
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
  if (props.targets !== undefined) validateTargets(props.targets, fail);
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

/**
 * The rules of a target line (`read_db`, the stage's own rules, in the line's terms) for the
 * values known at synth: the first problem fails the synth, naming the target.
 */
function validateTargets(targets: FleetTarget[], fail: (msg: string) => never): void {
  if (targets.length < 1 || targets.length > MAX_FLEET_TARGETS) fail(`fleet.targets must list 1 to ${MAX_FLEET_TARGETS} targets, got ${targets.length}`);
  const seen = new Set<string>();
  targets.forEach((t, i) => {
    const at = `fleet.targets[${i}]${known(t.id) ? ` (${t.id})` : ''}`;
    if (!known(t.id)) fail(`fleet.targets[${i}].id must be a literal string (it names the target in every message)`);
    if (!TARGET_ID_RE.test(t.id)) fail(`${at}: id must be 1 to 64 letters, digits, '.', '_' or '-'`);
    if (seen.has(t.id)) fail(`${at}: id is used by an earlier target`);
    seen.add(t.id);
    if (t.engine !== undefined && !['postgresql', 'mysql'].includes(t.engine)) fail(`${at}: engine must be postgresql or mysql, got '${t.engine}'`);
    if (t.port !== undefined && (Token.isUnresolved(t.port) || !Number.isInteger(t.port) || t.port < 1 || t.port > 65535)) {
      fail(`${at}: port must be a literal integer from 1 to 65535, got ${t.port}`);
    }
    for (const [name, value] of [['database', t.database], ['user', t.user], ['schema', t.schema]] as const) {
      if (known(value) && !IDENTIFIER_RE.test(value)) fail(`${at}: ${name} must be a plain identifier, got '${value}'`);
    }
    if (known(t.user) && MASTER_USER_NAMES.includes(t.user.toLowerCase())) fail(`${at}: user '${t.user}' is a master/superuser name: create a migrator user on that server`);
    if (t.engine === 'mysql' && t.schema !== undefined) fail(`${at}: schema: MySQL has no schema apart from the database: leave it out (the database is 'database')`);
    if (t.secret === undefined) {
      for (const [name, value] of [['host', t.host], ['database', t.database], ['user', t.user]] as const) {
        if (value === undefined || value === '') fail(`${at}: ${name} is required with IAM (give it, or a secret to log in with)`);
      }
      if (known(t.resourceId) && !RESOURCE_ID_RE.test(t.resourceId)) fail(`${at}: resourceId must be a DbiResourceId (db-…) or DbClusterResourceId (cluster-…), got '${t.resourceId}'`);
    } else if (t.resourceId !== undefined) {
      fail(`${at}: resourceId is for an IAM login; with a secret, leave it out`);
    }
  });
}

/** The targets object's lines for `targets` (tokens stay tokens: resolved at deploy). */
export function targetLines(targets: FleetTarget[]): string {
  return targets
    .map((t) => {
      const line: Record<string, unknown> = { id: t.id };
      for (const [k, v] of [['engine', t.engine], ['host', t.host], ['port', t.port], ['database', t.database], ['user', t.user], ['schema', t.schema]] as const) {
        if (v !== undefined) line[k] = v;
      }
      if (t.secret) {
        line.auth = 'secret';
        line.secretArn = t.secret.secretArn;
      }
      return JSON.stringify(line);
    })
    .join('\n')
    .concat('\n');
}

/** Every IAM login the fleet's role may use: `iamLogins` and the targets' own. */
export function fleetLogins(props: MigratorFleetProps): FleetIamLogin[] {
  const fromTargets = (props.targets ?? []).filter((t) => !t.secret && t.resourceId && t.user).map((t) => ({ resourceId: t.resourceId!, user: t.user! }));
  return [...(props.iamLogins ?? []), ...fromTargets];
}

/** Every secret the fleet's role may read: `secrets` and the targets' own. */
export function fleetSecrets(props: MigratorFleetProps): secretsmanager.ISecret[] {
  return [...(props.secrets ?? []), ...(props.targets ?? []).flatMap((t) => (t.secret ? [t.secret] : []))];
}
