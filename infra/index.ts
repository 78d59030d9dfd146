/**
 * @prisma-migrator/cdk — the construct library: `PrismaMigrator` (one stage of the S3-triggered
 * Prisma Migrate runner), its props and enums, the VPC endpoints helper and the long-migration
 * construct. The example app (`bin/`, `lib/example-stack.ts`, `lib/variants.ts`, `lib/code.ts`)
 * is not part of the package.
 */
export { PrismaMigrator, notificationFilter, invokeCommand, startExecutionCommand, engineFamily } from './lib/prisma-migrator';
export type { PrismaMigratorProps, SlackChannelProps } from './lib/prisma-migrator';
export { BlockOn, MigratorEngine, MigratorTrigger, MIGRATOR_CONTAINER_NAME, METRIC_NAMESPACE, NOT_APPLIED_METRIC, NOT_APPLIED_STATUSES } from './lib/types';
export { MigratorVpcEndpoints } from './lib/endpoints';
export type { MigratorEndpoints, MigratorVpcEndpointsProps } from './lib/endpoints';
export { LongMigrations, LOCK_POLL_SECONDS, LOCK_RETRY } from './lib/long-migrations';
export type { LongMigrationsProps } from './lib/long-migrations';
export { ConditionedSnsTarget } from './lib/sns-rule-target';
export type { ConditionedSnsTargetProps } from './lib/sns-rule-target';
export { looksLikeProduction, MASTER_USER_NAMES } from './lib/validate';
