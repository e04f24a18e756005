/**
 * The agent's session with a SPIRE server (ServerSession): trust bootstrap, node attestation or
 * resume from data_dir, the mTLS channel B's authority calls through, and the agent SVID's
 * rotation and refusal handling (./agent-rotation.ts). State on disk is spire-agent's own
 * (agent-data.json, keys.json), so either agent can take over the other's data_dir.
 */
import { statusName, type CallHandle, type Metrics } from '../../telemetry/metrics/index.js';
import { isIP } from 'node:net';
import type { NodeAttestor } from '../../attestation/node/types.js';
import type { Clock } from '../../clock.js';
import { nextAgentSVIDKeyId, type KeyManager, type ManagedKey } from '../../keymanager/types.js';
import { ensurePrivateDir } from '../../storage/atomic-file.js';
import type { Logger } from '../../telemetry/logger.js';
import { AgentStorage } from './agent-storage.js';
import { chainsToAny, findKeyForSVID, isSVIDExpired, leafInfo, loggableAgentId, type AgentSVIDState } from './agent-svid.js';
import { AgentRotation } from './agent-rotation.js';
import { attestAgent, makeAgentCSR, renewAgent } from './attest-agent.js';
import { BootstrapTrust, type BootstrapOptions } from './bootstrap.js';
import { BOOTSTRAP_MAX_ELAPSED_MS, REBOOTSTRAP_MAX_ELAPSED_MS, retryBootstrap } from './bootstrap-retry.js';
import { loadServiceConstructors, openServerChannel, rawUnary, serverTarget, type ServerChannel } from './clients.js';
import { SERVER_CALL_TIMEOUT_MS } from './rpc.js';
import { SessionError } from './session-errors.js';
import type { AgentSVIDStatus, ServerClients, ServerSession } from './session.js';
import { insecureCredentials, isUnknownAuthorityError, serverCredentials, serverIdOf, tlsFailureReason, type TlsPolicy } from './tls.js';
import { decodeBundleX509 } from './wire.js';

/** The agent {} keys the session uses; ServerSettings plus trust_domain/data_dir fit it structurally. */
export interface ServerSessionOptions extends BootstrapOptions {
  readonly serverAddress: string;
  readonly dataDir: string;
  readonly rebootstrapMode: 'never' | 'auto' | 'always';
  readonly rebootstrapDelayMs: number;
  /** 0 = half-life rule. */
  readonly availabilityTargetMs: number;
  /** retry_bootstrap: keep retrying node attestation with backoff (spire-agent's limits). */
  readonly retryBootstrap?: boolean;
  /** experimental.require_pq_kem: offer only the X25519MLKEM768 key exchange to the server. */
  readonly requirePqKem?: boolean;
}

export interface ServerSessionDeps {
  readonly options: ServerSessionOptions;
  readonly log: Logger;
  readonly clock: Clock;
  /**
   * The agent builds both from plugins {} (their catalogs) and owns them: the session uses
   * them, never closes them, and knows nothing of their config.
   */
  readonly keyManager: KeyManager;
  readonly nodeAttestor: NodeAttestor;
  /** trust_bundle_spiffe_workload_api's fetch (a Workload API client, which this layer may not import). */
  readonly workloadApiBundle?: ((address: string, trustDomain: string) => Promise<Uint8Array[]>) | undefined;
  /** spire-agent's node_attestor_new_svid, node_attest and agent_svid_rotate call metrics. */
  readonly metrics?: Metrics;
}

/** Old channels keep serving calls already started on them for this long after a swap. */
const CHANNEL_GRACE_MS = 60_000;

export function createServerSession(deps: ServerSessionDeps): ServerSession {
  return new Session(deps);
}

