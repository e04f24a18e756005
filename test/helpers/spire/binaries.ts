/**
 * Where the real spire-server and spire-agent (v1.13.3, pinned in scripts/spire.sh) are. The
 * server-mode suite needs them; when they are missing it says why, and in CI (CI=true, or
 * SPIRE_REQUIRED=1 as .ci/run sets) it fails instead of skipping, so a broken SPIRE build can never
 * turn into a green run.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inCI } from '../ci.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const SPIRE_SCRIPT = join(REPO, 'scripts/spire.sh');
export const AGENT_MAIN = join(REPO, 'dist/src/cli/main.js');
export const GO_CLIENT_BUILT = join(REPO, 'test/interop/.cache/bin/go-client');

export interface SpireBinaries {
  version: string;
  dir: string;
  server: string;
  agent: string;
}

export interface SpireLookup {
  bins?: SpireBinaries;
  /** Why the binaries are not available, in words a CI log reader can act on. */
  reason?: string;
}

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function fromDir(dir: string, version: string): SpireLookup {
  const server = join(dir, 'spire-server');
  const agent = join(dir, 'spire-agent');
  if (!executable(server) || !executable(agent)) return { reason: `spire-server/spire-agent not found in ${dir}` };
  return { bins: { version, dir, server, agent } };
}

/** Where scripts/spire.sh keeps its binaries; looked at without starting a build. */
function cachedSpire(version: string): SpireLookup {
  const cache = process.env.SPIRE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'spiffe-agent', `spire-${version}`);
  return fromDir(join(cache, 'bin'), version);
}

/**
 * SPIRE when it is already built (SPIRE_BIN_DIR, else scripts/spire.sh's cache), never building it:
 * for unit tests that compare with spire-agent when they can and with a recorded expectation otherwise.
 */
export function builtSpire(): SpireBinaries | undefined {
  const version = spawnSync('bash', [SPIRE_SCRIPT, '--version'], { encoding: 'utf8' }).stdout.trim() || 'v1.13.3';
  const envDir = process.env.SPIRE_BIN_DIR;
  return (envDir ? fromDir(envDir, version) : cachedSpire(version)).bins;
}

/**
 * Order: SPIRE_BIN_DIR (set by .ci/run once its background build is done); SPIRE_BUILD_LOG with no
 * SPIRE_BIN_DIR means the CI build failed (its log tail is the reason); otherwise scripts/spire.sh,
 * which returns at once when the binaries are cached, waits for a build already running, or builds
 * (15-20 min cold). SPIRE_NO_BUILD=1 stops it from starting a build.
 */
export function findSpire(): SpireLookup {
  const version = spawnSync('bash', [SPIRE_SCRIPT, '--version'], { encoding: 'utf8' }).stdout.trim() || 'v1.13.3';
  const envDir = process.env.SPIRE_BIN_DIR;
  if (envDir) return fromDir(envDir, version);
  const log = process.env.SPIRE_BUILD_LOG;
  if (log) {
    const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '(no log)';
    return { reason: `SPIRE ${version} could not be built by scripts/spire.sh; last lines of ${log}:\n${tail}` };
  }
  if (process.env.SPIRE_NO_BUILD === '1') {
    const found = cachedSpire(version);
    return found.bins ? found : { reason: `SPIRE ${version} is not built and SPIRE_NO_BUILD=1; run: bash scripts/spire.sh` };
  }
  const r = spawnSync('bash', [SPIRE_SCRIPT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 45 * 60_000 });
  if (r.status !== 0) {
    return { reason: `SPIRE ${version} could not be built: scripts/spire.sh exited ${r.status ?? r.signal} (its output is above)` };
  }
  const dir = r.stdout.trim().split('\n').pop() ?? '';
  return fromDir(dir, version);
}

export interface SuitePlan {
  bins: SpireBinaries | undefined;
  /** true: skip the file (SPIRE missing outside CI). In CI a missing SPIRE fails instead. */
  skip: boolean;
  reason: string | undefined;
  /** Throws the reason; call it first in beforeAll. */
  require(): SpireBinaries;
}

/** Everything a server-mode test file needs before it starts: SPIRE, root, the build, go-client. */
export function planServerSuite(): SuitePlan {
  const missing: string[] = [];
  if (process.platform !== 'linux') missing.push('Linux');
  if (process.getuid?.() !== 0) missing.push('root (workloads run as uids 1001/1002)');
  if (!existsSync(AGENT_MAIN)) missing.push('dist/src/cli/main.js (run: npm run build)');
  if (!existsSync(GO_CLIENT_BUILT)) missing.push('go-client (run: bash test/interop/setup.sh)');
  const found = missing.length === 0 ? findSpire() : {};
  if (found.reason) missing.push(found.reason);
  const reason = missing.length ? `server-mode interop prerequisites missing: ${missing.join('; ')}` : undefined;
  const required = inCI() || process.env.SPIRE_REQUIRED === '1';
  if (reason && !required) console.warn(`SKIPPED (not in CI; CI=true or SPIRE_REQUIRED=1 makes this a failure): ${reason}`);
  return {
    bins: found.bins,
    skip: reason !== undefined && !required,
    reason,
    require() {
      if (!found.bins || reason) throw new Error(reason ?? 'SPIRE binaries missing');
      return found.bins;
    },
  };
}
