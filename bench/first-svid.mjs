/**
 * Time from connect to the first X.509-SVID response, p50/p99 over N runs:
 *  - a fresh client process under a uid with an entry, (a) SVID already cached (warm)
 *    and (b) an entry never signed before (first-time signing: key, CSR, signature);
 *  - the same with the client inside this process (no Node start-up), to separate
 *    the agent's cost from the client process's.
 * For spawned clients two numbers: connect→SVID measured inside the client, and
 * spawn→SVID seen from outside (includes Node start-up and loading the SDK).
 */
import { WorkloadAPIClient } from '../dist/src/sdk/index.js';
import { forEachTarget, isMain, now, pct, report, spawnClient, spireNotice, uidEntry, waitLog, runtimeLine } from './lib/common.mjs';

const N = Number(process.env.BENCH_FIRST_SVID_N ?? 30);
const WARM = { uid: 1200, gid: 1200 };
const COLD_BASE = 1201;

function fetchInChild(socketPath, ids) {
  const t0 = now();
  let result;
  const child = spawnClient('fetch-once.mjs', [socketPath], ids, (line) => {
    result = { ...JSON.parse(line), totalMs: now() - t0 };
  });
  return child.exited.then(({ code, stderr }) => {
    if (!result) throw new Error(`client as uid ${ids.uid} failed (exit ${code}): ${stderr.trim()}`);
    return result;
  });
}

async function fetchInProcess(socketPath) {
  const client = new WorkloadAPIClient({ address: `unix://${socketPath}` });
  const t0 = performance.now();
  await client.fetchRawX509SVID({ timeoutMs: 20_000 });
  const ms = performance.now() - t0;
  client.close();
  return ms;
}

function entriesFor(extra = []) {
  const e = [uidEntry('/bench/warm', WARM.uid), uidEntry('/bench/root', 0)];
  for (let i = 0; i < N; i++) e.push(uidEntry(`/bench/cold-${COLD_BASE + i}`, COLD_BASE + i));
  return [...e, ...extra];
}

/** The entries this benchmark uses (for `run.mjs --print-spire-entries`). */
export const entries = entriesFor();

export async function run() {
  console.log(`\n### first-svid: connect → first X.509-SVID, N=${N} per case — ${runtimeLine()}`);
  spireNotice();
  const results = await forEachTarget({ entries }, async (agent) => {
    const m = {};
    const warm = [];
    await fetchInChild(agent.socketPath, WARM); // signs and caches the warm entry
    for (let i = 0; i < N; i++) warm.push(await fetchInChild(agent.socketPath, WARM));
    const cold = [];
    for (let i = 0; i < N; i++) cold.push(await fetchInChild(agent.socketPath, { uid: COLD_BASE + i, gid: COLD_BASE + i }));
    await fetchInProcess(agent.socketPath); // warms this process's gRPC and the root entry
    const inWarm = [];
    for (let i = 0; i < N; i++) inWarm.push(await fetchInProcess(agent.socketPath));
    const inCold = [];
    if (agent.canEditEntries) {
      // Each run adds a uid-0 entry never signed before (and drops the previous one).
      const loaded = () => agent.logs.filter((l) => l.includes('Loaded registration entries')).length;
      for (let i = 0; i < N; i++) {
        const before = loaded();
        await agent.writeEntries(entriesFor([uidEntry(`/bench/root-new-${i}`, 0)]).filter((e) => e.spiffe_id !== `spiffe://example.org/bench/root`));
        await waitLog(agent, 'Loaded registration entries', before + 1);
        inCold.push(await fetchInProcess(agent.socketPath));
      }
    }
    for (const [name, xs] of [['(a) warm, spawned', warm], ['(b) first-time signing, spawned', cold]]) {
      m[`${name}: connect→SVID p50`] = pct(xs.map((x) => x.ms), 50);
      m[`${name}: connect→SVID p99`] = pct(xs.map((x) => x.ms), 99);
      m[`${name}: spawn→SVID p50`] = pct(xs.map((x) => x.totalMs), 50);
      m[`${name}: spawn→SVID p99`] = pct(xs.map((x) => x.totalMs), 99);
    }
    m['(a) warm, in-process: connect→SVID p50'] = pct(inWarm, 50);
    m['(a) warm, in-process: connect→SVID p99'] = pct(inWarm, 99);
    m['(b) first-time signing, in-process p50'] = inCold.length ? pct(inCold, 50) : NaN;
    m['(b) first-time signing, in-process p99'] = inCold.length ? pct(inCold, 99) : NaN;
    return m;
  });
  report('first-svid', results, 'ms');
  if (results['spire-agent']) console.log('  (in-process first-time signing needs editable entries; not measured for spire-agent)');
  return results;
}

if (isMain(import.meta.url)) await run();
