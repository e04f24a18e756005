/**
 * Runs every benchmark in turn (`npm run bench`). Each prints its own numbers, and a
 * ratio against spire-agent when SPIRE_AGENT_BIN (+ SPIRE_AGENT_CONF) is set.
 * Each benchmark also runs alone: `node bench/<name>.mjs` (after `npm run build`).
 */
import { cpus } from 'node:os';
import { entries as e1, run as firstSvid } from './first-svid.mjs';
import { entries as e2, run as idleRss } from './idle-rss.mjs';
import { entries as e3, run as attestation } from './attestation.mjs';
import { entries as e4, run as rotationLoad } from './rotation-load.mjs';
import { run as reattest } from './reattest.mjs';
import { run as startup } from './startup.mjs';
import { run as serverMode } from './server-mode.mjs';
import { run as compare } from './compare.mjs';
import { run as parseBounds } from './parse-bounds.mjs';
import { run as daemonBounds } from './daemon-bounds.mjs';
import { runtimeLine, spireEntryCommands } from './lib/common.mjs';

if (process.argv.includes('--print-spire-entries')) {
  // Every entry the benchmarks use, once, as commands for the SPIRE server spire-agent talks to.
  const seen = new Map();
  for (const e of [...e1, ...e2, ...e3, ...e4]) seen.set(e.spiffe_id, e);
  console.log('# AGENT_ID: the SPIFFE ID of the spire-agent under test (spire-server agent list)');
  for (const line of spireEntryCommands([...seen.values()])) console.log(line);
  process.exit(0);
}

if (process.getuid?.() !== 0) {
  console.error('bench: must run as root (client processes are spawned under test uids)');
  process.exit(2);
}
const started = new Date();
console.log(`spiffe-agent benchmarks — ${started.toISOString()} — ${runtimeLine()}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'})`);
console.log(process.env.SPIRE_AGENT_BIN ? `spire-agent: ${process.env.SPIRE_AGENT_BIN} with ${process.env.SPIRE_AGENT_CONF}` : 'spire-agent: not set');
const only = process.argv.slice(2);
const all = { startup, 'first-svid': firstSvid, 'idle-rss': idleRss, attestation, 'rotation-load': rotationLoad, reattest, 'parse-bounds': parseBounds, 'daemon-bounds': daemonBounds, 'server-mode': serverMode, compare };
let failed = 0;
for (const [name, fn] of Object.entries(all)) {
  if (only.length && !only.includes(name)) continue;
  try {
    await fn();
  } catch (e) {
    failed++;
    console.error(`\n${name}: FAILED: ${e instanceof Error ? e.stack : e}`);
  }
}
console.log(`\nbench: done in ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s${failed ? `, ${failed} failed` : ''}`);
process.exit(failed ? 1 : 0);
