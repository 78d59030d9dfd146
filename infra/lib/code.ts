/**
 * The repository's layout, known to the example app only (the construct takes `code` and
 * `containerImage` as props and knows nothing of this repository).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IgnoreMode } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as lambda from 'aws-cdk-lib/aws-lambda';

/** Repository root (infra/ is one level below it). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** Output of `make package` (cargo lambda build --release --output-format zip). */
export const PACKAGED_ZIP = path.join(REPO_ROOT, 'target', 'lambda', 'migrator', 'bootstrap.zip');

/** Committed stand-in whose `bootstrap` exits 1 with "placeholder: run make package". */
export const PLACEHOLDER_DIR = path.resolve(__dirname, '..', 'assets', 'placeholder');

/** Context key that lets synth use the placeholder without an error (the tests and `make synth` set it). */
export const ALLOW_PLACEHOLDER_CONTEXT = 'allowPlaceholder';

/**
 * The one place that decides which bytes the Lambda function ships.
 *
 * - `target/lambda/migrator/bootstrap.zip` exists (after `make package`): use it.
 * - Otherwise use `infra/assets/placeholder/`, so that `cdk synth` and the infra
 *   tests run offline without compiling Rust. The asset's bytes only change the
 *   asset hash (the S3 key), never the template's shape, so tests are unaffected.
 *   The example stack then adds an error annotation (so `cdk deploy` refuses) unless
 *   the context `allowPlaceholder=true` is set.
 *
 * `MIGRATOR_LAMBDA_ZIP` may point at another zip (e.g. a CI artifact).
 */
export function migratorLambdaCode(zipPath: string = process.env.MIGRATOR_LAMBDA_ZIP ?? PACKAGED_ZIP): lambda.Code {
  if (fs.existsSync(zipPath)) {
    return lambda.Code.fromAsset(zipPath);
  }
  return lambda.Code.fromAsset(PLACEHOLDER_DIR);
}

/** True when synth would use the placeholder. */
export function usesPlaceholder(zipPath: string = process.env.MIGRATOR_LAMBDA_ZIP ?? PACKAGED_ZIP): boolean {
  return !fs.existsSync(zipPath);
}

/** Exclusions of the Docker build context (the repository root). */
export const DOCKER_CONTEXT_EXCLUDE = [
  '.git',
  'target',
  'infra',
  '**/node_modules',
  '**/cdk.out',
  '**/.venv',
  'examples/**/node_modules',
  '.ci',
];

/**
 * The ECS image: `functions/migrator/Dockerfile` with the repository root as context
 * (staged at synth, built only by `cdk deploy`). Docker would only read <root>/.dockerignore,
 * so the exclusions that keep the staged context small live here.
 */
export function migratorContainerImage(): ecs.ContainerImage {
  return ecs.ContainerImage.fromAsset(REPO_ROOT, {
    file: path.join('functions', 'migrator', 'Dockerfile'),
    exclude: DOCKER_CONTEXT_EXCLUDE,
    ignoreMode: IgnoreMode.DOCKER,
  });
}
