/**
 * Wire messages → svid values. Every use of src/svid by the client is here, so the
 * mapping rules (trust domain of each bundle, federated map keys) live in one place.
 */
import {
  BundleSet,
  JWTBundle,
  SpiffeId,
  TrustDomain,
  X509Bundle,
  parseInsecureJWTSVID,
  parseX509SVID,
  type JWTSVID,
  type X509SVID,
} from '../svid/index.js';
import { WorkloadResponseError } from './errors.js';
import type {
  RawJWTBundlesResponse,
  RawJWTSVIDResponse,
  RawStruct,
  RawValidateJWTSVIDResponse,
  RawValue,
  RawX509BundlesResponse,
  RawX509SVIDResponse,
} from './proto.js';

/** The X.509 material a workload holds at one moment: its SVIDs (first = default) and the bundles to verify peers. */
export interface X509Context {
  readonly svids: readonly X509SVID[];
  readonly bundles: BundleSet<X509Bundle>;
}

export interface ValidatedJWT {
  readonly spiffeId: SpiffeId;
  readonly claims: Record<string, unknown>;
}

/** Map keys are `spiffe://td` (SPIRE) or a bare name (accepted by go-spiffe). */
export function trustDomainFromKey(key: string): TrustDomain {
  try {
    return TrustDomain.parse(key);
  } catch (err) {
    throw new WorkloadResponseError(`bundle map key ${JSON.stringify(key)} is not a trust domain`, { cause: err });
  }
}

function bytes(b: Uint8Array | undefined): Uint8Array {
  return b ?? new Uint8Array();
}

export async function toX509Context(resp: RawX509SVIDResponse): Promise<X509Context> {
  if (resp.svids.length === 0) throw new WorkloadResponseError('no SVIDs in response');
  const svids: X509SVID[] = [];
  const bundles = new BundleSet<X509Bundle>();
  for (const [i, raw] of resp.svids.entries()) {
    let svid: X509SVID;
    try {
      svid = await parseX509SVID(bytes(raw.x509_svid), bytes(raw.x509_svid_key), raw.hint || undefined);
    } catch (err) {
      throw new WorkloadResponseError(`failed to parse SVID #${i} for ${JSON.stringify(raw.spiffe_id)}: ${(err as Error).message}`, { cause: err });
    }
    svids.push(svid);
    const td = svid.id.trustDomain;
    try {
      bundles.set(X509Bundle.fromDer(td, bytes(raw.bundle)));
    } catch (err) {
      throw new WorkloadResponseError(`failed to parse bundle for ${td.toString()}: ${(err as Error).message}`, { cause: err });
    }
  }
  for (const [key, der] of Object.entries(resp.federated_bundles)) {
    const td = trustDomainFromKey(key);
    try {
      bundles.set(X509Bundle.fromDer(td, bytes(der)));
    } catch (err) {
      throw new WorkloadResponseError(`failed to parse federated bundle for ${key}: ${(err as Error).message}`, { cause: err });
    }
  }
  return { svids, bundles };
}

export function toX509Bundles(resp: RawX509BundlesResponse): BundleSet<X509Bundle> {
  const set = new BundleSet<X509Bundle>();
  for (const [key, der] of Object.entries(resp.bundles)) {
    const td = trustDomainFromKey(key);
    try {
      set.set(X509Bundle.fromDer(td, bytes(der)));
    } catch (err) {
      throw new WorkloadResponseError(`failed to parse X.509 bundle for ${key}: ${(err as Error).message}`, { cause: err });
    }
  }
  return set;
}

export function toJWTBundles(resp: RawJWTBundlesResponse): BundleSet<JWTBundle> {
  const set = new BundleSet<JWTBundle>();
  for (const [key, jwks] of Object.entries(resp.bundles)) {
    const td = trustDomainFromKey(key);
    try {
      set.set(JWTBundle.fromJWKS(td, bytes(jwks)));
    } catch (err) {
      throw new WorkloadResponseError(`failed to parse JWT bundle for ${key}: ${(err as Error).message}`, { cause: err });
    }
  }
  return set;
}

export function toJWTSVIDs(resp: RawJWTSVIDResponse, audience: readonly string[]): JWTSVID[] {
  if (resp.svids.length === 0) throw new WorkloadResponseError('there were no SVIDs in the response');
  return resp.svids.map((raw, i) => {
    try {
      return parseInsecureJWTSVID(raw.svid, [...audience]);
    } catch (err) {
      throw new WorkloadResponseError(`failed to parse JWT-SVID #${i} for ${JSON.stringify(raw.spiffe_id)}: ${(err as Error).message}`, { cause: err });
    }
  });
}

/** google.protobuf.Value → plain JSON value. */
export function valueToJSON(v: RawValue | undefined): unknown {
  if (!v) return null;
  switch (v.kind) {
    case 'numberValue':
      return v.numberValue;
    case 'stringValue':
      return v.stringValue;
    case 'boolValue':
      return v.boolValue;
    case 'structValue':
      return structToJSON(v.structValue);
    case 'listValue':
      return (v.listValue?.values ?? []).map(valueToJSON);
    default:
      return null;
  }
}

/** google.protobuf.Struct → plain object. */
export function structToJSON(s: RawStruct | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = valueToJSON(v);
  return out;
}

export function toValidatedClaims(resp: RawValidateJWTSVIDResponse): ValidatedJWT {
  let spiffeId: SpiffeId;
  try {
    spiffeId = SpiffeId.parse(resp.spiffe_id);
  } catch (err) {
    throw new WorkloadResponseError(`validated SPIFFE ID ${JSON.stringify(resp.spiffe_id)} is not valid`, { cause: err });
  }
  return { spiffeId, claims: structToJSON(resp.claims) };
}