class Session implements ServerSession {
  private readonly o: ServerSessionOptions;
  private readonly log: Logger;
  private readonly serverId: string;
  private readonly target: string;
  private readonly sni: string | undefined;
  private readonly tlsPolicy: TlsPolicy;
  private readonly ctors = loadServiceConstructors();
  private storage: AgentStorage | undefined;
  private bootstrap: BootstrapTrust | undefined;
  private readonly km: KeyManager;
  private readonly attestor: NodeAttestor;
  private readonly m: { newSvid: CallHandle; reattest: CallHandle; rotate: CallHandle } | undefined;
  private state: AgentSVIDState | undefined;
  private bundle: readonly Uint8Array[] = [];
  private channel: ServerChannel | undefined;
  private rotation: AgentRotation | undefined;
  private readonly fatalListeners = new Set<(err: Error) => void>();
  private readonly retiring = new Set<() => void>();
  private closed = false;
  private swapGeneration = 0;
  /** rebootstrap_mode in effect (spire-agent turns "auto" off for non-re-attestable nodes). */
  private mode: 'never' | 'auto' | 'always' = 'never';

  constructor(private readonly d: ServerSessionDeps) {
    this.o = d.options;
    this.log = d.log;
    this.km = d.keyManager;
    this.attestor = d.nodeAttestor;
    const metrics = d.metrics;
    this.m = metrics?.enabled
      ? {
          newSvid: metrics.call(['node', 'attestor', 'new_svid'], ['attestor']),
          reattest: metrics.call(['node', 'attest']),
          rotate: metrics.call(['agent_svid', 'rotate']),
        }
      : undefined;
    this.serverId = serverIdOf(this.o.trustDomain);
    this.target = serverTarget(this.o.serverAddress, this.o.serverPort);
    this.tlsPolicy = { requirePqKem: this.o.requirePqKem };
    this.sni = isIP(this.o.serverAddress.replace(/^\[|\]$/g, '')) ? this.o.trustDomain : undefined;
  }

  async start(signal: AbortSignal): Promise<void> {
    const o = this.o;
    await ensurePrivateDir(o.dataDir);
    const storage = await AgentStorage.open(o.dataDir);
    this.storage = storage;
    this.bootstrap = new BootstrapTrust({ options: o, storage, clock: this.d.clock, log: this.log, workloadApiBundle: this.d.workloadApiBundle });
    this.bootstrap.init();
    let rebootstrapMode = o.rebootstrapMode;
    const stored = storage.svid();
    if (rebootstrapMode !== 'never' && stored.chain.length > 0 && !stored.reattestable) rebootstrapMode = this.refuseRebootstrap(rebootstrapMode);
    this.mode = rebootstrapMode;
    const obtain = () => this.obtainSVID(signal);
    if (o.retryBootstrap) {
      const maxElapsedMs = rebootstrapMode === 'never' ? BOOTSTRAP_MAX_ELAPSED_MS : REBOOTSTRAP_MAX_ELAPSED_MS;
      await retryBootstrap(obtain, { clock: this.d.clock, log: this.log, maxElapsedMs, signal });
    } else await obtain();
    if (this.mode !== 'never' && this.state && !this.state.reattestable) this.mode = this.refuseRebootstrap(this.mode);
    await this.swapChannel();
    this.rotation = new AgentRotation({
      clock: this.d.clock,
      log: this.log,
      availabilityTargetMs: o.availabilityTargetMs,
      current: () => this.current(),
      renew: (sig) => this.renew(sig),
      reattest: (sig) => this.attest(this.current().key, false, sig),
      deleteSVID: () => storage.deleteSVID(),
      fatal: (err) => this.fatal(err),
    });
    this.rotation.start();
  }

