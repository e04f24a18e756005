/**
 * The SPIFFE Workload API. Every RPC: security header first (InvalidArgument),
 * then the caller from the kernel, attested, then re-checked to be the same
 * process before anything is returned. Streams push a complete snapshot on every
 * change that alters what the caller would see, and never an unchanged one.
 */
import { countedReattest } from '../stream/reattest-count.js';
import type { Metrics } from '../../telemetry/metrics/index.js';
import * as grpc from '@grpc/grpc-js';
import type { Selector } from '../../authority/types.js';
import type { CacheManager, Subscription, WorkloadView } from '../../cache/manager.js';
import type { WorkloadAttestation } from '../../attestation/workload/attest.js';
import type { Caller } from '../../proc/peer-tracker.js';
import { auditCaller, CallAttestor } from '../call-attestor.js';
import type { Clock } from '../../clock.js';
import type { ProcReader } from '../../proc/proc-reader.js';
import type { AuditLog } from '../../telemetry/audit.js';
import type { Logger } from '../../telemetry/logger.js';
import { F } from '../../telemetry/names.js';
import { SpiffeId } from '../../svid/spiffe-id.js';
import { requireAudience, requireValidateAudience } from '../audience.js';
import { StatusError, toServiceError } from '../status.js';
import { bundleFingerprint, jwtBundlesResponse, svidFingerprint, x509BundlesResponse, x509SvidResponse } from '../stream/encode.js';
import { validateForCaller } from './validate-jwt.js';
import { driveStream, sameSelectors, type Attested, type StreamDriverDeps } from '../stream/driver.js';

export interface WorkloadHandlerDeps {
  readonly cache: Pick<CacheManager, 'match' | 'bundlesFor' | 'jwtFor' | 'subscribe'>;
  readonly attestation: Pick<WorkloadAttestation, 'attest'>;
  readonly callerOf: (call: { getPeer(): string }) => Caller | undefined;
  readonly proc: Pick<ProcReader, 'exePath'>;
  readonly audit: AuditLog;
  readonly log: Logger;
  readonly allowUnauthenticatedVerifiers: boolean;
  readonly allowedForeignJwtClaims: readonly string[];
  readonly clock: Clock;
  /** Re-attest open streams this often (0: only before each update). */
  readonly reattestIntervalMs: number;
  /** spiffe_agent_reattestations (stream/reattest-count.ts); none when absent. */
  readonly metrics?: Metrics;
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>;

export class WorkloadHandler {
  private readonly attestor: CallAttestor;

  constructor(private readonly d: WorkloadHandlerDeps) {
    this.attestor = new CallAttestor(d);
  }

  /** Implementation object for grpc Server.addService. */
  service(): grpc.UntypedServiceImplementation {
    return {
      FetchX509SVID: (call: grpc.ServerWritableStream<unknown, unknown>) => void this.fetchX509SVID(call),
      FetchX509Bundles: (call: grpc.ServerWritableStream<unknown, unknown>) => void this.fetchBundles(call, 'x509'),
      FetchJWTBundles: (call: grpc.ServerWritableStream<unknown, unknown>) => void this.fetchBundles(call, 'jwt'),
      FetchJWTSVID: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        void this.unary(call, cb, 'FetchJWTSVID', (a) => this.fetchJWTSVID(call.request as JWTSVIDRequest, a)),
      ValidateJWTSVID: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        void this.unary(call, cb, 'ValidateJWTSVID', (a) => this.validateJWTSVID(call.request as ValidateRequest, a)),
      FetchWITSVID: (call: grpc.ServerWritableStream<unknown, unknown>) =>
        call.emit('error', toServiceError(new StatusError(grpc.status.UNIMPLEMENTED, 'WIT-SVIDs are not supported by this agent'))),
      FetchWITBundles: (call: grpc.ServerWritableStream<unknown, unknown>) =>
        call.emit('error', toServiceError(new StatusError(grpc.status.UNIMPLEMENTED, 'WIT-SVIDs are not supported by this agent'))),
    };
  }

