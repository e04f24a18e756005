import { SpiffeIdError } from './errors.js';

const SCHEME_PREFIX = 'spiffe://';
/** Spec: trust domain names are at most 255 bytes. */
export const MAX_TRUST_DOMAIN_LENGTH = 255;
/** Spec: implementations must accept IDs up to 2048 bytes; we refuse longer ones. */
export const MAX_SPIFFE_ID_LENGTH = 2048;

function isTrustDomainChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x2e || c === 0x2d || c === 0x5f // . - _
  );
}

function isPathSegmentChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2e || c === 0x2d || c === 0x5f
  );
}

/** Validates a bare trust domain name (no scheme); throws SpiffeIdError. The one trust-domain check, also used by config. */
export function validateTrustDomainName(name: string): void {
  if (name.length === 0) {
    throw new SpiffeIdError('missing_trust_domain', 'spiffeid: trust domain is missing');
  }
  if (name.length > MAX_TRUST_DOMAIN_LENGTH) {
    throw new SpiffeIdError(
      'too_long',
      `spiffeid: trust domain is longer than ${MAX_TRUST_DOMAIN_LENGTH} bytes`,
    );
  }
  for (let i = 0; i < name.length; i++) {
    if (!isTrustDomainChar(name.charCodeAt(i))) {
      throw new SpiffeIdError(
        'bad_trust_domain_char',
        'spiffeid: trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores',
      );
    }
  }
}

/** Validates a path ('' or '/seg/seg'); throws SpiffeIdError. */
export function validatePath(path: string): void {
  if (path === '') return;
  if (path.charCodeAt(0) !== 0x2f) {
    throw new SpiffeIdError('bad_path', 'spiffeid: path must have a leading slash');
  }
  // Segments are checked left to right so the first problem is the one reported.
  const segments = path.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as string;
    if (seg === '') {
      if (i === segments.length - 1) {
        throw new SpiffeIdError('trailing_slash', 'spiffeid: path cannot have a trailing slash');
      }
      throw new SpiffeIdError('empty_segment', 'spiffeid: path cannot contain empty segments');
    }
    if (seg === '.' || seg === '..') {
      throw new SpiffeIdError('dot_segment', 'spiffeid: path cannot contain dot segments');
    }
    for (let j = 0; j < seg.length; j++) {
      if (!isPathSegmentChar(seg.charCodeAt(j))) {
        throw new SpiffeIdError(
          'bad_path_char',
          'spiffeid: path segment characters are limited to letters, numbers, dots, dashes, and underscores',
        );
      }
    }
  }
}

export class TrustDomain {
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
    Object.freeze(this);
  }

  /** Accepts a bare name (`example.org`) or any SPIFFE ID (`spiffe://example.org/x`). */
  static parse(nameOrId: string): TrustDomain {
    if (typeof nameOrId !== 'string') {
      throw new SpiffeIdError('not_a_string', 'spiffeid: trust domain must be a string');
    }
    if (nameOrId.includes(':/')) {
      return SpiffeId.parse(nameOrId).trustDomain;
    }
    validateTrustDomainName(nameOrId);
    return new TrustDomain(nameOrId);
  }

  /** @internal used by SpiffeId.parse after it has validated the name. */
  static fromValidatedName(name: string): TrustDomain {
    return new TrustDomain(name);
  }

  /** `spiffe://<name>`: the key the Workload API uses for bundle maps. */
  idString(): string {
    return SCHEME_PREFIX + this.name;
  }

  toString(): string {
    return this.name;
  }

  equals(o: unknown): boolean {
    return o instanceof TrustDomain && o.name === this.name;
  }
}

export class SpiffeId {
  readonly trustDomain: TrustDomain;
  readonly path: string;

  private constructor(td: TrustDomain, path: string) {
    this.trustDomain = td;
    this.path = path;
    Object.freeze(this);
  }

  static parse(s: string): SpiffeId {
    if (typeof s !== 'string' || s.length === 0) {
      throw new SpiffeIdError('empty', 'spiffeid: cannot be empty');
    }
    // Byte length, not UTF-16 length: the spec limit is in bytes.
    if (Buffer.byteLength(s, 'utf8') > MAX_SPIFFE_ID_LENGTH) {
      throw new SpiffeIdError('too_long', `spiffeid: longer than ${MAX_SPIFFE_ID_LENGTH} bytes`);
    }
    // Only the literal lowercase scheme is accepted (as go-spiffe does).
    if (!s.startsWith(SCHEME_PREFIX)) {
      throw new SpiffeIdError(
        'bad_scheme',
        'spiffeid: scheme is missing or invalid; expected "spiffe://<trust-domain>/<path>"',
      );
    }
    const rest = s.slice(SCHEME_PREFIX.length);
    const slash = rest.indexOf('/');
    const name = slash === -1 ? rest : rest.slice(0, slash);
    const path = slash === -1 ? '' : rest.slice(slash);
    validateTrustDomainName(name);
    validatePath(path);
    return new SpiffeId(TrustDomain.fromValidatedName(name), path);
  }

  static fromParts(td: TrustDomain, path: string): SpiffeId {
    validatePath(path);
    if (Buffer.byteLength(SCHEME_PREFIX + td.name + path, 'utf8') > MAX_SPIFFE_ID_LENGTH) {
      throw new SpiffeIdError('too_long', `spiffeid: longer than ${MAX_SPIFFE_ID_LENGTH} bytes`);
    }
    return new SpiffeId(td, path);
  }

  toString(): string {
    return SCHEME_PREFIX + this.trustDomain.name + this.path;
  }

  memberOf(td: TrustDomain): boolean {
    return this.trustDomain.equals(td);
  }

  isRoot(): boolean {
    return this.path === '';
  }

  equals(o: unknown): boolean {
    return o instanceof SpiffeId && o.trustDomain.equals(this.trustDomain) && o.path === this.path;
  }
}