  /** Bundle (cached, else bootstrap) and SVID (stored and valid with its key, else attest): spire-agent's Attest(). */
  private async obtainSVID(signal: AbortSignal): Promise<void> {
    const storage = this.storage as AgentStorage;
    const bootstrap = this.bootstrap as BootstrapTrust;
    const stored = storage.svid();
    let bundle = storage.bundle();
    let insecure = false;
    if (bundle.length === 0) {
      const b = await bootstrap.fetch();
      bundle = b.certs;
      insecure = b.insecure;
      if (insecure) this.log.warn('Insecure bootstrap enabled; skipping server certificate verification');
    } else this.log.info({ trust_domain: this.o.trustDomain }, 'Bundle loaded');
    this.bundle = bundle;

    const keys = await this.km.getKeys();
    const leaf = stored.chain[0];
    const key = findKeyForSVID(keys, leaf);
    const now = this.d.clock.now();
    const expired = leaf !== undefined && isSVIDExpired(leafInfo(leaf).notAfter, now);
    if (leaf && key && !expired) {
      this.state = this.toState(stored.chain, key, stored.reattestable, now);
      this.log.info({ spiffe_id: loggableAgentId(this.state.spiffeId) }, 'SVID loaded');
      return;
    }
    if (leaf && key) this.log.warn({ expiry: new Date(leafInfo(leaf).notAfter).toISOString() }, 'SVID key recovered, but SVID is expired. Generating new keypair');
    else if (leaf && keys.length === 0) this.log.warn('SVID recovered, but no keys found. Generating new keypair');
    else if (leaf) this.log.warn('SVID recovered, but no SVID key found. Generating new keypair');
    else if (keys.length > 0) this.log.warn('Keys recovered, but no SVID found. Generating new keypair');
    this.log.info('SVID is not found. Starting node attestation');
    try {
      await this.attest(key, insecure, signal);
    } catch (err) {
      throw await this.attestationFailure(err, leaf !== undefined && !stored.reattestable, this.mode);
    }
    await bootstrap.succeeded();
    // succeeded() stores the bootstrap bundle; the server's bundle is the one to keep.
    await storage.storeBundle(this.bundle);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.rotation?.stop();
    for (const retire of this.retiring) retire();
    this.retiring.clear();
    this.channel?.close();
    this.channel = undefined;
  }

  clients(): ServerClients {
    if (!this.channel) throw new SessionError('session_closed', 'session: not started (or closed); call start() first');
    return this.channel;
  }

  agentSVID(): AgentSVIDStatus {
    const s = this.current();
    return { spiffeId: s.spiffeId, chain: s.chain, notAfter: s.notAfter, renewedAt: s.renewedAt };
  }

  async updateBundle(x509Authorities: readonly Uint8Array[]): Promise<void> {
    if (x509Authorities.length === 0 || sameCerts(x509Authorities, this.bundle)) return;
    this.bundle = x509Authorities.map((c) => new Uint8Array(c));
    await this.storage?.storeBundle(this.bundle);
    await this.swapChannel();
  }

  onFatal(listener: (err: Error) => void): () => void {
    this.fatalListeners.add(listener);
    return () => this.fatalListeners.delete(listener);
  }

  serverAnsweredAgain(): void {
    // Only renews when the SVID is due (tick decides); a check already running is shared.
    if (!this.closed) void this.rotation?.tick();
  }

  notifyTaintedAuthorities(tainted: readonly Uint8Array[]): void {
    if (tainted.length === 0 || !this.state || !this.rotation) return;
    if (chainsToAny(this.state.chain, tainted)) this.rotation.markTainted();
  }

  /** A PermissionDenied from sync or signing: re-attest or stop, as spire-agent's manager does. */
  async handleServerError(err: unknown): Promise<void> {
    if (isUnknownAuthorityError(err)) return this.onUnknownAuthority(err);
    await this.rotation?.handleServerError(err);
  }

  /**
   * The server presented a chain our bundle cannot verify (spire-agent's manager): with
   * rebootstrap_mode "never" the agent stops; otherwise, once rebootstrap_delay has passed since
   * the first such failure, data_dir is marked for rebootstrap and the agent stops so the next
   * start fetches the bootstrap bundle and attests again.
   */
  private async onUnknownAuthority(err: unknown): Promise<void> {
    const detail = tlsFailureReason(err);
    const base = `session: the SPIRE server at ${this.target} presented a certificate chain the agent's trust bundle cannot verify (${detail})`;
    if (this.mode === 'never') {
      this.rotation?.stop();
      this.fatal(new SessionError('server_unknown_authority', `${base}; failed to sync with SPIRE Server. Set rebootstrap_mode = "auto" to rebootstrap, or restore the server's CA`, { cause: err }));
      return;
    }
    const bs = this.bootstrap as BootstrapTrust;
    const waited = await bs.sinceStartMs();
    if (waited < this.o.rebootstrapDelayMs) {
      this.log.info({ time_left: `${Math.ceil((this.o.rebootstrapDelayMs - waited) / 1000)}s` }, "Trust bundle and server don't agree; ignoring for now");
      return;
    }
    this.log.warn("Trust bundle and server don't agree; rebootstrapping");
    this.rotation?.stop();
    await bs.forceRebootstrap();
    this.fatal(new SessionError('rebootstrap_required', `${base}; data_dir marked for rebootstrap: restart the agent to fetch the bootstrap bundle and attest again`, { cause: err }));
  }

