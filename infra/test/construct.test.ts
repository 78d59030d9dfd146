/**
 * Assertions on the synthesized templates of the PrismaMigrator construct
 * (aws-cdk-lib/assertions): resources, exact IAM statements, the event rule,
 * concurrency and retries, the environment, props validation, and variants.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as cloudtrail from 'aws-cdk-lib/aws-cloudtrail';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { PLACEHOLDER_DIR, migratorLambdaCode } from '../lib/code';
import { MigratorTrigger } from '../lib/types';
import { MigratorExampleStack } from '../lib/example-stack';
import { PrismaMigrator, engineFamily, notificationFilter } from '../lib/prisma-migrator';
import { addVariantStacks } from '../lib/variants';
import { exampleStack, migratorFunction, outputs, policyStatements, resource, template, testApp } from './support/helpers';

const ids = (stack: MigratorExampleStack) => {
  const m = stack.migrator;
  const id = (c: any) => stack.getLogicalId(c.node.defaultChild);
  return {
    fn: id(m.function),
    role: id(m.role),
    sg: id(m.securityGroup),
    bucket: id(m.artifactBucket),
    topic: id(m.topic),
    topicKey: stack.getLogicalId((m.node.findChild('TopicKey') as kms.Key).node.defaultChild as any),
    dlq: id(m.deadLetterQueue),
    logGroup: id(m.logGroup),
    db: id(stack.database),
    dbSg: stack.getLogicalId(stack.database.connections.securityGroups[0].node.defaultChild as any),
  };
};

const join = (...parts: unknown[]) => ({ 'Fn::Join': ['', parts] });
const getAtt = (id: string, attr: string) => ({ 'Fn::GetAtt': [id, attr] });
const partition = { Ref: 'AWS::Partition' };

// Built once: the CODE and PROD example stacks.
const code = exampleStack({ stage: 'CODE' });
const prod = exampleStack({ stage: 'PROD' });
const tCode = template(code);
const tProd = template(prod);

const subnetArns = (stack: MigratorExampleStack) =>
  stack.vpc
    .selectSubnets({ subnetGroupName: 'app' })
    .subnets.map((s) => join('arn:', partition, ':ec2:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':subnet/', { Ref: stack.getLogicalId(s.node.defaultChild as any) }));

/** The grants both stages share, in the order the construct adds them. */
function expectedFunctionStatements(stack: MigratorExampleStack, key: string) {
  const i = ids(stack);
  return [
    { Sid: 'Logs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: getAtt(i.logGroup, 'Arn') },
    { Sid: 'DescribeNetwork', Effect: 'Allow', Action: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'], Resource: '*' },
    {
      Sid: 'CreateNetworkInterfacesInTheFunctionSubnets',
      Effect: 'Allow',
      Action: 'ec2:CreateNetworkInterface',
      Resource: [
        join('arn:', partition, ':ec2:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':security-group/', getAtt(i.sg, 'GroupId')),
        ...subnetArns(stack),
      ],
    },
    {
      Sid: 'ManageNetworkInterfacesInTheFunctionSubnets',
      Effect: 'Allow',
      Action: ['ec2:AssignPrivateIpAddresses', 'ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface', 'ec2:UnassignPrivateIpAddresses'],
      Resource: join('arn:', partition, ':ec2:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':network-interface/*'),
      Condition: { ArnEquals: { 'ec2:Subnet': subnetArns(stack) } },
    },
    {
      Sid: 'ReadArtifact',
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:GetObjectVersion'],
      Resource: join(getAtt(i.bucket, 'Arn'), `/${key}`),
    },
    { Sid: 'PublishNotifications', Effect: 'Allow', Action: 'sns:Publish', Resource: { Ref: i.topic } },
    {
      Sid: 'EncryptNotifications',
      Effect: 'Allow',
      Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
      Condition: { StringEquals: { 'kms:ViaService': join('sns.', { Ref: 'AWS::Region' }, '.amazonaws.com') } },
      Resource: getAtt(i.topicKey, 'Arn'),
    },
    {
      Sid: 'ConnectAsDatabaseUser',
      Effect: 'Allow',
      Action: 'rds-db:connect',
      Resource: join(
        'arn:',
        partition,
        ':rds-db:',
        { Ref: 'AWS::Region' },
        ':',
        { Ref: 'AWS::AccountId' },
        ':dbuser:',
        getAtt(i.db, 'DbiResourceId'),
        '/migrator',
      ),
    },
    // The recovery point (issue 25): describing the stage's own instance and the Blue/Green
    // deployments; no snapshot grants under the default policy (PITR or NONE).
    {
      Sid: 'DescribeTheDatabase',
      Effect: 'Allow',
      Action: 'rds:DescribeDBInstances',
      Resource: join('arn:', partition, ':rds:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':db:', { Ref: i.db }),
    },
    {
      Sid: 'DescribeBlueGreenDeployments',
      Effect: 'Allow',
      Action: 'rds:DescribeBlueGreenDeployments',
      Resource: join('arn:', partition, ':rds:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':deployment:*'),
    },
    {
      Effect: 'Allow',
      Action: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'],
      Resource: getAtt(i.dlq, 'Arn'),
    },
  ];
}

describe('example stacks (CODE and PROD)', () => {
  it('has the whole flow and nothing optional', () => {
    for (const t of [tCode, tProd]) {
      // The migrator, and CDK's handlers of the VPC default-SG restriction and the bucket notifications.
      t.resourceCountIs('AWS::Lambda::Function', 3);
      t.resourceCountIs('AWS::Lambda::EventInvokeConfig', 1);
      t.resourceCountIs('AWS::Events::Rule', 1);
      t.resourceCountIs('AWS::SQS::Queue', 1);
      t.resourceCountIs('AWS::SNS::Topic', 2); // outcomes, alarms
      t.resourceCountIs('AWS::KMS::Key', 2); // one per topic
      t.resourceCountIs('AWS::RDS::DBInstance', 1);
      t.resourceCountIs('AWS::S3::Bucket', 2); // artifacts + their access logs
      t.resourceCountIs('AWS::Chatbot::SlackChannelConfiguration', 0);
      t.resourceCountIs('AWS::ECS::TaskDefinition', 0);
      t.resourceCountIs('Custom::S3BucketNotifications', 1); // keeps EventBridge on
      t.resourceCountIs('AWS::EC2::NatGateway', 0);
      t.resourceCountIs('AWS::StepFunctions::StateMachine', 0);
      t.resourceCountIs('Custom::LogRetention', 0);
    }
  });

  it('runs provided.al2023 x86_64 in the VPC with reserved concurrency 1', () => {
    const i = ids(prod);
    const fn = migratorFunction(tProd).props;
    assert.equal(fn.Runtime, 'provided.al2023');
    assert.deepEqual(fn.Architectures, ['x86_64']);
    assert.equal(fn.Handler, 'bootstrap');
    assert.equal(fn.ReservedConcurrentExecutions, 1);
    assert.equal(fn.Timeout, 300);
    assert.equal(fn.MemorySize, 256);
    assert.equal(fn.FunctionName, 'prisma-migrator-my-app-PROD');
    assert.deepEqual(fn.Role, getAtt(i.role, 'Arn'));
    assert.deepEqual(fn.VpcConfig.SecurityGroupIds, [getAtt(i.sg, 'GroupId')]);
    const appSubnets = prod.vpc.selectSubnets({ subnetGroupName: 'app' }).subnets.map((s) => ({ Ref: prod.getLogicalId(s.node.defaultChild as any) }));
    assert.deepEqual(fn.VpcConfig.SubnetIds, appSubnets);
    assert.deepEqual(fn.LoggingConfig, { LogFormat: 'JSON', LogGroup: { Ref: i.logGroup } });
    assert.equal(fn.TracingConfig, undefined);
  });

  it('sets the environment exactly (PROD: AUTO_APPLY=false)', () => {
    const i = ids(prod);
    const fn = migratorFunction(tProd).props;
    assert.deepEqual(fn.Environment.Variables, {
      STAGE: 'PROD',
      DB_ENGINE: 'postgresql',
      DB_HOST: getAtt(i.db, 'Endpoint.Address'),
      DB_PORT: getAtt(i.db, 'Endpoint.Port'),
      DB_NAME: 'app',
      DB_USER: 'migrator',
      DB_SCHEMA: 'public',
      DB_AUTH: 'iam',
      ARTIFACT_BUCKET: { Ref: i.bucket },
      ARTIFACT_KEY: 'deploy/PROD/my-app/prisma.zip',
      TOPIC_ARN: { Ref: i.topic },
      AUTO_APPLY: 'false',
      BLOCK_ON: 'error',
      LOCK_TIMEOUT: '240',
      // The confirm door (the `apply` alias).
      CONFIRM_QUALIFIER: 'apply',
      RUST_LOG: 'info',
      // A production stage takes a point-in-time recovery point by default (issue 25).
      RECOVERY_POINT: 'pitr',
      RECOVERY_POINT_WHEN: 'always',
      DB_INSTANCE_ID: { Ref: i.db },
    });
    const codeEnv = migratorFunction(tCode).props.Environment.Variables;
    assert.equal(codeEnv.AUTO_APPLY, 'true');
    assert.equal(codeEnv.RECOVERY_POINT, 'none');
    assert.equal(codeEnv.STAGE, 'CODE');
    assert.equal(codeEnv.ARTIFACT_KEY, 'deploy/CODE/my-app/prisma.zip');
    for (const env of [codeEnv, fn.Environment.Variables]) {
      assert.ok(!('DB_CA_BUNDLE' in env));
      assert.ok(!('DB_SECRET_ARN' in env));
      assert.ok(!('STATEMENT_LOCK_TIMEOUT' in env));
    }
  });

  it('does not retry async invocations and sends failures to the encrypted DLQ', () => {
    const i = ids(prod);
    const cfg = resource(tProd, 'AWS::Lambda::EventInvokeConfig').props;
    assert.deepEqual(cfg, {
      FunctionName: { Ref: i.fn },
      Qualifier: '$LATEST',
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: getAtt(i.dlq, 'Arn') } },
    });
    tProd.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600 });
    // SSL only, and EventBridge may send the rule's undeliverable events.
    tProd.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({
            Effect: 'Allow',
            Action: 'sqs:SendMessage',
            Principal: { Service: 'events.amazonaws.com' },
            Condition: { ArnEquals: { 'aws:SourceArn': getAtt(resource(tProd, 'AWS::Events::Rule').id, 'Arn') } },
          }),
        ]),
      },
    });
  });

  it('matches the upload with an EventBridge rule on bucket + exact key', () => {
    const i = ids(prod);
    const rule = resource(tProd, 'AWS::Events::Rule').props;
    assert.deepEqual(rule.EventPattern, {
      source: ['aws.s3'],
      'detail-type': ['Object Created'],
      detail: {
        bucket: { name: [{ Ref: i.bucket }] },
        object: { key: ['deploy/PROD/my-app/prisma.zip'] },
      },
    });
    assert.equal(rule.Targets.length, 1);
    assert.deepEqual(rule.Targets[0].Arn, getAtt(i.fn, 'Arn'));
    assert.deepEqual(rule.Targets[0].DeadLetterConfig, { Arn: getAtt(i.dlq, 'Arn') });
    tProd.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      FunctionName: getAtt(i.fn, 'Arn'),
      SourceArn: getAtt(resource(tProd, 'AWS::Events::Rule').id, 'Arn'),
    });
  });

  it('creates the artifact bucket versioned, encrypted, SSL-only, private, with EventBridge and old-version expiry', () => {
    const i = ids(prod);
    const b = tProd.toJSON().Resources[i.bucket].Properties;
    assert.deepEqual(b.VersioningConfiguration, { Status: 'Enabled' });
    assert.deepEqual(b.BucketEncryption, {
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
    });
    assert.deepEqual(b.PublicAccessBlockConfiguration, {
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    tProd.hasResourceProperties('Custom::S3BucketNotifications', {
      BucketName: { Ref: i.bucket },
      NotificationConfiguration: { EventBridgeConfiguration: {} },
    });
    assert.deepEqual(b.LifecycleConfiguration.Rules[0], {
      Id: 'expire-old-artifact-versions',
      Status: 'Enabled',
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
      NoncurrentVersionExpiration: { NoncurrentDays: 365, NewerNoncurrentVersions: 5 },
    });
    const codeBucket = tCode.toJSON().Resources[ids(code).bucket].Properties;
    assert.deepEqual(codeBucket.LifecycleConfiguration.Rules[0].NoncurrentVersionExpiration, { NoncurrentDays: 30, NewerNoncurrentVersions: 5 });
    assert.ok(b.LoggingConfiguration.DestinationBucketName);
    tProd.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: i.bucket },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('encrypts the topic with a rotating customer-managed key and enforces SSL', () => {
    const i = ids(prod);
    tProd.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: getAtt(i.topicKey, 'Arn') });
    tProd.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    tProd.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 'sns:Publish', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('grants exactly the least-privilege statements (CODE and PROD keys)', () => {
    assert.deepEqual(policyStatements(tProd, ids(prod).role), expectedFunctionStatements(prod, 'deploy/PROD/my-app/prisma.zip'));
    assert.deepEqual(policyStatements(tCode, ids(code).role), expectedFunctionStatements(code, 'deploy/CODE/my-app/prisma.zip'));
    // The role has no managed policies at all.
    const role = resource(tProd, 'AWS::IAM::Role', ids(prod).role).props;
    assert.equal(role.ManagedPolicyArns, undefined);
    assert.deepEqual(role.AssumeRolePolicyDocument.Statement, [
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
    ]);
  });

  it('opens the database port from the function security group only', () => {
    const i = ids(prod);
    tProd.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: getAtt(i.dbSg, 'GroupId'),
      SourceSecurityGroupId: getAtt(i.sg, 'GroupId'),
      IpProtocol: 'tcp',
      FromPort: getAtt(i.db, 'Endpoint.Port'),
      ToPort: getAtt(i.db, 'Endpoint.Port'),
    });
    tProd.hasResourceProperties('AWS::EC2::SecurityGroupEgress', {
      GroupId: getAtt(i.sg, 'GroupId'),
      DestinationSecurityGroupId: getAtt(i.dbSg, 'GroupId'),
      FromPort: getAtt(i.db, 'Endpoint.Port'),
    });
    const sg = tProd.toJSON().Resources[i.sg].Properties;
    assert.equal(sg.SecurityGroupEgress, undefined, 'no inline egress (no 0.0.0.0/0): only the rules to the database and the endpoints');
    assert.equal(sg.SecurityGroupIngress, undefined);
  });

  it('creates the database with IAM authentication, TLS enforced, encrypted, private', () => {
    tProd.hasResourceProperties('AWS::RDS::DBInstance', {
      Engine: 'postgres',
      EnableIAMDatabaseAuthentication: true,
      StorageEncrypted: true,
      PubliclyAccessible: false,
      MultiAZ: true,
      DeletionProtection: true,
      Port: '5433',
      ManageMasterUserPassword: true,
    });
    tCode.hasResourceProperties('AWS::RDS::DBInstance', { MultiAZ: false });
    tProd.hasResourceProperties('AWS::RDS::DBParameterGroup', { Parameters: { 'rds.force_ssl': '1' } });
  });

  it('keeps logs with a retention (CODE 30 days, PROD 90 days)', () => {
    assert.equal(tCode.toJSON().Resources[ids(code).logGroup].Properties.RetentionInDays, 30);
    assert.equal(tProd.toJSON().Resources[ids(prod).logGroup].Properties.RetentionInDays, 90);
  });

  it('outputs under stable logical ids and export names, with the exact invoke commands', () => {
    const i = ids(prod);
    const out = outputs(tProd);
    const fn = { Ref: i.fn };
    assert.deepEqual(Object.keys(out).sort(), [
      'MigratorAlarmTopicArn',
      'MigratorApplyCommand',
      'MigratorArtifactBucketName',
      'MigratorArtifactKey',
      'MigratorCliPlanCommand',
      'MigratorDeadLetterQueueUrl',
      'MigratorFunctionName',
      'MigratorPlanCommand',
      'MigratorSecurityGroupId',
      'MigratorTopicArn',
    ]);
    assert.deepEqual(out.MigratorAlarmTopicArn.Value, { Ref: prod.getLogicalId(prod.migrator.alarmTopic.node.defaultChild as any) });
    assert.deepEqual(out.MigratorSecurityGroupId.Value, getAtt(i.sg, 'GroupId'));
    for (const [id, o] of Object.entries(out)) assert.deepEqual(o.Export, { Name: `${prod.stackName}-${id}` });
    assert.deepEqual(out.MigratorFunctionName.Value, fn);
    assert.deepEqual(out.MigratorTopicArn.Value, { Ref: i.topic });
    assert.deepEqual(
      out.MigratorPlanCommand.Value,
      join('aws lambda invoke --cli-read-timeout 900 --function-name ', fn, ` --cli-binary-format raw-in-base64-out --payload '{"action":"deploy"}' out.json`),
    );
    // PROD (AUTO_APPLY=false) refuses a confirm without the planHash: apply the plan's own confirmPayload.
    assert.deepEqual(
      out.MigratorApplyCommand.Value,
      join(
        'aws lambda invoke --cli-read-timeout 900 --function-name ',
        fn,
        ' --cli-binary-format raw-in-base64-out --payload "$(jq -c .confirmPayload out.json)" applied.json',
      ),
    );
    assert.deepEqual(out.MigratorCliPlanCommand.Value, join('migrator invoke --function ', fn));
  });

  it('is environment-agnostic (no account/region, no lookups)', () => {
    for (const s of [code, prod]) {
      assert.ok(Stack.of(s).environment.startsWith('aws://unknown-account/unknown-region'));
    }
    assert.equal(fs.existsSync(path.join(__dirname, '..', 'cdk.context.json')), false);
  });
});

describe('trigger modes', () => {
  it("'s3-notification' uses a bucket notification filtered on the key, and no rule", () => {
    const stack = exampleStack({ stage: 'CODE', migrator: { trigger: MigratorTrigger.S3_NOTIFICATION } }, 'S3N');
    const t = template(stack);
    const i = ids(stack);
    t.resourceCountIs('AWS::Events::Rule', 0);
    t.hasResourceProperties('Custom::S3BucketNotifications', {
      BucketName: { Ref: i.bucket },
      NotificationConfiguration: {
        LambdaFunctionConfigurations: [
          {
            Events: ['s3:ObjectCreated:*'],
            LambdaFunctionArn: getAtt(i.fn, 'Arn'),
            Filter: {
              Key: {
                FilterRules: [
                  { Name: 'suffix', Value: 'prisma.zip' },
                  { Name: 'prefix', Value: 'deploy/CODE/my-app/prisma.zip' },
                ],
              },
            },
          },
        ],
      },
    });
    t.hasResourceProperties('AWS::Lambda::Permission', {
      Principal: 's3.amazonaws.com',
      FunctionName: getAtt(i.fn, 'Arn'),
    });
    // Same retry / concurrency settings.
    t.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { MaximumRetryAttempts: 0 });
    t.hasResourceProperties('AWS::Lambda::Function', { ReservedConcurrentExecutions: 1 });
    // No EventBridge flag on the bucket in this mode.
    assert.equal(t.toJSON().Resources[i.bucket].Properties.NotificationConfiguration, undefined);
  });

  it('splits keys and globs into S3 prefix/suffix filters', () => {
    assert.deepEqual(notificationFilter('deploy/PROD/app/prisma.zip'), { prefix: 'deploy/PROD/app/prisma.zip', suffix: 'prisma.zip' });
    assert.deepEqual(notificationFilter('deploy/PROD/*/prisma.zip'), { prefix: 'deploy/PROD/', suffix: '/prisma.zip' });
    assert.deepEqual(notificationFilter('deploy/PROD/*'), { prefix: 'deploy/PROD/' });
  });
});

describe('Slack buttons (issue 24)', () => {
  const stack = exampleStack({ stage: 'PROD', migrator: { slack: { workspaceId: 'T0123ABCD', channelId: 'C0123ABCD' } } }, 'Buttons');
  const t = template(stack);
  const aliasRef = { Ref: stack.getLogicalId(stack.migrator.confirmAlias.node.defaultChild as any) };
  const actions = Object.entries(t.findResources('AWS::Chatbot::CustomAction')) as [string, any][];
  const ctx = (name: string) => `event.metadata.additionalContext.${name}`;

  it('creates one custom action per button, each a lambda invoke of the apply alias under 100 characters', () => {
    const byButton = Object.fromEntries(actions.map(([, a]) => [a.Properties.Attachments[0].ButtonText, a.Properties]));
    assert.deepEqual(Object.keys(byButton).sort(), ['Accept the findings and apply', 'Apply this plan', 'Mark applied', 'Mark rolled back']);
    const expect = (button: string, when: string, payload: string) => {
      const a = byButton[button];
      assert.equal(a.Definition.CommandText, `lambda invoke --function-name $fn --qualifier apply --payload $${payload}`);
      assert.ok(a.Definition.CommandText.length <= 100, 'the API reference limit of CommandText');
      assert.match(a.ActionName, /^[a-zA-Z0-9_-]{1,64}$/);
      assert.deepEqual(a.Attachments, [
        {
          NotificationType: 'Custom',
          ButtonText: button,
          Criteria: [{ Operator: 'EQUALS', VariableName: 'migratorAction', Value: when }],
          Variables: { migratorAction: ctx('migratorAction'), fn: ctx('fn'), [payload]: ctx(payload) },
        },
      ]);
    };
    expect('Apply this plan', 'apply-plan', 'p');
    expect('Accept the findings and apply', 'accept-and-apply', 'p');
    expect('Mark rolled back', 'resolve-failed', 'rb');
    expect('Mark applied', 'resolve-failed', 'ap');
  });

  it('attaches them to the channel, whose guardrails allow exactly invoking the apply alias (and CloudWatch reads)', () => {
    const channel = resource(t, 'AWS::Chatbot::SlackChannelConfiguration').props;
    assert.deepEqual(
      [...channel.CustomizationResourceArns].sort((a: any, b: any) => a['Fn::GetAtt'][0].localeCompare(b['Fn::GetAtt'][0])),
      actions.map(([id]) => getAtt(id, 'CustomActionArn')).sort((a, b) => a['Fn::GetAtt'][0].localeCompare(b['Fn::GetAtt'][0])),
    );
    const guardrails = channel.GuardrailPolicies as any[];
    assert.equal(guardrails.length, 2);
    assert.ok(!JSON.stringify(guardrails).includes('AdministratorAccess'));
    const guardrail = t.toJSON().Resources[guardrails[1].Ref];
    assert.equal(guardrail.Type, 'AWS::IAM::ManagedPolicy');
    assert.deepEqual(guardrail.Properties.PolicyDocument.Statement, [
      { Sid: 'ButtonsInvokeTheConfirmAlias', Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: aliasRef },
    ]);
    assert.equal(guardrail.Properties.Roles, undefined, 'a ceiling, attached to nobody');
  });

  it('without buttons the channel only reads: no custom action, no guardrail of ours, no role policy', () => {
    const plain = exampleStack({ stage: 'PROD', migrator: { slack: { workspaceId: 'T0123ABCD', channelId: 'C0123ABCD', buttons: false } } }, 'NoButtons');
    const tp = template(plain);
    tp.resourceCountIs('AWS::Chatbot::CustomAction', 0);
    const channel = resource(tp, 'AWS::Chatbot::SlackChannelConfiguration').props;
    assert.equal(channel.CustomizationResourceArns, undefined);
    assert.deepEqual(channel.GuardrailPolicies, [join('arn:', partition, ':iam::aws:policy/CloudWatchReadOnlyAccess')]);
  });

  it('records who confirmed: a given trail gets a Lambda data-event selector for the apply alias only', () => {
    const app = testApp();
    const audit = new Stack(app, 'Audit');
    const trail = new cloudtrail.Trail(audit, 'Trail', { bucket: new s3.Bucket(audit, 'TrailBucket') });
    const withTrail = new MigratorExampleStack(app, 'WithTrail', { stage: 'PROD', migrator: { confirmTrail: trail } });
    const selectors = resource(template(audit), 'AWS::CloudTrail::Trail').props.EventSelectors;
    assert.equal(selectors.length, 1);
    assert.equal(selectors[0].IncludeManagementEvents, false);
    assert.equal(selectors[0].ReadWriteType, 'All');
    assert.equal(selectors[0].DataResources.length, 1);
    assert.equal(selectors[0].DataResources[0].Type, 'AWS::Lambda::Function');
    // The alias's ARN (exported by the migrator's stack), nothing else.
    const aliasId = withTrail.getLogicalId(withTrail.migrator.confirmAlias.node.defaultChild as any);
    assert.match(JSON.stringify(selectors[0].DataResources[0].Values), new RegExp(aliasId));
    tProd.resourceCountIs('AWS::CloudTrail::Trail', 0);
  });

  it('the construct and the function agree on the variables (chat-actions.json is the one definition)', () => {
    const json = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'lib', 'chat-actions.json'), 'utf8'));
    assert.equal(json.qualifier, 'apply');
    const rust = fs.readFileSync(path.join(__dirname, '..', '..', 'functions', 'migrator', 'src', 'render', 'buttons.rs'), 'utf8');
    assert.ok(rust.includes(`pub const MARKER: &str = "${json.marker}";`));
    for (const a of json.actions) assert.ok(rust.includes(`"${a.when}"`), a.when);
  });
});

