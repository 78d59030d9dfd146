/**
 * The construct's enums (jsii-friendly: string enums, not string-literal unions).
 * The values are what the function reads from its environment.
 */

/** What starts a migration when an artifact is uploaded. */
export enum MigratorTrigger {
  /** An EventBridge rule on the bucket's "Object Created" events (the bucket's EventBridge notifications on). */
  EVENTBRIDGE = 'eventbridge',
  /** An S3 event notification to the function (CDK's bucket-notification custom resource). */
  S3_NOTIFICATION = 's3-notification',
}

/** Database engine family (`DB_ENGINE`). MySQL, MariaDB and Aurora MySQL are `MYSQL`. */
export enum MigratorEngine {
  POSTGRESQL = 'postgresql',
  MYSQL = 'mysql',
}

/**
 * Which preflight findings block an upload-triggered deploy (`BLOCK_ON`): a blocked deploy
 * writes nothing and publishes `blocked` with the findings.
 */
export enum BlockOn {
  /** Block on `error` findings (a statement predicted to fail, a blocking rewrite of a big table). */
  ERROR = 'error',
  /** Block on `warning` findings too. */
  WARNING = 'warning',
  /** Never block: findings are reported only. */
  NEVER = 'never',
}

/** The stages of the example app (the construct accepts any stage name). */
export const STAGES = ['CODE', 'PROD'] as const;
export type MigratorStage = (typeof STAGES)[number];

/** Name of the container in the long-migration task definition. */
export const MIGRATOR_CONTAINER_NAME = 'migrator';

/** CloudWatch namespace of the construct's metric filters. */
export const METRIC_NAMESPACE = 'PrismaMigrator';
/** Metric (dimension `Stage`) counting outcomes with status failed, blocked, rejected or incomplete. */
export const NOT_APPLIED_METRIC = 'MigrationsNotApplied';
/**
 * The outcome statuses that mean "this upload did not get applied and needs a person": every
 * status for which the process exits non-zero (the engine's `Status::is_success` is false), so
 * the Lambda path (metric filter) and the ECS path (task exit code) alarm on the same outcomes.
 */
export const NOT_APPLIED_STATUSES = ['failed', 'blocked', 'rejected', 'incomplete'] as const;
