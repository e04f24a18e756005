import { X509SVIDError } from './errors.js';
import { KeyUsage, hasUsage, subtleCrypto, type CertFacts } from './x509-cert.js';
import { checkValidity } from './x509-checks.js';

/** Go's x509 verifier caps intermediates similarly; it bounds the search. */
const MAX_DEPTH = 10;

/** Validity of every certificate on the path, its time fields read by both parsers (see checkValidity). */
function checkTime(f: CertFacts, now: Date, role: string): void {
  checkValidity(f, now, role);
}

/** A trust anchor may sign only if it does not say it cannot (v1 roots without extensions are allowed). */
function anchorMaySign(f: CertFacts): boolean {
  if (f.hasBasicConstraints && !f.isCA) return false;
  if (f.keyUsage !== undefined && !hasUsage(f, KeyUsage.keyCertSign)) return false;
  return true;
}

async function signedBy(child: CertFacts, issuer: CertFacts): Promise<boolean> {
  if (child.cert.issuer !== issuer.cert.subject) return false;
  try {
    return await child.cert.verify({ publicKey: issuer.cert.publicKey, signatureOnly: true }, subtleCrypto);
  } catch {
    return false;
  }
}

/**
 * RFC 5280-style path building from `leaf` through `intermediates` to one of `roots`.
 * Returns leaf..root. Every certificate on the path, root included, must be inside its
 * validity window (as Go's verifier does). The first precise error found is reported
 * when no path exists.
 */
export async function buildPath(
  leaf: CertFacts,
  intermediates: readonly CertFacts[],
  roots: readonly CertFacts[],
  now: Date,
): Promise<CertFacts[]> {
  checkTime(leaf, now, 'leaf');
  let firstProblem: X509SVIDError | undefined;

  const search = async (path: CertFacts[]): Promise<CertFacts[] | undefined> => {
    const cur = path[path.length - 1] as CertFacts;
    // caCount = CA certificates below the candidate issuer, for pathLenConstraint.
    const caCount = path.length - 1;
    for (const root of roots) {
      if (!(await signedBy(cur, root))) continue;
      try {
        if (!anchorMaySign(root)) throw new X509SVIDError('root_not_ca', 'x509svid: bundle authority that signed the chain is not a CA');
        if (root.pathLength !== undefined && caCount > root.pathLength) {
          throw new X509SVIDError('path_len', 'x509svid: chain exceeds the pathLenConstraint of a bundle authority');
        }
        checkTime(root, now, 'bundle authority');
        return [...path, root];
      } catch (e) {
        firstProblem ??= e as X509SVIDError;
      }
    }
    if (path.length > MAX_DEPTH) return undefined;
    for (const inter of intermediates) {
      if (path.includes(inter) || !(await signedBy(cur, inter))) continue;
      try {
        if (!inter.isCA) throw new X509SVIDError('signing_not_ca', 'x509svid: intermediate certificate must have CA flag set to true');
        if (!hasUsage(inter, KeyUsage.keyCertSign)) {
          throw new X509SVIDError('signing_no_key_cert_sign', "x509svid: intermediate certificate must have 'keyCertSign' set as key usage");
        }
        if (inter.pathLength !== undefined && caCount > inter.pathLength) {
          throw new X509SVIDError('path_len', 'x509svid: chain exceeds the pathLenConstraint of an intermediate');
        }
        checkTime(inter, now, 'intermediate');
      } catch (e) {
        firstProblem ??= e as X509SVIDError;
        continue;
      }
      const found = await search([...path, inter]);
      if (found) return found;
    }
    return undefined;
  };

  const found = await search([leaf]);
  if (found) return found;
  throw firstProblem ?? new X509SVIDError('unverifiable', 'x509svid: could not verify leaf certificate: no chain to an authority of its trust domain bundle');
}
