/**
 * Per-connection cost against the Node gRPC floor (issue 19), one thread. The same outside client
 * (bench/compare-client: go-spiffe v2 stubs on grpc-go) drives, in one run:
 *   - floor: bench/lib/floor-server.mjs, a bare grpc-js server answering FetchX509SVID with a canned SVID
 *     (no peer credentials, attestation or audit);
 *   - spiffe-agent, embedded authority, 1,000 entries (one or more builds: BENCH_BUILDS=label=/path/main.js,...;
 *     default: this tree's dist/);
 *   - spire-agent v1.13.3 joined to a spire-server, when scripts/spire.sh has it (BENCH_SPIRE=0 leaves it out).
 * Each round starts every target fresh, in an order that rotates from round to round (the machine is
 * shared: only ratios taken in the same run mean anything), lets 20 uids fetch once (their SVIDs exist
 * before timing, as spire-agent's do), then measures
 *   - burst: 200 connections at once (20 processes × 10), no other warm-up: per s = 200 / last first response;
 *   - 20 concurrent clients over 2,000 connections: p50, per s, agent CPU per connection;
 *   - 1 client over BENCH_SEQ1 (500) connections: p50, per s.
 * Prints each round, then per target the median over rounds and its ratio to the floor (median of the
 * per-round ratios, with their range), the Node version and the load average.
 * BENCH_FLOOR_WORKERS=N adds the floor served from N worker threads (bench/lib/floor-workers.mjs), with
 * and without the caller's kernel identity taken on the accepting thread first ("-id").
 * BENCH_SERVER_CPUS / BENCH_CLIENT_CPUS (taskset lists, e.g. "0" and "1") pin every server (floor, ours,
 * spire-agent, with all their threads) and the clients (this process and its children) to those cores,
 * so a server's rate per core can be read without the clients on its cores; the summary then also
 * prints per-core rates.
 * BENCH_ROUNDS (default 3); BENCH_AGENT_PROF=<dir> runs our agent and the floor with --cpu-prof into <dir>/<label>
 * (read with `node bench/lib/profile-top.mjs <file>`). Runs as root (clients run under uids 30000+).
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LIB, agentCommand, AGENT_MAIN, cpuMs, f, isMain, pct, sleep, spawnLogged } from './lib/common.mjs';
import { TD, agentConf, clientCopy, spireBins, startServer } from './lib/spire.mjs';
import { compareClient } from './lib/compare-client.mjs';
import { client, entriesDoc, ourConf } from './compare.mjs';

const UID0 = 30_000;
const ENTRIES = 1000;
const PROCS = 20;

function settings() {
  return {
    rounds: Number(process.env.BENCH_ROUNDS ?? 3),
    burst: Number(process.env.BENCH_BURST ?? 200),
    seq20: Number(process.env.BENCH_SEQ20 ?? 2000),
    seq1: Number(process.env.BENCH_SEQ1 ?? 500),
  };
}

/** Our builds: BENCH_BUILDS="before=/a/dist/src/cli/main.js,after=/b/dist/src/cli/main.js", or this tree's. */
function builds() {
  const spec = process.env.BENCH_BUILDS;
  if (!spec) return [{ label: 'spiffe-agent', main: AGENT_MAIN }];
  return spec.split(',').map((x) => {
    const [label, main] = x.split('=');
    return { label, main };
  });
}

/** A canned SVID for the floor: a P-256 self-signed certificate with a SPIFFE URI SAN, DER. */
function cannedSvid(dir) {
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  execFileSync('openssl', ['pkcs8', '-topk8', '-nocrypt', '-in', key, '-outform', 'DER', '-out', join(dir, 'key.der')]);
  execFileSync('openssl', ['req', '-x509', '-key', key, '-subj', '/O=bench', '-days', '1', '-addext', `subjectAltName=URI:spiffe://${TD}/bench/floor`, '-outform', 'DER', '-out', join(dir, 'svid.der')]);
  return { cert: join(dir, 'svid.der'), key: join(dir, 'key.der') };
}

