/**
 * The one place that wires the agent together: config in, components constructed
 * with their dependencies, started in order, closed in reverse.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { WorkloadAttestation } from '../attestation/workload/attest.js';
import { createAuthority, type AuthorityFactoryDeps, type ServerPlugins } from '../authority/factory.js';
import type { Authority } from '../authority/types.js';
import { CacheManager } from '../cache/manager.js';
import type { Clock } from '../clock.js';
import type { PluginContext } from '../config/plugin-catalog.js';
import type { AgentConfig } from '../config/types.js';
import { ConfigError } from '../config/errors.js';
import { openTpm as defaultOpenTpm, type OpenTpm } from '../tpm/open-tpm.js';
import { SpiffeAgentError } from '../errors.js';
import { buildGrpcServer } from '../endpoints/server.js';
import { UdsListener } from '../endpoints/uds-listener.js';
import { SocketActivation } from '../endpoints/socket-activation.js';
import { loadSdCalls, type SdCalls } from '../proc/sd-daemon.js';
import { OpenStreams } from '../endpoints/open-streams.js';
import { authorityFilter } from '../endpoints/h2-authority-filter.js';
import { HealthHttpListener } from '../endpoints/health-http.js';
import { CallAttestor } from '../endpoints/call-attestor.js';
import { SdsHandler } from '../endpoints/sds/handler.js';
import { WorkloadHandler } from '../endpoints/workload/handler.js';
import { meteredKeyManager } from '../keymanager/metered.js';
import { loadLibc, type Libc } from '../proc/libc.js';
import { MemoryTrimmer } from '../proc/memory-trim.js';
import { PeerTracker } from '../proc/peer-tracker.js';
import { ProcReader } from '../proc/proc-reader.js';
import { AuditLog } from '../telemetry/audit.js';
import type { LevelControl, Logger } from '../telemetry/logger.js';
import { checkAdminSocketDirs, checkAdminSocketPath } from '../endpoints/admin/socket-path.js';
import { prepareSocketDir } from '../endpoints/socket-dir.js';
import { F } from '../telemetry/names.js';
import { createMetrics, NO_METRICS, type Metrics, type MetricsServer } from '../telemetry/metrics/index.js';
import { registerAgentGauges, type AgentGaugeState } from './agent-gauges.js';
import { openRunPlugins } from './run-plugins.js';
import type { HostProbe } from './platform/facts.js';
import type { HostProbeOptions } from './platform/host-probe.js';
import type { RunningPlatformReport } from './platform/report.js';

export interface AgentDeps {
  readonly config: AgentConfig;
  readonly log: Logger;
  readonly clock: Clock;
  /** /proc root; HOST_PROC when the agent runs in a container. */
  readonly procRoot?: string;
  readonly libc?: Libc;
  /** The process environment (node_name_env, D-Bus addresses), passed in rather than read globally. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Lets the admin socket's Logger API change the log level; without it that service is not served. */
  readonly logLevel?: LevelControl;
  /** Where audit records go: a logger `logLevel` does not silence (createControlledLogger). Defaults to `log`. */
  readonly auditLog?: Logger;
  /** Told when the authority can no longer serve (banned, evicted without re-attestation): the caller should stop the agent. */
  readonly onFatal?: (err: Error) => void;
  /** Server mode: builds the session with the SPIRE server (tests inject a fake one). */
  readonly createServerSession?: AuthorityFactoryDeps['createServerSession'];
  /** How hardware plugins (tpm_devid, the tpm key manager) open a TPM; tests hand in a simulator. */
  readonly openTpm?: OpenTpm;
  /** What the platform report asks about the host (systeminformation in a child); tests inject answers. */
  readonly platformProbe?: (o: HostProbeOptions) => HostProbe;
  /** socket/getsockname/sendto for systemd's sockets; loaded only when systemd passed some (tests may fake them). */
  readonly sdCalls?: () => SdCalls;
  /** The pid LISTEN_PID must name for the passed sockets to be this process's. */
  readonly pid?: number;
}

