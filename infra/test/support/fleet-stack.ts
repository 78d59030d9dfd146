/** A stage with a fleet, as the fleet's assertions and the local run (scripts/run-fleet.ts) synthesize it. */
import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { PLACEHOLDER_DIR } from '../../lib/code';
import { FleetTarget, MigratorFleetProps, PrismaMigrator } from '../../lib/prisma-migrator';
import { testApp } from './helpers';

export interface FleetStackOptions {
  readonly canary?: number;
  readonly maxConcurrency?: number;
  readonly autoApply?: boolean;
  /** Targets given to the construct (made in the stack, so that they may hold its tokens). */
  readonly targets?: (stack: Stack, database: rds.IDatabaseInstance) => FleetTarget[];
}

export function fleetStack(options: FleetStackOptions = {}): { stack: Stack; migrator: PrismaMigrator } {
  const stack = new Stack(testApp(), 'FleetTest', { env: { account: '123456789012', region: 'eu-west-1' } });
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });
  const database = rds.DatabaseInstance.fromDatabaseInstanceAttributes(stack, 'Db', {
    instanceIdentifier: 'stage-db',
    instanceEndpointAddress: 'stage-db.example.eu-west-1.rds.amazonaws.com',
    port: 5432,
    securityGroups: [new ec2.SecurityGroup(stack, 'DbSg', { vpc })],
    instanceResourceId: 'db-STAGE0000000000000000000A',
    engine: rds.DatabaseInstanceEngine.POSTGRES,
  });
  const targetsBucket = new s3.Bucket(stack, 'Targets', { versioned: true, enforceSSL: true, blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL });
  const fleet: MigratorFleetProps = {
    targetsBucket,
    targetsKey: 'fleets/CODE/targets.jsonl',
    canary: options.canary ?? 2,
    maxConcurrency: options.maxConcurrency ?? 4,
    iamLogins: [
      { resourceId: 'db-TENANTA000000000000000000A', user: 'migrator_a' },
      { resourceId: 'cluster-TENANTB0000000000000000B', user: 'migrator_b' },
    ],
    secrets: [secretsmanager.Secret.fromSecretCompleteArn(stack, 'TenantC', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:tenant-c-AbCdEf')],
    targets: options.targets?.(stack, database),
  };
  const migrator = new PrismaMigrator(stack, 'Migrator', {
    stage: 'CODE',
    production: false,
    autoApply: options.autoApply ?? true,
    artifactKey: 'deploy/CODE/app/prisma.zip',
    database,
    databaseUser: 'migrator',
    databaseName: 'app',
    vpc,
    code: lambda.Code.fromAsset(PLACEHOLDER_DIR),
    fleet,
  });
  return { stack, migrator };
}
