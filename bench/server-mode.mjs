/**
 * Server mode, side by side: one real spire-server v1.13.3 (scripts/spire.sh), spire-agent
 * v1.13.3 and spiffe-agent joined to it with the same agent.conf and the same entries (each under
 * its own join-token alias), both driven by one outside go-spiffe client (bench/go-client), never
 * by our SDK. Prints both agents' numbers and ratio (spiffe-agent / spire-agent):
 *   - agent start → Workload API socket, and → first X.509-SVID served (fresh attestation; restart from data_dir)
 *   - connect → first X.509-SVID: cached (same workload again) and new workload (uid never seen)
 *   - RSS idle with 1,000 entries
 *   - `spire-server entry create` → SVID on an open WatchX509Context stream
 * `npm run bench` runs it with no environment. BENCH_SMOKE=1: 100 entries, few samples (CI smoke).
 * Runs as root (clients run under uids 1001, 1500+ and 1700+; no passwd entries needed).
 */
import { cpus, loadavg } from 'node:os';
import { rm } from 'node:fs/promises';
import { f, isMain, pct, rssKiB, sleep, runtimeLine } from './lib/common.mjs';
import { TD, agentConf, benchClient, clientCopy, runClient, spireBins, startAgentProc, startServer, watchClient } from './lib/spire.mjs';

const KINDS = ['spire-agent', 'spiffe-agent'];

function settings() {
  const smoke = process.env.BENCH_SMOKE === '1';
  // BENCH_ONLY=start: only the start-up measures (fresh attestation, then BENCH_RESTARTS restarts, default 1).
  const startOnly = process.env.BENCH_ONLY === 'start';
  const restarts = Math.max(1, Number(process.env.BENCH_RESTARTS ?? 1) || 1);
  const kinds = process.env.BENCH_AGENTS ? KINDS.filter((k) => process.env.BENCH_AGENTS.split(',').includes(k)) : KINDS;
  return { smoke, startOnly, restarts, kinds, entries: smoke ? 100 : 1000, connectN: smoke ? 5 : 30, newN: smoke ? 3 : 20, createN: smoke ? 1 : 3, settleMs: smoke ? 3000 : 10_000 };
}

const idOf = (path) => `spiffe://${TD}${path}`;
const uidEntry = (path, parent, uid) => ({ spiffe_id: idOf(path), parent_id: parent, selectors: [{ type: 'unix', value: `uid:${uid}` }] });

function entriesFor(kind, parent, s) {
  const list = [uidEntry(`/bench/${kind}/cached`, parent, 1001)];
  for (let i = 0; i < s.newN; i++) list.push(uidEntry(`/bench/${kind}/new-${i}`, parent, 1500 + i));
  for (let i = 0; i < s.newN; i++) list.push(uidEntry(`/bench/${kind}/settled-${i}`, parent, 1700 + i));
  for (let i = list.length; i < s.entries; i++) list.push(uidEntry(`/bench/${kind}/filler-${i}`, parent, 20_000 + i));
  return list;
}

async function untilServed(client, socketPath, uid, timeoutMs = 180_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await runClient(client, socketPath, uid, ['connect', '-n', '1', '-timeout', '3s'], 10_000);
    if (r.code === 0) return;
    if (Date.now() > deadline) throw new Error(`no SVID for uid ${uid} within ${timeoutMs} ms: ${r.stdout}${r.stderr}`);
    await sleep(20);
  }
}

async function connectTimes(client, socketPath, uid, n) {
  const r = await runClient(client, socketPath, uid, ['connect', '-n', String(n)]);
  const j = JSON.parse(r.stdout || '{}');
  if (!j.ok) throw new Error(`connect as uid ${uid}: ${r.stdout}${r.stderr}`);
  return j.ms;
}

function printTable(title, rows, results, unit) {
  console.log(`\n== ${title}`);
  for (const m of rows) {
    const a = results['spiffe-agent']?.[m];
    const b = results['spire-agent']?.[m];
    let line = `  ${m.padEnd(54)} spire-agent ${f(b).padStart(9)} ${unit}   spiffe-agent ${f(a).padStart(9)} ${unit}`;
    line += Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `   ratio ${f(a / b)}` : '   ratio n/a';
    console.log(line);
  }
}

