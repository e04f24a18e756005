/**
 * Shared pieces of the benchmarks: start the agent under test (ours from dist/, or a
 * spire-agent from SPIRE_AGENT_BIN), spawn client processes under chosen uids, read
 * /proc for RSS and CPU, and print percentiles and ratios in one format.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const AGENT_MAIN = process.env.BENCH_AGENT_MAIN ?? join(REPO, 'dist/src/cli/main.js');

/**
 * The command that starts our agent the way users do: main.js itself, so the node flags its first two
 * lines (sh) give apply. Extra node flags (profiling) mean running node explicitly, with those flags first.
 */
export function agentCommand(args, nodeFlags = [], main = AGENT_MAIN) {
  if (!nodeFlags.length) return [main, args];
  // main.js starts `#!/bin/sh` then `//bin/true; exec node <flags> "$0" "$@"`.
  const [first, second = ''] = readFileSync(main, 'utf8').split('\n', 2);
  const shebang = first.startsWith('#!') && /\bexec node\b/.test(second) ? second.split(/\s+/).filter((w) => w.startsWith('--')) : [];
  return [process.execPath, [...shebang, ...nodeFlags, main, ...args]];
}
/**
 * Which Node.js a figure was measured on: this script's, and the one the agent runs on (main.js
 * execs the `node` found on PATH, which may be another version). Printed in every benchmark's header.
 */
export function runtimeLine() {
  let agentNode = '?';
  try {
    agentNode = execFileSync('node', ['--version']).toString().trim();
  } catch {
    // no node on PATH: the agent cannot start either, and the benchmark says so itself
  }
  const ours = process.version;
  return agentNode === ours ? `node ${ours}` : `node ${ours} (bench), ${agentNode} (agent, the node on PATH)`;
}
export const LIB = dirname(fileURLToPath(import.meta.url));
export const TD = 'example.org';
export const PARENT_ID = `spiffe://${TD}/spire/agent/local`;
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const now = () => performance.timeOrigin + performance.now();

export function uidEntry(path, uid, extra = {}) {
  return { spiffe_id: `spiffe://${TD}${path}`, parent_id: PARENT_ID, selectors: [{ type: 'unix', value: `uid:${uid}` }], ...extra };
}

/** The agents this run measures: ours always, spire-agent when SPIRE_AGENT_BIN is set. */
export function targets() {
  const list = [{ name: 'spiffe-agent', start: startOurs }];
  if (process.env.SPIRE_AGENT_BIN) list.push({ name: 'spire-agent', start: startSpire });
  return list;
}

export function spireNotice() {
  if (process.env.SPIRE_AGENT_BIN) return;
  console.log(
    'spire-agent: not measured here, so no ratio — SPIRE_AGENT_BIN is not set (server-mode.mjs compares both agents on one ' +
      'spire-server v1.13.3 by itself); absolute spiffe-agent numbers follow.',
  );
}

/**
 * spire-agent reads its entries from a SPIRE server the bench cannot write to; this says
 * how many entries a benchmark expects and how to print them as spire-server commands.
 */
export function spireEntriesHint(entries) {
  if (!process.env.SPIRE_AGENT_BIN) return;
  console.log(
    `spire-agent: expects ${entries.length} registration entries on its SPIRE server (parent = the agent's SPIFFE ID); ` +
      'print them with `node bench/run.mjs --print-spire-entries`',
  );
}

/** `spire-server entry create` commands for entries in our entries-file format. */
export function spireEntryCommands(entries) {
  return entries.map((e) => {
    const ttl = e.x509_svid_ttl ? ` -x509SVIDTTL ${e.x509_svid_ttl}` : '';
    const sel = e.selectors.map((s) => ` -selector ${s.type}:${s.value}`).join('');
    const id = e.spiffe_id.replace(`spiffe://${TD}/`, `spiffe://${process.env.SPIRE_TRUST_DOMAIN ?? TD}/`);
    return `spire-server entry create -parentID "$AGENT_ID" -spiffeID ${id}${sel}${ttl}`;
  });
}