async function targets(dir, bins, server) {
  const list = [];
  const canned = cannedSvid(dir);
  const floorSock = join(dir, 'floor.sock');
  const prof = process.env.BENCH_AGENT_PROF;
  const floorFlags = prof ? ['--cpu-prof', '--cpu-prof-dir', join(prof, 'floor')] : [];
  list.push({ label: 'floor', socketPath: floorSock, start: () => spawnLogged(process.execPath, [...floorFlags, join(LIB, 'floor-server.mjs'), floorSock, canned.cert, canned.key], {}) });
  // BENCH_FLOOR_WORKERS=N adds the floor served from N worker threads (floor-workers.mjs): what
  // handing connections to workers buys on this machine before the agent is built that way.
  const floorWorkers = Number(process.env.BENCH_FLOOR_WORKERS ?? 0);
  if (floorWorkers > 0) {
    const sock = join(dir, 'floor-workers.sock');
    const args = [join(LIB, 'floor-workers.mjs'), sock, canned.cert, canned.key, String(floorWorkers)];
    list.push({ label: `floor-w${floorWorkers}`, socketPath: sock, start: () => spawnLogged(process.execPath, args, {}) });
    const idSock = join(dir, 'floor-workers-id.sock');
    const idArgs = [join(LIB, 'floor-workers.mjs'), idSock, canned.cert, canned.key, String(floorWorkers)];
    list.push({ label: `floor-w${floorWorkers}-id`, socketPath: idSock, start: () => spawnLogged(process.execPath, idArgs, { env: { ...process.env, FLOOR_IDENTIFY: '1' } }) });
  }
  const conf = await ourConf(entriesDoc(ENTRIES, `spiffe://${TD}/spire/agent/local`));
  for (const b of builds()) {
    const flags = prof ? ['--cpu-prof', '--cpu-prof-dir', join(prof, b.label)] : [];
    list.push({ label: b.label, socketPath: conf.socketPath, dir: conf.dir, start: () => spawnLogged(...agentCommand(['run', '-config', conf.confPath], flags, b.main), { cwd: conf.dir }) });
  }
  if (server) {
    const alias = `spiffe://${TD}/node/perconn-spire-agent`;
    const token = await server.token(alias);
    await server.createEntries(entriesDoc(ENTRIES, alias).entries);
    const sc = await agentConf(server, token, 'perconn');
    list.push({ label: 'spire-agent', socketPath: sc.socketPath, dir: sc.dir, start: () => spawnLogged(bins.agent, ['run', '-config', sc.confPath], { cwd: sc.dir }) });
  }
  return list;
}

/** taskset's CPU list for the servers and the clients (BENCH_SERVER_CPUS, BENCH_CLIENT_CPUS), if set. */
function pinning() {
  return { server: process.env.BENCH_SERVER_CPUS, client: process.env.BENCH_CLIENT_CPUS };
}

