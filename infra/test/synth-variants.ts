/**
 * Synthesizes the variant stacks (lib/variants.ts) with cdk-nag into
 * cdk.out.variants/, for cfn-lint (scripts/test.sh). Fails on any
 * unacknowledged cdk-nag finding, like `cdk synth` of bin/app.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { newMigratorApp } from '../lib/app';
import { ALLOW_PLACEHOLDER_CONTEXT } from '../lib/code';
import { addVariantStacks } from '../lib/variants';

const outdir = path.resolve(__dirname, '..', 'cdk.out.variants');
fs.rmSync(outdir, { recursive: true, force: true });
const app = newMigratorApp({ outdir, context: { [ALLOW_PLACEHOLDER_CONTEXT]: 'true' } });
addVariantStacks(app);
app.synth();
console.log(`variants synthesized to ${path.relative(process.cwd(), outdir)}`);
