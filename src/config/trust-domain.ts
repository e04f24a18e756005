/**
 * spire-agent accepts "example.org" and "spiffe://example.org" for trust_domain; both give the name.
 * The name is checked by svid's validateTrustDomainName, the one trust-domain check in the code;
 * this only strips the scheme and words the problem for a config file.
 */
import { SpiffeIdError } from '../svid/errors.js';
import { validateTrustDomainName } from '../svid/spiffe-id.js';

export function parseTrustDomainName(text: string): { name: string } | { error: string } {
  const name = text.startsWith('spiffe://') ? text.slice('spiffe://'.length).replace(/\/$/, '') : text;
  try {
    validateTrustDomainName(name);
    return { name };
  } catch (err) {
    if (!(err instanceof SpiffeIdError)) throw err;
    if (err.reason === 'missing_trust_domain') return { error: 'trust domain is missing' };
    if (err.reason === 'bad_trust_domain_char') {
      return { error: `trust domain ${JSON.stringify(text)} may only contain lowercase letters, numbers, dots, dashes and underscores` };
    }
    return { error: `trust domain ${JSON.stringify(text)}: ${err.message.replace(/^spiffeid: /, '')}` };
  }
}