export class Agent {
  private authority: Authority | undefined;
  private cache: CacheManager | undefined;
  private listener: UdsListener | undefined;
  private adminListener: UdsListener | undefined;
  private trimmer: MemoryTrimmer | undefined;
  private attestation: WorkloadAttestation | undefined;
  private health: HealthHttpListener | undefined;
  private serverPlugins: ServerPlugins | undefined;
  private platform: Promise<RunningPlatformReport | undefined> | undefined;
  private ready = false;
  /** Streaming calls on both sockets, ended on shutdown rather than waited for. */
  private readonly streams = new OpenStreams();
  private metricsServer: MetricsServer | undefined;
  private metrics: Metrics = NO_METRICS;

  constructor(private readonly d: AgentDeps) {}

  async start(signal: AbortSignal): Promise<void> {
    const { config, log, clock } = this.d;
    const a = config.agent;
    const startedAt = clock.now();
    // What this node is, and whether the node attestor fits it (never awaited, time-bounded). In server
    // mode it runs beside node attestation, which is where an attestor that cannot work here fails;
    // embedded mode attests nothing, so it starts once the sockets are open and readiness never shares
    // the CPU with it.
    const reportPlatform = (): void => {
      this.platform ??= import('./platform/index.js').then(
        (m) => m.reportPlatform({ config, log, clock, env: this.d.env, probe: this.d.platformProbe }),
        (err: Error) => void log.warn({ [F.error]: err.message }, 'Platform report failed'),
      );
    };
    if (config.mode === 'server') reportPlatform();
    if (a.adminSocketPath !== undefined) checkAdminSocketPath(a.socketPath, a.adminSocketPath);
    // Metrics first: served while node attestation runs or keeps failing (spire issue 7164).
    const { metrics, server: metricsServer } = createMetrics(config.telemetry, log.child({ [F.subsystem]: 'metrics' }));
    this.metrics = metrics;
    this.metricsServer = metricsServer;
    await metricsServer?.listen();
    registerAgentGauges(metrics, { startedAt, clock, trustDomain: a.trustDomain, serverMode: config.mode === 'server', state: () => this.gaugeState() });
    await mkdir(a.dataDir, { recursive: true, mode: 0o700 });
    this.health = new HealthHttpListener(config.healthChecks, () => this.isReady, (err) => log.warn({ [F.error]: err.message }, 'Health check listener cannot accept connections'));
    await this.health.listen();
    const proc = new ProcReader(this.d.procRoot ?? '/proc');
    // The file's text puts line numbers on plugin_data problems, as `validate` reports them.
    const configText = await readFile(config.source, 'utf8').catch(() => undefined);
    const pluginCtx: PluginContext = { file: config.source, text: configText, env: this.d.env ?? {} };
    // The same checks and parsers `validate` runs (./run-plugins.ts), so both refuse the same configs.
    const plugins = await openRunPlugins(config, pluginCtx, {
      proc,
      log,
      clock,
      openTpm: this.d.openTpm ?? defaultOpenTpm,
      buildServerPlugins: !this.d.createServerSession,
    });
    const { attestors } = plugins;
    if (plugins.server) {
      // The session attests with these and keeps its keys in them; the agent owns and closes them.
      const { keyManager, nodeAttestor } = plugins.server;
      this.serverPlugins = { keyManager: meteredKeyManager(keyManager, metrics), nodeAttestor, workloadApiBundle: plugins.workloadApiBundle };
    }
    const authority = await createAuthority({
      config,
      log,
      clock,
      serverPlugins: this.serverPlugins,
      createServerSession: this.d.createServerSession,
      cachedX509Count: () => this.cache?.cachedX509Count ?? 0,
      metrics,
    });
    this.authority = authority;
    authority.onFatal?.((err) => {
      this.ready = false;
      this.d.onFatal?.(err);
    });
    // Start-up waits on timers that never hold the process (retry_bootstrap's backoff, the first
    // sync's), and nothing else may hold it yet: Node would exit in the middle of a wait with an
    // unsettled top-level await (code 13). This handle keeps it until start-up ends either way.
    const hold = setInterval(() => undefined, 2 ** 30);
    try {
      await authority.start(signal);
    } finally {
      clearInterval(hold);
    }
    this.cache = new CacheManager({
      authority,
      keyType: a.workloadX509SvidKeyType,
      x509CacheMaxSize: a.x509SvidCacheMaxSize,
      jwtCacheMaxSize: a.jwtSvidCacheMaxSize,
      availabilityTargetMs: a.availabilityTargetMs,
      jwtCacheHitTimeoutMs: config.mode === 'server' ? config.server.jwtSvidCacheHitTimeoutMs : undefined,
      prefetchX509: config.mode === 'server',
      serveDueX509: config.mode === 'server',
      clock,
      log: log.child({ [F.subsystem]: 'cache_manager' }),
    });
    // SVIDs for every entry are signed ahead (server mode) once the sockets are open; see startPrefetch.
    this.cache.start({ deferPrefetch: true });
    this.attestation = new WorkloadAttestation(attestors, log.child({ [F.subsystem]: 'workload_attestor' }), { metrics });
    const libc = this.d.libc ?? loadLibc();
    const endpointsLog = log.child({ [F.subsystem]: 'endpoints' });
    let listener: UdsListener | undefined;
    const audit = new AuditLog(this.d.auditLog ?? log, a.logSelectors, metrics);
    const callerOf = (call: { getPeer(): string }) => listener?.callerOf(call);
    const workload = a.disableWorkloadApi
      ? undefined
      : new WorkloadHandler({
          cache: this.cache,
          attestation: this.attestation,
          callerOf,
          proc,
          audit,
          log: endpointsLog,
          allowUnauthenticatedVerifiers: a.allowUnauthenticatedVerifiers,
          allowedForeignJwtClaims: a.allowedForeignJwtClaims,
          clock,
          reattestIntervalMs: a.reattestIntervalMs,
          metrics,
        });
    const sds = a.disableSdsApi
      ? undefined
      : new SdsHandler({
          cache: this.cache,
          attestor: new CallAttestor({ attestation: this.attestation, callerOf, proc, audit }),
          audit,
          log: endpointsLog.child({ [F.subsystem]: 'sds_api' }),
          clock,
          reattestIntervalMs: a.reattestIntervalMs,
          metrics,
          names: {
            defaultSvidName: a.sdsDefaultSvidName,
            defaultBundleName: a.sdsDefaultBundleName,
            defaultAllBundlesName: a.sdsDefaultAllBundlesName,
            disableSpiffeCertValidation: a.sdsDisableSpiffeCertValidation,
          },
        });
    // Sockets a systemd .socket unit holds across restarts: served instead of bound (socket-activation.ts).
    const activation = SocketActivation.fromEnv(this.d.env ?? {}, this.d.pid ?? process.pid, this.d.sdCalls ?? loadSdCalls);
    const server = buildGrpcServer({ workload, sds }, () => (this.isReady ? 'SERVING' : 'NOT_SERVING'), this.streams, metrics);
    // Both sockets: peer credentials from the kernel first, then the :authority gate (and filter when needed) in front of gRPC.
    const udsListener = (path: string, grpcServer: typeof server, mode: number): UdsListener =>
      new UdsListener(path, grpcServer, new PeerTracker(libc, proc), endpointsLog, mode, authorityFilter({ libc, log: endpointsLog, clock }), {
        clock,
        fdLimit: () => libc.fdLimit(),
        sys: libc,
        activation,
        metrics,
      });
    listener = udsListener(a.socketPath, server, 0o777);
    this.listener = listener;
    const publicDir = await listener.listen();
    if (a.adminSocketPath !== undefined) {
      // The admin API's modules load only when it is configured.
      const [{ DelegateAuth }, { DelegatedIdentityHandler }, { DebugHandler }, { LoggerHandler }, { buildAdminServer }] = await Promise.all([
        import('../endpoints/admin/delegate-auth.js'),
        import('../endpoints/admin/delegated-identity.js'),
        import('../endpoints/admin/debug.js'),
        import('../endpoints/admin/logger-service.js'),
        import('../endpoints/admin/server.js'),
      ]);
      // The placement rule again, on the directories as they really are, before the admin socket exists.
      const adminDir = await prepareSocketDir(a.adminSocketPath, { euid: process.geteuid?.() ?? 0, log: endpointsLog, what: 'admin' });
      checkAdminSocketDirs(publicDir, adminDir, a.adminSocketPath);
      let admin: UdsListener | undefined;
      const adminLog = endpointsLog.child({ [F.subsystem]: 'admin_api' });
      const adminAttestor = new CallAttestor({ attestation: this.attestation, callerOf: (call) => admin?.callerOf(call), proc, audit });
      const cache = this.cache;
      const adminServer = buildAdminServer({
        delegatedIdentity: new DelegatedIdentityHandler({
          auth: new DelegateAuth({
            attestor: adminAttestor,
            attestation: this.attestation,
            match: (sel) => cache.match(sel),
            authorized: a.authorizedDelegates ?? [],
            audit,
          }),
          cache,
          audit,
          log: adminLog,
        }),
        debug: new DebugHandler({ cache, clock, startedAt, status: () => authority.status() }),
        // Level changes are written where audit records are, so they stay visible at any level.
        logger: this.d.logLevel ? new LoggerHandler(this.d.logLevel, (this.d.auditLog ?? log).child({ [F.subsystem]: 'admin_api' })) : undefined,
      }, this.streams);
      admin = udsListener(a.adminSocketPath, adminServer, 0o770);
      this.adminListener = admin;
      await admin.listen();
      log.info({ [F.path]: a.adminSocketPath, authorized_delegates: (a.authorizedDelegates ?? []).join(',') }, 'Starting admin API');
    }
    activation?.checkAllClaimed([a.socketPath, ...(a.adminSocketPath !== undefined ? [a.adminSocketPath] : [])]);
    this.ready = true;
    reportPlatform();
    this.cache.startPrefetch();
    // Memory back to the OS once idle after start-up, a burst or churn (issue 9; src/proc/memory-trim.ts).
    this.trimmer = new MemoryTrimmer({
      onTrim: (before, after) => log.debug({ rss_before_mib: Math.round(before / 2 ** 20), rss_after_mib: Math.round(after / 2 ** 20) }, 'Idle: garbage collected and malloc trimmed'),
    }).start();
    log.info(
      {
        [F.trustDomain]: a.trustDomain,
        [F.path]: a.socketPath,
        entries: this.cache.entryCount,
        attestors: this.attestation.names.join(','),
      },
      workload && sds ? 'Starting Workload and SDS APIs' : workload ? 'Starting Workload API' : sds ? 'Starting SDS API' : 'Workload and SDS APIs are disabled; serving health only',
    );
  }

