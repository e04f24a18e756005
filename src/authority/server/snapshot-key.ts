/**
 * A digest of everything in a snapshot that workloads can see, so a sync that brings nothing new
 * (the usual case, every few seconds) wakes no stream.
 */
import { createHash } from 'node:crypto';
import type { TrustBundle } from '../../domain/types.js';
import type { AuthoritySnapshot } from '../types.js';

function addBundle(h: ReturnType<typeof createHash>, b: TrustBundle): void {
  h.update(`B${b.trustDomain}|${b.sequenceNumber}|${b.refreshHintSeconds}\n`);
  for (const c of b.x509Authorities) h.update(c).update('\n');
  for (const c of b.taintedX509Authorities ?? []) h.update('T').update(c).update('\n');
  for (const k of b.jwtAuthorities) h.update(`J${k.keyId}|${k.expiresAt}|${k.tainted ? 1 : 0}|${JSON.stringify(k.publicKey)}\n`);
}

export function snapshotKey(s: AuthoritySnapshot): string {
  const h = createHash('sha256');
  for (const e of s.entries) h.update(JSON.stringify(e)).update('\n');
  addBundle(h, s.bundle);
  for (const td of [...s.federatedBundles.keys()].sort()) addBundle(h, s.federatedBundles.get(td)!);
  return h.digest('hex');
}
