#!/usr/bin/env node
/**
 * Builds @spiffe-agent/sdk from the repository's one source tree: tsc compiles src/sdk and what it
 * imports (src/svid, src/errors.ts) into dist/, and the Workload API's .proto is copied next to it.
 * Then it checks that nothing else came along: the SDK runs in workloads, so a daemon module in its
 * import graph (which `npm run lint:layers` also refuses) fails the build here, before it ships.
 * Needs the repository's dev dependencies (`npm install` at the root), as any build from source does.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const repo = join(pkg, '..', '..');
const SHIPPED = ['sdk', 'svid', 'errors.js', 'errors.d.ts'];

rmSync(join(pkg, 'dist'), { recursive: true, force: true });
rmSync(join(pkg, 'proto'), { recursive: true, force: true });
const tsc = createRequire(join(repo, 'package.json')).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(pkg, 'tsconfig.json')], { stdio: 'inherit' });

const extra = readdirSync(join(pkg, 'dist')).filter((f) => !SHIPPED.includes(f));
if (extra.length > 0) {
  console.error(`sdk build: src/sdk pulls in ${extra.map((f) => `src/${f}`).join(', ')}; the SDK may import only src/svid and src/errors.ts`);
  process.exit(1);
}

const proto = join(pkg, 'proto', 'spiffe', 'workload');
mkdirSync(proto, { recursive: true });
cpSync(join(repo, 'proto', 'spiffe', 'workload', 'workload.proto'), join(proto, 'workload.proto'));
