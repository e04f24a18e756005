/**
 * Soak of issue 7: the real agent (embedded authority, entries file) under mixed load for
 * SOAK_SECONDS (default 600), then checks that it is still serving, that its fds and RSS
 * are back within 10 % of the baseline, that nothing was refused, and that every delivery
 * a client saw has its audit record in the agent's log. Exits 1 on any failure.
 *
 * Load, all at once:
 * - fetching clients: real `spiffe-agent api fetch x509` processes under uids 1801-1804,
 *   SOAK_FETCHERS (default 2) at a time, one after another;
 * - connect-and-exit: SOAK_CHURN_RATE connections/s (default 200) from uid 65534, half of
 *   them from processes that exit the moment connect() returns (forked by a small Python
 *   loop), half connecting and closing at once;
 * - HTTP/2 abuse from uid 65534: CONTINUATION flood, 16 MiB frame, 8 MiB header block and
 *   rapid reset in turn, one every SOAK_ABUSE_EVERY_S seconds (default 5);
 * - entries-file reloads every SOAK_RELOAD_EVERY_S seconds (default 15).
 *
 * The baseline is taken after a warm-up that runs every kind of load once, so the JIT and
 * the heap's first growth are not counted as leaks. SOAK_TOLERANCE (default 0.1) is the growth
 * allowed at the end. Run as root after `npm run build`:
 *   SOAK_SECONDS=600 node bench/soak.mjs
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_MAIN, REPO, rssKiB, sleep, startOurs, uidEntry, waitLog, runtimeLine } from './lib/common.mjs';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const FETCHERS = Number(process.env.SOAK_FETCHERS ?? 2);
const CHURN_RATE = Number(process.env.SOAK_CHURN_RATE ?? 200);
const ABUSE_EVERY_S = Number(process.env.SOAK_ABUSE_EVERY_S ?? 5);
const RELOAD_EVERY_S = Number(process.env.SOAK_RELOAD_EVERY_S ?? 15);
const SETTLE_S = Number(process.env.SOAK_SETTLE_S ?? 60);
/** Allowed growth over the baseline at the end; the issue asks for 10 %. */
const TOLERANCE = Number(process.env.SOAK_TOLERANCE ?? 0.1);
const UIDS = [1801, 1802, 1803, 1804];
const ATTACKER = { uid: 65534, gid: 65534 };
const ATTACK = join(REPO, 'test/helpers/attacker.mjs');
const KINDS = ['continuation', 'big-frame', 'big-block', 'rapid-reset'];

const FORKER = `
import json, os, socket, sys, time
path, rate, secs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
n = failed = 0
def reap(block):
    global failed
    while True:
        try:
            p, st = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if p == 0:
            return
        if os.WEXITSTATUS(st) != 0:
            failed += 1
t0 = time.time()
while time.time() - t0 < secs:
    due = int((time.time() - t0) * rate)
    while n < due:
        if os.fork() == 0:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
                os._exit(0)
            except OSError:
                os._exit(3)
        n += 1
    reap(False)
    time.sleep(0.01)
reap(True)
print(json.dumps({"done": n, "failed": failed}))
`;

function entries(extra) {
  const list = UIDS.map((u) => uidEntry(`/soak/w${u}`, u));
  if (extra) list.push(uidEntry(`/soak/extra-${extra}`, UIDS[0]));
  return list;
}

function run(cmd, args, ids, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, ...ids });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.once('exit', (code, sig) => resolve({ pid: child.pid, code, sig, out, err }));
  });
}

const fdCount = (pid) => readdirSync(`/proc/${pid}/fd`).length;

/** Everything a phase of load did, for the summary. */
function newTally() {
  const abuse = Object.fromEntries(KINDS.map((k) => [k, { runs: 0, goaway: 0, closed: 0, throttled: 0, open: 0 }]));
  return { fetchOk: 0, fetchFailed: 0, fetchErrors: [], deliveredPids: [], churn: 0, churnRefused: 0, exiting: 0, exitingRefused: 0, abuse, reloads: 0 };
}

