/**
 * A real spire-server v1.13.3 on 127.0.0.1 at a free port, sqlite3 datastore and keys in a temp
 * dir, driven only through its own CLI over its private socket, as an operator would.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SpireBinaries } from './binaries.js';
import { Daemon, freePort, run, tcpOpen, waitFor, type CmdResult } from './proc.js';

export interface SpireServerOptions {
  bins: SpireBinaries;
  trustDomain?: string;
  /** agent SVID TTL, e.g. "1m" (SPIRE default: default_x509_svid_ttl) */
  agentTtl?: string;
  caTtl?: string;
  x509SvidTtl?: string;
  jwtSvidTtl?: string;
  /** NodeAttestor plugins; default { joinToken: true } */
  nodeAttestors?: { joinToken?: boolean; x509pop?: { caBundlePath: string } };
  /**
   * `disk` (default) keeps the CA keys across restart(): with `memory` a restarted server mints a
   * new CA that agents holding the old bundle cannot verify, which is not what an outage test means.
   */
  keyManager?: 'disk' | 'memory';
  /** experimental.cache_reload_interval (SPIRE default 5s); shorter makes entry edits propagate faster. */
  cacheReloadInterval?: string;
  logLevel?: string;
  /** extra lines in server {} and plugins {} */
  serverExtra?: string;
  pluginsExtra?: string;
  /** Extra environment for the server process (e.g. GODEBUG). */
  env?: Record<string, string>;
}

export interface EntryInput {
  spiffe_id: string;
  parent_id: string;
  selectors: { type: string; value: string }[];
  /** a chosen entry ID (`entry create -entryID`); the server makes one otherwise */
  entry_id?: string;
  x509_svid_ttl?: number;
  jwt_svid_ttl?: number;
  hint?: string;
  dns_names?: string[];
  federates_with?: string[];
  admin?: boolean;
  downstream?: boolean;
  [k: string]: unknown;
}

export interface ServerEntry extends EntryInput {
  /** the entry ID as `entry show`/`entry create -output json` report it */
  id: string;
  revision_number?: string | number;
}

export interface AgentInfo {
  id: string;
  attestationType: string;
  serial: string;
  expiresAt: number;
  banned: boolean;
  canReattest: boolean;
  raw: Record<string, unknown>;
}

export interface LocalAuthority {
  authority_id: string;
  expires_at?: string | number;
  upstream_authority_subject_key_id?: string;
}

function spiffeIdString(v: unknown): string {
  if (typeof v === 'string') return v;
  const o = v as { trust_domain?: string; path?: string } | undefined;
  return o?.trust_domain ? `spiffe://${o.trust_domain}${o.path ?? ''}` : '';
}

/** Command words before the first flag, e.g. ["localauthority","x509","prepare"]. */
function splitCommand(args: string[]): [string[], string[]] {
  const i = args.findIndex((a) => a.startsWith('-'));
  return i < 0 ? [args, []] : [args.slice(0, i), args.slice(i)];
}

export class SpireServer {
  daemon!: Daemon;
  bundlePem = '';
  /** PEM of the current trust bundle, refreshed by start() and refreshBundle(). */
  readonly bundlePath: string;
  readonly socketPath: string;
  readonly confPath: string;
  readonly address = '127.0.0.1';

  private constructor(
    readonly opts: SpireServerOptions,
    readonly dir: string,
    readonly port: number,
  ) {
    this.bundlePath = join(dir, 'bundle.pem');
    this.socketPath = join(dir, 'private', 'api.sock');
    this.confPath = join(dir, 'server.conf');
  }

  get trustDomain(): string {
    return this.opts.trustDomain ?? 'example.org';
  }

  static async start(opts: SpireServerOptions): Promise<SpireServer> {
    const dir = await mkdtemp('/tmp/spire-server-');
    await chmod(dir, 0o755);
    const s = new SpireServer(opts, dir, await freePort());
    await writeFile(s.confPath, s.config());
    await s.launch();
    return s;
  }

