/**
 * Cost of live re-attestation (a spiffe-agent feature spire-agent does not have, so
 * there is no ratio): 200 open FetchX509SVID streams from 4 processes, the agent's CPU
 * per second measured with re-attestation every 1 s and with it off, with and without
 * discover_workload_path (unix:path and unix:sha256; the hash is cached by inode).
 * The difference divided by (streams × re-attestations per second) is the cost of one
 * re-attestation of one stream.
 */
import { closeStreams, cpuMs, f, isMain, openStreams, sleep, startOurs, uidEntry, runtimeLine } from './lib/common.mjs';

const UIDS = [1321, 1322, 1323, 1324];
const STREAMS = 200;
const WINDOW_MS = Number(process.env.BENCH_REATTEST_WINDOW_MS ?? 8_000);
const entries = UIDS.map((u) => uidEntry(`/bench/reattest-${u}`, u, { x509_svid_ttl: 3600 }));

async function cpuPerSecond(interval, discover) {
  const agent = await startOurs({
    entries,
    agent: `reattest_interval = "${interval}"`,
    unixPluginData: discover ? 'discover_workload_path = true' : '',
  });
  try {
    const kids = await openStreams(agent.socketPath, UIDS, STREAMS);
    try {
      await sleep(1_500); // let start-up work settle
      const c0 = cpuMs(agent.pid);
      const t0 = Date.now();
      await sleep(WINDOW_MS);
      return (cpuMs(agent.pid) - c0) / ((Date.now() - t0) / 1000);
    } finally {
      await closeStreams(kids);
    }
  } finally {
    await agent.stop();
  }
}

export async function run() {
  console.log(`\n### reattest: ${STREAMS} open streams, agent CPU over ${WINDOW_MS / 1000} s (spiffe-agent only: spire-agent does not re-attest open streams) — ${runtimeLine()}`);
  for (const discover of [false, true]) {
    const off = await cpuPerSecond('0s', discover);
    const on = await cpuPerSecond('1s', discover);
    const perStream = (on - off) / STREAMS; // ms of CPU per re-attestation of one stream (1 per second each)
    const label = discover ? 'unix with discover_workload_path' : 'unix';
    console.log(`  ${label.padEnd(34)} CPU off ${f(off)} ms/s, every 1 s ${f(on)} ms/s → ${f(perStream, 3)} ms per stream re-attestation`);
    console.log(`  ${''.padEnd(34)} at the default 30 s interval: ${f((perStream * STREAMS) / 30)} ms/s for ${STREAMS} streams`);
  }
}

if (isMain(import.meta.url)) await run();
