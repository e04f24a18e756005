import { describe, expect, it } from 'vitest';
import { SpiffeId, SpiffeIdError, TrustDomain } from '../../../../src/svid/index.js';
import { TLSAuthorizationError } from '../../../../src/sdk/index.js';
import { authorizeAny, authorizeID, authorizeMemberOf, authorizeOneOf, type Authorizer } from '../../../../src/sdk/tls/index.js';

const id = (s: string): SpiffeId => SpiffeId.parse(s);

function outcome(a: Authorizer, peer: string): { code: string; message: string } | 'ok' {
  try {
    a(id(peer), []);
    return 'ok';
  } catch (e) {
    expect(e).toBeInstanceOf(TLSAuthorizationError);
    return { code: (e as TLSAuthorizationError).code, message: (e as Error).message };
  }
}

describe('authorizers', () => {
  it.each([
    ['authorizeAny accepts any verified ID', authorizeAny(), 'spiffe://other.test/x', 'ok'],
    ['authorizeID accepts exactly its ID', authorizeID('spiffe://example.org/server'), 'spiffe://example.org/server', 'ok'],
    ['authorizeID takes a parsed SpiffeId too', authorizeID(id('spiffe://example.org/server')), 'spiffe://example.org/server', 'ok'],
    [
      'authorizeID refuses another path in the same trust domain',
      authorizeID('spiffe://example.org/server'),
      'spiffe://example.org/server2',
      { code: 'tlsconfig_unauthorized', message: 'tlsconfig: unexpected ID "spiffe://example.org/server2" (want "spiffe://example.org/server")' },
    ],
    [
      'authorizeID refuses the same path in another trust domain',
      authorizeID('spiffe://example.org/server'),
      'spiffe://evil.test/server',
      { code: 'tlsconfig_unauthorized', message: 'tlsconfig: unexpected ID "spiffe://evil.test/server" (want "spiffe://example.org/server")' },
    ],
    ['authorizeOneOf accepts each of its IDs', authorizeOneOf('spiffe://example.org/a', id('spiffe://example.org/b')), 'spiffe://example.org/b', 'ok'],
    [
      'authorizeOneOf refuses an ID not listed',
      authorizeOneOf('spiffe://example.org/a', 'spiffe://example.org/b'),
      'spiffe://example.org/c',
      { code: 'tlsconfig_unauthorized', message: 'tlsconfig: unexpected ID "spiffe://example.org/c" (want one of "spiffe://example.org/a", "spiffe://example.org/b")' },
    ],
    ['authorizeOneOf with no IDs refuses everyone', authorizeOneOf(), 'spiffe://example.org/a', { code: 'tlsconfig_unauthorized', message: 'tlsconfig: unexpected ID "spiffe://example.org/a" (no ID is allowed)' }],
    ['authorizeMemberOf accepts any ID of its trust domain', authorizeMemberOf('example.org'), 'spiffe://example.org/any/path', 'ok'],
    ['authorizeMemberOf takes a TrustDomain or a spiffe:// form', authorizeMemberOf(TrustDomain.parse('spiffe://example.org')), 'spiffe://example.org/x', 'ok'],
    [
      'authorizeMemberOf refuses another trust domain, even a suffix of it',
      authorizeMemberOf('example.org'),
      'spiffe://evil-example.org/x',
      { code: 'tlsconfig_unauthorized', message: 'tlsconfig: unexpected trust domain "evil-example.org" (want "example.org")' },
    ],
  ] as const)('%s', (_name, authorizer, peer, want) => {
    expect(outcome(authorizer, peer)).toEqual(want);
  });

  it('a malformed ID or trust domain fails when the authorizer is built, not at the first connection', () => {
    expect(() => authorizeID('spiffe://example.org/a/../b')).toThrow(SpiffeIdError);
    expect(() => authorizeOneOf('spiffe://ok.test/a', 'https://example.org/a')).toThrow(SpiffeIdError);
    expect(() => authorizeMemberOf('Not A Domain')).toThrow(SpiffeIdError);
  });
});
