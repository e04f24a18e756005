import type { JWTAuthority, TrustBundle } from '../types.js';
import { EmbeddedAuthorityError } from './errors.js';
import { SpiffeBundle, TrustDomain, X509Bundle } from '../../svid/index.js';

/**
 * Parse a federated trust domain's bundle file: SPIFFE bundle JSON, or PEM certificates
 * (what `spire-server bundle show` prints in either format).
 */
export function parseBundleFile(trustDomain: string, file: string, text: string): TrustBundle {
  try {
    const td = TrustDomain.parse(trustDomain);
    if (text.trimStart().startsWith('-----BEGIN')) {
      const x509 = X509Bundle.fromPem(td, text);
      if (x509.isEmpty()) throw new Error('no CERTIFICATE PEM block');
      return { trustDomain, x509Authorities: x509.authorities(), jwtAuthorities: [], sequenceNumber: 0, refreshHintSeconds: 0 };
    }
    const b = SpiffeBundle.parse(td, text);
    const jwtAuthorities: JWTAuthority[] = [...b.jwtBundle().keys()].map(([keyId, publicKey]) => ({ keyId, publicKey, expiresAt: 0 }));
    return {
      trustDomain,
      x509Authorities: b.x509Bundle().authorities(),
      jwtAuthorities,
      sequenceNumber: b.sequenceNumber ?? 0,
      refreshHintSeconds: b.refreshHintSeconds ?? 0,
    };
  } catch (err) {
    throw new EmbeddedAuthorityError('federated_bundle', `federated-bundles: ${file} (trust domain "${trustDomain}"): ${(err as Error).message}`, { cause: err });
  }
}

