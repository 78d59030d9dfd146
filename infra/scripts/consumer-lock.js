#!/usr/bin/env node
/**
 * Writes <consumer>/package-lock.json from infra/package-lock.json: the consumer's dependencies
 * (which must be the versions infra locks) and everything they need, so that `npm ci --offline`
 * installs them from the npm cache infra's own `npm ci` filled — no registry metadata needed.
 * With a tarball (`npm pack` of this package), it also becomes a dependency of the consumer
 * (its package.json in <consumer dir> is rewritten) locked by its sha512.
 * Usage: node scripts/consumer-lock.js <consumer dir> [<tarball>]
 */
const fs = require('node:fs');
const path = require('node:path');

const crypto = require('node:crypto');

const [consumerDir, tarball] = process.argv.slice(2);
const infraLock = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package-lock.json'), 'utf8'));
const infraPkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
const pkg = JSON.parse(fs.readFileSync(path.join(consumerDir, 'package.json'), 'utf8'));
const all = infraLock.packages;

/** Where npm would find `name` from the package at `from` (nested node_modules first, then up). */
function resolve(from, name) {
  let dir = from;
  for (;;) {
    const candidate = dir ? `${dir}/node_modules/${name}` : `node_modules/${name}`;
    if (all[candidate]) return candidate;
    if (!dir) return undefined;
    const up = dir.lastIndexOf('/node_modules/');
    dir = up < 0 ? '' : dir.slice(0, up);
  }
}

const packages = {};
const queue = [];
const rootDeps = { ...pkg.dependencies, ...pkg.devDependencies };
for (const [name, version] of Object.entries(rootDeps)) {
  const at = resolve('', name);
  if (!at || all[at].version !== version) {
    console.error(`consumer-lock: ${name}@${version} is not what infra/package-lock.json locks (${at ? all[at].version : 'absent'})`);
    process.exit(1);
  }
  queue.push(at);
}
while (queue.length) {
  const at = queue.shift();
  if (packages[at]) continue;
  const { dev, devOptional, peer, ...entry } = all[at];
  packages[at] = entry;
  const optionalPeers = entry.peerDependenciesMeta ?? {};
  const needs = [
    ...Object.keys(entry.dependencies ?? {}),
    ...Object.keys(entry.optionalDependencies ?? {}),
    ...Object.keys(entry.peerDependencies ?? {}).filter((n) => !optionalPeers[n]?.optional),
  ];
  for (const name of needs) {
    const dep = resolve(at, name);
    if (dep) queue.push(dep);
    else if (!(entry.optionalDependencies ?? {})[name]) {
      console.error(`consumer-lock: ${at} needs ${name}, which infra/package-lock.json does not hold`);
      process.exit(1);
    }
  }
}
let library = {};
if (tarball) {
  const spec = `file:${path.relative(consumerDir, path.resolve(tarball))}`;
  pkg.dependencies = { [infraPkg.name]: spec, ...pkg.dependencies };
  fs.writeFileSync(path.join(consumerDir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  const integrity = `sha512-${crypto.createHash('sha512').update(fs.readFileSync(tarball)).digest('base64')}`;
  library = {
    [`node_modules/${infraPkg.name}`]: {
      version: infraPkg.version,
      resolved: spec,
      integrity,
      license: infraPkg.license,
      engines: infraPkg.engines,
      peerDependencies: infraPkg.peerDependencies,
    },
  };
}
const lock = {
  name: pkg.name,
  version: pkg.version,
  lockfileVersion: 3,
  requires: true,
  packages: {
    '': { name: pkg.name, version: pkg.version, license: pkg.license, dependencies: pkg.dependencies, devDependencies: pkg.devDependencies },
    ...Object.fromEntries(Object.entries({ ...packages, ...library }).sort(([a], [b]) => a.localeCompare(b))),
  },
};
fs.writeFileSync(path.join(consumerDir, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
console.log(`consumer-lock: ${Object.keys(packages).length} packages from infra/package-lock.json`);
