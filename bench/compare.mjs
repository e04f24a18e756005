/**
 * spiffe-agent (embedded authority) against spire-agent v1.13.3 (joined to a real spire-server),
 * same machine, same run, same 1,000 registration entries (one `entry create -data` JSON; only
 * parent_id differs: the join-token alias on the server, the embedded authority's own agent ID
 * for ours), driven by one outside client: bench/compare-client (go-spiffe v2 stubs on grpc-go).
 * Entries are keyed by unix:uid; clients run under many uids (so they are distinct workloads).
 *
 * Prints each figure for both agents, the ratio (spiffe-agent / spire-agent) and the 1-minute
 * load average when it was taken:
 *   - 1,000 and 5,000 clients connecting at once: served / refused / other errors, time to all first responses
 *   - connect → first X.509-SVID with 1 and 20 concurrent clients: p50 / p99, throughput
 *   - RSS idle with 1,000 entries, with 1,000 open streams, and across connect-fetch-exit churn
 *   - rotation fan-out to 1,000 open streams (first → last arrival of the rotated SVID)
 *   - agent start → first SVID served (spire-agent: node attestation and first sync included)
 * `npm run bench` runs it with no environment. BENCH_SMOKE=1 is a short pass (CI); BENCH_CHURN_MIN
 * sets the churn duration (default 2 min per agent); BENCH_AGENT_PROF=<dir> profiles our agent
 * (--cpu-prof, --heap-prof); BENCH_RESULTS=<file> also writes the figures as JSON.
 * Runs as root: clients run under uids 30000-30999 (no passwd entries needed).
 */
import { spawn } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { agentCommand, cpuMs, f, isMain, pct, rssAnonKiB, rssKiB, sleep, runtimeLine, spawnLogged } from './lib/common.mjs';
import { TD, agentConf, clientCopy, spireBins, startServer } from './lib/spire.mjs';
import { compareClient } from './lib/compare-client.mjs';

const UID0 = 30_000;
const KINDS = ['spire-agent', 'spiffe-agent'];
const OUR_PARENT = `spiffe://${TD}/spire/agent/local`;

/** BENCH_ONLY=idle,streams,rotation,seq,churn,burst runs just those parts (start → first SVID always runs). */
function wanted(part) {
  const only = process.env.BENCH_ONLY?.split(',').map((x) => x.trim()).filter(Boolean);
  return !only?.length || only.includes(part);
}

function settings() {
  const smoke = process.env.BENCH_SMOKE === '1';
  const churnMin = Number(process.env.BENCH_CHURN_MIN ?? 2);
  return smoke
    ? { smoke, entries: 50, procs: 5, bursts: [50, 100], seq1: 5, seq20: 20, hold: 50, rotate: 50, churnMs: 5000, settleMs: 2000 }
    : { smoke, entries: 1000, procs: 20, bursts: [1000, 5000], seq1: 200, seq20: 1000, hold: 1000, rotate: 1000, churnMs: churnMin * 60_000, settleMs: 5000 };
}

/** The one `entry create -data` document; entry i is uid UID0+i; the last one has a 20 s X.509-SVID TTL (rotation). */
export function entriesDoc(n, parent) {
  const entries = [];
  for (let i = 0; i < n; i++) {
    const e = { spiffe_id: `spiffe://${TD}/bench/w${i}`, parent_id: parent, selectors: [{ type: 'unix', value: `uid:${UID0 + i}` }] };
    if (i === n - 1) e.x509_svid_ttl = 20;
    entries.push(e);
  }
  return { entries };
}

const load1 = () => loadavg()[0];

/** Runs the client as `uid`; resolves with its JSON lines. */
export function client(bin, socketPath, uid, args, timeoutMs = 300_000) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, {
      uid,
      gid: uid,
      cwd: '/',
      env: { SPIFFE_ENDPOINT_SOCKET: `unix://${socketPath}`, PATH: '/usr/bin:/bin' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (err += c));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', reject);
    p.once('close', (code) => {
      clearTimeout(t);
      const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
      resolve({ code, lines, stderr: err });
    });
  });
}

