import { describe, expect, it } from 'vitest';
import { parseTrustDomainName } from '../../../src/config/trust-domain.js';

describe('trust_domain in agent.conf is checked by the svid trust-domain rules', () => {
  it.each([
    ['example.org', 'example.org'],
    ['spiffe://example.org', 'example.org'],
    ['spiffe://example.org/', 'example.org'],
  ])('%j names %j', (text, name) => {
    expect(parseTrustDomainName(text)).toEqual({ name });
  });

  it.each([
    ['', 'trust domain is missing'],
    ['spiffe://', 'trust domain is missing'],
    ['Example.org', 'trust domain "Example.org" may only contain lowercase letters, numbers, dots, dashes and underscores'],
    ['spiffe://example.org/path', 'trust domain "spiffe://example.org/path" may only contain lowercase letters, numbers, dots, dashes and underscores'],
    ['a'.repeat(256), `trust domain "${'a'.repeat(256)}": trust domain is longer than 255 bytes`],
  ])('%j is refused: %s', (text, error) => {
    expect(parseTrustDomainName(text)).toEqual({ error });
  });
});
