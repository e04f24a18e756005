/**
 * spire-agent's Delegated Identity API on the admin socket: an authorized delegate
 * (e.g. a node-local proxy) obtains the SVIDs of workloads it names by selectors or
 * by pid, and the bundles of every trust domain the agent knows.
 */
import * as grpc from '@grpc/grpc-js';
import type { TrustBundle } from '../../authority/types.js';
import type { CacheManager, X509Identity } from '../../cache/manager.js';
import type { AuditLog } from '../../telemetry/audit.js';
import type { Logger } from '../../telemetry/logger.js';
import { SpiffeId } from '../../svid/spiffe-id.js';
import { requireAudience } from '../audience.js';
import { StatusError, toServiceError } from '../status.js';
import { concat, jwks, tdId } from '../stream/encode.js';
import { auditCaller } from '../call-attestor.js';
import { parseTarget, type DelegateAuth, type Delegate, type Target, type TargetRequest } from './delegate-auth.js';
import { pumpStream } from '../stream/pump.js';

const SVC = 'DelegatedIdentity';

export interface DelegatedIdentityDeps {
  readonly auth: DelegateAuth;
  readonly cache: DelegatedIdentityCache;
  readonly audit: AuditLog;
  readonly log: Logger;
}

type Stream = grpc.ServerWritableStream<unknown, unknown>;

export function protoSpiffeId(id: string): { trust_domain: string; path: string } {
  const parsed = SpiffeId.parse(id);
  return { trust_domain: parsed.trustDomain.name, path: parsed.path };
}

/** What the Delegated Identity API reads from the cache. */
export type DelegatedIdentityCache = Pick<CacheManager, 'match' | 'jwtFor' | 'allBundles' | 'subscribe'>;

function allBundlesMap(cache: DelegatedIdentityCache, encode: (b: TrustBundle) => Buffer): Record<string, Buffer> {
  const { bundle, federatedBundles } = cache.allBundles();
  const out: Record<string, Buffer> = { [tdId(bundle.trustDomain)]: encode(bundle) };
  for (const [td, b] of federatedBundles) out[tdId(td)] = encode(b);
  return out;
}

function fingerprint(map: Record<string, Buffer>): string {
  return Object.keys(map)
    .sort()
    .map((k) => `${k}=${map[k]!.toString('base64')}`)
    .join('|');
}

export function x509SvidsResponse(identities: readonly X509Identity[]): Record<string, unknown> {
  const federates = new Set<string>();
  for (const i of identities) for (const td of i.entry.federatesWith) federates.add(tdId(td));
  return {
    x509_svids: identities.map((i) => ({
      x509_svid: {
        cert_chain: i.chain.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)),
        id: protoSpiffeId(i.entry.spiffeId),
        expires_at: String(Math.floor(i.notAfter / 1000)),
        hint: i.entry.hint,
      },
      x509_svid_key: Buffer.from(i.keyPkcs8),
    })),
    federates_with: [...federates],
  };
}

export class DelegatedIdentityHandler {
  constructor(private readonly d: DelegatedIdentityDeps) {}

  service(): grpc.UntypedServiceImplementation {
    return {
      SubscribeToX509SVIDs: (call: Stream) => void this.subscribeX509SVIDs(call),
      SubscribeToX509Bundles: (call: Stream) => void this.subscribeBundles(call, 'SubscribeToX509Bundles', 'ca_certificates', (b) => concat(b.x509Authorities)),
      SubscribeToJWTBundles: (call: Stream) => void this.subscribeBundles(call, 'SubscribeToJWTBundles', 'bundles', jwks),
      FetchJWTSVIDs: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        void this.fetchJWTSVIDs(call).then(
          (res) => cb(null, res),
          (err: unknown) => cb(toServiceError(err) as grpc.ServiceError),
        ),
    };
  }

