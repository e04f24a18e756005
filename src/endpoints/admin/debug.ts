/**
 * spire-agent's Debug GetInfo. This build serves only from the embedded authority: the
 * agent has no SVID of its own and never syncs with a server, so svid_chain is empty and
 * last_sync_success is 0. Answers are cached for 5 s, as spire-agent does.
 */
import type * as grpc from '@grpc/grpc-js';
import type { CacheManager } from '../../cache/manager.js';
import type { Clock } from '../../clock.js';

const CACHE_MS = 5_000;

export interface DebugDeps {
  readonly cache: Pick<CacheManager, 'cachedX509Count' | 'cachedJWTCount'>;
  readonly clock: Clock;
  /** Epoch ms when the agent started. */
  readonly startedAt: number;
}

export class DebugHandler {
  private cached: { at: number; info: Record<string, unknown> } | undefined;

  constructor(private readonly d: DebugDeps) {}

  info(): Record<string, unknown> {
    const now = this.d.clock.now();
    if (this.cached && now - this.cached.at < CACHE_MS) return this.cached.info;
    const x509 = this.d.cache.cachedX509Count;
    const info = {
      svid_chain: [],
      uptime: Math.floor((now - this.d.startedAt) / 1000),
      svids_count: x509,
      last_sync_success: '0',
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
