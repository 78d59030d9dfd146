/**
 * An EventBridge rule target that publishes to an SNS topic with conditioned resource
 * policies. CDK's `targets.SnsTopic` grants `events.amazonaws.com` on the topic (and its key)
 * without `aws:SourceAccount`/`aws:SourceArn`; this target writes the statements itself, each
 * naming the one rule that may publish, and adds a dead-letter queue and a retry policy.
 */
import { Aws, Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import { aws_events as eventsRefs } from 'aws-cdk-lib/interfaces';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';

export interface ConditionedSnsTargetProps {
  /** Where events that could not be delivered after the retries go. */
  readonly deadLetterQueue: sqs.IQueue;
  /** @default 8 */
  readonly retryAttempts?: number;
  /** @default Duration.hours(2) */
  readonly maxEventAge?: Duration;
}

export class ConditionedSnsTarget implements events.IRuleTarget {
  constructor(
    private readonly topic: sns.ITopic,
    private readonly props: ConditionedSnsTargetProps,
  ) {}

  bind(rule: eventsRefs.IRuleRef, _id?: string): events.RuleTargetConfig {
    const ruleArn = rule.ruleRef.ruleArn;
    const name = rule.node.id.replace(/[^A-Za-z0-9]/g, '');
    const fromThisRule = {
      StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
      ArnEquals: { 'aws:SourceArn': ruleArn },
    };
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: `${name}Publishes`,
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: fromThisRule,
      }),
    );
    this.props.deadLetterQueue.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: `${name}DeadLetters`,
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['sqs:SendMessage'],
        resources: [this.props.deadLetterQueue.queueArn],
        conditions: { ArnEquals: { 'aws:SourceArn': ruleArn } },
      }),
    );
    return {
      arn: this.topic.topicArn,
      deadLetterConfig: { arn: this.props.deadLetterQueue.queueArn },
      retryPolicy: {
        maximumRetryAttempts: this.props.retryAttempts ?? 8,
        maximumEventAgeInSeconds: (this.props.maxEventAge ?? Duration.hours(2)).toSeconds(),
      },
      targetResource: this.topic,
    };
  }
}
