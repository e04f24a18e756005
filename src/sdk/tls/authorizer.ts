/**
 * Authorizers decide, after the peer's X509-SVID has been verified against the bundle of its own
 * trust domain, whether that SPIFFE ID may talk to us (the shape of go-spiffe's
 * spiffetls/tlsconfig authorizers). An authorizer throws to refuse; what it throws ends the
 * handshake (client) or the connection before any application data is read (server).
 */
import { SpiffeId, TrustDomain } from '../../svid/index.js';
import { TLSAuthorizationError } from '../errors.js';

/** `verifiedChain` is the peer's chain as verified, leaf first, ending at an authority of its trust domain (DER). */
export type Authorizer = (id: SpiffeId, verifiedChain: readonly Uint8Array[]) => void;

const toId = (id: SpiffeId | string): SpiffeId => (typeof id === 'string' ? SpiffeId.parse(id) : id);
const toTrustDomain = (td: TrustDomain | string): TrustDomain => (typeof td === 'string' ? TrustDomain.parse(td) : td);

/** Any verified SPIFFE ID (from any trust domain the source holds a bundle for). */
export function authorizeAny(): Authorizer {
  return () => {};
}

/** Exactly this SPIFFE ID. A string is parsed at once, so a typo fails here, not at the first connection. */
export function authorizeID(allowed: SpiffeId | string): Authorizer {
  const want = toId(allowed);
  return (id) => {
    if (!id.equals(want)) throw new TLSAuthorizationError(`unexpected ID "${id.toString()}" (want "${want.toString()}")`);
  };
}

/** Any of these SPIFFE IDs. */
export function authorizeOneOf(...allowed: (SpiffeId | string)[]): Authorizer {
  const want = new Set(allowed.map((a) => toId(a).toString()));
  const listed = want.size === 0 ? 'no ID is allowed' : `want one of ${[...want].map((w) => `"${w}"`).join(', ')}`;
  return (id) => {
    if (!want.has(id.toString())) throw new TLSAuthorizationError(`unexpected ID "${id.toString()}" (${listed})`);
  };
}

/** Any SPIFFE ID in this trust domain. */
export function authorizeMemberOf(trustDomain: TrustDomain | string): Authorizer {
  const want = toTrustDomain(trustDomain);
  return (id) => {
    if (!id.memberOf(want)) throw new TLSAuthorizationError(`unexpected trust domain "${id.trustDomain.name}" (want "${want.name}")`);
  };
}
