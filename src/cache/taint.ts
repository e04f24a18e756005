/**
 * Which cached SVIDs a tainted authority signed. When the server taints an X.509 authority
 * (`spire-server localauthority x509 taint`), spire-agent re-signs every SVID whose chain ends
 * at it before the authority is revoked; JWT-SVIDs signed by a tainted key are dropped.
 */
import { X509Certificate } from 'node:crypto';
import type { TrustBundle } from '../domain/types.js';

/** True when the last certificate of `chain` was issued (and signed) by one of `authorities`. */
export function signedByAny(chain: readonly Uint8Array[], authorities: readonly X509Certificate[]): boolean {
  const top = chain[chain.length - 1];
  if (!top || authorities.length === 0) return false;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(top);
  } catch {
    return false;
  }
  return authorities.some((a) => {
    try {
      return cert.checkIssued(a) && cert.verify(a.publicKey);
    } catch {
      return false;
    }
  });
}

export function taintedAuthorities(b: TrustBundle): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const der of b.taintedX509Authorities ?? []) {
    try {
      out.push(new X509Certificate(der));
    } catch {
      // An unreadable certificate cannot have signed anything we hold.
    }
  }
  return out;
}

/** The `kid` of a compact JWS, without verifying it. */
export function jwtKeyId(token: string): string | undefined {
  try {
    const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as { kid?: unknown };
    return typeof header.kid === 'string' ? header.kid : undefined;
  } catch {
    return undefined;
  }
}

/** JWT key IDs a workload may still be handed a token for: present in the bundle and not tainted. */
export function usableJwtKeyIds(b: TrustBundle): Set<string> {
  return new Set(b.jwtAuthorities.filter((k) => !k.tainted).map((k) => k.keyId));
}
