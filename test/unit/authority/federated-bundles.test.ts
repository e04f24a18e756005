import { describe, it, expect } from 'vitest';
import { parseBundleFile } from '../../../src/authority/embedded/federated-bundle-file.js';
import { createGeneration } from '../../../src/authority/embedded/ca.js';
import { toPem } from '../../../src/crypto/keys.js';
import { HOUR } from './helpers.js';

const subject = { country: ['US'], organization: ['SPIFFE'], commonName: '' };

describe('federated bundle files', () => {
  it('reads a PEM bundle and a SPIFFE bundle with x509 and JWT authorities', async () => {
    const g = await createGeneration({ trustDomain: 'other.org', subject, caKeyType: 'ec-p256', jwtKeyType: 'ec-p256', now: Date.now(), ttlMs: 24 * HOUR });
    const pem = parseBundleFile('other.org', 'b.pem', toPem('CERTIFICATE', g.certDer));
    expect(pem.x509Authorities).toHaveLength(1);
    const json = JSON.stringify({
      keys: [
        { kty: 'EC', crv: 'P-256', use: 'x509-svid', x5c: [Buffer.from(g.certDer).toString('base64')], x: g.jwt.publicJwk.x, y: g.jwt.publicJwk.y },
        { ...g.jwt.publicJwk, use: 'jwt-svid', kid: g.jwt.kid },
      ],
      spiffe_sequence: 7,
    });
    const b = parseBundleFile('other.org', 'b.json', json);
    expect(b.sequenceNumber).toBe(7);
    expect(b.jwtAuthorities.map((k) => k.keyId)).toEqual([g.jwt.kid]);
    expect(b.x509Authorities).toHaveLength(1);
  });

  it('names the file and trust domain when the bundle is unusable', () => {
    expect(() => parseBundleFile('other.org', '/etc/b.json', '{"nokeys":[]}')).toThrow(/\/etc\/b\.json \(trust domain "other.org"\)/);
  });
});
