/**
 * The two agents under test, spire-agent v1.13.3 and spiffe-agent, started from ONE agent.conf
 * writer: the same file runs either of them, which is the drop-in claim the suite checks.
 */
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AGENT_MAIN, type SpireBinaries } from './binaries.js';
import { Daemon, waitFor } from './proc.js';
import type { SpireServer } from './server.js';

export type AgentKind = 'spire-agent' | 'spiffe-agent';
export const AGENT_KINDS: AgentKind[] = ['spire-agent', 'spiffe-agent'];

export interface X509popFiles {
  certificatePath: string;
  privateKeyPath: string;
  intermediatesPath?: string;
}

export interface TpmDevidFiles {
  devicePath?: string;
  certPath: string;
  pubPath: string;
  privPath: string;
  devidPassword?: string;
  ownerHierarchyPassword?: string;
  endorsementHierarchyPassword?: string;
}

export interface HttpChallengeConf {
  hostname?: string;
  agentname?: string;
  port?: number;
  advertisedPort?: number;
}

export interface AgentConf {
  /** Everything of this agent lives here: agent.conf, data/, public/api.sock, agent.log. */
  dir: string;
  trustDomain: string;
  serverAddress: string;
  serverPort: number;
  trustBundlePath?: string;
  insecureBootstrap?: boolean;
  /** join_token in agent {} (default when set), or passed as -joinToken, or in join_token_file. */
  joinToken?: string;
  joinTokenVia?: 'conf' | 'flag' | 'file';
  x509pop?: X509popFiles;
  /** NodeAttestor "sshpop" with these host_key_path and host_cert_path. */
  sshpop?: { keyPath: string; certPath: string };
  /** NodeAttestor "tpm_devid" with these keys (tpm_device_path and the passwords only when set). */
  tpmDevid?: TpmDevidFiles;
  keyManager?: 'disk' | 'memory' | 'tpm';
  /** KeyManager "tpm"'s tpm_device_path (a swtpm socket); its directory is the data_dir. */
  tpmDevicePath?: string;
  /** NodeAttestor "http_challenge" with these keys (each left out when undefined). */
  httpChallenge?: HttpChallengeConf;
  /** Any other NodeAttestor: its name and the lines inside plugin_data. */
  nodeAttestor?: { name: string; data: string };
  logLevel?: string;
  /** experimental { sync_interval = ... } */
  syncInterval?: string;
  /** A command prefix the agent runs under, e.g. `ip netns exec NAME` (test/helpers/cloud/netns.ts). */
  runIn?: readonly string[];
  /** extra lines inside agent {} and plugins {} */
  agentExtra?: string;
  /** spiffe-agent only: the Node.js binary to run it on (default: the test runner's). */
  nodeBin?: string;
  pluginsExtra?: string;
  /** extra top-level blocks after plugins {} (e.g. telemetry {}) */
  topExtra?: string;
}

export function dataDir(c: AgentConf): string {
  return join(c.dir, 'data');
}
export function socketPathOf(c: AgentConf): string {
  return join(c.dir, 'public', 'api.sock');
}
export function confPathOf(c: AgentConf): string {
  return join(c.dir, 'agent.conf');
}

/** A fresh 0755 dir for an agent (the test uids must reach its socket). */
export async function agentDir(prefix = 'agent'): Promise<string> {
  const dir = await mkdtemp(`/tmp/spire-it-${prefix}-`);
  await chmod(dir, 0o755);
  return dir;
}

/** Base agent conf for a server: bundle from the server, everything else under dir. */
export async function agentConfFor(server: SpireServer, extra: Partial<AgentConf> & { joinToken?: string } = {}, prefix = 'agent'): Promise<AgentConf> {
  return {
    dir: extra.dir ?? (await agentDir(prefix)),
    trustDomain: server.trustDomain,
    serverAddress: server.address,
    serverPort: server.port,
    trustBundlePath: server.bundlePath,
    keyManager: 'disk',
    ...extra,
  };
}

