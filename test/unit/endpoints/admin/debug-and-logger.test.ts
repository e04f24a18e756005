/** Debug GetInfo's numbers and 5 s cache; the Logger API's level names. */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { DebugHandler } from '../../../../src/endpoints/admin/debug.js';
import { toRuntimeLevel } from '../../../../src/endpoints/admin/logger-service.js';
import { FakeClock } from '../../../helpers/fake-clock.js';

describe('DebugHandler', () => {
  it('reports uptime and cache sizes, and answers from a 5 s cache', () => {
    const clock = new FakeClock(1_000_000);
    const cache = { cachedX509Count: 3, cachedJWTCount: 2 };
    const h = new DebugHandler({ cache, clock, startedAt: 1_000_000 - 42_500 });
    expect(h.info()).toMatchObject({ svid_chain: [], uptime: 42, cached_x509_svids_count: 3, cached_jwt_svids_count: 2, last_sync_success: '0' });
    cache.cachedX509Count = 7;
    clock.advance(4_999);
    expect(h.info()).toMatchObject({ cached_x509_svids_count: 3, uptime: 42 });
    clock.advance(1);
    expect(h.info()).toMatchObject({ cached_x509_svids_count: 7, uptime: 47 });
  });
});

describe('toRuntimeLevel', () => {
  it('maps each SPIRE level name to its own level, PANIC to panic (not fatal)', () => {
    expect(['PANIC', 'FATAL', 'ERROR', 'WARN', 'INFO', 'DEBUG', 'TRACE'].map(toRuntimeLevel)).toEqual(['panic', 'fatal', 'error', 'warn', 'info', 'debug', 'trace']);
  });
  it('rejects UNSPECIFIED with InvalidArgument', () => {
    expect(() => toRuntimeLevel('UNSPECIFIED')).toThrow(expect.objectContaining({ status: grpc.status.INVALID_ARGUMENT }));
  });
});