class Agent {
  constructor(name, dir, socketPath, entriesPath, proc) {
    this.name = name;
    this.dir = dir;
    this.socketPath = socketPath;
    this.entriesPath = entriesPath;
    this.proc = proc;
    this.logs = [];
    const onData = (c) => {
      for (const l of c.toString('utf8').split('\n')) if (l) this.logs.push(l);
      if (this.logs.length > 5000) this.logs.splice(0, this.logs.length - 5000);
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    this.exited = new Promise((r) => proc.once('exit', () => r()));
  }
  get pid() {
    return this.proc.pid;
  }
  get canEditEntries() {
    return this.entriesPath !== undefined;
  }
  async writeEntries(entries) {
    if (!this.entriesPath) throw new Error(`${this.name}: entries come from its SPIRE server; the bench cannot change them`);
    const tmp = `${this.entriesPath}.tmp`;
    await writeFile(tmp, JSON.stringify({ entries }, null, 2));
    await rename(tmp, this.entriesPath);
  }
  async stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(t);
    }
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
  alive() {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }
}

/** Our daemon on a temp dir, embedded authority, entries file; log level INFO as in production. */
export async function startOurs({ entries, agent = '', unixPluginData = '' }) {
  const dir = await mkdtemp('/tmp/spiffe-agent-bench-');
  await chmod(dir, 0o755);
  await mkdir(join(dir, 'data'), { recursive: true, mode: 0o700 });
  const socketPath = join(dir, 'public', 'api.sock');
  const entriesPath = join(dir, 'entries.json');
  await writeFile(entriesPath, JSON.stringify({ entries }, null, 2));
  const conf = join(dir, 'agent.conf');
  await writeFile(
    conf,
    `agent {
  trust_domain = "${TD}"
  data_dir = "${dir}/data"
  socket_path = "${socketPath}"
  log_level = "INFO"
  ${agent}
}
embedded_authority {
  entries_file = "${entriesPath}"
}
plugins {
  WorkloadAttestor "unix" {
    plugin_data {
      ${unixPluginData}
    }
  }
}
`,
  );
  const proc = spawn(...agentCommand(['run', '-config', conf], process.env.BENCH_AGENT_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_AGENT_PROF] : []), { stdio: ['ignore', 'pipe', 'pipe'] });
  const a = new Agent('spiffe-agent', dir, socketPath, entriesPath, proc);
  await waitReady(a, () => a.logs.some((l) => /Starting (Workload and SDS APIs|Workload API|SDS API)/.test(l)));
  return a;
}

/** spire-agent as configured by SPIRE_AGENT_CONF; its socket from SPIRE_AGENT_SOCKET or the config's socket_path. */
export async function startSpire() {
  const bin = process.env.SPIRE_AGENT_BIN;
  const conf = process.env.SPIRE_AGENT_CONF;
  if (!conf) throw new Error('SPIRE_AGENT_CONF must name the spire-agent config when SPIRE_AGENT_BIN is set');
  const text = readFileSync(conf, 'utf8');
  const socketPath = process.env.SPIRE_AGENT_SOCKET ?? /socket_path\s*=\s*"([^"]+)"/.exec(text)?.[1] ?? '/tmp/spire-agent/public/api.sock';
  if (existsSync(socketPath)) await rm(socketPath, { force: true });
  const proc = spawn(bin, ['run', '-config', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  const a = new Agent('spire-agent', undefined, socketPath, undefined, proc);
  await waitReady(a, () => true);
  await sleep(1000); // entries sync from the server after the socket is up
  return a;
}

async function waitReady(a, logSaysReady, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!a.alive()) throw new Error(`${a.name} exited before it was ready:\n${a.logs.slice(-40).join('\n')}`);
    if (logSaysReady() && (await stat(a.socketPath).catch(() => undefined))?.isSocket() && (await canConnect(a.socketPath))) return;
    await sleep(25);
  }
  throw new Error(`${a.name} not ready within ${timeoutMs} ms:\n${a.logs.slice(-40).join('\n')}`);
}

function canConnect(path) {
  return new Promise((r) => {
    const s = net.connect(path);
    s.once('connect', () => (s.destroy(), r(true)));
    s.once('error', () => r(false));
  });
}

