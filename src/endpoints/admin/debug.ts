/**
 * spire-agent's Debug GetInfo: the agent's own SVID chain and last successful sync come from
 * the authority's status (with the embedded authority there is no agent SVID and no sync, so
 * svid_chain is empty and last_sync_success is 0). Answers are cached for 5 s, as spire-agent does.
 */
import { X509Certificate } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import type { AuthorityStatus } from '../../authority/types.js';
import type { CacheManager } from '../../cache/manager.js';
import type { Clock } from '../../clock.js';

const CACHE_MS = 5_000;

export interface DebugDeps {
  readonly cache: Pick<CacheManager, 'cachedX509Count' | 'cachedJWTCount'>;
  readonly clock: Clock;
  /** Epoch ms when the agent started. */
  readonly startedAt: number;
  /** The authority's status; absent means no agent SVID and no sync (embedded). */
  readonly status?: () => AuthorityStatus;
}

/** One certificate of the agent's chain as GetInfo shows it: the leaf's SPIFFE ID, expiry and subject. */
function certInfo(der: Uint8Array): Record<string, unknown> {
  const cert = new X509Certificate(der);
  const uri = /URI:(spiffe:\/\/[^,\s]+)/.exec(cert.subjectAltName ?? '')?.[1];
  let id: { trust_domain: string; path: string } | undefined;
  if (uri) {
    const rest = uri.slice('spiffe://'.length);
    const slash = rest.indexOf('/');
    id = slash < 0 ? { trust_domain: rest, path: '' } : { trust_domain: rest.slice(0, slash), path: rest.slice(slash) };
  }
  // Go prints pkix.Name in RFC 2253 order (most specific first), one RDN per comma.
  const subject = cert.subject.split('\n').filter(Boolean).reverse().join(',');
  return { id, expires_at: String(Math.floor(new Date(cert.validTo).getTime() / 1000)), subject };
}

export class DebugHandler {
  private cached: { at: number; info: Record<string, unknown> } | undefined;

  constructor(private readonly d: DebugDeps) {}

  info(): Record<string, unknown> {
    const now = this.d.clock.now();
    if (this.cached && now - this.cached.at < CACHE_MS) return this.cached.info;
    const x509 = this.d.cache.cachedX509Count;
    const status = this.d.status?.();
    const info = {
      svid_chain: (status?.agentSVID?.chain ?? []).map(certInfo),
      uptime: Math.floor((now - this.d.startedAt) / 1000),
      svids_count: x509,
      last_sync_success: String(Math.floor((status?.lastSyncSuccess ?? 0) / 1000)),
      cached_x509_svids_count: x509,
      cached_jwt_svids_count: this.d.cache.cachedJWTCount,
      cached_svidstore_x509_svids_count: 0,
    };
    this.cached = { at: now, info };
    return info;
  }

  service(): grpc.UntypedServiceImplementation {
    return {
      GetInfo: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, this.info()),
    };
  }
}
