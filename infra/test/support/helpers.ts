import * as assert from 'node:assert/strict';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ALLOW_PLACEHOLDER_CONTEXT } from '../../lib/code';
import { APP_CONTEXT } from '../../lib/context';
import { MigratorExampleStack, MigratorExampleStackProps } from '../../lib/example-stack';

/** A plain App (no cdk-nag plugin: nag has its own test) with cdk.json's flags; the placeholder code is allowed. */
export function testApp(): App {
  return new App({ context: { ...APP_CONTEXT, [ALLOW_PLACEHOLDER_CONTEXT]: 'true' }, analyticsReporting: false });
}

export function exampleStack(props: MigratorExampleStackProps, id = `Test-${props.stage}`): MigratorExampleStack {
  return new MigratorExampleStack(testApp(), id, props);
}

export function template(stack: Stack): Template {
  return Template.fromStack(stack);
}

/** The single resource of a type whose logical id starts with `prefix` (or the only one). */
export function resource(t: Template, type: string, prefix?: string): { id: string; props: any; raw: any } {
  const all = Object.entries(t.findResources(type)).filter(([id]) => !prefix || id.startsWith(prefix));
  assert.equal(all.length, 1, `expected one ${type}${prefix ? ` ${prefix}*` : ''}, found ${all.map(([k]) => k).join(', ')}`);
  const [id, raw] = all[0];
  return { id, props: raw.Properties, raw };
}

export function logicalId(stack: Stack, c: { node: { defaultChild?: unknown } } | unknown): string {
  const child = (c as any).node?.defaultChild ?? c;
  return stack.getLogicalId(child as any);
}

/** Statements of the IAM::Policy attached to the given role logical id. */
export function policyStatements(t: Template, roleLogicalId: string): any[] {
  const policies = Object.values(t.findResources('AWS::IAM::Policy')).filter((p: any) =>
    (p.Properties.Roles ?? []).some((r: any) => r.Ref === roleLogicalId),
  );
  assert.equal(policies.length, 1, `expected one policy for ${roleLogicalId}`);
  return (policies[0] as any).Properties.PolicyDocument.Statement;
}

export function typeCounts(t: Template): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of Object.values(t.toJSON().Resources ?? {}) as any[]) counts[r.Type] = (counts[r.Type] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}

/** The migrator's function (the stacks also hold CDK's custom-resource handlers). */
export function migratorFunction(t: Template, prefix = 'MigratorFunction'): { id: string; props: any; raw: any } {
  return resource(t, 'AWS::Lambda::Function', prefix);
}

/** Outputs of a template by logical id. */
export function outputs(t: Template): Record<string, { Value: unknown; Export?: { Name: unknown }; Description?: string }> {
  return t.toJSON().Outputs ?? {};
}
