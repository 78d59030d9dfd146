/**
 * A platform team's app: installs @prisma-migrator/cdk (not the repository's sources) and
 * gives one application, `orders`, a migrator per stage — CODE and PROD — next to a database
 * it does not own (imported; its security group is managed by the database team), with the
 * CI and the approvers in a separate tooling account.
 */
import { App, Stack, StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { MigratorEngine, MigratorVpcEndpoints, PrismaMigrator } from '@prisma-migrator/cdk';

const TOOLING_ACCOUNT = '210987654321';

interface MigrationsStackProps extends StackProps {
  readonly stage: string;
  /** Decided here, per stage — never inferred from the stage's name. */
  readonly production: boolean;
  readonly databaseHost: string;
  readonly databaseResourceId: string;
  readonly databaseSecurityGroupId: string;
}

class MigrationsStack extends Stack {
  public readonly migrator: PrismaMigrator;

  constructor(scope: Construct, id: string, props: MigrationsStackProps) {
    super(scope, id, props);
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'app', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
    });
    // The free S3 gateway endpoint (eu-west-1's S3 prefix list) and an SNS interface endpoint.
    const endpoints = new MigratorVpcEndpoints(this, 'Endpoints', {
      vpc,
      subnets: { subnetGroupName: 'app' },
      s3GatewayPrefixListId: 'pl-6da54004',
    });
    const database = rds.DatabaseInstance.fromDatabaseInstanceAttributes(this, 'Database', {
      instanceIdentifier: `orders-${props.stage.toLowerCase()}`,
      instanceEndpointAddress: props.databaseHost,
      port: 5432,
      securityGroups: [ec2.SecurityGroup.fromSecurityGroupId(this, 'DatabaseSg', props.databaseSecurityGroupId)],
      instanceResourceId: props.databaseResourceId,
    });
    const key = new kms.Key(this, 'MigrationsKey', { enableKeyRotation: true, description: `orders migrations ${props.stage}` });
    this.migrator = new PrismaMigrator(this, 'Migrator', {
      stage: props.stage,
      production: props.production,
      artifactKey: `deploy/${props.stage}/orders/prisma.zip`,
      database,
      engine: MigratorEngine.POSTGRESQL,
      databaseUser: 'migrator',
      databaseName: 'orders',
      databaseIngress: false,
      vpc,
      vpcSubnets: { subnetGroupName: 'app' },
      endpoints,
      // The released bootstrap.zip, from the platform's release bucket.
      code: lambda.Code.fromBucketV2(s3.Bucket.fromBucketName(this, 'Releases', 'acme-platform-releases'), 'prisma-migrator/0.2.0/bootstrap.zip'),
      artifactBucketKey: key,
      logsKey: key,
    });
    this.migrator.grantUpload(iam.Role.fromRoleArn(this, 'Ci', `arn:aws:iam::${TOOLING_ACCOUNT}:role/orders-ci`));
    this.migrator.grantConfirm(iam.Role.fromRoleArn(this, 'Approvers', `arn:aws:iam::${TOOLING_ACCOUNT}:role/orders-migration-approvers`));
  }
}

const app = new App({ outdir: process.env.CONSUMER_OUTDIR ?? 'cdk.out' });
new MigrationsStack(app, 'Orders-Migrations-CODE', {
  stage: 'CODE',
  production: false,
  databaseHost: 'orders-code.abcdefghijkl.eu-west-1.rds.amazonaws.com',
  databaseResourceId: 'db-CODEABCDEFGHIJKLMNOPQRSTU0',
  databaseSecurityGroupId: 'sg-0aaaaaaaaaaaaaaa1',
});
new MigrationsStack(app, 'Orders-Migrations-PROD', {
  stage: 'PROD',
  production: true,
  terminationProtection: true,
  databaseHost: 'orders-prod.abcdefghijkl.eu-west-1.rds.amazonaws.com',
  databaseResourceId: 'db-PRODABCDEFGHIJKLMNOPQRSTU0',
  databaseSecurityGroupId: 'sg-0bbbbbbbbbbbbbbb2',
});
app.synth();
