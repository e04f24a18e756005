/**
 * Performance bounds of the running daemon that used to be timed assertions in integration tests.
 * On a loaded 2-core machine they failed on load, not on bugs, so the tests now wait for the event
 * (with a generous timeout) and these figures are measured here. Each line prints the figure, the
 * bound the test asserted and "ok" or "OVER":
 *  - 5,000 clients connecting at once (more than the kernel's listen queue, so the agent must keep
 *    accepting while the burst arrives): refused in one burst (bound ≤ 500) and all 5,000 served
 *    within three bursts; 1,000 at once for reference (was test/integration/attack-accept.test.ts);
 *  - entries file edit → the added identity on an open stream (bound < 3 s)
 *    (was test/integration/entries-reload.test.ts);
 *  - x509_svid_ttl 4 s: watch start → third distinct SVID serial (bounds 3–8 s: sooner is a
 *    rotation loop, later a missed half-life) (was test/integration/rotation.test.ts);
 *  - reattest_interval 1 s: a workload execs another binary → its path-bound identity withdrawn
 *    (bound < 3 s) (was test/integration/reattestation.test.ts; the k8s relabel case in
 *    containers.test.ts runs through the same re-attestation loop).
 * Runs as root: clients run under uids 65534 (the burst) and 1141 (the exec); the stream client runs
 * in this process under root's own entry.
 */
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { WorkloadAPIClient } from '../dist/src/sdk/index.js';
import { PARENT_ID, REPO, TD, f, isMain, sleep, startOurs, uidEntry, runtimeLine } from './lib/common.mjs';

const ROOT = process.getuid?.() ?? 0;

function verdict(name, ms, ok, bound) {
  console.log(`  ${name}: ${Number.isFinite(ms) ? `${f(ms, 0)} ms` : 'never'} (bound ${bound}) ${ok ? 'ok' : 'OVER'}`);
  return { ms, ok };
}

/** Runs `fn` until it returns a value or `timeoutMs` passes (then undefined). */
async function until(fn, timeoutMs, everyMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) return undefined;
    await sleep(everyMs);
  }
}

function child(cmd, args, ids) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...ids });
  let out = '';
  p.stdout.on('data', (c) => (out += c));
  p.stderr.on('data', (c) => (out += c));
  return { p, text: () => out, exited: new Promise((r) => p.once('exit', (code) => r(code))) };
}

async function bursts() {
  const agent = await startOurs({ entries: [uidEntry('/bench/burst', 1701)] });
  const out = {};
  try {
    const burst = async (n) => {
      const c = child(process.execPath, [join(REPO, 'test/helpers/attacker.mjs'), 'burst', agent.socketPath, String(n)], { uid: 65534, gid: 65534 });
      const code = await c.exited;
      if (code !== 0) throw new Error(`attacker burst ${n} exited ${code}: ${c.text()}`);
      return JSON.parse(c.text().trim().split('\n').pop());
    };
    const one = await burst(1000);
    console.log(`  1,000 at once: served ${one.ok}, refused ${one.refused}, errors ${JSON.stringify(one.errors)}, ${one.ms} ms`);
    out['1,000 at once'] = { ok: one.ok === 1000 };
    const runs = [];
    for (let i = 0; i < 3; i++) {
      const r = await burst(5000);
      runs.push(r);
      console.log(`  5,000 at once, burst ${i + 1}: served ${r.ok}, refused ${r.refused}, errors ${JSON.stringify(r.errors)}, ${r.ms} ms`);
      if (r.ok === 5000) break;
      await sleep(2000);
    }
    const worst = Math.max(...runs.map((r) => r.refused));
    out['5,000 at once'] = { refused: worst, ok: worst <= 500 && runs.at(-1).ok === 5000 };
    console.log(`  5,000 at once: most refused in one burst ${worst} (bound ≤ 500), all served by burst ${runs.at(-1).ok === 5000 ? runs.length : 'never'} (bound ≤ 3) ${out['5,000 at once'].ok ? 'ok' : 'OVER'}`);
  } finally {
    await agent.stop();
  }
  return out;
}