/** agent.conf in spire-agent's own HCL, as its docs and conf/agent/agent.conf show it. */
export function renderAgentConf(c: AgentConf): string {
  const lines = [
    `    data_dir = "${dataDir(c)}"`,
    `    log_level = "${c.logLevel ?? 'DEBUG'}"`,
    `    server_address = "${c.serverAddress}"`,
    `    server_port = "${c.serverPort}"`,
    `    socket_path = "${socketPathOf(c)}"`,
    `    trust_domain = "${c.trustDomain}"`,
  ];
  if (c.trustBundlePath) lines.push(`    trust_bundle_path = "${c.trustBundlePath}"`);
  if (c.insecureBootstrap) lines.push('    insecure_bootstrap = true');
  if (c.joinToken && (c.joinTokenVia ?? 'conf') === 'conf') lines.push(`    join_token = "${c.joinToken}"`);
  if (c.joinToken && c.joinTokenVia === 'file') lines.push(`    join_token_file = "${join(c.dir, 'join_token')}"`);
  if (c.syncInterval) lines.push(`    experimental { sync_interval = "${c.syncInterval}" }`);
  if (c.agentExtra) lines.push(c.agentExtra);
  const plugins: string[] = [];
  if (c.x509pop) {
    plugins.push(`    NodeAttestor "x509pop" {
        plugin_data {
            private_key_path = "${c.x509pop.privateKeyPath}"
            certificate_path = "${c.x509pop.certificatePath}"${c.x509pop.intermediatesPath ? `\n            intermediates_path = "${c.x509pop.intermediatesPath}"` : ''}
        }
    }`);
  } else if (c.sshpop) {
    plugins.push(`    NodeAttestor "sshpop" {
        plugin_data {
            host_key_path = "${c.sshpop.keyPath}"
            host_cert_path = "${c.sshpop.certPath}"
        }
    }`);
  } else if (c.tpmDevid) {
    const t = c.tpmDevid;
    const keys: [string, string | undefined][] = [
      ['tpm_device_path', t.devicePath],
      ['devid_cert_path', t.certPath],
      ['devid_pub_path', t.pubPath],
      ['devid_priv_path', t.privPath],
      ['devid_password', t.devidPassword],
      ['owner_hierarchy_password', t.ownerHierarchyPassword],
      ['endorsement_hierarchy_password', t.endorsementHierarchyPassword],
    ];
    const body = keys.filter(([, v]) => v !== undefined).map(([k, v]) => `            ${k} = ${JSON.stringify(v)}`);
    plugins.push(`    NodeAttestor "tpm_devid" {\n        plugin_data {\n${body.join('\n')}\n        }\n    }`);
  } else if (c.httpChallenge) {
    const h = c.httpChallenge;
    const keys = [
      h.hostname !== undefined ? `hostname = "${h.hostname}"` : '',
      h.agentname !== undefined ? `agentname = "${h.agentname}"` : '',
      h.port !== undefined ? `port = ${h.port}` : '',
      h.advertisedPort !== undefined ? `advertised_port = ${h.advertisedPort}` : '',
    ].filter(Boolean);
    plugins.push(`    NodeAttestor "http_challenge" {\n        plugin_data {\n${keys.map((k) => `            ${k}\n`).join('')}        }\n    }`);
  } else if (c.nodeAttestor) {
    plugins.push(`    NodeAttestor "${c.nodeAttestor.name}" {\n        plugin_data {\n${c.nodeAttestor.data}\n        }\n    }`);
  } else {
    plugins.push('    NodeAttestor "join_token" {\n        plugin_data {}\n    }');
  }
  const km = c.keyManager ?? 'disk';
  if (km === 'tpm') {
    const device = c.tpmDevicePath ? `\n            tpm_device_path = "${c.tpmDevicePath}"` : '';
    plugins.push(`    KeyManager "tpm" {\n        plugin_data {\n            directory = "${dataDir(c)}"${device}\n        }\n    }`);
  } else {
    plugins.push(
      km === 'disk'
        ? `    KeyManager "disk" {\n        plugin_data {\n            directory = "${dataDir(c)}"\n        }\n    }`
        : '    KeyManager "memory" {\n        plugin_data {}\n    }',
    );
  }
  plugins.push('    WorkloadAttestor "unix" {\n        plugin_data {}\n    }');
  if (c.pluginsExtra) plugins.push(c.pluginsExtra);
  const top = c.topExtra ? `\n${c.topExtra}\n` : '';
  return `agent {\n${lines.join('\n')}\n}\n\nplugins {\n${plugins.join('\n')}\n}\n${top}`;
}

