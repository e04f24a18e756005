/**
 * Rotation under load: 200 open FetchX509SVID streams (4 client processes × 50 streams,
 * each process under its own uid with its own entry, x509_svid_ttl 10 s, so the agent
 * rotates every ~5 s). For each rotation wave (the k-th new SVID on every stream):
 *  - agent CPU time (utime+stime from /proc/<pid>/stat) in a window around the wave,
 *    less the idle rate with the same streams open;
 *  - spread between the first and the last stream receiving the rotated SVID, per
 *    SVID (streams sharing one entry) and across the whole wave (all four entries).
 */
import { CLK_TCK, closeStreams, cpuMs, f, forEachTarget, isMain, now, openStreams, pct, report, sleep, spireNotice, uidEntry, runtimeLine } from './lib/common.mjs';

const UIDS = [1311, 1312, 1313, 1314];
const STREAMS = 200;
const TTL_S = 10;
const WAVES = Number(process.env.BENCH_ROTATION_WAVES ?? 3);
const PAD_MS = 400;

export const entries = UIDS.map((u) => uidEntry(`/bench/rotating-${u}`, u, { x509_svid_ttl: TTL_S }));

export async function run() {
  console.log(`\n### rotation-load: ${STREAMS} streams, x509_svid_ttl ${TTL_S} s, ${WAVES} rotation waves — ${runtimeLine()}`);
  spireNotice();
  const results = await forEachTarget({ entries }, async (agent) => {
    // per stream ("proc:i"): arrival times of each new SVID key, the first one being the initial SVID
    const streams = new Map();
    const samples = []; // [t, cpuMs]
    const onMsg = ({ proc, i, t, key }) => {
      const id = `${proc}:${i}`;
      let s = streams.get(id);
      if (!s) streams.set(id, (s = { keys: [], times: [] }));
      if (s.keys.at(-1) !== key) {
        s.keys.push(key);
        s.times.push(t);
      }
    };
    const sampler = setInterval(() => samples.push([now(), cpuMs(agent.pid)]), 50);
    const kids = await openStreams(agent.socketPath, UIDS, STREAMS, onMsg);
    const readyAt = now();
    try {
      const deadline = Date.now() + (WAVES + 2) * TTL_S * 1000;
      const done = () => streams.size === STREAMS && [...streams.values()].every((s) => s.times.length > WAVES);
      while (!done() && Date.now() < deadline) await sleep(100);
      await sleep(PAD_MS + 100);
    } finally {
      clearInterval(sampler);
      await closeStreams(kids);
    }
    const all = [...streams.values()];
    const got = Math.min(...all.map((s) => s.times.length - 1));
    if (got < WAVES) console.log(`  warning: only ${got} complete waves observed within the deadline`);
    const cpuAt = (t) => {
      let best = samples[0];
      for (const s of samples) if (s[0] <= t) best = s;
      return best[1];
    };
    // Idle rate: from 0.5 s after the streams were served until 0.5 s before the first rotation.
    const firstRot = Math.min(...all.map((s) => s.times[1] ?? Infinity));
    const idleFrom = readyAt + 500;
    const idleTo = firstRot - 500;
    const idleRate = idleTo > idleFrom ? (cpuAt(idleTo) - cpuAt(idleFrom)) / (idleTo - idleFrom) : 0;
    const cpu = [];
    const waveSpread = [];
    const svidSpread = [];
    for (let k = 1; k <= got; k++) {
      const ts = all.map((s) => s.times[k]);
      const lo = Math.min(...ts);
      const hi = Math.max(...ts);
      waveSpread.push(hi - lo);
      const from = lo - PAD_MS;
      const to = hi + PAD_MS;
      cpu.push(cpuAt(to) - cpuAt(from) - idleRate * (to - from));
      const byKey = new Map();
      for (const s of all) {
        const arr = byKey.get(s.keys[k]) ?? [];
        arr.push(s.times[k]);
        byKey.set(s.keys[k], arr);
      }
      for (const arr of byKey.values()) svidSpread.push(Math.max(...arr) - Math.min(...arr));
    }
    console.log(
      `  ${agent.name}: waves ${got}; CPU per wave ${cpu.map((x) => f(x, 0)).join(', ')} ms; ` +
        `wave spread ${waveSpread.map((x) => f(x, 1)).join(', ')} ms; idle ${f(idleRate * 1000, 1)} ms CPU/s (CLK_TCK granularity ${f(1000 / CLK_TCK, 0)} ms)`,
    );
    return {
      'agent CPU per rotation wave (mean)': cpu.reduce((a, b) => a + b, 0) / cpu.length,
      'agent CPU per rotation wave (max)': Math.max(...cpu),
      'spread first→last stream, per SVID p50': pct(svidSpread, 50),
      'spread first→last stream, per SVID max': Math.max(...svidSpread),
      'spread first→last stream, whole wave max': Math.max(...waveSpread),
      'agent CPU idle, 200 streams open (per second)': idleRate * 1000,
    };
  });
  report('rotation-load', results, 'ms');
  return results;
}

if (isMain(import.meta.url)) await run();
