/**
 * Executes the fleet's synthesized state machine on this machine: the definition comes from
 * the template CDK synthesizes (test/support/fleet-stack.ts), the interpreter is
 * aws-local-stepfunctions, and its Task states run the real thing:
 *
 *   lambda:invoke (the fleet alias) → `migrator handle-event` with the Payload, invoked as the
 *     alias ARN the definition names (MIGRATOR_INVOKED_FUNCTION_ARN: the fleet's door);
 *   dynamodb:getItem / putItem (the halt flag) → moto's DynamoDB, the state's own Parameters;
 *   a Map's ItemReader (s3:getObject, JSONL) → the object the reader names, from moto's S3, at
 *     the version it names. aws-local-stepfunctions does not implement ItemReader (nor the
 *     Distributed mode, ToleratedFailureCount or ProcessorConfig): the Map runs its items
 *     inline, in order, MaxConcurrency at a time; those fields are covered by the CDK assertions
 *     (test/fleet.test.ts).
 *
 * Usage: tsx scripts/run-fleet.ts CONFIG.json — prints the rollup document (one JSON line) on
 * stdout, the states as they start on stderr. CONFIG: {binary, env, motoUrl, haltTable, input,
 * canary, maxConcurrency, autoApply}.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Template } from 'aws-cdk-lib/assertions';
import { fleetStack } from '../test/support/fleet-stack';

// aws-local-stepfunctions 3 targets Node 22 (Promise.withResolvers); Node 20 lacks only this.
if (!(Promise as any).withResolvers) {
  (Promise as any).withResolvers = () => {
    let resolve: unknown;
    let reject: unknown;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

interface Config {
  binary: string;
  env: Record<string, string>;
  motoUrl: string;
  haltTable: string;
  input: unknown;
  canary: number;
  maxConcurrency: number;
  autoApply?: boolean;
}

const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const FUNCTION_ARN = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:fleet-child`;

/** The synthesized DefinitionString, its intrinsics resolved to this machine's names. */
function synthesizedDefinition(config: Config): any {
  const { stack } = fleetStack({ canary: config.canary, maxConcurrency: config.maxConcurrency, autoApply: config.autoApply });
  const template = Template.fromStack(stack).toJSON();
  const resources = template.Resources as Record<string, any>;
  const machines = Object.entries(resources).filter(([id, r]) => r.Type === 'AWS::StepFunctions::StateMachine' && id.includes('Fleet'));
  if (machines.length !== 1) throw new Error(`expected one fleet state machine, found ${machines.length}`);
  const resolve = (part: any): string => {
    if (typeof part === 'string') return part;
    if (part.Ref) {
      const pseudo: Record<string, string> = { 'AWS::Partition': 'aws', 'AWS::Region': REGION, 'AWS::AccountId': ACCOUNT, 'AWS::URLSuffix': 'amazonaws.com' };
      if (pseudo[part.Ref]) return pseudo[part.Ref];
      const type = resources[part.Ref]?.Type;
      if (type === 'AWS::Lambda::Alias') return `${FUNCTION_ARN}:${resources[part.Ref].Properties.Name}`;
      if (type === 'AWS::DynamoDB::Table') return config.haltTable;
      return part.Ref;
    }
    if (part['Fn::GetAtt']) return `${part['Fn::GetAtt'][0]}.${part['Fn::GetAtt'][1]}`;
    if (part['Fn::Join']) return part['Fn::Join'][1].map(resolve).join(part['Fn::Join'][0]);
    throw new Error(`unresolved intrinsic ${JSON.stringify(part)}`);
  };
  // The door the fleet function is synthesized with (its FLEET_QUALIFIER).
  const fleetFunctions = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::Lambda::Function' && r.Properties.Environment?.Variables?.FLEET_QUALIFIER);
  if (fleetFunctions.length !== 1) throw new Error(`expected one fleet function, found ${fleetFunctions.length}`);
  config.env = { ...config.env, FLEET_QUALIFIER: fleetFunctions[0][1].Properties.Environment.Variables.FLEET_QUALIFIER };
  return JSON.parse(resolve(machines[0][1].Properties.DefinitionString));
}

/** Every Task state, with its Resource, through nested Maps. */
function tasks(states: Record<string, any>, into: Record<string, string> = {}): Record<string, string> {
  for (const [name, state] of Object.entries(states)) {
    if (state.Type === 'Task') into[name] = state.Resource;
    if (state.Type === 'Map') tasks((state.ItemProcessor ?? state.Iterator).States, into);
  }
  return into;
}

/** A Map with an ItemReader → a Task (the reader, named like the Map) then the Map over its items. */
function readersAsTasks(states: Record<string, any>, readers: Record<string, any>): void {
  for (const [name, state] of Object.entries(states)) {
    if (state.Type !== 'Map') continue;
    readersAsTasks((state.ItemProcessor ?? state.Iterator).States, readers);
    if (!state.ItemReader) continue;
    const reader = state.ItemReader;
    const mapName = `${name}Items`;
    const { ItemReader: _reader, ToleratedFailureCount: _tolerated, ...map } = state;
    map.ItemsPath = '$.itemReaderItems';
    map.ItemProcessor = { ...map.ItemProcessor, ProcessorConfig: { Mode: 'INLINE' } };
    states[mapName] = map;
    states[name] = { Type: 'Task', Resource: reader.Resource, Parameters: reader.Parameters, ResultPath: '$.itemReaderItems', Next: mapName };
    readers[name] = reader;
  }
}

