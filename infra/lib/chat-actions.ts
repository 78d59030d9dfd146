import { Names } from 'aws-cdk-lib';
import * as chatbot from 'aws-cdk-lib/aws-chatbot';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import definitions from './chat-actions.json';

/** The confirm door: the alias through which alone a confirmed deploy or resolve is honoured. */
export const CONFIRM_QUALIFIER = definitions.qualifier;

/** The API reference's limit of a custom action's CommandText (CloudFormation's schema says 5000). */
export const COMMAND_TEXT_LIMIT = 100;

/**
 * The Slack buttons of a stage's channel (AWS Chatbot custom actions, from chat-actions.json):
 * "Apply this plan", "Accept the findings and apply", "Mark rolled back", "Mark applied". Each
 * runs `lambda invoke --function-name $fn --qualifier apply --payload $…` with the variables the
 * function put in the notification's `metadata.additionalContext`, shown only when the marker
 * matches. They are attached to `channel`; its guardrail lets them invoke the `apply` alias only.
 */
export class ChatActions extends Construct {
  public readonly actions: chatbot.CfnCustomAction[];

  /** The channel's ceiling for the buttons: `lambda:InvokeFunction` on the `apply` alias, nothing else. */
  public static guardrail(scope: Construct, id: string, alias: lambda.IAlias): iam.ManagedPolicy {
    return new iam.ManagedPolicy(scope, id, {
      description: 'prisma-migrator Slack buttons: invoke the confirm alias (apply) and nothing else',
      statements: [
        new iam.PolicyStatement({
          sid: 'ButtonsInvokeTheConfirmAlias',
          actions: ['lambda:InvokeFunction'],
          resources: [alias.functionArn],
        }),
      ],
    });
  }

  constructor(scope: Construct, id: string, props: { channel: chatbot.SlackChannelConfiguration }) {
    super(scope, id);
    const prefix = Names.uniqueResourceName(this, { maxLength: 40, separator: '-' });
    this.actions = definitions.actions.map((a) => {
      if (a.commandText.length > COMMAND_TEXT_LIMIT) {
        throw new Error(`chat action ${a.id}: its command text is over ${COMMAND_TEXT_LIMIT} characters`);
      }
      const variables: Record<string, string> = { [definitions.marker]: definitions.variablePrefix + definitions.marker };
      for (const v of a.variables) variables[v] = definitions.variablePrefix + v;
      return new chatbot.CfnCustomAction(this, a.id, {
        actionName: `${prefix}-${a.id}`.slice(0, 64),
        definition: { commandText: a.commandText },
        attachments: [
          {
            notificationType: definitions.notificationType,
            buttonText: a.button,
            criteria: [{ operator: 'EQUALS', variableName: definitions.marker, value: a.when }],
            variables,
          },
        ],
      });
    });
    const cfn = props.channel.node.defaultChild as chatbot.CfnSlackChannelConfiguration;
    cfn.customizationResourceArns = this.actions.map((a) => a.attrCustomActionArn);
  }
}
