import { SpiffeId, TrustDomain } from '../../svid/spiffe-id.js';

/**
 * Problem-returning adapters over src/svid's parsers, for validators that collect every
 * problem instead of stopping at the first.
 */
export function spiffeIdProblem(id: string): string | undefined {
  try {
    SpiffeId.parse(id);
    return undefined;
  } catch (err) {
    return stripModule((err as Error).message);
  }
}

export function trustDomainProblem(name: string): string | undefined {
  try {
    TrustDomain.parse(name);
    return name.includes(':/') ? 'must be a bare trust domain name or "spiffe://<name>"' : undefined;
  } catch (err) {
    return stripModule((err as Error).message);
  }
}

/** The trust domain of an ID already accepted by spiffeIdProblem: no second parse (entries files hold many). */
export function trustDomainOf(id: string): string {
  const end = id.indexOf('/', SCHEME.length);
  return id.slice(SCHEME.length, end < 0 ? id.length : end);
}

const SCHEME = 'spiffe://';

function stripModule(message: string): string {
  return message.replace(/^[a-z0-9]+: /, '');
}
