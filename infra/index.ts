/**
 * @prisma-migrator/cdk — the construct library: `PrismaMigrator` (one stage of the S3-triggered
 * Prisma Migrate runner), its props and enums, the VPC endpoints helper, the long-migration
 * construct and the conditioned SNS rule target. Only classes, interfaces and enums (what jsii
 * can carry to other languages): no free functions or constants. The example app (`bin/`,
 * `lib/example-stack.ts`, `lib/variants.ts`, `lib/code.ts`) is not part of the package.
 */
export { PrismaMigrator } from './lib/prisma-migrator';
export type { PrismaMigratorProps, SlackChannelProps } from './lib/prisma-migrator';
export { BlockOn, MigratorEngine, MigratorTrigger } from './lib/types';
export { MigratorVpcEndpoints } from './lib/endpoints';
export type { MigratorEndpoints, MigratorVpcEndpointsProps } from './lib/endpoints';
export { LongMigrations } from './lib/long-migrations';
export { RecoveryPointPolicy, RecoveryPointWhen } from './lib/recovery-point';
export type { RecoveryPointProps } from './lib/recovery-point';
export type { LongMigrationsProps } from './lib/long-migrations';
export { ConditionedSnsTarget } from './lib/sns-rule-target';
export type { ConditionedSnsTargetProps } from './lib/sns-rule-target';
