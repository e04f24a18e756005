/**
 * ValidateJWTSVID against the bundles the caller can see (own trust domain plus the
 * federated bundles of its entries). For tokens of another trust domain only sub,
 * aud, exp and the claims named in allowed_foreign_jwt_claims are returned, as
 * spire-agent does, so foreign issuers cannot smuggle claims into local policy.
 */
import * as grpc from '@grpc/grpc-js';
import type { TrustBundle } from '../../authority/types.js';
import type { BundleView } from '../../cache/manager.js';
import { BundleSet } from '../../svid/bundle-set.js';
import { JWTBundle } from '../../svid/jwt-bundle.js';
import { validateJWTSVID } from '../../svid/jwt-svid.js';
import { TrustDomain } from '../../svid/spiffe-id.js';
import { toProtoStruct } from '../proto.js';
import { StatusError } from '../status.js';

function jwtBundle(b: TrustBundle): JWTBundle {
  return new JWTBundle(TrustDomain.parse(b.trustDomain), new Map(b.jwtAuthorities.map((a) => [a.keyId, a.publicKey])));
}

export async function validateForCaller(
  token: string,
  audience: string,
  view: BundleView,
  allowedForeignClaims: readonly string[],
  /** From the handler's Clock, so expiry is judged on the same time as everything else. */
  now: Date,
): Promise<{ spiffe_id: string; claims: unknown }> {
  const set = new BundleSet<JWTBundle>([jwtBundle(view.bundle), ...[...view.federatedBundles.values()].map(jwtBundle)]);
  let svid;
  try {
    svid = await validateJWTSVID(token, set, [audience], now);
  } catch (err) {
    throw new StatusError(grpc.status.INVALID_ARGUMENT, (err as Error).message, { cause: err });
  }
  let claims: Record<string, unknown> = { ...svid.claims };
  if (typeof claims.aud === 'string') claims.aud = [claims.aud];
  if (svid.id.trustDomain.name !== view.bundle.trustDomain) {
    const keep = new Set(['sub', 'aud', 'exp', ...allowedForeignClaims]);
    claims = Object.fromEntries(Object.entries(claims).filter(([k]) => keep.has(k)));
  }
  return { spiffe_id: svid.id.toString(), claims: toProtoStruct(claims) };
}
