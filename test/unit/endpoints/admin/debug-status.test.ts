import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AuthorityStatus } from '../../../../src/authority/types.js';
import { DebugHandler } from '../../../../src/endpoints/admin/debug.js';
import { FakeClock } from '../../../helpers/fake-clock.js';
import { TestCA } from '../../../helpers/test-ca.js';

describe('DebugHandler with a server authority', () => {
  it("shows the agent's SVID chain (ID of the leaf, expiry, subject as Go prints it) and the last sync in seconds", async () => {
    const ca = await TestCA.create('example.org');
    const svid = await ca.createX509SVID('spiffe://example.org/spire/agent/join_token/abc');
    const leaf = new X509Certificate(svid.chain[0]!);
    const status: AuthorityStatus = {
      mode: 'server',
      ready: true,
      agentSVID: { spiffeId: 'spiffe://example.org/spire/agent/join_token/abc', chain: [svid.chain[0]!, ca.der()], notAfter: 0 },
      lastSyncSuccess: 1_700_000_123_456,
      serverReachable: true,
    };
    const h = new DebugHandler({ cache: { cachedX509Count: 0, cachedJWTCount: 0 }, clock: new FakeClock(), startedAt: 0, status: () => status });
    const info = h.info() as { svid_chain: { id?: unknown; expires_at: string; subject: string }[]; last_sync_success: string };
    expect(info.last_sync_success).toBe('1700000123');
    expect(info.svid_chain).toHaveLength(2);
    expect(info.svid_chain[0]).toEqual({
      id: { trust_domain: 'example.org', path: '/spire/agent/join_token/abc' },
      expires_at: String(Math.floor(new Date(leaf.validTo).getTime() / 1000)),
      subject: leaf.subject.split('\n').filter(Boolean).reverse().join(','),
    });
    // The CA's URI SAN is the trust domain itself: an ID with an empty path.
    expect(info.svid_chain[1]!.id).toEqual({ trust_domain: 'example.org', path: '' });
  });
});