  private config(): string {
    const o = this.opts;
    const na = o.nodeAttestors ?? { joinToken: true };
    const opt = (k: string, v: string | undefined): string => (v ? `    ${k} = "${v}"\n` : '');
    const km =
      (o.keyManager ?? 'disk') === 'disk'
        ? `    KeyManager "disk" { plugin_data { keys_path = "${this.dir}/keys.json" } }`
        : `    KeyManager "memory" { plugin_data {} }`;
    return `server {
    bind_address = "127.0.0.1"
    bind_port = "${this.port}"
    socket_path = "${this.socketPath}"
    trust_domain = "${this.trustDomain}"
    data_dir = "${this.dir}/data"
    log_level = "${o.logLevel ?? 'DEBUG'}"
${opt('agent_ttl', o.agentTtl)}${opt('ca_ttl', o.caTtl)}${opt('default_x509_svid_ttl', o.x509SvidTtl)}${opt('default_jwt_svid_ttl', o.jwtSvidTtl)}${
      o.cacheReloadInterval ? `    experimental { cache_reload_interval = "${o.cacheReloadInterval}" }\n` : ''
    }${o.serverExtra ?? ''}
}
plugins {
    DataStore "sql" {
        plugin_data {
            database_type = "sqlite3"
            connection_string = "${this.dir}/data/datastore.sqlite3"
        }
    }
${km}
${na.joinToken ? '    NodeAttestor "join_token" { plugin_data {} }\n' : ''}${
      na.x509pop ? `    NodeAttestor "x509pop" { plugin_data { ca_bundle_path = "${na.x509pop.caBundlePath}" } }\n` : ''
    }${o.pluginsExtra ?? ''}
}
`;
  }

  private async launch(): Promise<void> {
    this.daemon = new Daemon('spire-server', this.opts.bins.server, ['run', '-config', this.confPath], join(this.dir, 'server.log'), {
      cwd: this.dir,
      ...(this.opts.env ? { env: { ...process.env, ...this.opts.env } } : {}),
    });
    await waitFor(
      'spire-server to be healthy',
      async () => {
        if (!this.daemon.alive()) throw new Error(`spire-server exited (${this.daemon.exitInfo()})`);
        const h = await this.cli(['healthcheck']);
        return h.code === 0 && (await tcpOpen(this.port)) ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 300, describe: () => this.daemon.tail() },
    );
    await this.refreshBundle();
  }

