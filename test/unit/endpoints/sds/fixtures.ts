/** Identities and bundles for the SDS unit tests, from TestCA (real certificates and keys). */
import { X509Certificate } from 'node:crypto';
import type { TrustBundle } from '../../../../src/authority/types.js';
import type { WorkloadView, X509Identity } from '../../../../src/cache/manager.js';
import { makeEntry } from '../../../helpers/entries.js';
import type { TestCA } from '../../../helpers/test-ca.js';

export function trustBundle(...cas: TestCA[]): TrustBundle {
  return { trustDomain: cas[0]!.trustDomain.name, x509Authorities: cas.map((c) => c.der()), jwtAuthorities: [], sequenceNumber: 1, refreshHintSeconds: 0 };
}

/** An identity for spiffe://example.org/<path>, entry ID `entryId`. */
export async function identity(ca: TestCA, path: string, entryId = path): Promise<X509Identity> {
  const svid = await ca.createX509SVID(`spiffe://example.org/${path}`);
  const leaf = new X509Certificate(Buffer.from(svid.chain[0]!));
  const entry = { ...makeEntry(entryId, ['unix:uid:1000']), spiffeId: `spiffe://example.org/${path}` };
  return {
    entry,
    chain: svid.chain,
    keyPkcs8: svid.privateKeyPkcs8,
    serial: leaf.serialNumber,
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
    rotateAt: Date.parse(leaf.validTo),
  };
}

export function view(own: TrustBundle, identities: X509Identity[], federated: TrustBundle[] = []): WorkloadView {
  return { bundle: own, federatedBundles: new Map(federated.map((b) => [b.trustDomain, b])), identities };
}