  private checkHeader(call: AnyCall): void {
    const values = call.metadata.get('workload.spiffe.io');
    if (values.length !== 1 || values[0] !== 'true') {
      throw new StatusError(grpc.status.INVALID_ARGUMENT, 'security header missing from request');
    }
  }

  private async attest(call: AnyCall, method: string): Promise<Attested> {
    this.checkHeader(call);
    return this.attestor.attest(call, method);
  }

  private stream(
    call: grpc.ServerWritableStream<unknown, unknown>,
    method: string,
    first: Attested,
    update: (sub: Subscription, current: Attested) => Promise<void>,
  ): Promise<void> {
    return driveStream(this.streamDeps(method), call, first, update);
  }

  /** One per method, shared by its streams (each open stream held its own copy, with two closures). */
  private readonly driverDeps = new Map<string, StreamDriverDeps>();

  private streamDeps(method: string): StreamDriverDeps {
    let deps = this.driverDeps.get(method);
    if (!deps) {
      deps = {
        cache: this.d.cache,
        clock: this.d.clock,
        log: this.d.log,
        reattestIntervalMs: this.d.reattestIntervalMs,
        reattest: countedReattest(this.d.metrics, 'workload_api', (caller, signal) => this.attestor.attestCaller(caller, signal)),
        onReattestFailure: (a, reason) =>
          this.d.audit.record({ method, caller: auditCaller(a), decision: 'withdrawn', selectors: a.selectors, reason }),
      };
      this.driverDeps.set(method, deps);
    }
    return deps;
  }

  private deny(method: string, a: Attested, reason: string, entryIds: string[] = []): StatusError {
    this.d.audit.record({ method, caller: auditCaller(a), decision: 'denied', selectors: a.selectors, entryIds, reason });
    return new StatusError(grpc.status.PERMISSION_DENIED, 'no identity issued');
  }

  /** Attests a stream's caller, or ends the stream with the mapped status and returns undefined. */
  private async attestStream(call: grpc.ServerWritableStream<unknown, unknown>, method: string): Promise<Attested | undefined> {
    try {
      return await this.attest(call, method);
    } catch (err) {
      call.emit('error', toServiceError(err));
      return undefined;
    }
  }

  private async unary<T>(call: AnyCall, cb: grpc.sendUnaryData<unknown>, method: string, fn: (a: Attested) => Promise<T>): Promise<void> {
    try {
      const a = await this.attest(call, method);
      cb(null, await fn(a));
    } catch (err) {
      cb(toServiceError(err) as grpc.ServiceError);
    }
  }

  private async fetchX509SVID(call: grpc.ServerWritableStream<unknown, unknown>): Promise<void> {
    const method = 'FetchX509SVID';
    const a = await this.attestStream(call, method);
    if (!a) return;
    let last = '';
    /** What the last update sent: [entry id, SPIFFE ID] pairs (an array: a Map per open stream costs ≈0.2 KiB more). */
    let sent: { ids: (readonly [string, string])[]; selectors: readonly Selector[] } | undefined;
    // Returned, not awaited: this function's frame is not kept for the life of the stream.
    return this.stream(call, method, a, async (sub, cur) => {
      const view: WorkloadView = await sub.view();
      if (sent) {
        const now = new Set(view.identities.map((i) => i.entry.id));
        const lost = sent.ids.filter(([id]) => !now.has(id));
        if (lost.length > 0) {
          this.d.audit.record({
            method,
            caller: auditCaller(cur),
            decision: 'withdrawn',
            selectors: cur.selectors,
            entryIds: lost.map(([id]) => id),
            spiffeIds: lost.map(([, spiffeId]) => spiffeId),
            reason: sameSelectors(sent.selectors, cur.selectors) ? 'registration entries changed' : 'caller selectors changed on re-attestation',
          });
        }
      }
      if (view.identities.length === 0) throw this.deny(method, cur, last ? 'registration entries no longer match' : 'no registration entry matches the caller');
      sent = { ids: view.identities.map((i) => [i.entry.id, i.entry.spiffeId] as const), selectors: cur.selectors };
      const fp = svidFingerprint(view.identities, view);
      if (fp === last) return;
      last = fp;
      call.write(x509SvidResponse(view.identities, view));
      this.d.audit.record({
        method,
        caller: auditCaller(cur),
        decision: 'granted',
        selectors: cur.selectors,
        entryIds: view.identities.map((i) => i.entry.id),
        spiffeIds: view.identities.map((i) => i.entry.spiffeId),
        serials: view.identities.map((i) => i.serial),
      });
    });
  }

