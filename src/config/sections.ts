/** `embedded_authority { ... }` (our extension) and `health_checks { ... }` (spire-agent's). */
import { parseGoDuration } from '../duration.js';
import { KEY_TYPES } from './agent-section.js';
import { EMBEDDED_AUTHORITY_DEFAULTS as EA, HEALTH_CHECKS_DEFAULTS as HC } from './defaults.js';
import type { ObjectReader } from './reader.js';
import { parseTrustDomainName } from './trust-domain.js';
import type { EmbeddedAuthorityConfig, HealthChecksConfig, KeyType } from './types.js';

export function readEmbeddedAuthority(r: ObjectReader | undefined): EmbeddedAuthorityConfig {
  const subject = r?.block('ca_subject');
  const federated = r?.stringMap('federated_bundles') ?? {};
  for (const td of Object.keys(federated)) {
    const parsed = parseTrustDomainName(td);
    if ('error' in parsed && r) r.problems.add(`${r.key('federated_bundles')}.${td}`, parsed.error);
  }
  const cfg: EmbeddedAuthorityConfig = {
    entriesFile: r?.optionalString('entries_file'),
    caKeyType: r?.enum('ca_key_type', KEY_TYPES, EA.ca_key_type as KeyType) ?? (EA.ca_key_type as KeyType),
    caTtlMs: r?.duration('ca_ttl', EA.ca_ttl) ?? parseGoDuration(EA.ca_ttl)!,
    defaultX509SvidTtlMs: r?.duration('default_x509_svid_ttl', EA.default_x509_svid_ttl) ?? parseGoDuration(EA.default_x509_svid_ttl)!,
    defaultJwtSvidTtlMs: r?.duration('default_jwt_svid_ttl', EA.default_jwt_svid_ttl) ?? parseGoDuration(EA.default_jwt_svid_ttl)!,
    jwtIssuer: r?.optionalString('jwt_issuer'),
    jwtKeyType: r?.enum('jwt_key_type', KEY_TYPES, EA.jwt_key_type as KeyType) ?? (EA.jwt_key_type as KeyType),
    caSubject: Object.freeze({
      country: Object.freeze(subject?.stringOrList('country', EA.ca_subject.country) ?? [...EA.ca_subject.country]),
      organization: Object.freeze(subject?.stringOrList('organization', EA.ca_subject.organization) ?? [...EA.ca_subject.organization]),
      commonName: subject?.string('common_name', EA.ca_subject.common_name) ?? EA.ca_subject.common_name,
    }) as EmbeddedAuthorityConfig['caSubject'],
    federatedBundles: Object.freeze(federated),
  };
  subject?.finish();
  if (r) {
    for (const k of ['ca_ttl', 'default_x509_svid_ttl', 'default_jwt_svid_ttl'] as const) {
      if (r.has(k) && (parseGoDuration(String(r.obj[k])) ?? 1) <= 0) r.problems.add(r.key(k), 'must be longer than 0s');
    }
    if (cfg.defaultX509SvidTtlMs >= cfg.caTtlMs) {
      r.problems.add(r.key('default_x509_svid_ttl'), 'must be shorter than ca_ttl, or SVIDs would outlive the CA that signed them');
    }
    if (cfg.jwtIssuer !== undefined) {
      try {
        new URL(cfg.jwtIssuer);
      } catch {
        r.problems.add(r.key('jwt_issuer'), `expected a URL like "https://oidc.example.org", got ${JSON.stringify(cfg.jwtIssuer)}`);
      }
    }
    r.finish();
  }
  return Object.freeze(cfg);
}

export function readHealthChecks(r: ObjectReader | undefined): HealthChecksConfig {
  const cfg: HealthChecksConfig = {
    listenerEnabled: r?.bool('listener_enabled', HC.listener_enabled) ?? HC.listener_enabled,
    bindAddress: r?.string('bind_address', HC.bind_address) ?? HC.bind_address,
    // spire-agent declares bind_port as a string ("8080"); numbers are accepted too.
    bindPort: r?.int('bind_port', HC.bind_port, { min: 0, max: 65535 }) ?? HC.bind_port,
    livePath: r?.string('live_path', HC.live_path) ?? HC.live_path,
    readyPath: r?.string('ready_path', HC.ready_path) ?? HC.ready_path,
  };
  r?.finish();
  return Object.freeze(cfg);
}
