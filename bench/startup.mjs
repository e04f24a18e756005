/**
 * Start-up cost of `spiffe-agent run` on the sample config (conf/agent/agent.conf, paths moved to a
 * temp dir): time from spawn until the Workload API socket accepts a connection, VmRSS of the agent
 * settled 2 s after that, its peak (VmHWM), and the largest RSS of any process of the run (the agent
 * or a child it spawned), from /usr/bin/time. N runs (BENCH_STARTUP_N, default 10), p50 and max.
 * BENCH_STARTUP_CONF names another sample config (to compare builds that differ in accepted keys).
 * Needs no root.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { REPO, agentCommand, f, isMain, now, pct, sleep, runtimeLine } from './lib/common.mjs';

const N = Number(process.env.BENCH_STARTUP_N ?? 10);

function canConnect(path) {
  return new Promise((r) => {
    const s = connect(path);
    s.once('connect', () => (s.destroy(), r(true)));
    s.once('error', () => r(false));
  });
}

async function status(pid, field) {
  const s = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(s)[1]) / 1024;
}

async function once() {
  const dir = await mkdtemp('/tmp/spiffe-agent-startup-');
  const socketPath = join(dir, 'api.sock');
  await copyFile(join(REPO, 'conf/entries.example.json'), join(dir, 'entries.json'));
  const sample = await readFile(process.env.BENCH_STARTUP_CONF ?? join(REPO, 'conf/agent/agent.conf'), 'utf8');
  const conf = join(dir, 'agent.conf');
  await writeFile(
    conf,
    sample
      .replace(/data_dir\s*=\s*"[^"]*"/, `data_dir = "${dir}/data"`)
      .replace(/socket_path\s*=\s*"[^"]*"/, `socket_path = "${socketPath}"`)
      .replace(/entries_file\s*=\s*"[^"]*"/, `entries_file = "${dir}/entries.json"`),
  );
  const t0 = now();
  const p = spawn('/usr/bin/time', ['-f', 'maxrss_kib=%M', ...agentCommand(['run', '-config', conf]).flat()], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  const exited = new Promise((r) => p.once('exit', r));
  let ready;
  while (ready === undefined) {
    if (p.exitCode !== null) throw new Error(`agent exited: ${err}`);
    if (await canConnect(socketPath)) ready = now() - t0;
    else await sleep(5);
  }
  // The agent is the only child of time(1).
  const agentPid = Number((await readFile(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8')).trim().split(/\s+/)[0]);
  await sleep(2000);
  const rss = await status(agentPid, 'VmRSS');
  const hwm = await status(agentPid, 'VmHWM');
  process.kill(agentPid, 'SIGTERM');
  await exited;
  const tree = Number(/maxrss_kib=(\d+)/.exec(err)?.[1] ?? NaN) / 1024;
  await rm(dir, { recursive: true, force: true });
  return { ready, rss, hwm, tree };
}

export async function run() {
  console.log(`\n### startup: spiffe-agent run on conf/agent/agent.conf → socket accepting (N=${N}) — ${runtimeLine()}`);
  const runs = [];
  for (let i = 0; i < N; i++) runs.push(await once());
  const col = (k) => runs.map((r) => r[k]);
  const line = (label, k, unit) => console.log(`${label.padEnd(44)} p50 ${f(pct(col(k), 50), 1).padStart(7)} ${unit}   max ${f(Math.max(...col(k)), 1).padStart(7)} ${unit}`);
  line('start → socket accepting', 'ready', 'ms');
  line('agent VmRSS, settled 2 s after ready', 'rss', 'MiB');
  line('agent VmHWM (peak)', 'hwm', 'MiB');
  line('largest RSS of any process of the run', 'tree', 'MiB');
  return runs;
}

if (isMain(import.meta.url)) await run();
