import type { webcrypto } from 'node:crypto';

export type JsonWebKey = webcrypto.JsonWebKey;

/**
 * Keeps only public-key parameters. Bundles never need private members, and passing
 * `d` through would turn a verification key into a signing key.
 */
export function publicJwk(jwk: JsonWebKey): JsonWebKey {
  switch (jwk.kty) {
    case 'EC':
      return { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y };
    case 'RSA':
      return { kty: 'RSA', n: jwk.n, e: jwk.e };
    case 'OKP':
      return { kty: 'OKP', crv: jwk.crv, x: jwk.x };
    default:
      return { kty: jwk.kty };
  }
}

/** Returns a problem description, or undefined when the JWK has the public parameters its kty needs. */
export function jwkProblem(jwk: unknown): string | undefined {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return 'is not a JSON object';
  const k = jwk as Record<string, unknown>;
  const str = (name: string) => typeof k[name] === 'string' && (k[name] as string).length > 0;
  switch (k['kty']) {
    case 'EC':
      return str('crv') && str('x') && str('y') ? undefined : 'EC key needs crv, x and y';
    case 'RSA':
      return str('n') && str('e') ? undefined : 'RSA key needs n and e';
    case 'OKP':
      return str('crv') && str('x') ? undefined : 'OKP key needs crv and x';
    case undefined:
      return 'has no kty';
    default:
      return `has unsupported kty ${JSON.stringify(k['kty'])}`;
  }
}
