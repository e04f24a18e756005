import { describe, expect, it } from 'vitest';
import { SpiffeId, SpiffeIdError, TrustDomain } from '../../../src/svid/index.js';

const longPath = (total: number) => {
  const prefix = 'spiffe://example.org/';
  return prefix + 'a'.repeat(total - prefix.length);
};

describe('SpiffeId.parse', () => {
  it.each([
    { input: 'spiffe://example.org', td: 'example.org', path: '' },
    { input: 'spiffe://example.org/workload', td: 'example.org', path: '/workload' },
    { input: 'spiffe://example.org/ns/Prod/sa/My_App-1.2', td: 'example.org', path: '/ns/Prod/sa/My_App-1.2' },
    { input: 'spiffe://192.168.1.10/db', td: '192.168.1.10', path: '/db' },
    { input: 'spiffe://a_b-c.d/x/...', td: 'a_b-c.d', path: '/x/...' },
    { input: longPath(2048), td: 'example.org', path: longPath(2048).slice('spiffe://example.org'.length) },
  ])('accepts $input', ({ input, td, path }) => {
    const id = SpiffeId.parse(input);
    expect(id.trustDomain.name).toBe(td);
    expect(id.path).toBe(path);
    expect(id.toString()).toBe(input);
  });

  it.each([
    { input: '', reason: 'empty' },
    { input: 'example.org/workload', reason: 'bad_scheme' },
    { input: 'http://example.org/workload', reason: 'bad_scheme' },
    { input: 'SPIFFE://example.org/workload', reason: 'bad_scheme' },
    { input: 'Spiffe://example.org', reason: 'bad_scheme' },
    { input: 'spiffe:/example.org', reason: 'bad_scheme' },
    { input: 'spiffe:///path', reason: 'missing_trust_domain' },
    { input: 'spiffe://', reason: 'missing_trust_domain' },
    { input: 'spiffe://Example.org/w', reason: 'bad_trust_domain_char' },
    { input: 'spiffe://example.org:8080/w', reason: 'bad_trust_domain_char' },
    { input: 'spiffe://user@example.org/w', reason: 'bad_trust_domain_char' },
    { input: 'spiffe://%2eexample.org/w', reason: 'bad_trust_domain_char' },
    { input: 'spiffe://[::1]/w', reason: 'bad_trust_domain_char' },
    { input: 'spiffe://*.example.org/w', reason: 'bad_trust_domain_char' },
    { input: 'spiffe://exa mple.org/w', reason: 'bad_trust_domain_char' },
    { input: `spiffe://${'a'.repeat(256)}`, reason: 'too_long' },
    { input: 'spiffe://example.org/a//b', reason: 'empty_segment' },
    { input: 'spiffe://example.org//', reason: 'empty_segment' },
    { input: 'spiffe://example.org/', reason: 'trailing_slash' },
    { input: 'spiffe://example.org/a/', reason: 'trailing_slash' },
    { input: 'spiffe://example.org/.', reason: 'dot_segment' },
    { input: 'spiffe://example.org/a/..', reason: 'dot_segment' },
    { input: 'spiffe://example.org/a/./b', reason: 'dot_segment' },
    { input: 'spiffe://example.org/a%20b', reason: 'bad_path_char' },
    { input: 'spiffe://example.org/a?q=1', reason: 'bad_path_char' },
    { input: 'spiffe://example.org/a#frag', reason: 'bad_path_char' },
    { input: 'spiffe://example.org/a+b', reason: 'bad_path_char' },
    { input: 'spiffe://example.org/~user', reason: 'bad_path_char' },
    { input: 'spiffe://example.org/a:b', reason: 'bad_path_char' },
    { input: 'spiffe://example.org/caf\u00e9', reason: 'bad_path_char' },
    { input: longPath(2049), reason: 'too_long' },
  ])('rejects $input with reason $reason', ({ input, reason }) => {
    let err: unknown;
    try {
      SpiffeId.parse(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpiffeIdError);
    expect(err).toMatchObject({ code: 'spiffeid_invalid', reason });
    expect((err as Error).message).toMatch(/^spiffeid: /);
  });

  it('applies the 2048-byte limit to IDs built from parts', () => {
    const td = TrustDomain.parse('example.org');
    const path = '/' + 'a'.repeat(2048 - 'spiffe://example.org/'.length);
    expect(SpiffeId.fromParts(td, path).toString()).toHaveLength(2048);
    expect(() => SpiffeId.fromParts(td, path + 'a')).toThrow(SpiffeIdError);
  });
});

describe('TrustDomain', () => {
  it('parses a bare name and the trust domain of an ID', () => {
    expect(TrustDomain.parse('example.org').name).toBe('example.org');
    expect(TrustDomain.parse('spiffe://example.org/x').name).toBe('example.org');
    expect(TrustDomain.parse('spiffe://example.org').idString()).toBe('spiffe://example.org');
    expect(TrustDomain.parse('example.org').equals(TrustDomain.parse('spiffe://example.org'))).toBe(true);
  });

  it.each([
    { input: '', reason: 'missing_trust_domain' },
    { input: 'Example.org', reason: 'bad_trust_domain_char' },
    { input: 'example.org:8080', reason: 'bad_trust_domain_char' },
    { input: 'http://example.org', reason: 'bad_scheme' },
  ])('rejects $input', ({ input, reason }) => {
    expect(() => TrustDomain.parse(input)).toThrow(expect.objectContaining({ code: 'spiffeid_invalid', reason }));
  });
});

describe('SpiffeId helpers', () => {
  it('builds from parts, tests membership and root-ness', () => {
    const td = TrustDomain.parse('example.org');
    const id = SpiffeId.fromParts(td, '/ns/default');
    expect(id.toString()).toBe('spiffe://example.org/ns/default');
    expect(id.memberOf(td)).toBe(true);
    expect(id.memberOf(TrustDomain.parse('other.org'))).toBe(false);
    expect(id.isRoot()).toBe(false);
    expect(SpiffeId.fromParts(td, '').isRoot()).toBe(true);
    expect(() => SpiffeId.fromParts(td, 'no-slash')).toThrow(SpiffeIdError);
  });

  it('cannot be mutated', () => {
    const id = SpiffeId.parse('spiffe://example.org/a');
    expect(() => {
      (id as unknown as { path: string }).path = '/b';
    }).toThrow();
  });
});
