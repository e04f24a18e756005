/**
 * SDS Secret encodings through the agent's own proto files: a DiscoveryResponse serialized by the
 * service definition the server registers, decoded again with Any unpacked by type URL. The chain is
 * PEM leaf first, the key PEM PKCS#8 matching the leaf, bundles PEM CAs. (Wire compatibility with
 * Envoy's generated types is proven by test/interop/sds.test.ts.)
 */
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { beforeAll, describe, expect, it } from 'vitest';
import { PROTO_OPTIONS, protoRoot } from '../../../../src/endpoints/proto.js';
import { spiffeValidatorSecret, tlsCertificateSecret, trustedCaSecret } from '../../../../src/endpoints/sds/encode.js';

/** Envoy's type URL for an SDS v3 Secret, pinned: Envoy drops a resource with any other. */
const SECRET_TYPE_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
import { TestCA } from '../../../helpers/test-ca.js';
import { identity, trustBundle } from './fixtures.js';

type Method = protoLoader.MethodDefinition<object, object>;
let fetch: Method;
let decodeJson: Method;
let own: TestCA;
let partner: TestCA;

function load(json: boolean): Method {
  const root = protoRoot();
  const def = protoLoader.loadSync(join(root, 'envoy/service/secret/v3/sds.proto'), { ...PROTO_OPTIONS, json, includeDirs: [root] });
  return (def['envoy.service.secret.v3.SecretDiscoveryService'] as protoLoader.ServiceDefinition).FetchSecrets! as Method;
}

/** Serializes like the server, decodes with Any unpacked (`@type`) like a client would. */
function roundTrip(resources: unknown[]): { resources: Record<string, any>[] } {
  const bytes = fetch.responseSerialize({ version_info: '3', resources, type_url: SECRET_TYPE_URL, nonce: 'abcdef01' });
  return decodeJson.responseDeserialize(bytes) as { resources: Record<string, any>[] };
}

function pemBlocks(buf: Buffer): { label: string; der: Buffer }[] {
  return [...buf.toString('ascii').matchAll(/-----BEGIN ([A-Z ]+)-----\n([\s\S]*?)-----END \1-----\n/g)].map((m) => ({ label: m[1]!, der: Buffer.from(m[2]!, 'base64') }));
}

beforeAll(async () => {
  fetch = load(false);
  decodeJson = load(true);
  [own, partner] = await Promise.all([TestCA.create('example.org'), TestCA.create('partner.org')]);
});

describe('SDS Secret encodings', () => {
  it('tls_certificate: PEM chain leaf first, PEM PKCS#8 key that matches the leaf', async () => {
    const inter = await own.createIntermediate();
    const id = await identity(inter, 'web');
    const [s] = roundTrip([tlsCertificateSecret('default', id)]).resources;
    expect(s!['@type']).toBe(SECRET_TYPE_URL);
    expect(s!.name).toBe('default');
    expect(s!.type).toBe('tls_certificate');
    const chain = pemBlocks(s!.tls_certificate.certificate_chain.inline_bytes);
    expect(chain.map((c) => c.label)).toEqual(['CERTIFICATE', 'CERTIFICATE']);
    expect(chain.map((c) => c.der)).toEqual([Buffer.from(id.chain[0]!), Buffer.from(inter.der())]);
    const key = pemBlocks(s!.tls_certificate.private_key.inline_bytes);
    expect(key.map((k) => k.label)).toEqual(['PRIVATE KEY']);
    const pub = createPublicKey(createPrivateKey({ key: key[0]!.der, format: 'der', type: 'pkcs8' }));
    expect(pub.export({ format: 'der', type: 'spki' })).toEqual(new X509Certificate(chain[0]!.der).publicKey.export({ format: 'der', type: 'spki' }));
  });

  it('SPIFFE validator: custom_validator_config with SPIFFECertValidatorConfig, bare TD names, PEM CAs each', () => {
    const [s] = roundTrip([spiffeValidatorSecret('ALL', [trustBundle(partner), trustBundle(own)])]).resources;
    expect(s!.type).toBe('validation_context');
    const cvc = s!.validation_context.custom_validator_config;
    expect(cvc.name).toBe('envoy.tls.cert_validator.spiffe');
    expect(cvc.typed_config['@type']).toBe('type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig');
    const tds = cvc.typed_config.trust_domains as { name: string; trust_bundle: { inline_bytes: Buffer } }[];
    expect(tds.map((t) => t.name)).toEqual(['example.org', 'partner.org']);
    expect(pemBlocks(tds[0]!.trust_bundle.inline_bytes).map((b) => b.der)).toEqual([Buffer.from(own.der())]);
    expect(pemBlocks(tds[1]!.trust_bundle.inline_bytes).map((b) => b.der)).toEqual([Buffer.from(partner.der())]);
    expect(s!.validation_context.trusted_ca).toBeNull();
  });

  it('legacy: trusted_ca with every CA of the trust domain as PEM, no custom validator', async () => {
    const next = await TestCA.create('example.org');
    const [s] = roundTrip([trustedCaSecret('ROOTCA', trustBundle(own, next))]).resources;
    expect(s!.name).toBe('ROOTCA');
    expect(pemBlocks(s!.validation_context.trusted_ca.inline_bytes).map((b) => b.der)).toEqual([Buffer.from(own.der()), Buffer.from(next.der())]);
    expect(s!.validation_context.custom_validator_config).toBeNull();
  });
});