/** Holders: `procs` processes × per streams; resolves once all are ready, with their arrival events. */
async function holdStreams(bin, socketPath, uids, per, timeoutMs = 180_000) {
  const events = [];
  const errors = {};
  const procs = uids.map((uid, p) => {
    const child = spawn(bin, ['hold', '-n', String(per), '-timeout', '120s'], {
      uid,
      gid: uid,
      cwd: '/',
      env: { SPIFFE_ENDPOINT_SOCKET: `unix://${socketPath}`, PATH: '/usr/bin:/bin' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let buf = '';
    let onReady;
    child.ready = new Promise((r) => (onReady = r));
    child.stdout.on('data', (c) => {
      buf += c;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const j = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        if (j.ready) {
          for (const [k, v] of Object.entries(j.errors ?? {})) errors[k] = (errors[k] ?? 0) + v;
          onReady(j.ms.length);
        } else if (j.error) errors[j.error] = (errors[j.error] ?? 0) + 1;
        else events.push({ stream: `${p}/${j.i}`, t: j.t, serial: j.serial });
      }
    });
    child.exited = new Promise((r) => child.once('close', r));
    return child;
  });
  let timer;
  const served = await Promise.race([
    Promise.all(procs.map((c) => c.ready)),
    new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`streams not all open within ${timeoutMs} ms`)), timeoutMs))),
  ]).finally(() => clearTimeout(timer));
  return {
    served: served.reduce((a, b) => a + b, 0),
    errors,
    events,
    async close() {
      for (const c of procs) c.stdin.end();
      const t = setTimeout(() => procs.forEach((c) => c.kill('SIGKILL')), 10_000);
      await Promise.all(procs.map((c) => c.exited));
      clearTimeout(t);
    },
  };
}

/** Our daemon on the embedded authority, with the same entries (parent = its own agent ID). */
export async function ourConf(doc) {
  const dir = await mkdtemp('/tmp/spiffe-agent-compare-');
  await chmod(dir, 0o755);
  await mkdir(join(dir, 'data'), { mode: 0o700 });
  await mkdir(join(dir, 'public'), { mode: 0o755 });
  const socketPath = join(dir, 'public', 'api.sock');
  await writeFile(join(dir, 'entries.json'), JSON.stringify(doc));
  const confPath = join(dir, 'agent.conf');
  await writeFile(
    confPath,
    `agent {
    data_dir = "${dir}/data"
    log_level = "INFO"
    socket_path = "${socketPath}"
    trust_domain = "${TD}"
}
embedded_authority {
    entries_file = "${dir}/entries.json"
}
plugins {
    WorkloadAttestor "unix" { plugin_data {} }
}
`,
  );
  return { dir, socketPath, confPath };
}

function startAgent(kind, bins, conf) {
  const prof = process.env.BENCH_AGENT_PROF;
  const [cmd, args] =
    kind === 'spire-agent'
      ? [bins.agent, ['run', '-config', conf.confPath]]
      : agentCommand(['run', '-config', conf.confPath], prof ? ['--cpu-prof', '--cpu-prof-dir', prof, '--heap-prof', '--heap-prof-dir', prof] : []);
  return spawnLogged(cmd, args, { cwd: conf.dir });
}

const sum = (o) => Object.values(o ?? {}).reduce((a, b) => a + b, 0);

