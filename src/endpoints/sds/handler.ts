/**
 * Envoy SDS v3 on the Workload API socket, as spire-agent serves it. No security
 * header (Envoy sends none); the caller is attested exactly like a Workload API
 * caller, and open streams are re-attested the same way. Having no identity is not
 * an error here: a workload may ask only for bundles.
 */
import { countedReattest } from '../stream/reattest-count.js';
import type { Metrics } from '../../telemetry/metrics/index.js';
import * as grpc from '@grpc/grpc-js';
import type { CacheManager, WorkloadView } from '../../cache/manager.js';
import type { Clock } from '../../clock.js';
import type { AuditLog } from '../../telemetry/audit.js';
import type { Logger } from '../../telemetry/logger.js';
import { F } from '../../telemetry/names.js';
import { auditCaller, type Attested, type CallAttestor } from '../call-attestor.js';
import { StatusError, toServiceError } from '../status.js';
import { svidFingerprint } from '../stream/encode.js';
import { driveStream, type StreamControl } from '../stream/driver.js';
import type { DiscoveryRequest, DiscoveryResponse } from './messages.js';
import { resolveSecrets, type SdsNames } from './resources.js';
import { SdsStreamState } from './stream-state.js';
import type { SecretResource } from './encode.js';

export interface SdsHandlerDeps {
  readonly cache: Pick<CacheManager, 'x509For' | 'subscribe'>;
  readonly attestor: CallAttestor;
  readonly audit: AuditLog;
  readonly log: Logger;
  readonly clock: Clock;
  readonly names: SdsNames;
  readonly reattestIntervalMs: number;
  /** spiffe_agent_reattestations (stream/reattest-count.ts); none when absent. */
  readonly metrics?: Metrics;
  /** Nonce source (tests pin it). */
  readonly nonce?: () => string;
}

type Duplex = grpc.ServerDuplexStream<unknown, unknown>;

export class SdsHandler {
  constructor(private readonly d: SdsHandlerDeps) {}

  /** Implementation object for grpc Server.addService. */
  service(): grpc.UntypedServiceImplementation {
    return {
      StreamSecrets: (call: Duplex) => void this.streamSecrets(call),
      FetchSecrets: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => void this.fetchSecrets(call, cb),
      DeltaSecrets: (call: Duplex) =>
        call.emit('error', toServiceError(new StatusError(grpc.status.UNIMPLEMENTED, 'Method is not implemented'))),
    };
  }

  /** Builds a response or audits the refusal and throws its status. */
  private respond(method: string, a: Attested, req: DiscoveryRequest, view: WorkloadView, version: string, nonce: string): DiscoveryResponse {
    let secrets: SecretResource[];
    try {
      secrets = resolveSecrets(req, view, this.d.names);
    } catch (err) {
      this.d.audit.record({
        method,
        caller: auditCaller(a),
        decision: 'denied',
        selectors: a.selectors,
        entryIds: view.identities.map((i) => i.entry.id),
        reason: (err as Error).message,
      });
      throw err;
    }
    const served = new Set(secrets.filter((s) => s.tls_certificate).map((s) => s.name));
    const ids = view.identities.filter((i, n) => served.has(i.entry.spiffeId) || (n === 0 && served.has(this.d.names.defaultSvidName)));
    this.d.audit.record({
      method,
      caller: auditCaller(a),
      decision: 'granted',
      selectors: a.selectors,
      entryIds: ids.map((i) => i.entry.id),
      spiffeIds: ids.map((i) => i.entry.spiffeId),
      serials: ids.map((i) => i.serial),
    });
    return { version_info: version, resources: secrets, type_url: req.type_url ?? '', nonce };
  }

  private async fetchSecrets(call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>): Promise<void> {
    const method = 'FetchSecrets';
    const req = call.request as DiscoveryRequest;
    try {
      const a = await this.d.attestor.attest(call, method);
      const view = await this.d.cache.x509For(a.selectors);
      const resp = this.respond(method, a, req, view, '', '');
      this.d.log.debug({ [F.pid]: a.caller.pid, [F.resourceNames]: req.resource_names, [F.count]: resp.resources.length }, 'Sending FetchSecrets response');
      cb(null, resp);
    } catch (err) {
      cb(toServiceError(err) as grpc.ServiceError);
    }
  }

  private async streamSecrets(call: Duplex): Promise<void> {
    const method = 'StreamSecrets';
    const queue: DiscoveryRequest[] = [];
    let control: StreamControl | undefined;
    let halfClosed = false;
    // Requests are read from the start and queued; they are answered once the caller is attested.
    call.on('data', (req: DiscoveryRequest) => {
      queue.push(req);
      control?.kick();
    });
    // Envoy closing its side ends the stream with OK, as spire-agent returns nil on EOF.
    call.on('end', () => {
      halfClosed = true;
      control?.end();
      call.end();
    });

    let a: Attested;
    try {
      a = await this.d.attestor.attest(call, method);
    } catch (err) {
      this.d.log.error({ [F.error]: (err as Error).message }, 'Failed to attest the workload');
      call.emit('error', toServiceError(err));
      return;
    }
    if (halfClosed) return;

    const state = new SdsStreamState(this.d.nonce);
    let lastFingerprint: string | undefined;
    const log = this.d.log.child({ [F.pid]: a.caller.pid, [F.method]: method });
    await driveStream(
      {
        cache: this.d.cache,
        clock: this.d.clock,
        log: this.d.log,
        api: 'SDS',
        reattestIntervalMs: this.d.reattestIntervalMs,
        reattest: countedReattest(this.d.metrics, 'sds_api', (caller, signal) => this.d.attestor.attestCaller(caller, signal)),
        onReattestFailure: (cur, reason) =>
          this.d.audit.record({ method, caller: auditCaller(cur), decision: 'withdrawn', selectors: cur.selectors, reason }),
        control: (c) => {
          control = c;
        },
      },
      call,
      a,
      async (sub, cur) => {
        const view = await sub.view();
        const fp = svidFingerprint(view.identities, view);
        if (fp !== lastFingerprint) {
          lastFingerprint = fp;
          state.onUpdate();
        }
        for (let req = queue.shift(); req; req = queue.shift()) {
          const fields = { [F.resourceNames]: req.resource_names, [F.versionInfo]: req.version_info, [F.nonce]: req.response_nonce };
          log.debug(fields, 'Received StreamSecrets request');
          if (req.error_detail) {
            log.error({ [F.resourceNames]: req.resource_names, [F.error]: req.error_detail.message }, 'Envoy reported errors applying secrets');
          }
          const verdict = state.onRequest(req);
          if (verdict.kind === 'stale') {
            log.warn({ [F.nonce]: req.response_nonce, [F.expect]: verdict.expected }, 'Received unexpected nonce; ignoring request');
          } else if (verdict.nack) {
            log.error({ [F.versionInfo]: req.version_info, [F.expect]: state.versionSent }, 'Client rejected expected version and rolled back');
          }
        }
        const due = state.due();
        if (!due || halfClosed) return;
        const resp = this.respond(method, cur, due.req, view, due.version, due.nonce);
        log.debug({ [F.versionInfo]: resp.version_info, [F.nonce]: resp.nonce, [F.count]: resp.resources.length }, 'Sending StreamSecrets response');
        call.write(resp);
        state.sent(due.version, due.nonce);
      },
    );
  }
}
