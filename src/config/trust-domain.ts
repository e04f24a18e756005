/** spire-agent accepts "example.org" and "spiffe://example.org" for trust_domain; both give the name. */
const TD_NAME = /^[a-z0-9._-]+$/;

export function parseTrustDomainName(text: string): { name: string } | { error: string } {
  const name = text.startsWith('spiffe://') ? text.slice('spiffe://'.length).replace(/\/$/, '') : text;
  if (name === '') return { error: 'trust domain is missing' };
  if (!TD_NAME.test(name)) {
    return { error: `trust domain ${JSON.stringify(text)} may only contain lowercase letters, numbers, dots, dashes and underscores` };
  }
  return { name };
}
