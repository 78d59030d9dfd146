import { Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';

/**
 * A (possibly tokenized) string rendered the way cdk-nag renders it in finding ids
 * (its flattenCfnReference: Ref → <X>, GetAtt → <X.Attr>, Fn::Join joined), so an
 * acknowledgement matches exactly one finding.
 */
export function nagFlatten(scope: Construct, value: string): string {
  const flatten = (node: unknown): string => {
    if (node === undefined) return '';
    if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/}/g, '>');
    const o = node as Record<string, any>;
    if (o['Fn::Join']) return (o['Fn::Join'][1] as unknown[]).map(flatten).join(o['Fn::Join'][0]);
    if (o['Fn::Sub']) return flatten(o['Fn::Sub']);
    if (o['Fn::GetAtt']) return `<${flatten(o['Fn::GetAtt'][0])}.${flatten(o['Fn::GetAtt'][1])}>`;
    if (o['Fn::ImportValue']) return flatten(o['Fn::ImportValue']);
    if (o.Ref) return `<${flatten(o.Ref)}>`;
    return JSON.stringify(node);
  };
  return flatten(Stack.of(scope).resolve(value));
}
