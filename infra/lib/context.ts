/**
 * Feature flags shared by `bin/app.ts` and the tests, so that what the tests
 * assert is exactly what `cdk synth` produces (tests build their own `App`
 * and would not read cdk.json).
 */
export const APP_CONTEXT: Record<string, unknown> = {
  '@aws-cdk/core:checkSecretUsage': true,
  '@aws-cdk/aws-lambda:recognizeLayerVersion': true,
  '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy': true,
  '@aws-cdk/aws-ecs:arnFormatIncludesClusterName': true,
  '@aws-cdk/aws-events:eventsTargetQueueSameAccount': true,
  '@aws-cdk/aws-rds:preventRenderingDeprecatedCredentials': true,
};