async function load(agent, seconds, t) {
  const end = Date.now() + seconds * 1000;
  const fetcher = async (i) => {
    for (let n = 0; Date.now() < end; n++) {
      const uid = UIDS[(i + n) % UIDS.length];
      const r = await run(process.execPath, [AGENT_MAIN, 'api', 'fetch', 'x509', '-socketPath', agent.socketPath, '-timeout', '30s'], { uid, gid: uid });
      if (r.code === 0 && r.out.includes(`spiffe://example.org/soak/w${uid}`)) {
        t.fetchOk++;
        t.deliveredPids.push(r.pid);
      } else {
        t.fetchFailed++;
        if (t.fetchErrors.length < 5) t.fetchErrors.push((r.err || r.out).trim().split('\n').slice(-2).join(' '));
      }
    }
  };
  const churn = run(process.execPath, [ATTACK, 'churn', agent.socketPath, String(CHURN_RATE / 2), String(seconds)], ATTACKER).then((r) => {
    const j = JSON.parse(r.out || '{"done":0,"failed":1}');
    t.churn += j.done;
    t.churnRefused += j.failed;
  });
  const exiting = run('python3', ['-c', FORKER, agent.socketPath, String(CHURN_RATE / 2), String(seconds)], ATTACKER).then((r) => {
    const j = JSON.parse(r.out || '{"done":0,"failed":1}');
    t.exiting += j.done;
    t.exitingRefused += j.failed;
  });
  const abuse = (async () => {
    for (let i = 0; Date.now() + ABUSE_EVERY_S * 1000 <= end; i++) {
      const started = Date.now();
      const kind = KINDS[i % KINDS.length];
      const r = await run(process.execPath, [ATTACK, 'h2', agent.socketPath, kind], ATTACKER, { ATTACK_SECONDS: String(ABUSE_EVERY_S) });
      const j = JSON.parse(r.out || '{}');
      const a = t.abuse[kind];
      a.runs++;
      if (j.goaway) a.goaway++;
      // Closed by the agent; or throttled: the agent stopped reading (backpressure from a busy
      // gRPC server) before the attack reached a limit, so it cost nothing but a blocked writer;
      // or open: the agent kept reading and never closed it, which fails the soak.
      if (j.closed) a.closed++;
      else if (j.stalled) a.throttled++;
      else a.open++;
      await sleep(Math.max(0, started + ABUSE_EVERY_S * 1000 - Date.now()));
    }
  })();
  const reloads = (async () => {
    for (let i = 1; Date.now() + RELOAD_EVERY_S * 1000 <= end; i++) {
      await sleep(RELOAD_EVERY_S * 1000);
      const before = agent.logs.filter((l) => l.includes('Loaded registration entries')).length;
      await agent.writeEntries(entries(i % 2 ? i : 0));
      await waitLog(agent, 'Loaded registration entries', before + 1, 30_000).then(
        () => t.reloads++,
        () => {},
      );
    }
  })();
  await Promise.all([...Array.from({ length: FETCHERS }, (_, i) => fetcher(i)), churn, exiting, abuse, reloads]);
}

/** Waits up to SETTLE_S for fds and RSS to come back under their limits; returns the last sample. */
async function settle(pid, fdLimit, rssLimit) {
  const deadline = Date.now() + SETTLE_S * 1000;
  let s;
  do {
    s = { fds: fdCount(pid), rss: await rssKiB(pid) };
    if (s.fds <= fdLimit && s.rss <= rssLimit) return s;
    await sleep(1000);
  } while (Date.now() < deadline);
  return s;
}

