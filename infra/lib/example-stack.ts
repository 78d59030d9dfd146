import { Annotations, Duration, RemovalPolicy, Stack, StackProps, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import { Construct } from 'constructs';
import { ALLOW_PLACEHOLDER_CONTEXT, migratorContainerImage, migratorLambdaCode, usesPlaceholder } from './code';
import { MigratorVpcEndpoints } from './endpoints';
import { PrismaMigrator, PrismaMigratorProps } from './prisma-migrator';
import { MigratorEngine, MigratorStage } from './types';

export interface MigratorExampleStackProps extends StackProps {
  readonly stage: MigratorStage;
  /** App name used in the artifact key `deploy/<STAGE>/<app>/prisma.zip`. @default 'my-app' */
  readonly appName?: string;
  /** @default POSTGRESQL */
  readonly engine?: MigratorEngine;
  /** Add a Secrets Manager endpoint (for a migrator with `databaseSecret`). @default false */
  readonly secretsManagerEndpoint?: boolean;
  /**
   * Encrypt the artifact bucket, the log groups and the lock table with one customer-managed
   * key of this stack (`dataKey`), and lock artifact versions for 30 days (S3 Object Lock). @default false
   */
  readonly customerManagedKeys?: boolean;
  /** Extra / overriding construct props (tests use this for the variants). */
  readonly migrator?: Partial<PrismaMigratorProps>;
}

/**
 * Example: a VPC with isolated subnets only (no NAT gateway; AWS is reached through
 * interface endpoints), an RDS instance with IAM authentication and TLS enforced, a CI
 * uploader role, an operator role, and the PrismaMigrator for one stage. Env-agnostic: no lookups.
 * PROD has termination protection, deletion protection on the database and keeps its logs.
 */
export class MigratorExampleStack extends Stack {
  public readonly vpc: ec2.Vpc;
  public readonly endpoints: MigratorVpcEndpoints;
  public readonly database: rds.DatabaseInstance;
  public readonly uploaderRole: iam.Role;
  public readonly operatorRole: iam.Role;
  public readonly migrator: PrismaMigrator;
  /** The customer-managed key (`customerManagedKeys`). */
  public readonly dataKey?: kms.Key;

  constructor(scope: Construct, id: string, props: MigratorExampleStackProps) {
    const isProd = props.stage === 'PROD';
    super(scope, id, {
      terminationProtection: isProd,
      ...props,
      tags: { Application: 'prisma-migrator', Stage: props.stage, ...(props.tags ?? {}) },
    });
    const { stage } = props;
    const engine = props.engine ?? MigratorEngine.POSTGRESQL;
    const appName = props.appName ?? 'my-app';
    const longMigrations = props.migrator?.longMigrations ?? false;

    this.vpc = this.createVpc(isProd);
    this.endpoints = new MigratorVpcEndpoints(this, 'Endpoints', {
      vpc: this.vpc,
      // One AZ is enough for a test stage (~half the cost); PROD has them in both.
      subnets: isProd ? { subnetGroupName: 'app' } : { subnets: [this.vpc.selectSubnets({ subnetGroupName: 'app' }).subnets[0]] },
      secretsManager: props.secretsManagerEndpoint ?? false,
      containers: longMigrations,
    });
    this.database = this.createDatabase(stage, engine, isProd);

    // Who may upload (the CI) and who may plan and confirm (operators): replace the trust
    // with your CI's OIDC provider and your operators' SSO role.
    this.uploaderRole = new iam.Role(this, 'CiUploaderRole', {
      assumedBy: new iam.AccountRootPrincipal(),
      description: `prisma-migrator ${stage}: the CI role that uploads prisma.zip`,
    });
    this.operatorRole = new iam.Role(this, 'OperatorRole', {
      assumedBy: new iam.AccountRootPrincipal(),
      description: `prisma-migrator ${stage}: operators who plan and confirm migrations`,
    });

    if (props.customerManagedKeys) {
      this.dataKey = new kms.Key(this, 'DataKey', {
        description: `prisma-migrator ${stage}: artifacts, logs and the lock table`,
        enableKeyRotation: true,
        removalPolicy: isProd ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
        pendingWindow: Duration.days(7),
      });
    }
    const keys = this.dataKey
      ? { artifactBucketKey: this.dataKey, logsKey: this.dataKey, lockTableKey: this.dataKey, artifactObjectLockRetention: Duration.days(30) }
      : {};

    const code = migratorLambdaCode();
    if (usesPlaceholder() && String(this.node.tryGetContext(ALLOW_PLACEHOLDER_CONTEXT) ?? 'false') !== 'true') {
      Annotations.of(this).addError(
        'The Lambda code is the placeholder (target/lambda/migrator/bootstrap.zip is missing): run `make package`, ' +
          `or synthesize with -c ${ALLOW_PLACEHOLDER_CONTEXT}=true to look at the templates.`,
      );
    }
    this.migrator = new PrismaMigrator(this, 'Migrator', {
      stage,
      // The example's two stages: PROD is production, CODE is not (decided here, by the app).
      production: isProd,
      artifactKey: `deploy/${stage}/${appName}/prisma.zip`,
      database: this.database,
      databaseUser: 'migrator',
      databaseName: 'app',
      vpc: this.vpc,
      vpcSubnets: { subnetGroupName: 'app' },
      endpoints: this.endpoints,
      uploaders: [this.uploaderRole],
      // Apply on upload in CODE; PROD only plans and waits for a confirm.
      autoApply: !isProd,
      timeout: Duration.minutes(5),
      memorySize: 256,
      functionName: `prisma-migrator-${appName}-${stage}`,
      code,
      ...(longMigrations ? { containerImage: migratorContainerImage() } : {}),
      ...keys,
      ...props.migrator,
    });
    this.migrator.grantConfirm(this.operatorRole);
  }

  private createVpc(isProd: boolean): ec2.Vpc {
    const flowLogs = new logs.LogGroup(this, 'VpcFlowLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: isProd ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    return new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr('10.40.0.0/16'),
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [
        { name: 'app', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 22 },
        { name: 'db', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      flowLogs: {
        all: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.ALL },
      },
    });
  }

  private createDatabase(stage: string, engine: MigratorEngine, isProd: boolean): rds.DatabaseInstance {
    const dbEngine =
      engine === MigratorEngine.POSTGRESQL
        ? rds.DatabaseInstanceEngine.postgres({ version: rds.PostgresEngineVersion.VER_16_13 })
        : rds.DatabaseInstanceEngine.mysql({ version: rds.MysqlEngineVersion.VER_8_4_10 });
    const parameterGroup = new rds.ParameterGroup(this, 'DbParameters', {
      engine: dbEngine,
      description: `migrator example ${stage}: TLS only`,
      parameters: engine === MigratorEngine.POSTGRESQL ? { 'rds.force_ssl': '1' } : { require_secure_transport: 'ON' },
    });
    // RDS creates /aws/rds/instance/<id>/<log> itself, without retention; the group is
    // created here first, with retention (instead of CDK's LogRetention custom resource).
    const instanceIdentifier = `prisma-migrator-example-${stage.toLowerCase()}`;
    const dbLogName = engine === MigratorEngine.POSTGRESQL ? 'postgresql' : 'error';
    const dbLogs = new logs.LogGroup(this, 'DatabaseLogs', {
      logGroupName: `/aws/rds/instance/${instanceIdentifier}/${dbLogName}`,
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: isProd ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    const database = new rds.DatabaseInstance(this, 'Database', {
      instanceIdentifier,
      engine: dbEngine,
      instanceType: ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
      vpc: this.vpc,
      vpcSubnets: { subnetGroupName: 'db' },
      // A non-default port (cdk-nag RDS11); the migrator reads it from the endpoint.
      port: engine === MigratorEngine.POSTGRESQL ? 5433 : 3307,
      databaseName: 'app',
      iamAuthentication: true,
      // RDS manages and rotates the master password in Secrets Manager itself.
      credentials: rds.Credentials.fromUsername(engine === MigratorEngine.POSTGRESQL ? 'postgres' : 'admin'),
      manageMasterUserPassword: true,
      parameterGroup,
      storageEncrypted: true,
      multiAz: isProd,
      allocatedStorage: 20,
      maxAllocatedStorage: 100,
      backupRetention: Duration.days(isProd ? 14 : 7),
      // PROD: `cdk destroy` is refused by termination protection and the instance by
      // deletion protection. CODE: `cdk destroy` deletes it, leaving a final snapshot.
      deletionProtection: isProd,
      publiclyAccessible: false,
      caCertificate: rds.CaCertificate.RDS_CA_RSA2048_G1,
      cloudwatchLogsExports: [dbLogName],
      removalPolicy: RemovalPolicy.SNAPSHOT,
    });
    database.node.addDependency(dbLogs);
    if (!isProd) {
      Validations.of(database).acknowledge({
        id: 'AwsSolutions-RDS3',
        reason: 'CODE is a non-production example database: single-AZ to save cost (PROD is Multi-AZ).',
      });
      Validations.of(database).acknowledge({
        id: 'AwsSolutions-RDS10',
        reason: 'CODE is a non-production example database: `cdk destroy` may delete it (a final snapshot is kept); PROD has deletion protection.',
      });
    }
    return database;
  }
}
