/**
 * Workload attestation cost:
 *  - the unix attestor's attest(pid) called in this process on a real process
 *    (a Node child under uid 1201), 1,000 times, without and with
 *    discover_workload_path (path + sha256 of the binary; the hash is cached by
 *    inode/size/mtime after the first, which is reported on its own);
 *  - the whole FetchJWTSVID round trip through the agent (peer credentials,
 *    attestation, entry match, JWT-SVID from cache after the first), 1,000 calls
 *    from one client connection in this process.
 * attest(pid) is in-process code, so it has no spire-agent counterpart; the RPC has.
 */
import { spawn } from 'node:child_process';
import { UnixAttestor } from '../dist/src/attestation/workload/unix/index.js';
import { ProcReader } from '../dist/src/proc/proc-reader.js';
import { WorkloadAPIClient } from '../dist/src/sdk/index.js';
import { forEachTarget, isMain, pct, report, sleep, spireNotice, uidEntry, runtimeLine } from './lib/common.mjs';

const N = 1000;
export const entries = [uidEntry('/bench/root', 0)];

async function timeAttest(attestor, pid) {
  const signal = new AbortController().signal;
  const xs = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    await attestor.attest(pid, signal);
    xs.push(performance.now() - t0);
  }
  return xs;
}

async function attestorBench() {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { uid: 1201, gid: 1201, stdio: 'ignore' });
  await sleep(300);
  try {
    const proc = new ProcReader('/proc');
    const plain = new UnixAttestor({ discoverWorkloadPath: false, workloadSizeLimit: 0 }, proc);
    const withPath = new UnixAttestor({ discoverWorkloadPath: true, workloadSizeLimit: 0 }, proc);
    const sel = await plain.attest(child.pid, new AbortController().signal);
    const t0 = performance.now();
    const selPath = await withPath.attest(child.pid, new AbortController().signal);
    const firstHashMs = performance.now() - t0;
    const a = await timeAttest(plain, child.pid);
    const b = await timeAttest(withPath, child.pid);
    console.log(`  attested pid ${child.pid} (${process.execPath}): ${sel.length} selectors; with path: ${selPath.length} selectors`);
    return {
      'attest(pid) p50': pct(a, 50),
      'attest(pid) p99': pct(a, 99),
      'attest(pid) +discover_workload_path p50': pct(b, 50),
      'attest(pid) +discover_workload_path p99': pct(b, 99),
      'attest(pid) +discover_workload_path, first (hash)': firstHashMs,
    };
  } finally {
    child.kill('SIGKILL');
  }
}

export async function run() {
  console.log(`\n### attestation: unix attest(pid) in-process and FetchJWTSVID round trip, N=${N} — ${runtimeLine()}`);
  spireNotice();
  const ours = await attestorBench();
  report('attestation: unix attestor attest(pid), in-process (no spire-agent counterpart)', { 'spiffe-agent': ours }, 'ms');
  const rpc = await forEachTarget({ entries }, async (agent) => {
    const client = new WorkloadAPIClient({ address: `unix://${agent.socketPath}` });
    try {
      const first0 = performance.now();
      await client.fetchRawJWTSVID({ audience: ['bench'] });
      const firstMs = performance.now() - first0;
      const xs = [];
      for (let i = 0; i < N; i++) {
        const t0 = performance.now();
        await client.fetchRawJWTSVID({ audience: ['bench'] });
        xs.push(performance.now() - t0);
      }
      return { 'FetchJWTSVID round trip p50': pct(xs, 50), 'FetchJWTSVID round trip p99': pct(xs, 99), 'FetchJWTSVID first call (signs)': firstMs };
    } finally {
      client.close();
    }
  });
  report('attestation: FetchJWTSVID RPC round trip (one connection, in-process client)', rpc, 'ms');
  return { attest: ours, rpc };
}

if (isMain(import.meta.url)) await run();