/** Everything between start-up and restart: per-connection latency, RSS, entry propagation. */
async function middle(s, client, server, agents, live, results) {
    // Connect → first X.509-SVID, cached: the same workload again (first call warms, not counted).
    for (const kind of live) {
      const ms = (await connectTimes(client.path, agents[kind].conf.socketPath, 1001, s.connectN + 1)).slice(1);
      results[kind]['connect → SVID, cached p50'] = pct(ms, 50);
      results[kind]['connect → SVID, cached p99'] = pct(ms, 99);
    }
    // New workload: a uid that never connected, its entry synced before.
    for (const kind of live) {
      const ms = [];
      for (let i = 0; i < s.newN; i++) ms.push(...(await connectTimes(client.path, agents[kind].conf.socketPath, 1500 + i, 1)));
      results[kind]['connect → SVID, new workload p50'] = pct(ms, 50);
      results[kind]['connect → SVID, new workload p99'] = pct(ms, 99);
    }
    // RSS, idle, both agents up with their entries.
    await sleep(s.settleMs);
    for (const kind of live) results[kind][`RSS idle, ${s.entries} entries`] = (await rssKiB(agents[kind].proc.pid)) / 1024;
    // New workload again once start-up is over: ours serves before its start-up signing wave ends
    // (spire-agent serves nobody until then), so the measure above can catch a CSR still in that wave.
    for (const kind of live) {
      const ms = [];
      for (let i = 0; i < s.newN; i++) ms.push(...(await connectTimes(client.path, agents[kind].conf.socketPath, 1700 + i, 1)));
      results[kind]['connect → SVID, new workload after settling p50'] = pct(ms, 50);
      results[kind]['connect → SVID, new workload after settling p99'] = pct(ms, 99);
    }

    // entry create → SVID on an open stream: both agents watch, one CLI call creates both entries.
    const samples = { 'spire-agent': [], 'spiffe-agent': [] };
    for (let k = 0; k < s.createN; k++) {
      const waits = live.map((kind) => {
        const target = idOf(`/bench/${kind}/late-${k}`);
        return { kind, target, ...watchClient(client.path, agents[kind].conf.socketPath, 1001, ['wait-id', '-id', target, '-timeout', '120s']) };
      });
      await Promise.all(waits.map((w) => w.ready));
      const t0 = Date.now();
      await server.createEntries(live.map((kind) => uidEntry(`/bench/${kind}/late-${k}`, agents[kind].alias, 1001)));
      for (const w of waits) {
        const r = await w.done;
        const line = r.stdout.split('\n').map((l) => (l ? JSON.parse(l) : {})).find((j) => j.arrivedUnixMs);
        if (line) samples[w.kind].push(line.arrivedUnixMs - t0);
        else console.log(`  ${w.kind}: ${w.target} did not arrive: ${r.stdout}${r.stderr}`);
      }
    }
    for (const kind of live) {
      results[kind]['entry create → SVID on open stream p50'] = pct(samples[kind], 50);
      results[kind]['entry create → SVID on open stream max'] = Math.max(...samples[kind]);
    }

}

export async function run() {
  const s = settings();
  const [l1, l5] = loadavg();
  console.log(`\n=== server-mode: spire-agent vs spiffe-agent on one spire-server ${s.smoke ? '(BENCH_SMOKE=1)' : ''}`);
  console.log(`  ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average ${f(l1)} / ${f(l5)} (1 / 5 min) at start, ${runtimeLine()}`);
  const bins = spireBins();
  const client = await clientCopy(benchClient());
  const server = await startServer(bins);
  console.log(`  spire-server ${bins.version ?? ''} on 127.0.0.1:${server.port}; ${s.entries} entries per agent`);
  const agents = {};
  const results = { 'spire-agent': {}, 'spiffe-agent': {} };
  const failures = {};
  try {
    for (const kind of s.kinds) {
      const alias = idOf(`/node/bench-${kind}`);
      const token = await server.token(alias);
      await server.createEntries(entriesFor(kind, alias, s));
      agents[kind] = { conf: await agentConf(server, token, kind), alias };
    }
    // Start each agent alone (fresh attestation), so start-up numbers do not compete.
    for (const kind of s.kinds) {
      const a = agents[kind];
      try {
        a.proc = await startAgentProc(kind, bins, a.conf);
        await untilServed(client.path, a.conf.socketPath, 1001);
        results[kind]['start → socket (attest)'] = a.proc.socketMs;
        results[kind]['start → first SVID (attest)'] = performance.now() - a.proc.t0;
      } catch (e) {
        failures[kind] = e instanceof Error ? e.message : String(e);
        await a.proc?.stop();
        a.proc = undefined;
      }
    }
    const live = s.kinds.filter((k) => agents[k].proc);
    if (!s.startOnly) await middle(s, client, server, agents, live, results);

    // Restart from data_dir (no attestation): start → socket and → first SVID.
    for (let r = 0; r < s.restarts; r++) {
      const sfx = s.restarts > 1 ? ` #${r + 1}` : '';
      for (const kind of live) {
        const a = agents[kind];
        await a.proc.stop();
        a.proc = await startAgentProc(kind, bins, a.conf);
        await untilServed(client.path, a.conf.socketPath, 1001);
        results[kind][`restart → socket (data_dir)${sfx}`] = a.proc.socketMs;
        results[kind][`restart → first SVID (data_dir)${sfx}`] = performance.now() - a.proc.t0;
      }
    }
  } finally {
    for (const kind of KINDS) {
      await agents[kind]?.proc?.stop();
      if (agents[kind]?.conf) await rm(agents[kind].conf.dir, { recursive: true, force: true });
    }
    await server.stop();
    await rm(client.dir, { recursive: true, force: true });
  }

  const ms = Object.keys({ ...results['spire-agent'], ...results['spiffe-agent'] }).filter((m) => !m.startsWith('RSS'));
  printTable('server-mode timings', ms, results, 'ms');
  if (!s.startOnly) printTable('server-mode memory', [`RSS idle, ${s.entries} entries`], results, 'MiB');
  const [e1, e5] = loadavg();
  console.log(`  load average at end ${f(e1)} / ${f(e5)}; ratio = spiffe-agent / spire-agent (below 1: ours is faster or smaller)`);
  for (const [kind, msg] of Object.entries(failures)) console.log(`  ${kind}: FAILED to serve: ${msg.split('\n')[0]}`);
  if (Object.keys(failures).length) throw new Error(`server-mode: ${Object.keys(failures).join(', ')} did not serve`);
  return results;
}

if (isMain(import.meta.url)) {
  if (process.getuid?.() !== 0) {
    console.error('bench: must run as root (clients run under test uids)');
    process.exit(2);
  }
  run().then(
    () => process.exit(0),
    (e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    },
  );
}