async function measure(kind, bins, bin, conf, s, r) {
  const put = (metric, v) => (r[metric] = { v, load: load1() });
  const uids = (n) => Array.from({ length: n }, (_, i) => UID0 + i);
  const t0 = performance.timeOrigin + performance.now();
  const agent = startAgent(kind, bins, conf);
  try {
    // Start → first SVID: the client retries from the moment the agent is spawned.
    const first = await client(bin, conf.socketPath, UID0, ['first', '-until', '180s'], 200_000);
    if (first.code !== 0) throw new Error(`${kind}: no first SVID: ${JSON.stringify(first.lines)} ${first.stderr}\n${agent.logs.slice(-10).join('\n')}`);
    put('agent start → first SVID served (ms)', first.lines[0].t - t0);
    // Every entry delivered (spire-agent syncs from the server), then settle.
    const last = await client(bin, conf.socketPath, UID0 + s.entries - 2, ['first', '-until', '180s'], 200_000);
    if (last.code !== 0) throw new Error(`${kind}: entries not all synced: ${JSON.stringify(last.lines)}`);
    await sleep(s.settleMs);
    if (wanted('idle')) {
      put(`RSS idle, ${s.entries} entries (MiB)`, (await rssKiB(agent.pid)) / 1024);
      put(`RSS idle: anonymous part (MiB)`, (await rssAnonKiB(agent.pid)) / 1024);
    }

    if (wanted('streams')) {
      const h = await holdStreams(bin, conf.socketPath, uids(s.procs), Math.ceil(s.hold / s.procs));
      await sleep(s.settleMs);
      put(`RSS with ${s.hold} open streams (MiB)`, (await rssKiB(agent.pid)) / 1024);
      put(`RSS with ${s.hold} open streams: anonymous part (MiB)`, (await rssAnonKiB(agent.pid)) / 1024);
      put(`RSS with ${s.hold} open streams: streams open`, h.served);
      if (sum(h.errors)) console.log(`  ${kind}: open streams: errors ${JSON.stringify(h.errors)}`);
      await h.close();
    }

    if (wanted('rotation')) {
      // Rotation: every stream on the 20 s TTL entry; the first later response on each is the rotated SVID.
      const rotUid = UID0 + s.entries - 1;
      const nProcs = Math.max(1, Math.floor(s.procs / 2));
      const h = await holdStreams(bin, conf.socketPath, Array(nProcs).fill(rotUid), Math.ceil(s.rotate / nProcs));
      const deadline = Date.now() + 60_000;
      const firstBy = () => {
        const m = new Map();
        for (const e of h.events) if (!m.has(e.stream)) m.set(e.stream, e.t);
        return m;
      };
      while (firstBy().size < h.served && Date.now() < deadline) await sleep(250);
      await sleep(1000);
      const ts = [...firstBy().values()];
      put(`rotation to ${s.rotate} streams: streams open`, h.served);
      put(`rotation to ${s.rotate} streams: streams reached`, ts.length);
      put(`rotation to ${s.rotate} streams: spread first → last (ms)`, ts.length ? Math.max(...ts) - Math.min(...ts) : NaN);
      put(`rotation to ${s.rotate} streams: errors`, sum(h.errors));
      await h.close();
    }

    for (const [c, n] of wanted('seq') ? [[1, s.seq1], [20, s.seq20]] : []) {
      const cpu0 = cpuMs(agent.pid);
      const q = await client(bin, conf.socketPath, UID0, ['seq', '-n', String(n), '-c', String(c)]);
      const cpu = cpuMs(agent.pid) - cpu0;
      const ms = q.lines[0].ms;
      put(`connect → first SVID, ${c} concurrent: p50 (ms)`, pct(ms, 50));
      put(`connect → first SVID, ${c} concurrent: p99 (ms)`, pct(ms, 99));
      put(`connect → first SVID, ${c} concurrent: throughput (/s)`, (ms.length * 1000) / q.lines[0].wallMs);
      put(`connect → first SVID, ${c} concurrent: errors`, n - ms.length);
      // The agent's own CPU (utime+stime, 10 ms ticks) per connection: steadier than latency on a shared machine.
      put(`connect → first SVID, ${c} concurrent: agent CPU per connection (ms)`, cpu / n);
    }

    if (wanted('churn')) {
      // Churn: 4 loops of connect, fetch, exit (a new process each time) across 100 uids, bounded in time.
      const before = (await rssKiB(agent.pid)) / 1024;
      let peak = before;
      let runs = 0;
      let fails = 0;
      const end = Date.now() + s.churnMs;
      const loop = async (w) => {
        for (let k = 0; Date.now() < end; k++) {
          const x = await client(bin, conf.socketPath, UID0 + ((w * 25 + k) % Math.min(100, s.entries - 1)), ['first', '-until', '5s'], 20_000);
          runs++;
          if (x.code !== 0) fails++;
        }
      };
      const sampler = setInterval(async () => (peak = Math.max(peak, (await rssKiB(agent.pid).catch(() => 0)) / 1024)), 1000);
      await Promise.all([0, 1, 2, 3].map(loop));
      clearInterval(sampler);
      await sleep(s.settleMs);
      const after = (await rssKiB(agent.pid)) / 1024;
      const min = s.churnMs / 60_000;
      put(`churn ${f(min, 1)} min: RSS before (MiB)`, before);
      put(`churn ${f(min, 1)} min: RSS after (MiB)`, after);
      put(`churn ${f(min, 1)} min: RSS peak (MiB)`, peak);
      put(`churn ${f(min, 1)} min: clients run`, runs);
      put(`churn ${f(min, 1)} min: failed`, fails);
    }
    for (const n of wanted('burst') ? s.bursts : []) {
      const per = Math.ceil(n / s.procs);
      const at = Date.now() + 1500 + s.procs * 20; // every process is waiting before the burst starts
      const cpu0 = cpuMs(agent.pid);
      const res = await Promise.all(uids(s.procs).map((uid) => client(bin, conf.socketPath, uid, ['burst', '-n', String(per), '-at', String(at), '-timeout', '60s'])));
      const cpu = cpuMs(agent.pid) - cpu0;
      const ms = res.flatMap((x) => x.lines[0]?.ms ?? []);
      const errs = {};
      for (const x of res) for (const [k, v] of Object.entries(x.lines[0] ? (x.lines[0].errors ?? {}) : { [`client exit ${x.code}: ${x.stderr.slice(0, 80)}`]: per })) errs[k] = (errs[k] ?? 0) + v;
      const refused = errs.refused ?? 0;
      put(`${n} at once: served`, ms.length);
      put(`${n} at once: refused`, refused);
      put(`${n} at once: other errors`, sum(errs) - refused);
      put(`${n} at once: all first responses (ms)`, ms.length ? Math.max(...ms) : NaN);
      put(`${n} at once: first responses p50 (ms)`, pct(ms, 50));
      put(`${n} at once: agent CPU (ms)`, cpu);
      if (sum(errs)) console.log(`  ${kind}: ${n} at once: errors ${JSON.stringify(errs)}`);
      await sleep(2000);
    }

    if (agent.exitCode !== null) throw new Error(`${kind} exited during the bench:\n${agent.logs.slice(-20).join('\n')}`);
  } finally {
    await agent.stop();
  }
}