  private current(): AgentSVIDState {
    if (!this.state) throw new SessionError('session_closed', 'session: no agent SVID yet; call start() first');
    return this.state;
  }

  private toState(chain: readonly Uint8Array[], key: ManagedKey, reattestable: boolean, renewedAt: number): AgentSVIDState {
    const info = leafInfo(chain[0] as Uint8Array);
    return { chain, key, reattestable, spiffeId: info.spiffeId, notBefore: info.notBefore, notAfter: info.notAfter, renewedAt };
  }

  /** A fresh key in the other slot, AttestAgent on a channel without a client certificate, then GetBundle on it. */
  private async attest(currentKey: ManagedKey | undefined, insecure: boolean, signal: AbortSignal): Promise<void> {
    // spire-agent counts a first attestation per attestor and a re-attestation apart.
    const m = this.m;
    if (!m) return this.attestOnce(currentKey, insecure, signal);
    const t0 = performance.now();
    try {
      await this.attestOnce(currentKey, insecure, signal);
      if (currentKey) m.reattest.done('OK', performance.now() - t0);
      else m.newSvid.done('OK', performance.now() - t0, this.attestor.name);
    } catch (err) {
      if (currentKey) m.reattest.done(statusName(err), performance.now() - t0);
      else m.newSvid.done(statusName(err), performance.now() - t0, this.attestor.name);
      throw err;
    }
  }

  private async attestOnce(currentKey: ManagedKey | undefined, insecure: boolean, signal: AbortSignal): Promise<void> {
    const km = this.km;
    const key = await km.generateKey(nextAgentSVIDKeyId(currentKey));
    const csr = await makeAgentCSR(key);
    const creds = insecure
      ? await insecureCredentials(this.o.serverAddress, this.o.serverPort, this.serverId, signal, this.tlsPolicy)
      : serverCredentials(this.bundle, this.serverId, undefined, this.tlsPolicy);
    const ch = openServerChannel(this.ctors, this.target, creds, this.sni);
    try {
      const res = await attestAgent(ch.agent, csr, this.attestor, signal);
      const raw = await rawUnary(ch.bundle, '/spire.api.server.bundle.v1.Bundle/GetBundle', new Uint8Array(), SERVER_CALL_TIMEOUT_MS);
      const b = decodeBundleX509(raw);
      const authorities = b.x509.map((a) => a.der).filter((d) => d.length > 0);
      if (authorities.length === 0) throw new SessionError('attestation_protocol', 'client: failed to get updated bundle: server returned no X.509 authorities');
      this.state = this.toState(res.chain, key, res.reattestable, this.d.clock.now());
      this.bundle = authorities;
      await this.storage?.storeSVID(res.chain, res.reattestable);
      await this.storage?.storeBundle(authorities);
      this.log.info({ spiffe_id: loggableAgentId(this.state.spiffeId), reattestable: res.reattestable }, 'Node attestation was successful');
      if (this.channel) await this.swapChannel();
    } finally {
      ch.close();
    }
  }

  /** RenewAgent over the current mTLS channel with a CSR for a key in the other slot. */
  private async renew(signal: AbortSignal): Promise<void> {
    const m = this.m;
    if (!m) return this.renewOnce(signal);
    const t0 = performance.now();
    try {
      await this.renewOnce(signal);
      m.rotate.done('OK', performance.now() - t0);
    } catch (err) {
      m.rotate.done(statusName(err), performance.now() - t0);
      throw err;
    }
  }

  private async renewOnce(signal: AbortSignal): Promise<void> {
    const cur = this.current();
    const key = await this.km.generateKey(nextAgentSVIDKeyId(cur.key));
    const csr = await makeAgentCSR(key);
    const chain = await renewAgent(this.clients().agent, csr, signal);
    this.state = this.toState(chain, key, false, this.d.clock.now());
    await this.storage?.storeSVID(chain, false);
    this.log.info({ spiffe_id: loggableAgentId(this.state.spiffeId) }, 'Successfully rotated agent SVID');
    await this.swapChannel();
  }