  private async subscribeX509SVIDs(call: Stream): Promise<void> {
    const method = `${SVC}.SubscribeToX509SVIDs`;
    let delegate: Delegate;
    let target: Target;
    let selectors;
    try {
      delegate = await this.d.auth.authorize(call, method);
      target = parseTarget(call.request as TargetRequest);
      selectors = await this.d.auth.selectorsOf(target, new AbortController().signal);
    } catch (err) {
      call.emit('error', toServiceError(err));
      return;
    }
    let last: string | undefined;
    pumpStream(call, this.d.cache, selectors, async (signal, sub) => {
      // A delegate that lost its authorization (entry removed, config changed by restart,
      // process replaced) gets nothing more.
      delegate = await this.d.auth.recheck(delegate, method, signal);
      const view = await sub.view();
      const fp = view.identities.map((i) => `${i.entry.id}/${i.serial}/${i.entry.hint}/${i.entry.federatesWith.join(',')}`).join(',');
      if (fp === last) return;
      const first = last === undefined;
      last = fp;
      if (signal.aborted) return;
      call.write(x509SvidsResponse(view.identities));
      this.d.audit.record({
        method,
        caller: auditCaller(delegate.attested),
        decision: 'granted',
        delegate: delegate.id,
        selectors: delegate.attested.selectors,
        ...targetFields(target, selectors),
        entryIds: view.identities.map((i) => i.entry.id),
        spiffeIds: view.identities.map((i) => i.entry.spiffeId),
        serials: view.identities.map((i) => i.serial),
        ...(first ? {} : { reason: 'update' }),
      });
    });
  }

  private async subscribeBundles(call: Stream, rpc: string, field: string, encode: (b: TrustBundle) => Buffer): Promise<void> {
    const method = `${SVC}.${rpc}`;
    let delegate: Delegate;
    try {
      delegate = await this.d.auth.authorize(call, method);
    } catch (err) {
      call.emit('error', toServiceError(err));
      return;
    }
    this.d.audit.record({ method, caller: auditCaller(delegate.attested), decision: 'granted', delegate: delegate.id, selectors: delegate.attested.selectors });
    let last = '';
    pumpStream(call, this.d.cache, [], async (signal) => {
      const map = allBundlesMap(this.d.cache, encode);
      const fp = fingerprint(map);
      if (fp === last || signal.aborted) return;
      last = fp;
      call.write({ [field]: map });
    });
  }

  private async fetchJWTSVIDs(call: grpc.ServerUnaryCall<unknown, unknown>): Promise<unknown> {
    const method = `${SVC}.FetchJWTSVIDs`;
    const req = call.request as TargetRequest & { audience?: string[] };
    const audience = requireAudience(req.audience);
    const delegate = await this.d.auth.authorize(call, method);
    const target = parseTarget(req);
    const selectors = await this.d.auth.selectorsOf(target, new AbortController().signal);
    const entries = this.d.cache.match(selectors);
    const base = { method, caller: auditCaller(delegate.attested), delegate: delegate.id, selectors: delegate.attested.selectors, ...targetFields(target, selectors), audience };
    if (entries.length === 0) {
      this.d.audit.record({ ...base, decision: 'denied', reason: 'no registration entry matches the target' });
      throw new StatusError(grpc.status.PERMISSION_DENIED, 'no identity issued');
    }
    const svids = [];
    for (const e of entries) {
      try {
        const s = await this.d.cache.jwtFor(e, audience);
        svids.push({
          token: s.token,
          id: protoSpiffeId(e.spiffeId),
          expires_at: String(Math.floor(s.expiresAt / 1000)),
          issued_at: String(Math.floor(s.issuedAt / 1000)),
          hint: e.hint,
        });
      } catch (err) {
        throw new StatusError(grpc.status.UNAVAILABLE, `could not mint a JWT-SVID for ${e.spiffeId}: ${(err as Error).message}`, { cause: err });
      }
    }
    this.d.audit.record({ ...base, decision: 'granted', entryIds: entries.map((e) => e.id), spiffeIds: entries.map((e) => e.spiffeId) });
    return { svids };
  }
}

function targetFields(target: Target, selectors: readonly { type: string; value: string }[]): { targetSelectors: typeof selectors; targetPid?: number } {
  return target.kind === 'pid' ? { targetSelectors: selectors, targetPid: target.pid } : { targetSelectors: selectors };
}