if (process.getuid?.() !== 0) {
  console.error('soak: must run as root (clients run under uids 1801-1804 and 65534)');
  process.exit(2);
}
console.log(`soak: ${SECONDS} s of mixed load: ${FETCHERS} fetching clients, ${CHURN_RATE} conn/s connect-and-exit (half exiting processes), HTTP/2 abuse every ${ABUSE_EVERY_S} s, reloads every ${RELOAD_EVERY_S} s — ${runtimeLine()}`);
const agent = await startOurs({ entries: entries(0) });
// Every granted Workload API decision, by caller pid, read from the agent's whole log
// (the bench helper keeps only its tail).
const audited = new Map();
for (const stream of [agent.proc.stdout, agent.proc.stderr]) {
  let partial = '';
  stream.on('data', (c) => {
    const lines = (partial + c.toString('utf8')).split('\n');
    partial = lines.pop();
    for (const line of lines) {
      if (!line.includes('Workload API decision') || !/decision=("?)granted\1/.test(line)) continue;
      const pid = /\bpid=(\d+)/.exec(line)?.[1];
      if (pid) audited.set(Number(pid), (audited.get(Number(pid)) ?? 0) + 1);
    }
  });
}
const pid = agent.pid;
const failures = [];
let summary;
try {
  const warm = newTally();
  await load(agent, Math.min(20, Math.max(10, SECONDS / 10)), warm);
  await sleep(3000);
  const base = { fds: fdCount(pid), rss: await rssKiB(pid) };
  console.log(`baseline after warm-up: ${base.fds} fds, RSS ${(base.rss / 1024).toFixed(1)} MiB`);

  const t = newTally();
  let peak = { fds: base.fds, rss: base.rss };
  const sampler = setInterval(async () => {
    try {
      peak = { fds: Math.max(peak.fds, fdCount(pid)), rss: Math.max(peak.rss, await rssKiB(pid)) };
    } catch {
      // The agent is gone; the checks below say so.
    }
  }, 1000);
  const t0 = Date.now();
  await load(agent, SECONDS, t);
  clearInterval(sampler);
  const elapsed = (Date.now() - t0) / 1000;

  const alive = agent.alive();
  const fdLimit = Math.max(Math.floor(base.fds * (1 + TOLERANCE)), base.fds + 2);
  const rssLimit = Math.floor(base.rss * (1 + TOLERANCE));
  const end = alive ? await settle(pid, fdLimit, rssLimit) : { fds: NaN, rss: NaN };
  const final = alive ? await run(process.execPath, [AGENT_MAIN, 'api', 'fetch', 'x509', '-socketPath', agent.socketPath, '-timeout', '30s'], { uid: UIDS[0], gid: UIDS[0] }) : { code: -1 };
  if (final.code === 0) t.deliveredPids.push(final.pid);
  await sleep(500);
  const unaudited = t.deliveredPids.filter((p) => !audited.has(p));
  const refused = t.churnRefused + t.exitingRefused;

  if (!alive) failures.push('the agent died');
  if (final.code !== 0) failures.push('the agent does not serve after the soak');
  if (end.fds > fdLimit) failures.push(`fds ${end.fds} > ${fdLimit} (baseline ${base.fds} + ${TOLERANCE * 100} %)`);
  if (end.rss > rssLimit) failures.push(`RSS ${(end.rss / 1024).toFixed(1)} MiB > ${(rssLimit / 1024).toFixed(1)} MiB (baseline + ${TOLERANCE * 100} %)`);
  if (refused > 0) failures.push(`${refused} connections refused`);
  if (t.fetchFailed > 0) failures.push(`${t.fetchFailed} fetches failed: ${t.fetchErrors.join(' | ')}`);
  if (unaudited.length > 0) failures.push(`${unaudited.length} deliveries without an audit record (pids ${unaudited.slice(0, 5).join(', ')})`);
  const open = Object.values(t.abuse).reduce((n, a) => n + a.open, 0);
  if (open > 0) failures.push(`${open} abusive HTTP/2 connections were read from and left open by the agent`);

  summary = [
    `soak: ${elapsed.toFixed(0)} s`,
    `  fetches            ${t.fetchOk} ok, ${t.fetchFailed} failed (${(t.fetchOk / elapsed).toFixed(2)}/s), all audited: ${unaudited.length === 0}`,
    `  connect-and-close  ${t.churn} (${(t.churn / elapsed).toFixed(0)}/s), refused ${t.churnRefused}`,
    `  exiting processes  ${t.exiting} (${(t.exiting / elapsed).toFixed(0)}/s), refused ${t.exitingRefused}`,
    ...Object.entries(t.abuse).map(([k, a]) => `  h2 ${k.padEnd(15)} ${a.runs} connections: GOAWAY ${a.goaway}, closed ${a.closed}, throttled ${a.throttled}, left open ${a.open}`),
    `  entries reloads    ${t.reloads}`,
    `  fds                baseline ${base.fds}, peak ${peak.fds}, end ${end.fds} (limit ${fdLimit})`,
    `  RSS MiB            baseline ${(base.rss / 1024).toFixed(1)}, peak ${(peak.rss / 1024).toFixed(1)}, end ${(end.rss / 1024).toFixed(1)} (limit ${(rssLimit / 1024).toFixed(1)})`,
    failures.length ? `soak: FAILED\n  - ${failures.join('\n  - ')}` : 'soak: PASSED',
  ].join('\n');
} catch (err) {
  failures.push(`soak harness error: ${err instanceof Error ? err.stack : err}`);
  summary = `soak: FAILED\n  - ${failures.join('\n  - ')}`;
} finally {
  await agent.stop();
}
console.log(summary);
process.exit(failures.length ? 1 : 0);
