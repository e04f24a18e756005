/**
 * SDS Secret encodings, in proto-loader's object form. Resources are packed as Any by
 * `@type` (protobufjs looks the type up in the loaded root), so they leave the agent as
 * real envoy.extensions.transport_sockets.tls.v3.Secret bytes. Certificates and keys are
 * PEM, as Envoy reads them: the chain leaf first, the key as PKCS#8 "PRIVATE KEY".
 */
import type { TrustBundle } from '../../authority/types.js';
import type { X509Identity } from '../../cache/manager.js';
import { pemEncodeCertificates, pemEncodePrivateKey } from '../../svid/der.js';

export const SECRET_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
export const SPIFFE_VALIDATOR_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig';
export const SPIFFE_VALIDATOR_NAME = 'envoy.tls.cert_validator.spiffe';

/** A Secret ready to be packed into a DiscoveryResponse's `resources`. */
export interface SecretResource {
  readonly '@type': typeof SECRET_TYPE_URL;
  readonly name: string;
  readonly tls_certificate?: Record<string, unknown>;
  readonly validation_context?: Record<string, unknown>;
}

function inline(pem: string): { inline_bytes: Buffer } {
  return { inline_bytes: Buffer.from(pem, 'ascii') };
}

function bundlePem(bundle: TrustBundle): string {
  return pemEncodeCertificates(bundle.x509Authorities);
}

export function tlsCertificateSecret(name: string, identity: X509Identity): SecretResource {
  return {
    '@type': SECRET_TYPE_URL,
    name,
    tls_certificate: {
      certificate_chain: inline(pemEncodeCertificates(identity.chain)),
      private_key: inline(pemEncodePrivateKey(identity.keyPkcs8)),
    },
  };
}

/** Legacy validation context: the CAs of one trust domain as `trusted_ca`. */
export function trustedCaSecret(name: string, bundle: TrustBundle): SecretResource {
  return { '@type': SECRET_TYPE_URL, name, validation_context: { trusted_ca: inline(bundlePem(bundle)) } };
}

/**
 * SPIFFE validator context: one entry per trust domain, each with only its own CAs, so a
 * federated CA can never vouch for an ID in another trust domain. Entries sorted by name.
 */
export function spiffeValidatorSecret(name: string, bundles: readonly TrustBundle[]): SecretResource {
  const trustDomains = [...bundles]
    .sort((a, b) => (a.trustDomain < b.trustDomain ? -1 : a.trustDomain > b.trustDomain ? 1 : 0))
    .map((b) => ({ name: b.trustDomain, trust_bundle: inline(bundlePem(b)) }));
  return {
    '@type': SECRET_TYPE_URL,
    name,
    validation_context: {
      custom_validator_config: {
        name: SPIFFE_VALIDATOR_NAME,
        typed_config: { '@type': SPIFFE_VALIDATOR_TYPE_URL, trust_domains: trustDomains },
      },
    },
  };
}