describe('optional features', () => {
  it('adds the Slack channel configuration only when slack is given', () => {
    const stack = exampleStack({ stage: 'PROD', migrator: { slack: { workspaceId: 'T0123ABCD', channelId: 'C0123ABCD' } } }, 'Slack');
    const t = template(stack);
    t.resourceCountIs('AWS::Chatbot::SlackChannelConfiguration', 1);
    t.hasResourceProperties('AWS::Chatbot::SlackChannelConfiguration', {
      SlackWorkspaceId: 'T0123ABCD',
      SlackChannelId: 'C0123ABCD',
      SnsTopicArns: [{ Ref: ids(stack).topic }, { Ref: stack.getLogicalId(stack.migrator.alarmTopic.node.defaultChild as any) }],
      LoggingLevel: 'ERROR',
    });
    // The Chatbot role may invoke the apply alias (the buttons) and nothing else.
    const chatbotRole = Object.entries(t.findResources('AWS::IAM::Role')).find(([, r]: any) =>
      JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('chatbot.amazonaws.com'),
    )!;
    assert.equal((chatbotRole[1] as any).Properties.ManagedPolicyArns, undefined);
    const rolePolicies = Object.values(t.findResources('AWS::IAM::Policy')).filter((p: any) => p.Properties.Roles.some((r: any) => r.Ref === chatbotRole[0])) as any[];
    assert.deepEqual(
      rolePolicies.flatMap((p) => p.Properties.PolicyDocument.Statement),
      [{ Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: { Ref: stack.getLogicalId(stack.migrator.confirmAlias.node.defaultChild as any) } }],
    );
    tProd.resourceCountIs('AWS::Chatbot::SlackChannelConfiguration', 0);
  });

  it('secret auth adds exactly the secretsmanager:GetSecretValue grant (and the key decrypt)', () => {
    const stack = exampleStack({ stage: 'CODE', secretsManagerEndpoint: true }, 'Secret');
    const key = new kms.Key(stack, 'SecretKey', { enableKeyRotation: true });
    const secret = secretsmanager.Secret.fromSecretAttributes(stack, 'S', {
      secretCompleteArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:migrator/code/db-AbCdEf',
      encryptionKey: key,
    });
    const m = new PrismaMigrator(stack, 'WithSecret', {
      stage: 'CODE',
      production: false,
      artifactKey: 'deploy/CODE/other/prisma.zip',
      database: stack.database,
      databaseUser: 'migrator',
      databaseName: 'app',
      databaseSecret: secret,
      vpc: stack.vpc,
      vpcSubnets: { subnetGroupName: 'app' },
      endpoints: stack.endpoints,
      code: migratorLambdaCode(),
    });
    const t = template(stack);
    const role = stack.getLogicalId(m.role.node.defaultChild as any);
    const statements = policyStatements(t, role);
    const bySid = (sid: string) => statements.filter((s) => s.Sid === sid);
    assert.deepEqual(bySid('ReadDatabaseSecret'), [
      {
        Sid: 'ReadDatabaseSecret',
        Effect: 'Allow',
        Action: 'secretsmanager:GetSecretValue',
        Resource: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:migrator/code/db-AbCdEf',
      },
    ]);
    assert.deepEqual(bySid('DecryptDatabaseSecret'), [
      {
        Sid: 'DecryptDatabaseSecret',
        Effect: 'Allow',
        Action: 'kms:Decrypt',
        Condition: {
          StringEquals: {
            'kms:ViaService': join('secretsmanager.', { Ref: 'AWS::Region' }, '.amazonaws.com'),
            'kms:EncryptionContext:SecretARN': 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:migrator/code/db-AbCdEf',
          },
        },
        Resource: getAtt(stack.getLogicalId(key.node.defaultChild as any), 'Arn'),
      },
    ]);
    assert.equal(bySid('ConnectAsDatabaseUser').length, 0, 'no rds-db:connect with secret auth');
    assert.deepEqual(
      statements.map((s) => s.Sid ?? '(dlq)'),
      ['Logs', 'DescribeNetwork', 'CreateNetworkInterfacesInTheFunctionSubnets', 'ManageNetworkInterfacesInTheFunctionSubnets', 'ReadArtifact', 'PublishNotifications', 'EncryptNotifications', 'ReadDatabaseSecret', 'DecryptDatabaseSecret', 'DescribeTheDatabase', 'DescribeBlueGreenDeployments', '(dlq)'],
    );
    const env = m.function.node.defaultChild as lambda.CfnFunction;
    const vars = stack.resolve(env.environment) as any;
    assert.equal(vars.variables.DB_AUTH, 'secret');
    assert.equal(vars.variables.DB_SECRET_ARN, 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:migrator/code/db-AbCdEf');
    // IAM-auth migrator of the same stack: no secretsmanager anywhere.
    const iamStatements = policyStatements(t, stack.getLogicalId(stack.migrator.role.node.defaultChild as any));
    assert.ok(!JSON.stringify(iamStatements).includes('secretsmanager'));
  });

  it('X-Ray tracing is optional', () => {
    const stack = exampleStack({ stage: 'CODE', migrator: { tracing: true } }, 'Xray');
    const t = template(stack);
    t.hasResourceProperties('AWS::Lambda::Function', { TracingConfig: { Mode: 'Active' } });
    const statements = policyStatements(t, ids(stack).role);
    assert.ok(statements.some((s) => JSON.stringify(s.Action) === JSON.stringify(['xray:PutTelemetryRecords', 'xray:PutTraceSegments']) && s.Resource === '*'));
  });

  it('statementLockTimeout / lockTimeout / logLevel reach the environment', () => {
    const stack = exampleStack(
      { stage: 'CODE', migrator: { statementLockTimeout: Duration.seconds(30), lockTimeout: Duration.minutes(2), logLevel: 'debug' } },
      'Env',
    );
    template(stack).hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ STATEMENT_LOCK_TIMEOUT: '30', LOCK_TIMEOUT: '120', RUST_LOG: 'debug' }) },
    });
  });
});

