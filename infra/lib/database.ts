/** What the construct needs of the database: engine family, endpoint, security group, IAM user ARN. */
import { ArnFormat, Stack, Token, Tokenization } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as rds from 'aws-cdk-lib/aws-rds';
import { Construct } from 'constructs';
import type { PrismaMigratorProps } from './prisma-migrator';
import { MigratorEngine } from './types';

export interface DatabaseDescription {
  readonly engine: MigratorEngine;
  readonly host: string;
  readonly port: string;
  /** The database port from `peer`: an ingress rule on the database's groups (and egress on the peer's), or only the egress. */
  allowFrom(peer: ec2.IConnectable, ingress: boolean): void;
  dbUserArn(user: string): string;
}

function isCluster(db: rds.IDatabaseInstance | rds.IDatabaseCluster): db is rds.IDatabaseCluster {
  return 'clusterEndpoint' in db;
}

/** postgres / aurora-postgresql → POSTGRESQL; mysql / mariadb / aurora-mysql → MYSQL. */
export function engineFamily(engineType: string | undefined): MigratorEngine | undefined {
  if (!engineType) return undefined;
  if (engineType.includes('postgres')) return MigratorEngine.POSTGRESQL;
  if (engineType.includes('mysql') || engineType.includes('mariadb')) return MigratorEngine.MYSQL;
  return undefined;
}

export function describeDatabase(scope: Construct, props: PrismaMigratorProps): DatabaseDescription {
  const database = props.database;
  const inferred = engineFamily(database.engine?.engineType);
  if (props.engine && inferred && props.engine !== inferred) {
    throw new Error(`PrismaMigrator: engine '${props.engine}' does not match the database's engine '${database.engine?.engineType}'`);
  }
  const engine = props.engine ?? inferred ?? MigratorEngine.POSTGRESQL;
  const endpoint = isCluster(database)
    ? {
        host: database.clusterEndpoint.hostname,
        portNumber: database.clusterEndpoint.port,
        port: Token.isUnresolved(database.clusterEndpoint.port)
          ? Tokenization.stringifyNumber(database.clusterEndpoint.port)
          : String(database.clusterEndpoint.port),
        resourceId: props.databaseResourceId ?? database.clusterResourceIdentifier,
      }
    : {
        host: database.dbInstanceEndpointAddress,
        portNumber: database.instanceEndpoint.port,
        port: database.dbInstanceEndpointPort,
        resourceId: props.databaseResourceId ?? database.instanceResourceId,
      };
  const resourceId = endpoint.resourceId;
  if (!props.databaseSecret && !resourceId) {
    throw new Error(
      'PrismaMigrator: IAM authentication needs the database resource id (DbiResourceId / DbClusterResourceId): ' +
        'import the instance with `instanceResourceId` or pass `databaseResourceId`',
    );
  }
  return {
    engine,
    host: endpoint.host,
    port: endpoint.port,
    allowFrom(peer: ec2.IConnectable, ingress: boolean) {
      const port = database.connections.defaultPort ?? ec2.Port.tcp(endpoint.portNumber);
      if (ingress) {
        database.connections.allowFrom(peer, port, 'prisma-migrator');
        return;
      }
      // The database's security groups are managed elsewhere: only our side (egress).
      for (const dbGroup of database.connections.securityGroups) {
        for (const own of peer.connections.securityGroups) {
          own.addEgressRule(dbGroup, port, 'prisma-migrator: to the database (its ingress is managed elsewhere)');
        }
      }
    },
    dbUserArn(user: string) {
      // arn:aws:rds-db:REGION:ACCOUNT:dbuser:RESOURCE_ID/USER
      return Stack.of(scope).formatArn({
        service: 'rds-db',
        resource: 'dbuser',
        resourceName: `${resourceId}/${user}`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      });
    },
  };
}
