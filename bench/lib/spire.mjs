/**
 * The pieces bench/server-mode.mjs needs around a real SPIRE: the binaries (scripts/spire.sh, which
 * builds v1.13.3 once and then answers from its cache), one spire-server on 127.0.0.1 with sqlite3,
 * the same agent.conf for spire-agent and spiffe-agent, and the go-spiffe bench client built from
 * bench/go-client (go.mod + go.sum, -mod=readonly). Plain ESM twin of test/helpers/spire, kept small.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { REPO, agentCommand, sleep } from './common.mjs';

export const TD = 'example.org';

export function spireBins() {
  if (process.env.SPIRE_BIN_DIR) return { dir: process.env.SPIRE_BIN_DIR, server: join(process.env.SPIRE_BIN_DIR, 'spire-server'), agent: join(process.env.SPIRE_BIN_DIR, 'spire-agent') };
  console.log('spire: scripts/spire.sh (cached after the first build; a cold build takes 15-20 min)');
  const r = spawnSync('bash', [join(REPO, 'scripts/spire.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`scripts/spire.sh failed (exit ${r.status}); SPIRE is needed for the server-mode bench`);
  const dir = r.stdout.trim().split('\n').pop();
  return { dir, server: join(dir, 'spire-server'), agent: join(dir, 'spire-agent'), version: execFileSync('bash', [join(REPO, 'scripts/spire.sh'), '--version']).toString().trim() };
}

/** Builds bench/go-client into bench/.cache (stamped by its sources and the Go version). */
export function benchClient() {
  const src = join(REPO, 'bench/go-client');
  const out = join(REPO, 'bench/.cache/bench-client');
  const h = createHash('sha256').update(execFileSync('go', ['env', 'GOVERSION'], { env: { ...process.env, GOTOOLCHAIN: 'local' } }));
  for (const f of readdirSync(src).sort()) if (/\.(go|mod|sum)$/.test(f)) h.update(readFileSync(join(src, f)));
  const want = h.digest('hex');
  if (existsSync(out) && existsSync(`${out}.stamp`) && readFileSync(`${out}.stamp`, 'utf8') === want) return out;
  console.log('bench: building bench/go-client (go-spiffe v2, -mod=readonly)');
  execFileSync('go', ['build', '-trimpath', '-o', out, '.'], {
    cwd: src,
    stdio: 'inherit',
    env: { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=readonly -buildvcs=false', CGO_ENABLED: '0' },
  });
  execFileSync('bash', ['-c', `echo -n ${want} > ${out}.stamp`]);
  return out;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function runCmd(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => (stderr += c));
    const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    p.once('error', reject);
    p.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

class Proc {
  constructor(name, cmd, args, opts = {}) {
    this.name = name;
    this.logs = [];
    this.proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    const on = (c) => {
      for (const l of c.toString().split('\n')) if (l) this.logs.push(l);
      if (this.logs.length > 2000) this.logs.splice(0, this.logs.length - 2000);
    };
    this.proc.stdout.on('data', on);
    this.proc.stderr.on('data', on);
    this.exited = new Promise((r) => this.proc.once('exit', r));
  }
  get pid() {
    return this.proc.pid;
  }
  alive() {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }
  async stop() {
    if (!this.alive()) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(t);
  }
}

export async function startServer(bins) {
  const dir = await mkdtemp('/tmp/spire-bench-server-');
  const port = await freePort();
  const socketPath = join(dir, 'api.sock');
  await writeFile(
    join(dir, 'server.conf'),
    `server {
    bind_address = "127.0.0.1"
    bind_port = "${port}"
    socket_path = "${socketPath}"
    trust_domain = "${TD}"
    data_dir = "${dir}/data"
    log_level = "WARN"
}
plugins {
    DataStore "sql" { plugin_data { database_type = "sqlite3" connection_string = "${dir}/data/datastore.sqlite3" } }
    KeyManager "memory" { plugin_data {} }
    NodeAttestor "join_token" { plugin_data {} }
}
`,
  );
  const proc = new Proc('spire-server', bins.server, ['run', '-config', join(dir, 'server.conf')], { cwd: dir });
  const cli = async (cmd, flags = [], opts = {}) => {
    const r = await runCmd(bins.server, [...cmd, '-socketPath', socketPath, ...flags], opts);
    if (r.code !== 0) throw new Error(`spire-server ${cmd.join(' ')}: ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (!proc.alive()) throw new Error(`spire-server exited:\n${proc.logs.slice(-20).join('\n')}`);
    if ((await runCmd(bins.server, ['healthcheck', '-socketPath', socketPath])).code === 0) break;
    if (Date.now() > deadline) throw new Error('spire-server not healthy within 60 s');
    await sleep(200);
  }
  const bundlePath = join(dir, 'bundle.pem');
  await writeFile(bundlePath, await cli(['bundle', 'show']));
  return {
    dir,
    port,
    bundlePath,
    proc,
    cli,
    async token(alias) {
      return JSON.parse(await cli(['token', 'generate'], ['-spiffeID', alias, '-output', 'json'])).value;
    },
    async createEntries(entries) {
      for (let i = 0; i < entries.length; i += 500) {
        const f = join(dir, `entries-${i}.json`);
        await writeFile(f, JSON.stringify({ entries: entries.slice(i, i + 500) }));
        await cli(['entry', 'create'], ['-data', f, '-output', 'json'], { timeoutMs: 300_000 });
      }
    },
    async stop() {
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** One agent.conf for either agent (the drop-in claim). */
export async function agentConf(server, token, name) {
  const dir = await mkdtemp(`/tmp/spire-bench-${name}-`);
  await chmod(dir, 0o755);
  await mkdir(join(dir, 'data'), { mode: 0o700 });
  await mkdir(join(dir, 'public'), { mode: 0o755 });
  const socketPath = join(dir, 'public', 'api.sock');
  const confPath = join(dir, 'agent.conf');
  await writeFile(
    confPath,
    `agent {
    data_dir = "${dir}/data"
    log_level = "INFO"
    server_address = "127.0.0.1"
    server_port = "${server.port}"
    socket_path = "${socketPath}"
    trust_bundle_path = "${server.bundlePath}"
    trust_domain = "${TD}"
    join_token = "${token}"
}
plugins {
    NodeAttestor "join_token" { plugin_data {} }
    KeyManager "disk" { plugin_data { directory = "${dir}/data" } }
    WorkloadAttestor "unix" { plugin_data {} }
}
`,
  );
  return { dir, socketPath, confPath };
}

/** Starts an agent on conf; resolves with the process once its socket accepts connections. */
export async function startAgentProc(kind, bins, conf, timeoutMs = 120_000) {
  await rm(conf.socketPath, { force: true });
  const [cmd, args] = kind === 'spire-agent' ? [bins.agent, ['run', '-config', conf.confPath]] : agentCommand(['run', '-config', conf.confPath]);
  const t0 = performance.now();
  const p = new Proc(kind, cmd, args, { cwd: conf.dir });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!p.alive()) throw new Error(`${kind} exited before serving:\n${p.logs.slice(-15).join('\n')}`);
    if ((await stat(conf.socketPath).catch(() => undefined))?.isSocket()) break;
    if (Date.now() > deadline) throw new Error(`${kind} not serving within ${timeoutMs} ms:\n${p.logs.slice(-15).join('\n')}`);
    await sleep(10);
  }
  p.socketMs = performance.now() - t0;
  p.t0 = t0;
  return p;
}

/** A copy of the bench client in a 0755 dir, so the test uids can run it. */
export async function clientCopy(built) {
  const dir = await mkdtemp('/tmp/spire-bench-client-');
  await chmod(dir, 0o755);
  const p = join(dir, 'bench-client');
  await copyFile(built, p);
  await chmod(p, 0o755);
  return { path: p, dir };
}

export function runClient(client, socketPath, uid, args, timeoutMs = 120_000) {
  return runCmd(client, args, {
    uid,
    gid: uid,
    cwd: '/',
    env: { SPIFFE_ENDPOINT_SOCKET: `unix://${socketPath}`, PATH: '/usr/bin:/bin' },
    timeoutMs,
  });
}

/** Like runClient, but `ready` resolves when the client prints its {"ready":true} line. */
export function watchClient(client, socketPath, uid, args, timeoutMs = 150_000) {
  const p = spawn(client, args, {
    uid,
    gid: uid,
    cwd: '/',
    env: { SPIFFE_ENDPOINT_SOCKET: `unix://${socketPath}`, PATH: '/usr/bin:/bin' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let onReady;
  const ready = new Promise((r) => (onReady = r));
  p.stdout.on('data', (c) => {
    stdout += c;
    if (stdout.includes('"ready":true')) onReady();
  });
  p.stderr.on('data', (c) => (stderr += c));
  const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  const done = new Promise((resolve) =>
    p.once('close', (code) => {
      clearTimeout(t);
      onReady();
      resolve({ code, stdout, stderr });
    }),
  );
  return { ready, done };
}