describe('engines and databases', () => {
  const app = testApp();
  const v = addVariantStacks(app);

  it('MySQL instance: engine inferred, port from the endpoint, schema = database, same rds-db:connect', () => {
    const stack = v.mysql;
    const t = template(stack);
    const i = ids(stack);
    const env = migratorFunction(t).props.Environment.Variables;
    assert.equal(env.DB_ENGINE, 'mysql');
    assert.deepEqual(env.DB_PORT, getAtt(i.db, 'Endpoint.Port'));
    assert.deepEqual(env.DB_HOST, getAtt(i.db, 'Endpoint.Address'));
    assert.equal(env.DB_SCHEMA, 'app');
    t.hasResourceProperties('AWS::RDS::DBInstance', { Engine: 'mysql', Port: '3307', EnableIAMDatabaseAuthentication: true });
    t.hasResourceProperties('AWS::RDS::DBParameterGroup', { Parameters: { require_secure_transport: 'ON' } });
    assert.deepEqual(policyStatements(t, i.role), expectedFunctionStatements(stack, 'deploy/CODE/my-app/prisma.zip'));
  });

  it('Aurora cluster: cluster resource id in the rds-db:connect ARN, engine mysql', () => {
    const stack = v.aurora;
    const t = template(stack);
    const m = stack.node.findChild('Migrator') as PrismaMigrator;
    const cluster = stack.node.findChild('Cluster') as rds.DatabaseCluster;
    const clusterId = stack.getLogicalId(cluster.node.defaultChild as any);
    const statements = policyStatements(t, stack.getLogicalId(m.role.node.defaultChild as any));
    const connect = statements.find((s) => s.Sid === 'ConnectAsDatabaseUser');
    assert.deepEqual(
      connect.Resource,
      join('arn:', partition, ':rds-db:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':dbuser:', getAtt(clusterId, 'DBClusterResourceId'), '/migrator'),
    );
    const env = migratorFunction(t).props.Environment.Variables;
    assert.equal(env.DB_ENGINE, 'mysql');
    assert.deepEqual(env.DB_PORT, getAtt(clusterId, 'Endpoint.Port'));
    assert.deepEqual(env.DB_HOST, getAtt(clusterId, 'Endpoint.Address'));
  });

  it('existing bucket (KMS), topic and imported instance: grants scoped to them, glob key', () => {
    const stack = v.existingResources;
    const t = template(stack);
    const m = stack.node.findChild('Migrator') as PrismaMigrator;
    t.resourceCountIs('AWS::S3::Bucket', 0);
    t.resourceCountIs('AWS::SNS::Topic', 0);
    t.resourceCountIs('AWS::KMS::Key', 0);
    const statements = policyStatements(t, stack.getLogicalId(m.role.node.defaultChild as any));
    const sid = (s: string) => statements.find((x) => x.Sid === s);
    assert.deepEqual(sid('ReadArtifact'), {
      Sid: 'ReadArtifact',
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:GetObjectVersion'],
      Resource: join('arn:', partition, ':s3:::acme-prisma-artifacts/deploy/PROD/*/prisma.zip'),
    });
    assert.deepEqual(sid('DecryptArtifact'), {
      Sid: 'DecryptArtifact',
      Effect: 'Allow',
      Action: 'kms:Decrypt',
      Condition: {
        StringEquals: { 'kms:ViaService': join('s3.', { Ref: 'AWS::Region' }, '.amazonaws.com') },
        StringLike: {
          'kms:EncryptionContext:aws:s3:arn': [
            join('arn:', partition, ':s3:::acme-prisma-artifacts'),
            join('arn:', partition, ':s3:::acme-prisma-artifacts/deploy/PROD/*/prisma.zip'),
          ],
        },
      },
      Resource: 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555',
    });
    assert.deepEqual(sid('PublishNotifications')!.Resource, 'arn:aws:sns:eu-west-1:123456789012:deployments');
    assert.deepEqual(sid('EncryptNotifications')!.Resource, 'arn:aws:kms:eu-west-1:123456789012:key/66666666-7777-8888-9999-000000000000', "the existing topic's key gets the grant");
    assert.deepEqual(
      sid('ConnectAsDatabaseUser')!.Resource,
      join('arn:', partition, ':rds-db:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXY0/migrator'),
    );
    const rule = resource(t, 'AWS::Events::Rule').props;
    assert.deepEqual(rule.EventPattern.detail, {
      bucket: { name: ['acme-prisma-artifacts'] },
      object: { key: [{ wildcard: 'deploy/PROD/*/prisma.zip' }] },
    });
    // databaseIngress: false — the imported database's security group gets no rule; the
    // migrator's security group gets the egress to it on 5432.
    assert.deepEqual(
      Object.values(t.findResources('AWS::EC2::SecurityGroupIngress')).filter((r: any) => r.Properties.GroupId === 'sg-0123456789abcdef0'),
      [],
    );
    t.hasResourceProperties('AWS::EC2::SecurityGroupEgress', {
      GroupId: getAtt(stack.getLogicalId(m.securityGroup.node.defaultChild as any), 'GroupId'),
      DestinationSecurityGroupId: 'sg-0123456789abcdef0',
      FromPort: 5432,
      ToPort: 5432,
    });
    const env = migratorFunction(t).props.Environment.Variables;
    assert.equal(env.DB_PORT, '5432');
    assert.equal(env.DB_SCHEMA, 'app');
    assert.equal(env.ARTIFACT_KEY, 'deploy/PROD/*/prisma.zip');
    t.hasResourceProperties('AWS::Lambda::Function', { Timeout: 900, MemorySize: 512 });
  });

  it('maps engine types to families', () => {
    assert.equal(engineFamily('postgres'), 'postgresql');
    assert.equal(engineFamily('aurora-postgresql'), 'postgresql');
    assert.equal(engineFamily('mysql'), 'mysql');
    assert.equal(engineFamily('mariadb'), 'mysql');
    assert.equal(engineFamily('aurora-mysql'), 'mysql');
    assert.equal(engineFamily(undefined), undefined);
  });
});

describe('Lambda code asset', () => {
  it('uses the placeholder when the package is missing, the zip when present', () => {
    const stack = new Stack(testApp(), 'Code');
    const missing = migratorLambdaCode(path.join(os.tmpdir(), 'no-such-dir', 'bootstrap.zip')).bind(stack);
    assert.ok(missing.s3Location, 'an asset');
    const placeholder = fs.readFileSync(path.join(PLACEHOLDER_DIR, 'bootstrap'), 'utf8');
    assert.match(placeholder, /placeholder: run make package/);
    assert.match(placeholder, /exit 1/);
    assert.ok((fs.statSync(path.join(PLACEHOLDER_DIR, 'bootstrap')).mode & 0o111) !== 0, 'bootstrap is executable');

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'migrator-zip-'));
    const zip = path.join(dir, 'bootstrap.zip');
    fs.writeFileSync(zip, 'PK\u0005\u0006' + '\u0000'.repeat(18)); // an empty zip archive
    const code = migratorLambdaCode(zip) as lambda.AssetCode;
    assert.equal(code.path, zip);
    const fallback = migratorLambdaCode(path.join(dir, 'absent.zip')) as lambda.AssetCode;
    assert.equal(fallback.path, PLACEHOLDER_DIR);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the template shape does not depend on the asset bytes', () => {
    const shape = (t: Template) =>
      // (The current version's logical id names the code's hash: a new version per code.)
      JSON.stringify(t.toJSON(), (k, v) => (k === 'S3Key' ? '<hash>' : v)).replace(/CurrentVersion[0-9A-Fa-f]{8,}/g, 'CurrentVersion<hash>');
    const a = exampleStack({ stage: 'CODE', migrator: { code: lambda.Code.fromAsset(PLACEHOLDER_DIR) } }, 'ShapeA');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'migrator-alt-'));
    fs.writeFileSync(path.join(dir, 'bootstrap'), '#!/bin/sh\necho other\n', { mode: 0o755 });
    const b = exampleStack({ stage: 'CODE', migrator: { code: lambda.Code.fromAsset(dir) } }, 'ShapeA');
    assert.equal(shape(template(a)), shape(template(b)));
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

