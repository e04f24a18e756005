import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { EncodingError, X509SVIDError } from './errors.js';
import { splitDerCertificates } from './der.js';
import type { BundleSource } from './bundle-set.js';
import type { SpiffeId } from './spiffe-id.js';
import type { X509Bundle } from './x509-bundle.js';
import { certFacts, serialHex, type CertFacts } from './x509-cert.js';
import { checkLeaf, checkSigning, idFromCert } from './x509-checks.js';
import { buildPath } from './x509-path.js';

export interface X509SVID {
  id: SpiffeId;
  /** DER, leaf first */
  certificates: Uint8Array[];
  /** PKCS#8 DER */
  privateKeyDer: Uint8Array;
  hint: string;
  notAfter: Date;
  notBefore: Date;
  /** lowercase hex of the serial number, without leading zeros */
  serial: string;
}

function toCertList(chain: Uint8Array | readonly Uint8Array[]): Uint8Array[] {
  if (chain instanceof Uint8Array) {
    try {
      return splitDerCertificates(chain);
    } catch (cause) {
      const pem = cause instanceof EncodingError && cause.reason === 'pem_not_der';
      throw new X509SVIDError(pem ? 'pem_not_der' : 'bad_der', `x509svid: cannot parse certificate chain: ${(cause as Error).message}`, { cause });
    }
  }
  return chain.map((c) => c.slice());
}

function parseAll(certs: readonly Uint8Array[]): CertFacts[] {
  if (certs.length === 0) {
    throw new X509SVIDError('empty_chain', 'x509svid: certificate chain is empty');
  }
  return certs.map((der, i) => {
    try {
      return certFacts(der);
    } catch (cause) {
      const pem = cause instanceof EncodingError && cause.reason === 'pem_not_der';
      throw new X509SVIDError(pem ? 'pem_not_der' : 'bad_der', `x509svid: certificate ${i} of the chain is not a DER certificate: ${(cause as Error).message}`, { cause });
    }
  });
}

function parsePrivateKey(der: Uint8Array): KeyObject {
  if (Buffer.from(der.subarray(0, 64)).toString('latin1').includes('-----BEGIN')) {
    throw new X509SVIDError('pem_not_der', 'x509svid: private key is PEM; the Workload API carries PKCS#8 DER');
  }
  try {
    // Node refuses encrypted PKCS#8 without a passphrase and PKCS#1/SEC1 under type pkcs8.
    return createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
  } catch (cause) {
    throw new X509SVIDError('bad_private_key', 'x509svid: cannot parse PKCS8 private key (it must be unencrypted PKCS#8 DER)', { cause });
  }
}

/**
 * Parses an X509-SVID as delivered by the Workload API and applies go-spiffe's parse
 * checks. No path validation: use verifyX509SVID for that.
 */
export async function parseX509SVID(
  chain: Uint8Array | readonly Uint8Array[],
  privateKeyPkcs8Der: Uint8Array,
  hint = '',
): Promise<X509SVID> {
  const certs = toCertList(chain);
  const facts = parseAll(certs);
  const leaf = facts[0] as CertFacts;
  const id = checkLeaf(leaf);
  facts.slice(1).forEach((f, i) => checkSigning(f, i + 1));

  const key = parsePrivateKey(privateKeyPkcs8Der);
  let leafKey: KeyObject;
  try {
    // The certificate parser does not decode the key itself: a bad EC point or an unknown algorithm fails only here.
    leafKey = createPublicKey({ key: Buffer.from(leaf.cert.publicKey.rawData), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new X509SVIDError('bad_public_key', `x509svid: leaf certificate has an unusable public key: ${(cause as Error).message}`, { cause });
  }
  if (!createPublicKey(key).equals(leafKey)) {
    throw new X509SVIDError('key_mismatch', 'x509svid: leaf certificate does not match private key');
  }
  return {
    id,
    certificates: certs,
    privateKeyDer: privateKeyPkcs8Der.slice(),
    hint,
    notBefore: leaf.cert.notBefore,
    notAfter: leaf.cert.notAfter,
    serial: serialHex(leaf.cert),
  };
}

/**
 * Verifies a presented chain (leaf first) against the X.509 bundle of the trust domain
 * named in the leaf's URI SAN. Returns the leaf ID and the verified path leaf..root.
 */
export async function verifyX509SVID(
  chain: readonly Uint8Array[],
  bundles: BundleSource<X509Bundle>,
  now: Date = new Date(),
): Promise<{ id: SpiffeId; chain: Uint8Array[] }> {
  const facts = parseAll(chain);
  const leaf = facts[0] as CertFacts;
  const id = checkLeaf(leaf);
  const bundle = bundles.bundleFor(id.trustDomain);
  if (!bundle) {
    throw new X509SVIDError('no_bundle', `x509svid: could not get X509 bundle for trust domain "${id.trustDomain.name}"`);
  }
  const roots = bundle.authorities().map((der) => certFacts(der));
  const path = await buildPath(leaf, facts.slice(1), roots, now);
  return { id, chain: path.map((f) => f.der.slice()) };
}

/** SPIFFE ID of a DER certificate (exactly one URI SAN), without any other SVID checks. */
export function idFromCertificateDer(der: Uint8Array): SpiffeId {
  return idFromCert(certFacts(der));
}
