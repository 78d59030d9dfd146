#!/usr/bin/env bash
# The construct as a platform team installs it (offline):
#   npm pack (prepack builds dist/: JS + .d.ts) → a copy of examples/consumer/ in a temporary
#   directory → npm ci of the tarball and the app's dependencies from the npm cache (lock
#   derived from infra's) → tsc over its two-stage app and the README's usage snippet
#   (<!-- usage:start --> … <!-- usage:end -->) against the package's types → synth of CODE
#   and PROD → a few checks on the two templates.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_node_modules

work=$(mktemp -d "${TMPDIR:-/tmp}/migrator-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT

log "npm pack (builds dist/)"
tarball=$(npm pack --silent --pack-destination "$work" | tail -1)
tar -tzf "$work/$tarball" | sed 's#^package/##' | sort > "$work/contents.txt"
for must in dist/index.js dist/index.d.ts dist/lib/prisma-migrator.d.ts README.md CHANGELOG.md package.json; do
  grep -qx "$must" "$work/contents.txt" || { echo "consumer: $must is missing from $tarball" >&2; exit 1; }
done
if grep -Eq '^(lib|test|bin|examples)/|example-stack|variants|code\.js' "$work/contents.txt"; then
  echo "consumer: $tarball holds more than the library:" >&2; cat "$work/contents.txt" >&2; exit 1
fi
echo "$tarball: $(wc -l < "$work/contents.txt") files"

consumer="$work/consumer"
mkdir -p "$consumer"
cp examples/consumer/package.json examples/consumer/tsconfig.json examples/consumer/app.ts "$consumer/"
awk '/<!-- usage:end -->/{f=0} f && !/^```/{print} /<!-- usage:start -->/{f=1}' README.md > "$consumer/readme-snippet.ts"
grep -q 'new PrismaMigrator(' "$consumer/readme-snippet.ts" || { echo "consumer: no usage snippet in README.md" >&2; exit 1; }
node scripts/consumer-lock.js "$consumer" "$work/$tarball"

log "consumer: npm ci --offline ($tarball and its peers from the npm cache)"
(cd "$consumer" && npm ci --offline --no-audit --no-fund --loglevel=error)

log "consumer: tsc (app.ts, readme-snippet.ts) and synth"
(cd "$consumer" && ./node_modules/.bin/tsc -p . && CONSUMER_OUTDIR="$consumer/cdk.out" node dist/app.js)

node - "$consumer/cdk.out" <<'JS'
const fs = require('node:fs');
const path = require('node:path');
const out = process.argv[2];
const load = (stage) => JSON.parse(fs.readFileSync(path.join(out, `Orders-Migrations-${stage}.template.json`), 'utf8'));
const fail = (msg) => { console.error(`consumer: ${msg}`); process.exit(1); };
for (const [stage, autoApply] of [['CODE', 'true'], ['PROD', 'false']]) {
  const r = Object.values(load(stage).Resources);
  const fn = r.find((x) => x.Type === 'AWS::Lambda::Function' && x.Properties.Runtime === 'provided.al2023');
  if (!fn) fail(`${stage}: no migrator function`);
  if (fn.Properties.Environment.Variables.AUTO_APPLY !== autoApply) fail(`${stage}: AUTO_APPLY is not ${autoApply}`);
  const allow = r.filter((x) => x.Type === 'AWS::S3::BucketPolicy').flatMap((p) => p.Properties.PolicyDocument.Statement).find((s) => s.Sid === 'UploadersWriteTheArtifact');
  if (!allow || allow.Principal.AWS !== 'arn:aws:iam::210987654321:role/orders-ci') fail(`${stage}: the tooling account's CI is not allowed to upload`);
  const invoke = r.find((x) => x.Type === 'AWS::Lambda::Permission' && x.Properties.Principal === 'arn:aws:iam::210987654321:role/orders-migration-approvers');
  if (!invoke) fail(`${stage}: the tooling account's approvers may not invoke`);
  if (r.some((x) => x.Type === 'AWS::EC2::SecurityGroupIngress' && typeof x.Properties.GroupId === 'string')) fail(`${stage}: an ingress rule on the imported database security group`);
  console.log(`consumer: Orders-Migrations-${stage}: ${r.length} resources, AUTO_APPLY=${autoApply}, cross-account upload and invoke`);
}
JS
# The templates, for cfn-lint in scripts/test.sh (synthesized without this repository's cdk.json flags).
rm -rf cdk.out.consumer && mkdir -p cdk.out.consumer && cp "$consumer"/cdk.out/*.template.json cdk.out.consumer/
