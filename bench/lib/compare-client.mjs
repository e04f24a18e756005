/**
 * Builds bench/compare-client (go-spiffe v2, pinned go.mod/go.sum, -mod=readonly) into
 * bench/.cache, rebuilt only when its sources or the Go version change.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './common.mjs';

export function compareClient() {
  const src = join(REPO, 'bench/compare-client');
  const out = join(REPO, 'bench/.cache/compare-client');
  const env = { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=readonly -buildvcs=false', CGO_ENABLED: '0' };
  const h = createHash('sha256').update(execFileSync('go', ['env', 'GOVERSION'], { env }));
  for (const f of readdirSync(src).sort()) if (/\.(go|mod|sum)$/.test(f)) h.update(f).update(readFileSync(join(src, f)));
  const want = h.digest('hex');
  if (existsSync(out) && existsSync(`${out}.stamp`) && readFileSync(`${out}.stamp`, 'utf8') === want) return out;
  console.log('bench: building bench/compare-client (go-spiffe v2, -mod=readonly)');
  mkdirSync(join(REPO, 'bench/.cache'), { recursive: true });
  execFileSync('go', ['build', '-trimpath', '-o', out, '.'], { cwd: src, stdio: 'inherit', env });
  writeFileSync(`${out}.stamp`, want);
  return out;
}
