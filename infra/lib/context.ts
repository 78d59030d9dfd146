/**
 * The app's context (CDK feature flags) is cdk.json's `context`: the flags `cdk init` gives a
 * new app of this aws-cdk-lib version. The tests build their own `App` (which would not read
 * cdk.json), so they take it from here and assert exactly what `cdk synth` produces.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const CDK_JSON = path.resolve(__dirname, '..', 'cdk.json');

export const APP_CONTEXT: Record<string, unknown> = JSON.parse(fs.readFileSync(CDK_JSON, 'utf8')).context;