  private async fetchBundles(call: grpc.ServerWritableStream<unknown, unknown>, kind: 'x509' | 'jwt'): Promise<void> {
    const method = kind === 'x509' ? 'FetchX509Bundles' : 'FetchJWTBundles';
    const a = await this.attestStream(call, method);
    if (!a) return;
    let last = '';
    let granted = false;
    // Returned, not awaited: this function's frame is not kept for the life of the stream.
    return this.stream(call, method, a, async (sub, cur) => {
      const entries = sub.entries();
      if (entries.length === 0 && !this.d.allowUnauthenticatedVerifiers) throw this.deny(method, cur, 'no registration entry matches the caller');
      const view = sub.bundles();
      const fp = bundleFingerprint(view, kind);
      if (fp === last) return;
      last = fp;
      call.write(kind === 'x509' ? x509BundlesResponse(view) : jwtBundlesResponse(view));
      if (!granted) {
        granted = true;
        this.d.audit.record({ method, caller: auditCaller(cur), decision: 'granted', selectors: cur.selectors, entryIds: entries.map((e) => e.id) });
      }
    });
  }

  private async fetchJWTSVID(req: JWTSVIDRequest, a: Attested): Promise<unknown> {
    const method = 'FetchJWTSVID';
    const audience = requireAudience(req.audience);
    let wanted: string | undefined;
    if (req.spiffe_id) {
      try {
        wanted = SpiffeId.parse(req.spiffe_id).toString();
      } catch (err) {
        throw new StatusError(grpc.status.INVALID_ARGUMENT, `invalid requested SPIFFE ID: ${(err as Error).message}`);
      }
    }
    let entries = this.d.cache.match(a.selectors);
    if (wanted !== undefined) entries = entries.filter((e) => e.spiffeId === wanted);
    if (entries.length === 0) throw this.deny(method, a, wanted ? `no registration entry for ${wanted} matches the caller` : 'no registration entry matches the caller');
    const svids = [];
    for (const e of entries) {
      try {
        const s = await this.d.cache.jwtFor(e, audience);
        svids.push({ spiffe_id: e.spiffeId, svid: s.token, hint: e.hint });
      } catch (err) {
        throw new StatusError(grpc.status.UNAVAILABLE, `could not mint a JWT-SVID for ${e.spiffeId}: ${(err as Error).message}`, { cause: err });
      }
    }
    this.d.audit.record({
      method,
      caller: auditCaller(a),
      decision: 'granted',
      selectors: a.selectors,
      entryIds: entries.map((e) => e.id),
      spiffeIds: entries.map((e) => e.spiffeId),
      audience,
    });
    return { svids };
  }

  private async validateJWTSVID(req: ValidateRequest, a: Attested): Promise<unknown> {
    const audience = requireValidateAudience(req.audience);
    if (!req.svid) throw new StatusError(grpc.status.INVALID_ARGUMENT, 'svid must be specified');
    const entries = this.d.cache.match(a.selectors);
    const view = this.d.cache.bundlesFor(entries);
    const result = await validateForCaller(req.svid, audience, view, this.d.allowedForeignJwtClaims, new Date(this.d.clock.now()));
    this.d.audit.record({
      method: 'ValidateJWTSVID',
      caller: auditCaller(a),
      decision: 'granted',
      selectors: a.selectors,
      spiffeIds: [result.spiffe_id],
      audience: [audience],
    });
    return result;
  }
}

interface JWTSVIDRequest {
  audience?: string[];
  spiffe_id?: string;
}

interface ValidateRequest {
  audience?: string;
  svid?: string;
}