  /** `spire-server <command words> -socketPath <ours> <flags>`; never throws on a non-zero exit. */
  cli(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<CmdResult> {
    const [cmd, flags] = splitCommand(args);
    return run(this.opts.bins.server, [...cmd, '-socketPath', this.socketPath, ...flags], { timeoutMs: opts.timeoutMs ?? 60_000, input: opts.input });
  }

  /** Like cli() but throws with the output on a non-zero exit; parses stdout as JSON when asked. */
  async cliOk(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<CmdResult> {
    const r = await this.cli(args, opts);
    if (r.code !== 0) throw new Error(`spire-server ${splitCommand(args)[0].join(' ')} failed (exit ${r.code}): ${r.stderr || r.stdout}`);
    return r;
  }

  async cliJson<T = any>(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<T> {
    const r = await this.cliOk([...args, '-output', 'json'], opts);
    return JSON.parse(r.stdout) as T;
  }

  async refreshBundle(): Promise<string> {
    const r = await this.cliOk(['bundle', 'show']);
    this.bundlePem = r.stdout;
    await writeFile(this.bundlePath, r.stdout);
    return r.stdout;
  }

  /** A join token (default TTL 600 s). With spiffeId, the server also makes that ID an alias of the agent. */
  async generateToken(spiffeId?: string, ttlSeconds?: number): Promise<string> {
    const args = ['token', 'generate'];
    if (spiffeId) args.push('-spiffeID', spiffeId);
    if (ttlSeconds) args.push('-ttl', String(ttlSeconds));
    const j = await this.cliJson<{ value: string }>(args);
    if (!j.value) throw new Error('spire-server token generate returned no token');
    return j.value;
  }

  agentIdForToken(token: string): string {
    return `spiffe://${this.trustDomain}/spire/agent/join_token/${token}`;
  }

  /** Creates entries in one `entry create -data` call (batched by the server); returns their ids, in order. */
  async createEntries(entries: EntryInput[]): Promise<ServerEntry[]> {
    const out: ServerEntry[] = [];
    // The CLI sends a file's entries in one BatchCreateEntry; chunks of 500 keep each request well
    // under gRPC's 4 MiB message limit.
    for (let i = 0; i < entries.length; i += 500) {
      const chunk = entries.slice(i, i + 500);
      // Unique per call: tests on one server create entries concurrently.
      const file = join(this.dir, `entries-${randomUUID()}.json`);
      await writeFile(file, JSON.stringify({ entries: chunk }));
      const j = await this.cliJson<{ results: { status: { code?: number; message?: string }; entry?: ServerEntry }[] }>(['entry', 'create', '-data', file], {
        timeoutMs: 120_000,
      });
      await rm(file, { force: true });
      for (const [k, r] of j.results.entries()) {
        if ((r.status.code ?? 0) !== 0 || !r.entry) {
          throw new Error(`entry create: ${chunk[k]?.spiffe_id}: ${r.status.message ?? 'no entry returned'}`);
        }
        out.push({ ...r.entry, spiffe_id: spiffeIdString(r.entry.spiffe_id), parent_id: spiffeIdString(r.entry.parent_id) });
      }
    }
    return out;
  }

  async deleteEntry(id: string): Promise<void> {
    await this.cliOk(['entry', 'delete', '-entryID', id]);
  }

  async showEntries(filter: string[] = []): Promise<ServerEntry[]> {
    const j = await this.cliJson<{ entries?: ServerEntry[] }>(['entry', 'show', ...filter], { timeoutMs: 120_000 });
    return (j.entries ?? []).map((e) => ({ ...e, spiffe_id: spiffeIdString(e.spiffe_id), parent_id: spiffeIdString(e.parent_id) }));
  }

  async listAgents(): Promise<AgentInfo[]> {
    const j = await this.cliJson<{ agents?: Record<string, any>[] }>(['agent', 'list']);
    return (j.agents ?? []).map((a) => ({
      id: spiffeIdString(a.id),
      attestationType: String(a.attestation_type ?? ''),
      serial: String(a.x509svid_serial_number ?? ''),
      expiresAt: Number(a.x509svid_expires_at ?? 0),
      banned: Boolean(a.banned),
      canReattest: Boolean(a.can_reattest),
      raw: a,
    }));
  }

  async evictAgent(spiffeId: string): Promise<void> {
    await this.cliOk(['agent', 'evict', '-spiffeID', spiffeId]);
  }

  async banAgent(spiffeId: string): Promise<void> {
    await this.cliOk(['agent', 'ban', '-spiffeID', spiffeId]);
  }

  // ---- local authorities (spire-server localauthority x509|jwt ...) ----

  async authorities(kind: 'x509' | 'jwt'): Promise<{ active?: LocalAuthority; prepared?: LocalAuthority; old?: LocalAuthority }> {
    return this.cliJson(['localauthority', kind, 'show']);
  }

  async prepareAuthority(kind: 'x509' | 'jwt'): Promise<LocalAuthority> {
    const j = await this.cliJson<{ prepared_authority: LocalAuthority }>(['localauthority', kind, 'prepare']);
    return j.prepared_authority;
  }

  async activateAuthority(kind: 'x509' | 'jwt', authorityId: string): Promise<LocalAuthority> {
    const j = await this.cliJson<{ activated_authority: LocalAuthority }>(['localauthority', kind, 'activate', '-authorityID', authorityId]);
    return j.activated_authority;
  }

  async taintAuthority(kind: 'x509' | 'jwt', authorityId: string): Promise<LocalAuthority> {
    const j = await this.cliJson<{ tainted_authority: LocalAuthority }>(['localauthority', kind, 'taint', '-authorityID', authorityId]);
    return j.tainted_authority;
  }

  async revokeAuthority(kind: 'x509' | 'jwt', authorityId: string): Promise<LocalAuthority> {
    const j = await this.cliJson<{ revoked_authority: LocalAuthority }>(['localauthority', kind, 'revoke', '-authorityID', authorityId]);
    return j.revoked_authority;
  }

  /** Sets a federated bundle (PEM) for another trust domain, e.g. "spiffe://other.org". */
  async setFederatedBundle(trustDomainId: string, pem: string): Promise<void> {
    await this.cliOk(['bundle', 'set', '-id', trustDomainId, '-format', 'pem'], { input: pem });
  }

  logTail(n = 40): string {
    return this.daemon.tail(n);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.daemon.stop(signal);
  }

  /** Stops (if running) and starts again on the same port, config, datastore and keys. */
  async restart(): Promise<void> {
    await this.daemon.stop();
    await this.launch();
  }

  /** Stops the server and removes its dir (kept when INTEROP_KEEP_TMP is set). */
  async destroy(): Promise<void> {
    await this.daemon?.stop();
    if (!process.env.INTEROP_KEEP_TMP) await rm(this.dir, { recursive: true, force: true });
  }
}

export function startSpireServer(opts: SpireServerOptions): Promise<SpireServer> {
  return SpireServer.start(opts);
}
