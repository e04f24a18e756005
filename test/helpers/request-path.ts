/**
 * In-memory pieces for testing the request path without root, sockets or module mocking:
 * FAKE callers (a Caller as the peer tracker would hand it over, alive until the test says
 * otherwise), a FAKE attestation (selectors per pid), a FAKE cache with just the methods the
 * handlers declare, FAKE grpc-js calls (event emitters that record writes and errors), and a
 * logger that keeps what it was given. Each is injected through the handlers' deps.
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { Selector } from '../../src/domain/types.js';
import type { RegistrationEntry, SignedJWTSVID, TrustBundle } from '../../src/authority/types.js';
import type { BundleView, Subscription, WorkloadView, X509Identity } from '../../src/cache/manager.js';
import { PeerError } from '../../src/proc/errors.js';
import { makeEntry } from './entries.js';
import type { Caller } from '../../src/proc/peer-tracker.js';
import type { Logger } from '../../src/telemetry/logger.js';
import { WorkloadHandler } from '../../src/endpoints/workload/handler.js';
import { AuditLog } from '../../src/telemetry/audit.js';
import { FakeClock } from './fake-clock.js';

export interface LogLine {
  readonly level: string;
  readonly fields: Record<string, unknown>;
  readonly msg: string | undefined;
}

export function memoryLogger(lines: LogLine[] = [], bindings: Record<string, unknown> = {}): Logger & { lines: LogLine[] } {
  const at =
    (level: string) =>
    (obj: Record<string, unknown> | string, msg?: string): void => {
      lines.push(typeof obj === 'string' ? { level, fields: { ...bindings }, msg: obj } : { level, fields: { ...bindings, ...obj }, msg });
    };
  return {
    lines,
    child: (b) => memoryLogger(lines, { ...bindings, ...b }),
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
}

/** A caller as the kernel identified it. `gone()` makes it what an exited process looks like. */
export class FakeCaller implements Caller {
  alive = true;
  closed = false;
  constructor(
    readonly pid: number,
    readonly uid = 1000,
    readonly gid = 1000,
    readonly startTime = 42n,
  ) {}
  gone(): void {
    this.alive = false;
  }
  async checkAlive(): Promise<void> {
    if (!this.alive) throw new PeerError('caller_gone', `peertracker: caller pid ${this.pid} is no longer the process that connected (process exited)`);
  }
  close(): void {
    this.closed = true;
  }
}

/** Selectors per pid; a pid without any, or with an Error, fails attestation with it. */
export class FakeAttestation {
  readonly byPid = new Map<number, readonly Selector[] | Error>();
  calls = 0;
  async attest(pid: number, _signal?: AbortSignal): Promise<{ selectors: Selector[]; failed: string[] }> {
    this.calls++;
    const r = this.byPid.get(pid);
    if (r instanceof Error) throw r;
    if (!r) throw new Error(`fake attestation: no selectors for pid ${pid}`);
    return { selectors: [...r], failed: [] };
  }
}

export function entry(id: string, spiffeId: string, selectors: readonly Selector[], extra: Partial<RegistrationEntry> = {}): RegistrationEntry {
  return makeEntry(id, [], { spiffeId, parentId: 'spiffe://example.org/spire/agent/test', selectors, ...extra });
}

