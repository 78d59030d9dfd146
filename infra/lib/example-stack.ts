import { Duration, RemovalPolicy, Stack, StackProps, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import { Construct } from 'constructs';
import { MigratorStage, PrismaMigrator, PrismaMigratorProps } from './prisma-migrator';

export type ExampleEngine = 'postgresql' | 'mysql';

export interface MigratorExampleStackProps extends StackProps {
  readonly stage: MigratorStage;
  /** App name used in the artifact key `deploy/<STAGE>/<app>/prisma.zip`. @default 'my-app' */
  readonly appName?: string;
  /** @default 'postgresql' */
  readonly engine?: ExampleEngine;
  /** Extra / overriding construct props (tests use this for the variants). */
  readonly migrator?: Partial<PrismaMigratorProps>;
}

/**
 * Example: a VPC (public, private-with-egress and isolated subnets), an RDS
 * instance with IAM authentication and TLS enforced in the isolated subnets,
 * and the PrismaMigrator for one stage. Env-agnostic: no lookups.
 */
export class MigratorExampleStack extends Stack {
  public readonly vpc: ec2.Vpc;
  public readonly database: rds.DatabaseInstance;
  public readonly migrator: PrismaMigrator;

  constructor(scope: Construct, id: string, props: MigratorExampleStackProps) {
    super(scope, id, props);
    const { stage } = props;
    const isProd = stage === 'PROD';
    const engine = props.engine ?? 'postgresql';
    const appName = props.appName ?? 'my-app';

    const flowLogs = new logs.LogGroup(this, 'VpcFlowLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr('10.40.0.0/16'),
      maxAzs: 2,
      natGateways: isProd ? 2 : 1,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'app', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
        { name: 'db', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      flowLogs: {
        all: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.ALL },
      },
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    });

    const dbEngine =
      engine === 'postgresql'
        ? rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_16_13 })
        : rds.DatabaseInstanceEngine.mysql({ version: rds.MysqlEngineVersion.VER_8_4_10 });
    const parameterGroup = new rds.ParameterGroup(this, 'DbParameters', {
      engine: dbEngine,
      description: `migrator example ${stage}: TLS only`,
      parameters:
        engine === 'postgresql' ? { 'rds.force_ssl': '1' } : { require_secure_transport: 'ON' },
    });
    // RDS creates /aws/rds/instance/<id>/<log> itself, without retention; the
    // group is created here first, with retention (instead of CDK's LogRetention
    // custom resource, a Lambda function).
    const instanceIdentifier = `prisma-migrator-example-${stage.toLowerCase()}`;
    const dbLogName = engine === 'postgresql' ? 'postgresql' : 'error';
    const dbLogs = new logs.LogGroup(this, 'DatabaseLogs', {
      logGroupName: `/aws/rds/instance/${instanceIdentifier}/${dbLogName}`,
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.database = new rds.DatabaseInstance(this, 'Database', {
      instanceIdentifier,
      engine: dbEngine,
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
      vpc: this.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      // A non-default port (cdk-nag RDS11); the migrator reads it from the endpoint.
      port: engine === 'postgresql' ? 5433 : 3307,
      databaseName: 'app',
      iamAuthentication: true,
      // RDS manages and rotates the master password in Secrets Manager itself.
      credentials: rds.Credentials.fromUsername(engine === 'postgresql' ? 'postgres' : 'admin'),
      manageMasterUserPassword: true,
      parameterGroup,
      storageEncrypted: true,
      multiAz: isProd,
      allocatedStorage: 20,
      maxAllocatedStorage: 100,
      backupRetention: Duration.days(isProd ? 14 : 7),
      deletionProtection: true,
      publiclyAccessible: false,
      caCertificate: rds.CaCertificate.RDS_CA_RSA2048_G1,
      cloudwatchLogsExports: [dbLogName],
      removalPolicy: RemovalPolicy.SNAPSHOT,
    });
    this.database.node.addDependency(dbLogs);
    if (!isProd) {
      Validations.of(this.database).acknowledge({
        id: 'AwsSolutions-RDS3',
        reason: 'CODE is a non-production example database: single-AZ to save cost (PROD is Multi-AZ).',
      });
    }

    this.migrator = new PrismaMigrator(this, 'Migrator', {
      stage,
      artifactKey: `deploy/${stage}/${appName}/prisma.zip`,
      database: this.database,
      databaseUser: 'migrator',
      databaseName: 'app',
      vpc: this.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      // Apply on upload in CODE; PROD only plans and waits for a confirm.
      autoApply: !isProd,
      timeout: Duration.minutes(5),
      memorySize: 256,
      functionName: `prisma-migrator-${appName}-${stage}`,
      ...props.migrator,
    });
  }
}
