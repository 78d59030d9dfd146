#!/usr/bin/env node
/**
 * Example app: the PrismaMigrator for CODE and PROD, each in its own stack with
 * a VPC and an RDS PostgreSQL instance (IAM authentication, TLS only).
 *
 * Stacks are environment-agnostic (no account/region, no lookups), so
 * `cdk synth` runs offline. cdk-nag AwsSolutions checks run on every synth;
 * an unacknowledged finding fails it.
 *
 * Optional context (cdk synth -c key=value):
 *   slackWorkspaceId=T… slackChannelId=C…  add the AWS Chatbot Slack channel configuration
 *   longMigrations=true                    add the ECS Fargate task (PROD)
 */
import { addExampleStacks, newMigratorApp } from '../lib/app';

const app = newMigratorApp();
addExampleStacks(app);
app.synth();