function printTable(s, results) {
  console.log(`\n== compare: spire-agent v1.13.3 vs spiffe-agent ${s.smoke ? '(BENCH_SMOKE=1: small numbers, not comparable)' : ''}`);
  const a = results['spiffe-agent'];
  const b = results['spire-agent'];
  const metrics = [...new Set([...Object.keys(b), ...Object.keys(a)])];
  console.log(`  ${'measure'.padEnd(58)} ${'spire-agent'.padStart(12)} ${'(load)'.padStart(6)} ${'spiffe-agent'.padStart(12)} ${'(load)'.padStart(6)}  ratio`);
  for (const m of metrics) {
    const x = a[m];
    const y = b[m];
    const ratio = x && y && Number.isFinite(x.v) && Number.isFinite(y.v) && y.v > 0 ? f(x.v / y.v) : 'n/a';
    console.log(`  ${m.padEnd(58)} ${f(y?.v).padStart(12)} ${f(y?.load, 1).padStart(6)} ${f(x?.v).padStart(12)} ${f(x?.load, 1).padStart(6)}  ${ratio}`);
  }
}

export async function run() {
  const s = settings();
  if (process.getuid?.() !== 0) throw new Error('compare: must run as root (clients run under test uids)');
  const [l1, l5, l15] = loadavg();
  console.log(`\n### compare: spire-agent v1.13.3 and spiffe-agent side by side ${s.smoke ? '(BENCH_SMOKE=1)' : ''}`);
  console.log(`  ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average ${f(l1)} / ${f(l5)} / ${f(l15)} at start, ${runtimeLine()}`);
  if (l1 > cpus().length) console.log(`  WARNING: load average ${f(l1)} exceeds the ${cpus().length} cores; other work competes with both agents, numbers are noisy (compare ratios, not absolutes)`);
  const bins = spireBins();
  const bin = await clientCopy(compareClient());
  const server = await startServer(bins);
  const results = { 'spire-agent': {}, 'spiffe-agent': {} };
  const confs = [];
  let failed = false;
  try {
    const alias = `spiffe://${TD}/node/compare-spire-agent`;
    const token = await server.token(alias);
    await server.createEntries(entriesDoc(s.entries, alias).entries);
    const spireConf = await agentConf(server, token, 'compare');
    const oursConf = await ourConf(entriesDoc(s.entries, OUR_PARENT));
    confs.push(spireConf, oursConf);
    console.log(`  spire-server on 127.0.0.1:${server.port}; ${s.entries} entries on each agent`);
    const kinds = process.env.BENCH_AGENTS ? KINDS.filter((k) => process.env.BENCH_AGENTS.split(',').includes(k)) : KINDS;
    for (const kind of kinds) {
      try {
        await measure(kind, bins, bin.path, kind === 'spire-agent' ? spireConf : oursConf, s, results[kind]);
      } catch (e) {
        failed = true;
        console.error(`compare: ${kind}: ${e instanceof Error ? e.stack : e}`);
      }
    }
  } finally {
    await server.stop();
    for (const c of confs) await rm(c.dir, { recursive: true, force: true });
    await rm(bin.dir, { recursive: true, force: true });
  }
  printTable(s, results);
  if (process.env.BENCH_RESULTS) await writeFile(process.env.BENCH_RESULTS, JSON.stringify(results, null, 1));
  const [e1] = loadavg();
  console.log(`  load average at the end ${f(e1)}${e1 > cpus().length ? ' (high: treat ratios near 1 as noise)' : ''}`);
  if (failed) throw new Error('compare: an agent failed (see above)');
  return results;
}

if (isMain(import.meta.url)) {
  try {
    await run();
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  }
}