  /**
   * New channel on the current SVID and bundle; the old one stays open for calls in flight. The
   * key manager hands out the private key for TLS only here (ManagedKey.unsealForTLS).
   */
  private async swapChannel(): Promise<void> {
    if (this.closed) return;
    const gen = ++this.swapGeneration;
    const s = this.current();
    const key = await s.key.unsealForTLS();
    // A later swap (a rotation or bundle change while the key was unsealed) carries newer state.
    if (this.closed || gen !== this.swapGeneration) return;
    const next = openServerChannel(this.ctors, this.target, serverCredentials(this.bundle, this.serverId, { chain: s.chain, key }, this.tlsPolicy), this.sni);
    const old = this.channel;
    this.channel = next;
    if (old) {
      const retire = () => {
        cancel();
        this.retiring.delete(retire);
        old.close();
      };
      const cancel = this.d.clock.setTimer(CHANNEL_GRACE_MS, retire);
      this.retiring.add(retire);
    }
  }

  private refuseRebootstrap(mode: 'auto' | 'always' | 'never'): 'never' {
    const msg = 'you have requested rebootstrap support but the NodeAttestor plugin or the spire server configuration is not allowing it';
    if (mode === 'always') throw new SessionError('rebootstrap_required', `session: ${msg}; set rebootstrap_mode = "auto" or "never", or use a re-attestable node attestor`);
    this.log.warn(`${msg}. Disabling`);
    return 'never';
  }

  /** Turns an attestation failure into the error a user can act on (and marks rebootstrap when due). */
  private async attestationFailure(err: unknown, usedNonReattestable: boolean, mode: 'never' | 'auto' | 'always'): Promise<Error> {
    const e = err as Error & { code?: number; details?: string };
    if (isUnknownAuthorityError(err)) {
      const bs = this.bootstrap as BootstrapTrust;
      const base = `client: the SPIRE server at ${this.target} presented a certificate chain the agent's trust bundle cannot verify (${tlsFailureReason(err)})`;
      if (bs.isBootstrap || mode === 'never') {
        return new SessionError('server_unknown_authority', `${base}; check trust_bundle_path/trust_bundle_url points at this server's bundle (spire-server bundle show)`, { cause: err });
      }
      const waited = await bs.sinceStartMs();
      if (waited < this.o.rebootstrapDelayMs) {
        return new SessionError('server_unknown_authority', `${base}; rebootstrap in ${Math.ceil((this.o.rebootstrapDelayMs - waited) / 1000)}s (rebootstrap_delay)`, { cause: err });
      }
      await bs.forceRebootstrap();
      return new SessionError('rebootstrap_required', `${base}; agent data marked for rebootstrap: restart the agent to fetch the bootstrap bundle and attest again`, { cause: err });
    }
    if (usedNonReattestable && (e.code === 3 /* INVALID_ARGUMENT */ || (e as { code?: unknown }).code === 'node_attestor_config')) {
      return new SessionError(
        'not_reattestable',
        `session: the stored agent SVID in ${this.storage?.path} expired or lost its key, and ${this.attestor.name} attestation cannot be repeated (${e.details ?? e.message}); generate a new join token (spire-server token generate) and set join_token`,
        { cause: err },
      );
    }
    if (err instanceof Error && 'code' in err && typeof (err as { code: unknown }).code === 'string') return err;
    const said = e.details ?? e.message;
    const hint = this.attestor.explainRefusal?.(said);
    return new SessionError('attestation_failed', `session: node attestation with ${this.attestor.name} failed: ${said}${hint ? `; ${hint}` : ''}`, { cause: err });
  }

  private fatal(err: Error): void {
    for (const l of this.fatalListeners) l(err);
  }
}

function sameCerts(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return a.length === b.length && a.every((c, i) => Buffer.compare(Buffer.from(c), Buffer.from(b[i] as Uint8Array)) === 0);
}
