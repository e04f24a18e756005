/** Wire encodings of the Workload API: concatenated DER for X.509, JWKS JSON for JWT. */
import type { TrustBundle } from '../../domain/types.js';
import type { BundleView, X509Identity } from '../../cache/manager.js';

export function concat(parts: readonly Uint8Array[]): Buffer {
  return Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));
}

export function tdId(name: string): string {
  return `spiffe://${name}`;
}

const PRIVATE_JWK_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']);

/** Plain RFC 7517 JWKS as SPIRE serves it: every key has `kid`, no `use`, never a private member. */
export function jwks(bundle: TrustBundle): Buffer {
  const keys = bundle.jwtAuthorities.map((a) => {
    const k: Record<string, unknown> = {};
    for (const [name, v] of Object.entries(a.publicKey)) {
      if (!PRIVATE_JWK_MEMBERS.has(name) && name !== 'use' && name !== 'key_ops' && name !== 'ext' && name !== 'alg') k[name] = v;
    }
    k.kid = a.keyId;
    return k;
  });
  return Buffer.from(JSON.stringify({ keys }));
}

export function x509SvidResponse(identities: readonly X509Identity[], view: BundleView): Record<string, unknown> {
  const bundle = concat(view.bundle.x509Authorities);
  const federated: Record<string, Buffer> = {};
  for (const [td, b] of view.federatedBundles) federated[tdId(td)] = concat(b.x509Authorities);
  return {
    svids: identities.map((i) => ({
      spiffe_id: i.entry.spiffeId,
      x509_svid: concat(i.chain),
      x509_svid_key: Buffer.from(i.keyPkcs8),
      bundle,
      hint: i.entry.hint,
    })),
    crl: [],
    federated_bundles: federated,
  };
}

export function x509BundlesResponse(view: BundleView): Record<string, unknown> {
  const bundles: Record<string, Buffer> = { [tdId(view.bundle.trustDomain)]: concat(view.bundle.x509Authorities) };
  for (const [td, b] of view.federatedBundles) bundles[tdId(td)] = concat(b.x509Authorities);
  return { crl: [], bundles };
}

export function jwtBundlesResponse(view: BundleView): Record<string, unknown> {
  const bundles: Record<string, Buffer> = { [tdId(view.bundle.trustDomain)]: jwks(view.bundle) };
  for (const [td, b] of view.federatedBundles) bundles[tdId(td)] = jwks(b);
  return { bundles };
}

/**
 * One bundle's part of a fingerprint, computed once per bundle object (bundles are never changed in
 * place; a change is a new object): every open stream keeps its last fingerprint, and with a string
 * of its own per stream, 1,000 streams held 1,000 copies of the same base64 bundle.
 */
const bundleParts = { x509: new WeakMap<TrustBundle, string>(), jwt: new WeakMap<TrustBundle, string>() };

function bundlePart(b: TrustBundle, kind: 'x509' | 'jwt'): string {
  let part = bundleParts[kind].get(b);
  if (part === undefined) {
    part = kind === 'x509' ? concat(b.x509Authorities).toString('base64') : jwks(b).toString('base64');
    bundleParts[kind].set(b, part);
  }
  return part;
}

/** What a client would see; equal fingerprints mean an update would change nothing. */
export function bundleFingerprint(view: BundleView, kind: 'x509' | 'jwt'): string {
  const one = (b: TrustBundle): string => bundlePart(b, kind);
  const parts = [`${view.bundle.trustDomain}=${one(view.bundle)}`];
  for (const [td, b] of [...view.federatedBundles].sort(([a], [b2]) => (a < b2 ? -1 : 1))) parts.push(`${td}=${one(b)}`);
  return parts.join('|');
}

export function svidFingerprint(identities: readonly X509Identity[], view: BundleView): string {
  return identities.map((i) => `${i.entry.id}/${i.serial}/${i.entry.hint}`).join(',') + '#' + bundleFingerprint(view, 'x509');
}