export async function writeAgentConf(c: AgentConf): Promise<string> {
  await mkdir(dataDir(c), { recursive: true, mode: 0o700 });
  await mkdir(join(c.dir, 'public'), { recursive: true, mode: 0o755 });
  if (c.joinToken && c.joinTokenVia === 'file') await writeFile(join(c.dir, 'join_token'), c.joinToken, { mode: 0o600 });
  const p = confPathOf(c);
  await writeFile(p, renderAgentConf(c));
  return p;
}

export interface StartAgentOptions {
  /** Wait until the Workload API socket is up (default true). */
  waitReady?: boolean;
  readyTimeoutMs?: number;
}

export class AgentHandle {
  daemon!: Daemon;
  /** Milliseconds from spawn to the Workload API socket appearing (set by start/restart). */
  startToServingMs = 0;

  constructor(
    readonly kind: AgentKind,
    readonly conf: AgentConf,
    private readonly bins: SpireBinaries,
  ) {}

  get socketPath(): string {
    return socketPathOf(this.conf);
  }
  get endpoint(): string {
    return `unix://${this.socketPath}`;
  }
  get dataDir(): string {
    return dataDir(this.conf);
  }

  private command(): [string, string[]] {
    const conf = confPathOf(this.conf);
    const extra = this.conf.joinToken && this.conf.joinTokenVia === 'flag' ? ['-joinToken', this.conf.joinToken] : [];
    const [cmd, args]: [string, string[]] =
      this.kind === 'spire-agent' ? [this.bins.agent, ['run', '-config', conf, ...extra]] : [this.conf.nodeBin ?? process.execPath, [AGENT_MAIN, 'run', '-config', conf, ...extra]];
    const [pre, ...preArgs] = this.conf.runIn ?? [];
    return pre === undefined ? [cmd, args] : [pre, [...preArgs, cmd, ...args]];
  }

  async start(o: StartAgentOptions = {}): Promise<this> {
    await writeAgentConf(this.conf);
    await rm(this.socketPath, { force: true });
    const [cmd, args] = this.command();
    const t0 = Date.now();
    this.daemon = new Daemon(this.kind, cmd, args, join(this.conf.dir, `${this.kind}.log`), { cwd: this.conf.dir });
    if (o.waitReady ?? true) {
      await this.waitServing(o.readyTimeoutMs ?? 90_000);
      this.startToServingMs = Date.now() - t0;
    }
    return this;
  }

  async waitServing(timeoutMs = 90_000): Promise<void> {
    await waitFor(
      `${this.kind} to serve the Workload API on ${this.socketPath}`,
      async () => {
        if (!this.daemon.alive()) throw new Error(`${this.kind} exited (${this.daemon.exitInfo()})`);
        const st = await stat(this.socketPath).catch(() => undefined);
        return st?.isSocket() ? true : undefined;
      },
      { timeoutMs, intervalMs: 100, describe: () => `${this.kind} log tail:\n${this.daemon.tail()}` },
    );
  }

  /** Waits for the process to exit on its own (e.g. refused attestation); returns its log. */
  async waitExit(timeoutMs = 60_000): Promise<string> {
    await waitFor(`${this.kind} to exit`, () => (this.daemon.alive() ? undefined : true), {
      timeoutMs,
      describe: () => this.daemon.tail(),
    });
    return this.daemon.lines.join('\n');
  }

  logTail(n = 40): string {
    return `${this.kind} log tail:\n${this.daemon?.tail(n) ?? '(not started)'}`;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.daemon?.stop(signal);
  }

  /** kill -9: no chance to flush or clean up. */
  async kill9(): Promise<void> {
    await this.daemon?.stop('SIGKILL');
  }

  /** Stops this agent and removes its dir (kept when INTEROP_KEEP_TMP is set). */
  async destroy(): Promise<void> {
    await this.stop();
    if (!process.env.INTEROP_KEEP_TMP) await rm(this.conf.dir, { recursive: true, force: true });
  }
}

export async function startAgent(kind: AgentKind, bins: SpireBinaries, conf: AgentConf, o: StartAgentOptions = {}): Promise<AgentHandle> {
  return new AgentHandle(kind, conf, bins).start(o);
}

export function startSpireAgent(bins: SpireBinaries, conf: AgentConf, o: StartAgentOptions = {}): Promise<AgentHandle> {
  return startAgent('spire-agent', bins, conf, o);
}

export function startSpiffeAgent(bins: SpireBinaries, conf: AgentConf, o: StartAgentOptions = {}): Promise<AgentHandle> {
  return startAgent('spiffe-agent', bins, conf, o);
}
