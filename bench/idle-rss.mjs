/**
 * Resident memory (VmRSS) of the agent: idle after start, after 100 distinct workloads
 * (100 uids, 100 entries) each fetched their X.509-SVID once, and while 200
 * FetchX509SVID streams are open (4 client processes × 50 streams, each process
 * under its own entry's uid).
 */
import { forEachTarget, isMain, openStreams, closeStreams, report, rssKiB, sleep, spawnClient, spireNotice, uidEntry, runtimeLine } from './lib/common.mjs';

const WORKLOADS = 100;
const WL_BASE = 1400;
const STREAM_UIDS = [1301, 1302, 1303, 1304];
const STREAMS = 200;
const SETTLE_MS = 2000;

export const entries = [
  ...Array.from({ length: WORKLOADS }, (_, i) => uidEntry(`/bench/wl-${WL_BASE + i}`, WL_BASE + i)),
  ...STREAM_UIDS.map((u) => uidEntry(`/bench/stream-${u}`, u)),
];

async function fetchOnce(socketPath, uid) {
  const c = spawnClient('fetch-once.mjs', [socketPath], { uid, gid: uid });
  const r = await c.exited;
  if (r.code !== 0) throw new Error(`fetch as uid ${uid} failed: ${r.stderr.trim()}`);
}

/** RSS after letting the agent settle (GC and timers), in MiB. */
async function settledRss(pid) {
  await sleep(SETTLE_MS);
  return (await rssKiB(pid)) / 1024;
}

export async function run() {
  console.log(`\n### idle-rss: VmRSS of the agent process (settled ${SETTLE_MS} ms before each reading) — ${runtimeLine()}`);
  spireNotice();
  const results = await forEachTarget({ entries }, async (agent) => {
    const m = {};
    m['after start'] = await settledRss(agent.pid);
    const PAR = 4;
    for (let i = 0; i < WORKLOADS; i += PAR) {
      await Promise.all(Array.from({ length: Math.min(PAR, WORKLOADS - i) }, (_, k) => fetchOnce(agent.socketPath, WL_BASE + i + k)));
    }
    m[`after ${WORKLOADS} workloads fetched once`] = await settledRss(agent.pid);
    const kids = await openStreams(agent.socketPath, STREAM_UIDS, STREAMS);
    m[`with ${STREAMS} open FetchX509SVID streams`] = await settledRss(agent.pid);
    await closeStreams(kids);
    m['after the streams closed'] = await settledRss(agent.pid);
    return m;
  });
  report('idle-rss', results, 'MiB');
  return results;
}

if (isMain(import.meta.url)) await run();