/** Waits until the agent logged `text` `count` times in total (entries reloads). */
export async function waitLog(a, text, count, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (a.logs.filter((l) => l.includes(text)).length < count) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for "${text}" x${count}`);
    await sleep(10);
  }
}

// ---- /proc ---------------------------------------------------------------

export async function rssKiB(pid) {
  const s = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(s)[1]);
}

/** The anonymous part of a process's RSS (heap, stacks; not file pages such as its binary's code), KiB. */
export async function rssAnonKiB(pid) {
  const s = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/RssAnon:\s+(\d+)/.exec(s)[1]);
}

/** utime+stime of a process in milliseconds. */
export function cpuMs(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

// ---- client processes ------------------------------------------------------

/** Runs `node bench/lib/<script> args` as uid/gid; stdout lines go to onLine. */
export function spawnClient(script, args, ids, onLine) {
  const child = spawn(process.execPath, [join(LIB, script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    uid: ids.uid,
    gid: ids.gid,
  });
  let buf = '';
  let err = '';
  child.stdout.on('data', (c) => {
    buf += c.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line) onLine?.(line);
    }
  });
  child.stderr.on('data', (c) => (err += c.toString()));
  child.exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, sig, stderr: err })));
  return child;
}

// ---- numbers ---------------------------------------------------------------

export function pct(values, p) {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export const f = (v, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');

/**
 * One result line per metric: ours, spire-agent's when measured, and the ratio.
 * `results` maps agent name → { metric: number }.
 */
export function report(title, results, unit) {
  console.log(`\n== ${title}`);
  const ours = results['spiffe-agent'] ?? {};
  const spire = results['spire-agent'];
  for (const [metric, v] of Object.entries(ours)) {
    let line = `  ${metric.padEnd(52)} spiffe-agent ${f(v).padStart(9)} ${unit}`;
    if (spire && Number.isFinite(spire[metric])) {
      line += `   spire-agent ${f(spire[metric]).padStart(9)} ${unit}   ratio (spiffe-agent / spire-agent) ${f(v / spire[metric])}`;
    } else if (spire) {
      line += '   spire-agent n/a';
    }
    console.log(line);
  }
}

/** Runs `fn(agent)` for each target, returning name → metrics; the agent is always stopped. */
export async function forEachTarget(opts, fn) {
  const out = {};
  for (const t of targets()) {
    if (t.name === 'spire-agent') spireEntriesHint(opts.entries);
    const agent = await t.start(opts);
    try {
      out[t.name] = await fn(agent, t);
    } finally {
      await agent.stop();
    }
  }
  return out;
}

/** The entry point of a benchmark that may run alone or from run.mjs. */
export function isMain(metaUrl) {
  return process.argv[1] && resolve(process.argv[1]) === fileURLToPath(metaUrl);
}

/**
 * Opens `total` FetchX509SVID streams from `procs` client processes (uids from `uids`),
 * resolving once every stream has its first message. `onMsg({proc, i, t, key})` sees
 * every message. Returns the children (SIGTERM them to close the streams).
 */
export async function openStreams(socketPath, uids, total, onMsg = () => {}, timeoutMs = 60_000) {
  const per = Math.ceil(total / uids.length);
  const children = [];
  const readies = [];
  uids.forEach((uid, p) => {
    const n = Math.min(per, total - p * per);
    let ready;
    readies.push(new Promise((r) => (ready = r)));
    const child = spawnClient('stream-holder.mjs', [socketPath, String(n)], { uid, gid: uid }, (line) => {
      if (line === 'ready') return ready();
      onMsg({ proc: p, ...JSON.parse(line) });
    });
    child.exited.then(({ code, sig, stderr }) => {
      if (sig !== 'SIGTERM' && code !== 0) console.error(`stream holder uid ${uid} exited ${code ?? sig}: ${stderr.trim()}`);
    });
    children.push(child);
  });
  let timer;
  await Promise.race([
    Promise.all(readies),
    new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`streams not all served within ${timeoutMs} ms`)), timeoutMs))),
  ]);
  clearTimeout(timer);
  return children;
}

export async function closeStreams(children) {
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map((c) => c.exited));
}

/**
 * A child whose last `keep` output lines are kept in `p.logs` (for the error a failed round prints),
 * with `p.exited` and `p.stop()` (SIGTERM, then SIGKILL after 10 s).
 */
export function spawnLogged(cmd, args, opts = {}, keep = 2000) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  p.logs = [];
  const on = (c) => {
    for (const l of c.toString().split('\n')) if (l) p.logs.push(l);
    if (p.logs.length > keep) p.logs.splice(0, p.logs.length - keep);
  };
  p.stdout.on('data', on);
  p.stderr.on('data', on);
  p.exited = new Promise((r) => p.once('close', r));
  p.stop = async () => {
    if (p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await p.exited;
    clearTimeout(t);
  };
  return p;
}
