/**
 * Which Secrets a request gets, by name, as spire-agent decides (spec §1 table): SVIDs by SPIFFE ID
 * or `default` (first identity), bundles by TD ID, `ROOTCA`, `ALL`, everything for an empty list,
 * InvalidArgument for any name left over, and the validation-context style by node and config.
 */
import * as grpc from '@grpc/grpc-js';
import { beforeAll, describe, expect, it } from 'vitest';
import type { WorkloadView, X509Identity } from '../../../../src/cache/manager.js';
import type { NodeMessage } from '../../../../src/endpoints/sds/messages.js';
import { resolveSecrets, spiffeValidationDisabled, supportsSpiffeValidator, type SdsNames } from '../../../../src/endpoints/sds/resources.js';
import { StatusError } from '../../../../src/endpoints/status.js';
import { TestCA } from '../../../helpers/test-ca.js';
import { identity, trustBundle, view } from './fixtures.js';

const NAMES: SdsNames = { defaultSvidName: 'default', defaultBundleName: 'ROOTCA', defaultAllBundlesName: 'ALL', disableSpiffeCertValidation: false };

let v: WorkloadView;
let a: X509Identity;
let b: X509Identity;

beforeAll(async () => {
  const [own, partner, zeta] = await Promise.all([TestCA.create('example.org'), TestCA.create('partner.org'), TestCA.create('zeta.org')]);
  // Entry IDs order the identities: "default" is the lowest entry ID.
  a = await identity(own, 'a', '01-a');
  b = await identity(own, 'b', '02-b');
  v = view(trustBundle(own), [a, b], [trustBundle(zeta), trustBundle(partner)]);
});

function names(req: { resource_names?: string[]; node?: NodeMessage }, cfg = NAMES, wv = v): [string, string][] {
  return resolveSecrets(req, wv, cfg).map((s) => [s.name, s.tls_certificate ? 'tls' : s.validation_context?.custom_validator_config ? 'spiffe' : 'trusted_ca']);
}

function failure(fn: () => unknown): { code: grpc.status; message: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof StatusError) return { code: err.status, message: err.message };
    throw err;
  }
  throw new Error('expected a StatusError');
}

describe('SDS resource names', () => {
  it.each([
    { req: ['spiffe://example.org/b'], want: [['spiffe://example.org/b', 'tls']] },
    { req: ['default'], want: [['default', 'tls']] },
    { req: ['ROOTCA'], want: [['ROOTCA', 'spiffe']] },
    { req: ['spiffe://example.org'], want: [['spiffe://example.org', 'spiffe']] },
    { req: ['spiffe://partner.org'], want: [['spiffe://partner.org', 'spiffe']] },
    { req: ['ALL'], want: [['ALL', 'spiffe']] },
    { req: ['default', 'ROOTCA', 'spiffe://zeta.org'], want: [['ROOTCA', 'spiffe'], ['spiffe://zeta.org', 'spiffe'], ['default', 'tls']] },
    { req: ['', 'default'], want: [['default', 'tls']] },
  ])('serves $req', ({ req, want }) => {
    expect(names({ resource_names: req })).toEqual(want);
  });

  it('serves everything for an empty list: own bundle, federated bundles sorted, SVIDs by SPIFFE ID', () => {
    expect(names({ resource_names: [] })).toEqual([
      ['spiffe://example.org', 'spiffe'],
      ['spiffe://partner.org', 'spiffe'],
      ['spiffe://zeta.org', 'spiffe'],
      ['spiffe://example.org/a', 'tls'],
      ['spiffe://example.org/b', 'tls'],
    ]);
  });

  it('default is the first identity (lowest entry ID), named by the configured default name', () => {
    const [s] = resolveSecrets({ resource_names: ['svid'] }, v, { ...NAMES, defaultSvidName: 'svid' });
    expect(s!.name).toBe('svid');
    expect(s!.tls_certificate).toBeDefined();
    const again = resolveSecrets({ resource_names: ['spiffe://example.org/a'] }, v, NAMES)[0]!;
    expect(s!.tls_certificate).toEqual(again.tls_certificate);
  });

  it('ALL carries one trust domain entry per bundle, sorted by name, each with its own CAs only', () => {
    const [s] = resolveSecrets({ resource_names: ['ALL'] }, v, NAMES);
    const cfg = (s!.validation_context!.custom_validator_config as { name: string; typed_config: { trust_domains: { name: string }[] } });
    expect(cfg.name).toBe('envoy.tls.cert_validator.spiffe');
    expect(cfg.typed_config.trust_domains.map((t) => t.name)).toEqual(['example.org', 'partner.org', 'zeta.org']);
  });

  it.each([
    { req: ['spiffe://example.org/c'], message: 'workload is not authorized for the requested identities ["spiffe://example.org/c"]' },
    { req: ['spiffe://other.org', 'default', 'zzz'], message: 'workload is not authorized for the requested identities ["spiffe://other.org" "zzz"]' },
    // spire-agent serves only one of own TD ID / ROOTCA / ALL per request.
    { req: ['ROOTCA', 'ALL'], message: 'workload is not authorized for the requested identities ["ALL"]' },
    { req: ['spiffe://example.org', 'ROOTCA'], message: 'workload is not authorized for the requested identities ["ROOTCA"]' },
  ])('refuses $req with InvalidArgument', ({ req, message }) => {
    expect(failure(() => resolveSecrets({ resource_names: req }, v, NAMES))).toEqual({ code: grpc.status.INVALID_ARGUMENT, message });
  });

  it('has no SVID to give a caller without identities, but bundles are still served', () => {
    const empty = view(v.bundle, []);
    expect(names({ resource_names: ['ROOTCA'] }, NAMES, empty)).toEqual([['ROOTCA', 'spiffe']]);
    expect(names({ resource_names: [] }, NAMES, empty)).toEqual([['spiffe://example.org', 'spiffe']]);
    expect(failure(() => resolveSecrets({ resource_names: ['default'] }, empty, NAMES)).code).toBe(grpc.status.INVALID_ARGUMENT);
  });
});