  async reload(): Promise<void> {
    await this.authority?.reload?.();
  }

  /** Listening, and the authority has something to serve (it stays ready through server outages, as spire-agent does). */
  get isReady(): boolean {
    return this.ready && (this.authority?.status().ready ?? false);
  }

  /**
   * Bounded by shutdown_grace_period (plus what the components below take to stop): the
   * listeners stop accepting at once; every call on a connection already accepted is answered
   * within the grace period, and each connection gets GOAWAY and is closed once its calls have
   * ended (uds-listener.ts); open streams end with UNAVAILABLE once their connection has had
   * its GOAWAY (those still waiting for their first answer right after it, or shortly before
   * the grace period ends); whatever is left after the grace period is closed.
   */
  async close(): Promise<void> {
    this.ready = false;
    this.trimmer?.stop();
    const platform = this.platform?.then((p) => p?.stop());
    const grace = this.d.config.agent.shutdownGracePeriodMs;
    const closing = Date.now();
    const listeners = Promise.all([this.listener?.close(grace), this.adminListener?.close(grace)]);
    // Streams end once their connection has had its GOAWAY, so a watcher's retry opens a new
    // connection (queued for the next agent under socket activation) instead of reaching this one.
    await Promise.race([Promise.all([this.listener?.goawaySent(), this.adminListener?.goawaySent()]), listeners]);
    const ended = this.streams.endAll();
    const waiting = this.streams.unanswered;
    if (ended + waiting > 0) {
      this.d.log.info({ [F.count]: ended, waiting, grace_period_ms: grace }, 'Shutting down: open streams ended (those waiting for their first answer end after it), connections get the grace period');
    }
    // Shortly before the listeners close what is left: streams still unanswered then end with a status.
    const lastCall = setTimeout(() => this.streams.endRemaining(), Math.max(0, closing + grace - Math.min(500, grace / 4) - Date.now()));
    lastCall.unref();
    await listeners;
    clearTimeout(lastCall);
    await this.health?.close();
    this.cache?.close();
    await this.attestation?.close();
    await this.authority?.close();
    await this.serverPlugins?.nodeAttestor.close?.();
    await this.serverPlugins?.keyManager.close?.();
    await platform;
    await this.metricsServer?.close();
  }

  /** What the scrape-time gauges read (agent-gauges.ts); undefined parts are not started yet. */
  private gaugeState(): AgentGaugeState {
    return { authority: this.authority?.status(), cache: this.cache, openStreams: this.streams.size };
  }
}