export const BUNDLE: TrustBundle = {
  trustDomain: 'example.org',
  x509Authorities: [Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x01])],
  jwtAuthorities: [{ keyId: 'k1', publicKey: { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' }, expiresAt: 0 }],
  sequenceNumber: 1,
  refreshHintSeconds: 0,
};

const matches = (e: RegistrationEntry, sel: readonly Selector[]): boolean =>
  e.selectors.every((s) => sel.some((t) => t.type === s.type && t.value === s.value));

/**
 * The cache as the handlers see it: entries matched by selectors (all of an entry's selectors
 * present), X.509 identities made up from the entry (fake DER bytes: the handlers only copy
 * them), JWT-SVIDs as "jwt:<spiffe id>:<audience>", and `change()` to notify subscribers.
 */
export class FakeCache {
  entries: RegistrationEntry[] = [];
  bundle: TrustBundle = BUNDLE;
  serial = 1;
  private readonly subs = new Set<{ selectors: readonly Selector[]; onChange: () => void }>();

  get subscribers(): number {
    return this.subs.size;
  }

  match(selectors: readonly Selector[]): RegistrationEntry[] {
    return this.entries.filter((e) => matches(e, selectors));
  }

  bundlesFor(): BundleView {
    return { bundle: this.bundle, federatedBundles: new Map() };
  }

  allBundles(): BundleView {
    return this.bundlesFor();
  }

  async jwtFor(e: RegistrationEntry, audience: readonly string[]): Promise<SignedJWTSVID> {
    return { token: `jwt:${e.spiffeId}:${audience.join(',')}`, issuedAt: 0, expiresAt: 0 };
  }

  identity(e: RegistrationEntry): X509Identity {
    return { entry: e, chain: [Uint8Array.from([1, 2, 3])], keyPkcs8: Uint8Array.from([4, 5]), serial: String(this.serial), notBefore: 0, notAfter: 0, rotateAt: 0 };
  }

  async x509For(selectors: readonly Selector[]): Promise<WorkloadView> {
    return { ...this.bundlesFor(), identities: this.match(selectors).map((e) => this.identity(e)) };
  }

  subscribe(selectors: readonly Selector[], onChange: () => void): Subscription {
    const s = { selectors, onChange };
    this.subs.add(s);
    const cache = this;
    return {
      get selectors() {
        return s.selectors;
      },
      setSelectors(next) {
        s.selectors = next;
      },
      view: () => cache.x509For(s.selectors),
      entries: () => cache.match(s.selectors),
      bundles: () => cache.bundlesFor(),
      close: () => void cache.subs.delete(s),
    };
  }

  /** Tells every subscriber that something changed (entries, bundle, an SVID). */
  change(): void {
    for (const s of [...this.subs]) s.onChange();
  }
}

/** A grpc-js server call in memory: what the handler wrote, the error it ended with, the metadata it read. */
export class FakeCall extends EventEmitter {
  readonly writes: unknown[] = [];
  errors: { code: grpc.status; details: string }[] = [];
  readonly metadata = new grpc.Metadata();
  constructor(
    readonly peer: string,
    readonly request: unknown = {},
    header = true,
  ) {
    super();
    if (header) this.metadata.set('workload.spiffe.io', 'true');
    this.on('error', (e: { code: grpc.status; details: string }) => this.errors.push(e));
  }
  getPeer(): string {
    return this.peer;
  }
  write(msg: unknown): boolean {
    this.writes.push(msg);
    return true;
  }
  end(): void {
    this.emit('finish');
  }
  /** The client goes away. */
  cancel(): void {
    this.emit('cancelled');
  }
}

/** Runs a unary handler and returns what it answered. */
export function unary(fn: grpc.handleUnaryCall<unknown, unknown>, call: FakeCall): Promise<{ err: grpc.ServiceError | null; value: unknown }> {
  return new Promise((resolve) => {
    fn(call as unknown as grpc.ServerUnaryCall<unknown, unknown>, (err, value) => resolve({ err: (err as grpc.ServiceError) ?? null, value }));
  });
}

export async function settle(ms = 0): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

/** A WorkloadHandler over the fakes, for tests that put a real listener and grpc-js server in front of it. */
export function listenerWorkloadHandler(d: {
  cache: FakeCache;
  attestation: FakeAttestation;
  log: Logger;
  callerOf: ConstructorParameters<typeof WorkloadHandler>[0]['callerOf'];
}): WorkloadHandler {
  return new WorkloadHandler({
    cache: d.cache,
    attestation: d.attestation,
    callerOf: d.callerOf,
    proc: { exePath: async () => undefined as unknown as string },
    audit: new AuditLog(d.log, ['unix']),
    log: d.log,
    allowUnauthenticatedVerifiers: false,
    allowedForeignJwtClaims: [],
    clock: new FakeClock(),
    reattestIntervalMs: 0,
  });
}

/**
 * What the listener tests put behind a UdsListener: fakes for the cache and attestation, one
 * entry for uid 1000, and a Workload handler that finds callers through the listener, once set.
 */
export function listenerFixture() {
  const log = memoryLogger();
  const attestation = new FakeAttestation();
  const cache = new FakeCache();
  cache.entries = [entry('e1', 'spiffe://example.org/web', [{ type: 'unix', value: 'uid:1000' }])];
  const at: { listener?: { callerOf(call: { getPeer(): string }): ReturnType<ConstructorParameters<typeof WorkloadHandler>[0]['callerOf']> } } = {};
  const handler = listenerWorkloadHandler({ cache, attestation, log, callerOf: (call) => at.listener?.callerOf(call) });
  return { log, attestation, cache, handler, at };
}
