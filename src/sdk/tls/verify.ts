/**
 * Verifies a TLS peer's X509-SVID synchronously, as node:tls needs it: `checkServerIdentity` must
 * answer before the client writes its first byte, and a server must refuse a peer in the same tick
 * as 'secureConnection', before any request is parsed. (src/svid's verifyX509SVID is async, because
 * it verifies through WebCrypto.) OpenSSL has already checked the chain against every bundle the
 * source holds; this adds what SPIFFE requires on top, and repeats the signature and time checks so
 * the function is sound on its own: the leaf follows the X509-SVID profile, and the chain ends at an
 * authority of the bundle of the trust domain named in the leaf, not of just any trust domain.
 */
import { X509Certificate } from 'node:crypto';
import { EncodingError, X509SVIDError, type BundleSource, type SpiffeId, type X509Bundle } from '../../svid/index.js';
import { certFacts, type CertFacts } from '../../svid/x509-cert.js';
import { checkLeaf, checkSigning, checkValidity } from '../../svid/x509-checks.js';

/** Longer chains than this are refused rather than walked (Go's verifier bounds its search too). */
const MAX_CHAIN = 10;

interface Parsed {
  der: Uint8Array;
  facts: CertFacts;
  cert: X509Certificate;
}

/**
 * Both parsers, under one typed error. The peer's bytes are outside input: a DER framing error
 * (EncodingError), an ASN.1 error from @peculiar/x509 or one from OpenSSL (X509Certificate) was
 * thrown as is, so a caller that only expects X509SVIDError saw a bare Error (found by
 * test/unit/fuzz/sdk-tls.fuzz.test.ts). A bundle authority passed @peculiar/x509 when the bundle
 * was built, but OpenSSL can still refuse it, so the bundle's certificates go through here too.
 */
function parse(der: Uint8Array, what: string): Parsed {
  try {
    return { der, facts: certFacts(der), cert: new X509Certificate(der) };
  } catch (cause) {
    const pem = cause instanceof EncodingError && cause.reason === 'pem_not_der';
    throw new X509SVIDError(pem ? 'pem_not_der' : 'bad_der', `x509svid: ${what} is not a DER certificate: ${(cause as Error).message}`, { cause });
  }
}

function checkTime(p: Parsed, now: Date, role: string): void {
  checkValidity(p.facts, now, role, p.cert);
}

/** Names, then the signature. (X509Certificate.checkIssued is stricter than Go and src/svid about name encodings.) */
function signedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return child.issuer === issuer.subject && child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

const sameDer = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

/**
 * `chain` is what the peer presented, leaf first, in order (node:tls's getPeerCertificate(true)
 * walk, which may already end with the authority OpenSSL found). Returns the peer's SPIFFE ID and
 * the verified chain, leaf first, ending at an authority of its trust domain.
 */
export function verifyPeerChain(
  chain: readonly Uint8Array[],
  bundles: BundleSource<X509Bundle>,
  now: Date = new Date(),
): { id: SpiffeId; chain: Uint8Array[] } {
  if (chain.length === 0) throw new X509SVIDError('empty_chain', 'x509svid: the peer presented no certificate');
  if (chain.length > MAX_CHAIN) throw new X509SVIDError('chain_too_long', `x509svid: the peer presented more than ${MAX_CHAIN} certificates`);
  const parsed = chain.map((der, i) => parse(der, `certificate ${i} of the peer's chain`));
  const facts = parsed.map((p) => p.facts);
  const certs = parsed.map((p) => p.cert);
  const leaf = facts[0] as CertFacts;
  const id = checkLeaf(leaf);
  const bundle = bundles.bundleFor(id.trustDomain);
  if (!bundle) throw new X509SVIDError('no_bundle', `x509svid: could not get X509 bundle for trust domain "${id.trustDomain.name}"`);
  const roots = bundle.authorities().map((der, i) => parse(der, `authority ${i} of the bundle of trust domain "${id.trustDomain.name}"`));

  checkTime(parsed[0] as Parsed, now, 'leaf');
  for (let i = 0; i < certs.length; i++) {
    const cur = certs[i] as X509Certificate;
    const root = roots.find((r) => signedBy(cur, r.cert));
    if (root) {
      checkTime(root, now, 'bundle authority');
      const path = chain.slice(0, i + 1).map((d) => Buffer.from(d));
      return { id, chain: sameDer(path[path.length - 1] as Uint8Array, root.der) ? path : [...path, Buffer.from(root.der)] };
    }
    const next = certs[i + 1];
    if (!next || !signedBy(cur, next)) break;
    checkSigning(facts[i + 1] as CertFacts, i + 1);
    checkTime(parsed[i + 1] as Parsed, now, 'intermediate');
  }
  throw new X509SVIDError(
    'unverifiable',
    `x509svid: could not verify the peer's certificate ${id.toString()}: no chain to an authority of the bundle of trust domain "${id.trustDomain.name}"`,
  );
}
