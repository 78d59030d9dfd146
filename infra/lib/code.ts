import * as fs from 'node:fs';
import * as path from 'node:path';
import * as lambda from 'aws-cdk-lib/aws-lambda';

/** Repository root (infra/ is one level below it). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** Output of `make package` (cargo lambda build --release --output-format zip). */
export const PACKAGED_ZIP = path.join(REPO_ROOT, 'target', 'lambda', 'migrator', 'bootstrap.zip');

/** Committed stand-in whose `bootstrap` exits 1 with "placeholder: run make package". */
export const PLACEHOLDER_DIR = path.resolve(__dirname, '..', 'assets', 'placeholder');

/**
 * The one place that decides which bytes the Lambda function ships.
 *
 * - `target/lambda/migrator/bootstrap.zip` exists (after `make package`): use it.
 * - Otherwise use `infra/assets/placeholder/`, so that `cdk synth` and the infra
 *   tests run offline without compiling Rust. The asset's bytes only change the
 *   asset hash (the S3 key), never the template's shape, so tests are unaffected.
 *
 * `MIGRATOR_LAMBDA_ZIP` may point at another zip (e.g. a CI artifact).
 * Deploying the placeholder is refused by `scripts/deploy.sh`.
 */
export function migratorLambdaCode(zipPath: string = process.env.MIGRATOR_LAMBDA_ZIP ?? PACKAGED_ZIP): lambda.Code {
  if (fs.existsSync(zipPath)) {
    return lambda.Code.fromAsset(zipPath);
  }
  return lambda.Code.fromAsset(PLACEHOLDER_DIR);
}

/** True when synth would use the placeholder (used by deploy.sh and the README). */
export function usesPlaceholder(zipPath: string = process.env.MIGRATOR_LAMBDA_ZIP ?? PACKAGED_ZIP): boolean {
  return !fs.existsSync(zipPath);
}
