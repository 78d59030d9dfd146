import { App, AppProps, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { APP_CONTEXT } from './context';
import { MigratorExampleStack } from './example-stack';
import { MigratorStage, STAGES } from './types';

/** An App with cdk.json's feature flags and cdk-nag AwsSolutions checks (a finding fails synth). */
export function newMigratorApp(props: AppProps = {}): App {
  const app = new App({
    analyticsReporting: false,
    ...props,
    context: { ...APP_CONTEXT, ...(props.context ?? {}) },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return app;
}

/**
 * The example stacks, one per stage: `PrismaMigrator-CODE`, `PrismaMigrator-PROD`.
 * Context (`cdk synth -c k=v`): slackWorkspaceId + slackChannelId add the Slack
 * channel configuration; longMigrations=true adds the long-migration task to PROD.
 */
export function addExampleStacks(app: App): Record<MigratorStage, MigratorExampleStack> {
  const workspaceId = app.node.tryGetContext('slackWorkspaceId') as string | undefined;
  const channelId = app.node.tryGetContext('slackChannelId') as string | undefined;
  const longMigrations = String(app.node.tryGetContext('longMigrations') ?? 'false') === 'true';
  const stacks = {} as Record<MigratorStage, MigratorExampleStack>;
  for (const stage of STAGES) {
    stacks[stage] = new MigratorExampleStack(app, `PrismaMigrator-${stage}`, {
      stage,
      description: `prisma-migrator example (${stage}): S3 upload -> Lambda -> RDS PostgreSQL, SNS -> Slack`,
      migrator: {
        ...(workspaceId && channelId ? { slack: { workspaceId, channelId } } : {}),
        ...(longMigrations && stage === 'PROD' ? { longMigrations: true } : {}),
      },
    });
  }
  return stacks;
}