async function moto(config: Config, service: string, target: string | undefined, body: unknown, path = '/'): Promise<any> {
  const headers: Record<string, string> = {
    Authorization: `AWS4-HMAC-SHA256 Credential=AKIAFLEETRUNNER/20260101/${REGION}/${service}/aws4_request, SignedHeaders=host, Signature=0`,
  };
  if (target) {
    headers['X-Amz-Target'] = target;
    headers['Content-Type'] = 'application/x-amz-json-1.0';
  }
  const response = await fetch(`${config.motoUrl}${path}`, { method: target ? 'POST' : 'GET', headers, body: target ? JSON.stringify(body) : undefined });
  const text = await response.text();
  if (!response.ok) throw Object.assign(new Error(`${service} ${target ?? path}: ${response.status} ${text}`), { name: `${service}.Error` });
  return target ? JSON.parse(text || '{}') : text;
}

/** `migrator handle-event` with the Payload, as Lambda would invoke the function through `functionName`. */
function invoke(config: Config, functionName: string, payload: unknown): Promise<any> {
  return new Promise((resolve, reject) => {
    const child = spawn(config.binary, ['handle-event', '--event-json', JSON.stringify(payload)], {
      env: { ...config.env, MIGRATOR_INVOKED_FUNCTION_ARN: functionName },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve({ StatusCode: 200, ExecutedVersion: '1', Payload: JSON.parse(out) });
      } catch {
        reject(Object.assign(new Error(`migrator exited ${code}: ${err.slice(-2000)}`), { name: 'Lambda.Unknown' }));
      }
    });
  });
}

async function main(): Promise<void> {
  const config: Config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  const { StateMachine } = await import('aws-local-stepfunctions');
  const definition = synthesizedDefinition(config);
  const readers: Record<string, any> = {};
  readersAsTasks(definition.States, readers);
  await moto(config, 'dynamodb', 'DynamoDB_20120810.CreateTable', {
    TableName: config.haltTable,
    KeySchema: [{ AttributeName: 'execution', KeyType: 'HASH' }],
    AttributeDefinitions: [{ AttributeName: 'execution', AttributeType: 'S' }],
    BillingMode: 'PAY_PER_REQUEST',
  }).catch((e) => {
    if (!String(e.message).includes('ResourceInUseException')) throw e;
  });
  let rollup: unknown;
  const handlers: Record<string, (input: any) => Promise<any>> = {};
  for (const [name, resource] of Object.entries(tasks(definition.States))) {
    handlers[name] = async (input: any) => {
      process.stderr.write(`[run-fleet] ${name}\n`);
      if (readers[name]) {
        const text: string = await moto(config, 's3', undefined, undefined, `/${input.Bucket}/${input.Key}${input.VersionId ? `?versionId=${encodeURIComponent(input.VersionId)}` : ''}`);
        return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
      }
      if (resource.endsWith(':lambda:invoke')) {
        const answer = await invoke(config, input.FunctionName, input.Payload);
        process.stderr.write(`[run-fleet] ${name} answered ${JSON.stringify(answer.Payload).slice(0, 400)}\n`);
        if (input.Payload?.fleet?.step === 'rollup') rollup = answer.Payload.rollup;
        return answer;
      }
      if (resource.endsWith(':dynamodb:getItem')) return moto(config, 'dynamodb', 'DynamoDB_20120810.GetItem', input);
      if (resource.endsWith(':dynamodb:putItem')) return moto(config, 'dynamodb', 'DynamoDB_20120810.PutItem', input);
      throw new Error(`no local handler for ${resource}`);
    };
  }
  const machine = new StateMachine(definition, { validationOptions: { checkArn: false, checkPaths: true } });
  const name = `run-${Date.now()}-${process.pid}`;
  const execution = machine.run(config.input, {
    overrides: { taskResourceLocalHandlers: handlers },
    context: { Execution: { Id: `arn:aws:states:${REGION}:${ACCOUNT}:execution:fleet:${name}`, Name: name, StartTime: new Date().toISOString(), Input: config.input } } as any,
  });
  let status = 'SUCCEEDED';
  try {
    await execution.result;
  } catch (e: any) {
    status = `FAILED: ${e?.name ?? 'Error'}: ${e?.cause?.message ?? e?.message ?? e}`;
  }
  process.stderr.write(`[run-fleet] execution ${status}\n`);
  process.stdout.write(`${JSON.stringify({ execution: status, rollup: rollup ?? null })}\n`);
}

main().catch((e) => {
  process.stderr.write(`run-fleet: ${e?.stack ?? e}\n`);
  process.exit(2);
});
