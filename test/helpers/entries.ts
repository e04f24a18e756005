import type { RegistrationEntry } from '../../src/authority/types.js';
import { parseSelector } from '../../src/cache/selectors.js';

/** A registration entry with defaults; `selectors` as "type:value" strings for brevity. */
export function makeEntry(id: string, selectors: string[], extra: Partial<RegistrationEntry> = {}): RegistrationEntry {
  return {
    id,
    spiffeId: `spiffe://example.org/${id}`,
    parentId: 'spiffe://example.org/spire/agent/local',
    selectors: selectors.map(parseSelector),
    x509SvidTtl: 0,
    jwtSvidTtl: 0,
    dnsNames: [],
    hint: '',
    federatesWith: [],
    admin: false,
    downstream: false,
    createdAt: 0,
    revisionNumber: 0,
    jwtSvidIncludeJti: false,
    ...extra,
  };
}