describe('validation context style', () => {
  const build = (major: number, minor: number): NodeMessage => ({ user_agent_build_version: { version: { major_number: major, minor_number: minor, patch: 0 } } });
  const md = (value: { kind: string; boolValue?: boolean; stringValue?: string }): NodeMessage => ({ metadata: { fields: { disable_spiffe_cert_validation: value } } });

  it.each([
    { node: undefined, want: true },
    { node: {}, want: true },
    { node: { user_agent_version: '1.17.0' }, want: true },
    { node: build(1, 17), want: false },
    { node: build(1, 18), want: true },
    { node: build(0, 99), want: false },
    { node: build(2, 0), want: true },
  ])('build version $node supports the SPIFFE validator: $want', ({ node, want }) => {
    expect(supportsSpiffeValidator(node)).toBe(want);
  });

  it.each([
    { node: undefined, agent: true, want: true },
    { node: md({ kind: 'boolValue', boolValue: true }), agent: false, want: true },
    { node: md({ kind: 'boolValue', boolValue: false }), agent: true, want: false },
    { node: md({ kind: 'stringValue', stringValue: 'true' }), agent: false, want: true },
    { node: md({ kind: 'stringValue', stringValue: 'False' }), agent: true, want: false },
    { node: md({ kind: 'stringValue', stringValue: 'yes' }), agent: false, want: false },
    { node: md({ kind: 'numberValue' }), agent: true, want: true },
  ])('node metadata $node over agent setting $agent disables it: $want', ({ node, agent, want }) => {
    expect(spiffeValidationDisabled(node, agent)).toBe(want);
  });

  it('uses trusted_ca for Envoy 1.17, the agent setting, or the node override; ALL is then Internal', () => {
    expect(names({ resource_names: ['ROOTCA'], node: build(1, 17) })).toEqual([['ROOTCA', 'trusted_ca']]);
    expect(names({ resource_names: ['ROOTCA'] }, { ...NAMES, disableSpiffeCertValidation: true })).toEqual([['ROOTCA', 'trusted_ca']]);
    expect(names({ resource_names: ['ROOTCA'], node: md({ kind: 'stringValue', stringValue: 'true' }) })).toEqual([['ROOTCA', 'trusted_ca']]);
    expect(names({ resource_names: ['ROOTCA'], node: md({ kind: 'boolValue', boolValue: false }) }, { ...NAMES, disableSpiffeCertValidation: true })).toEqual([
      ['ROOTCA', 'spiffe'],
    ]);
    expect(failure(() => resolveSecrets({ resource_names: ['ALL'], node: build(1, 17) }, v, NAMES))).toEqual({
      code: grpc.status.INTERNAL,
      message: 'unable to use "SPIFFE validator" on Envoy below 1.17',
    });
  });
});
