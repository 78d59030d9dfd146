import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';

/**
 * The VPC endpoints the migrator reaches AWS through when its subnets have no NAT gateway
 * (isolated subnets). Its security group then allows HTTPS to these endpoints only, instead
 * of to 0.0.0.0/0. S3 is either an interface endpoint (`s3`) or a gateway endpoint
 * (`s3GatewayPrefixListId`): exactly one of the two.
 */
export interface MigratorEndpoints {
  /** S3 as an interface endpoint with private DNS: reading the artifact, and ECR image layers. */
  readonly s3?: ec2.IInterfaceVpcEndpoint;
  /**
   * S3 through a gateway endpoint (free; routes in the subnets' route tables): the id of the
   * region's S3 managed prefix list (`pl-…`; `aws ec2 describe-managed-prefix-lists --filters
   * Name=prefix-list-name,Values=com.amazonaws.REGION.s3`, or `ec2.PrefixList.fromLookup`),
   * to which the security group allows HTTPS.
   */
  readonly s3GatewayPrefixListId?: string;
  /** SNS: publishing the outcome. */
  readonly sns: ec2.IInterfaceVpcEndpoint;
  /**
   * The RDS API: before a deploy writes, the function asks RDS about the stage's database
   * (backups and the recovery point, Blue/Green deployments). Required with endpoints.
   */
  readonly rds?: ec2.IInterfaceVpcEndpoint;
  /** Secrets Manager: needed with `databaseSecret`. */
  readonly secretsManager?: ec2.IInterfaceVpcEndpoint;
  /** ECR API, ECR Docker and CloudWatch Logs: needed with `longMigrations` (the Fargate task). */
  readonly ecrApi?: ec2.IInterfaceVpcEndpoint;
  readonly ecrDocker?: ec2.IInterfaceVpcEndpoint;
  readonly logs?: ec2.IInterfaceVpcEndpoint;
}

export interface MigratorVpcEndpointsProps {
  readonly vpc: ec2.IVpc;
  /** Subnets of the endpoints' network interfaces (one per AZ you want them in; one is enough for a test stage). */
  readonly subnets: ec2.SubnetSelection;
  /** Add the Secrets Manager endpoint. @default false */
  readonly secretsManager?: boolean;
  /** Add the ECR API, ECR Docker and CloudWatch Logs endpoints (for `longMigrations`). @default false */
  readonly containers?: boolean;
  /**
   * Reach S3 through a gateway endpoint (free) instead of an interface endpoint: the region's
   * S3 managed prefix list id (`pl-…`). The gateway endpoint is added to the route tables of
   * `subnets`.
   * @default an interface endpoint
   */
  readonly s3GatewayPrefixListId?: string;
}

/** Creates the endpoints of `MigratorEndpoints` in a VPC (private DNS on, HTTPS from the VPC only). */
export class MigratorVpcEndpoints extends Construct implements MigratorEndpoints {
  public readonly s3?: ec2.InterfaceVpcEndpoint;
  public readonly s3Gateway?: ec2.GatewayVpcEndpoint;
  public readonly s3GatewayPrefixListId?: string;
  public readonly sns: ec2.InterfaceVpcEndpoint;
  public readonly rds: ec2.InterfaceVpcEndpoint;
  public readonly secretsManager?: ec2.InterfaceVpcEndpoint;
  public readonly ecrApi?: ec2.InterfaceVpcEndpoint;
  public readonly ecrDocker?: ec2.InterfaceVpcEndpoint;
  public readonly logs?: ec2.InterfaceVpcEndpoint;

  constructor(scope: Construct, id: string, props: MigratorVpcEndpointsProps) {
    super(scope, id);
    const endpoint = (name: string, service: ec2.InterfaceVpcEndpointAwsService, extra: Partial<ec2.InterfaceVpcEndpointProps> = {}) =>
      new ec2.InterfaceVpcEndpoint(this, name, {
        vpc: props.vpc,
        service,
        subnets: props.subnets,
        privateDnsEnabled: true,
        // An endpoint only answers: no egress. No ingress from the whole VPC either: the
        // migrator's security group adds its own rule (HTTPS from the function and task only).
        securityGroups: [
          new ec2.SecurityGroup(this, `${name}SecurityGroup`, {
            vpc: props.vpc,
            description: `${name} endpoint: HTTPS from the migrator only`,
            allowAllOutbound: false,
          }),
        ],
        open: false,
        ...extra,
      });
    if (props.s3GatewayPrefixListId) {
      this.s3Gateway = new ec2.GatewayVpcEndpoint(this, 'S3Gateway', {
        vpc: props.vpc,
        service: ec2.GatewayVpcEndpointAwsService.S3,
        subnets: [props.subnets],
      });
      this.s3GatewayPrefixListId = props.s3GatewayPrefixListId;
    } else {
      // No S3 gateway endpoint in the VPC, so private DNS answers for every resolver
      // (bucket.s3.REGION.amazonaws.com resolves to the endpoint).
      this.s3 = endpoint('S3', ec2.InterfaceVpcEndpointAwsService.S3, {
        privateDnsOnlyForInboundResolverEndpoint: ec2.VpcEndpointPrivateDnsOnlyForInboundResolverEndpoint.ALL_RESOLVERS,
      });
    }
    this.sns = endpoint('Sns', ec2.InterfaceVpcEndpointAwsService.SNS);
    this.rds = endpoint('Rds', ec2.InterfaceVpcEndpointAwsService.RDS);
    if (props.secretsManager) this.secretsManager = endpoint('SecretsManager', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER);
    if (props.containers) {
      this.ecrApi = endpoint('EcrApi', ec2.InterfaceVpcEndpointAwsService.ECR);
      this.ecrDocker = endpoint('EcrDocker', ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER);
      this.logs = endpoint('Logs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS);
    }
  }
}