/** Opens a watch from this process (root's uid); `ids()` is the set of SPIFFE IDs of the last update, `serials` every serial seen. */
function watch(socketPath) {
  const client = new WorkloadAPIClient({ address: `unix://${socketPath}` });
  const abort = new AbortController();
  const state = { ids: [], serials: new Set(), updates: 0 };
  void client.watchX509Context({ onUpdate: (ctx) => {
    state.updates++;
    state.ids = ctx.svids.map((s) => s.id.toString()).sort();
    for (const s of ctx.svids) state.serials.add(s.serial);
  }, onError: () => {} }, abort.signal);
  return { state, close: () => (abort.abort(), client.close()) };
}

async function entriesEdit() {
  const agent = await startOurs({ entries: [uidEntry('/bench/one', ROOT)] });
  const w = watch(agent.socketPath);
  try {
    await until(() => w.state.ids.includes(`spiffe://${TD}/bench/one`), 10_000);
    const times = [];
    for (let i = 0; i < 3; i++) {
      const added = `spiffe://${TD}/bench/added-${i}`;
      const t0 = Date.now();
      await agent.writeEntries([uidEntry('/bench/one', ROOT), uidEntry(`/bench/added-${i}`, ROOT)]);
      const seen = await until(() => w.state.ids.includes(added), 30_000);
      times.push(seen ? Date.now() - t0 : Infinity);
    }
    const worst = Math.max(...times);
    return verdict(`entries file edit → added identity on the open stream, worst of 3 (${times.join(', ')} ms)`, worst, worst < 3000, '< 3,000 ms');
  } finally {
    w.close();
    await agent.stop();
  }
}

async function rotationCadence() {
  const agent = await startOurs({ entries: [uidEntry('/bench/rotating', ROOT, { x509_svid_ttl: 4 })] });
  const w = watch(agent.socketPath);
  try {
    const t0 = Date.now();
    const seen = await until(() => w.state.serials.size >= 3, 30_000);
    const ms = seen ? Date.now() - t0 : Infinity;
    return verdict('x509_svid_ttl 4 s: watch start → third distinct serial', ms, ms > 3000 && ms < 8000, '3,000–8,000 ms');
  } finally {
    w.close();
    await agent.stop();
  }
}

async function reattestExec() {
  const W = { uid: 1141, gid: 1141 };
  const node = realpathSync(process.execPath);
  const agent = await startOurs({
    agent: 'reattest_interval = "1s"',
    unixPluginData: 'discover_workload_path = true',
    entries: [
      { spiffe_id: `spiffe://${TD}/node-bound`, parent_id: PARENT_ID, selectors: [{ type: 'unix', value: `uid:${W.uid}` }, { type: 'unix', value: `path:${node}` }] },
      { spiffe_id: `spiffe://${TD}/uid-only`, parent_id: PARENT_ID, selectors: [{ type: 'unix', value: `uid:${W.uid}` }] },
    ],
  });
  const target = join(agent.dir, 'sleep');
  copyFileSync('/bin/sleep', target);
  chmodSync(target, 0o755);
  const c = child(node, [join(REPO, 'test/fixtures/clients/watch-then-exec.mjs'), REPO, agent.socketPath, target], { ...W, cwd: REPO });
  try {
    await until(() => c.text().includes('UPDATE'), 10_000);
    const t0 = Date.now(); // the fixture execs 0.3 s after its first update
    const withdrawn = await until(() => agent.logs.some((l) => l.includes('decision=withdrawn') && l.includes(`pid=${c.p.pid}`) && l.includes('node-bound')), 30_000);
    const ms = withdrawn ? Date.now() - t0 : Infinity;
    return verdict('reattest_interval 1 s: exec → path-bound identity withdrawn', ms, ms < 3000, '< 3,000 ms');
  } finally {
    c.p.kill('SIGKILL');
    await c.exited;
    await agent.stop();
  }
}

export async function run() {
  console.log('\n### daemon-bounds: bounds of the running daemon that used to be timed test assertions — ' + runtimeLine());
  if (ROOT !== 0) throw new Error('daemon-bounds: run as root (clients run under other uids)');
  const out = { ...(await bursts()) };
  out['entries edit'] = await entriesEdit();
  out['rotation cadence'] = await rotationCadence();
  out['re-attestation'] = await reattestExec();
  const over = Object.entries(out).filter(([, r]) => !r.ok);
  console.log(over.length ? `daemon-bounds: OVER: ${over.map(([k]) => k).join(', ')}` : 'daemon-bounds: every figure within its bound');
  return out;
}

if (isMain(import.meta.url)) await run();