/** Pins a process and all its threads (new ones inherit it from the thread that makes them). */
function pin(pid, cpus) {
  if (cpus) execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/** How many cores a taskset list names ("0", "0-1", "0,2-3"). */
function coreCount(list) {
  return list.split(',').reduce((n, part) => {
    const [a, b] = part.split('-').map(Number);
    return n + (b === undefined ? 1 : b - a + 1);
  }, 0);
}

async function measureOnce(t, bin, s) {
  const r = {};
  const p = t.start();
  pin(p.pid, pinning().server);
  try {
    const uids = Array.from({ length: PROCS }, (_, i) => UID0 + i);
    // Up, and each uid's SVID exists (spire-agent: synced from the server). One connection per uid.
    for (const uid of uids) {
      const x = await client(bin, t.socketPath, uid, ['first', '-until', '180s'], 200_000);
      if (x.code !== 0) throw new Error(`${t.label}: no first SVID for uid ${uid}: ${JSON.stringify(x.lines)} ${x.stderr}\n${p.logs.slice(-10).join('\n')}`);
    }
    await sleep(300);
    const per = Math.ceil(s.burst / PROCS);
    const at = Date.now() + 800 + PROCS * 20;
    const cpuB = cpuMs(p.pid);
    const res = await Promise.all(uids.map((uid) => client(bin, t.socketPath, uid, ['burst', '-n', String(per), '-at', String(at), '-timeout', '60s'])));
    r.burstCpu = (cpuMs(p.pid) - cpuB) / s.burst;
    const ms = res.flatMap((x) => x.lines[0]?.ms ?? []);
    r.burstErrors = s.burst - ms.length;
    r.burstRate = ms.length ? (ms.length * 1000) / Math.max(...ms) : NaN;
    r.burstP50 = pct(ms, 50);
    await sleep(500);
    for (const [c, n, key] of [[20, s.seq20, 'c20'], [1, s.seq1, 'c1']]) {
      const cpu0 = cpuMs(p.pid);
      const q = await client(bin, t.socketPath, UID0, ['seq', '-n', String(n), '-c', String(c)]);
      const cpu = cpuMs(p.pid) - cpu0;
      const m = q.lines[0]?.ms ?? [];
      r[`${key}P50`] = pct(m, 50);
      r[`${key}Rate`] = (m.length * 1000) / (q.lines[0]?.wallMs ?? NaN);
      r[`${key}Cpu`] = cpu / n;
      r[`${key}Errors`] = n - m.length;
    }
    if (p.exitCode !== null) throw new Error(`${t.label} exited during the bench:\n${p.logs.slice(-20).join('\n')}`);
  } finally {
    await p.stop();
  }
  r.load = loadavg()[0];
  return r;
}

const COLS = [
  ['c20Rate', '20c per s', 0],
  ['c20P50', '20c p50 ms', 2],
  ['c20Cpu', '20c CPU/conn ms', 3],
  ['burstRate', 'burst200 per s', 0],
  ['burstP50', 'burst p50 ms', 1],
  ['c1Rate', '1c per s', 0],
  ['c1P50', '1c p50 ms', 2],
];
const median = (xs) => pct(xs.filter(Number.isFinite), 50);

function printRound(i, label, r) {
  const errs = r.c20Errors + r.c1Errors + r.burstErrors;
  console.log(`  round ${i + 1} ${label.padEnd(14)} ${COLS.map(([k, n, d]) => `${n} ${f(r[k], d)}`).join('  ')}  load ${f(r.load, 1)}${errs ? `  ERRORS ${errs}` : ''}`);
}

/**
 * Per core: each server's 20-client rate divided by the cores it was pinned to (when pinned), and
 * 1000 / its CPU per connection, the rate one core of its own could reach, whatever the pinning.
 */
function printPerCore(labels, rounds, serverCpus) {
  const n = serverCpus ? coreCount(serverCpus) : undefined;
  console.log(`\n== per core${n ? ` (servers pinned to ${n} core${n > 1 ? 's' : ''}: ${serverCpus})` : ''}`);
  for (const label of labels) {
    const rate = median(rounds.map((r) => r[label]?.c20Rate));
    const cpu = median(rounds.map((r) => r[label]?.c20Cpu));
    console.log(`  ${label.padEnd(14)} ${n ? `20c per s per core ${f(rate / n, 0).padStart(6)}  ` : ''}one core's capacity (1000 / CPU per connection) ${f(1000 / cpu, 0).padStart(6)}/s`);
  }
}

function printSummary(labels, rounds) {
  console.log(`\n== per connection, median of ${rounds.length} rounds; ratio = target / floor, median of the per-round ratios [min–max])`);
  console.log(`  ${'target'.padEnd(14)} ${COLS.map(([, n]) => n.padStart(26)).join('')}`);
  for (const label of labels) {
    const cells = COLS.map(([k, , d]) => {
      const v = median(rounds.map((r) => r[label]?.[k]));
      if (label === 'floor') return f(v, d).padStart(26);
      const ratios = rounds.map((r) => r[label]?.[k] / r.floor?.[k]).filter(Number.isFinite);
      const rs = ratios.length ? `${f(median(ratios))} [${f(Math.min(...ratios))}–${f(Math.max(...ratios))}]` : 'n/a';
      return `${f(v, d)} ${rs}`.padStart(26);
    });
    console.log(`  ${label.padEnd(14)} ${cells.join('')}`);
  }
}

export async function run() {
  const s = settings();
  if (process.getuid?.() !== 0) throw new Error('per-connection: must run as root (clients run under test uids)');
  const [l1, l5, l15] = loadavg();
  const cores = pinning();
  // The clients are this process's children: they inherit its affinity.
  pin(process.pid, cores.client);
  console.log(`\n### per-connection: spiffe-agent against a bare grpc-js server (the floor) and spire-agent`);
  if (cores.server || cores.client) console.log(`  pinned: servers on cores ${cores.server ?? 'any'}, clients on cores ${cores.client ?? 'any'}`);
  console.log(`  ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}, load average ${f(l1)} / ${f(l5)} / ${f(l15)} at start`);
  const dir = await mkdtemp('/tmp/spiffe-agent-perconn-');
  await chmod(dir, 0o755);
  const bin = await clientCopy(compareClient());
  let bins;
  let server;
  if (process.env.BENCH_SPIRE !== '0') {
    try {
      bins = spireBins();
      server = await startServer(bins);
    } catch (e) {
      console.log(`  spire-agent: not measured (${e instanceof Error ? e.message : e})`);
    }
  }
  const rounds = [];
  let list = [];
  try {
    list = await targets(dir, bins, server);
    for (let i = 0; i < s.rounds; i++) {
      const round = {};
      const order = list.map((_, k) => list[(k + i) % list.length]);
      for (const t of order) {
        round[t.label] = await measureOnce(t, bin.path, s);
        printRound(i, t.label, round[t.label]);
      }
      rounds.push(round);
    }
  } finally {
    await server?.stop();
    for (const t of list) if (t.dir) await rm(t.dir, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
    await rm(bin.dir, { recursive: true, force: true });
  }
  printSummary(list.map((t) => t.label), rounds);
  printPerCore(list.map((t) => t.label), rounds, pinning().server);
  const [e1, e5] = loadavg();
  console.log(`  load average at the end ${f(e1)} / ${f(e5)}`);
  return rounds;
}

if (isMain(import.meta.url)) {
  try {
    await run();
  } catch (e) {
    console.error(e instanceof Error ? e.stack : e);
    process.exitCode = 1;
  }
}
