import * as protoLoader from '@grpc/proto-loader';
import type * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROTO_OPTIONS, PROTO_SETS, loadProto, parseProtoSet, protoRoot, rootFromJSON, serviceDefinitionsOf } from '../../../src/proto/load.js';
import { loadServiceConstructors } from '../../../src/authority/server/clients.js';

/** What proto-loader (the reference) makes of the same files. */
function reference(): Record<string, unknown> {
  const dir = protoRoot();
  return protoLoader.loadSync(PROTO_SETS['spire-server'].map((f) => join(dir, f)), { ...PROTO_OPTIONS, includeDirs: [dir] });
}

const SAMPLES: Record<string, object> = {
  '/spire.api.server.entry.v1.Entry/GetAuthorizedEntries': { output_mask: { spiffe_id: true, selectors: true } },
  '/spire.api.server.svid.v1.SVID/BatchNewX509SVID': { params: [{ entry_id: 'e1', csr: Buffer.from([1, 2, 3]) }, { entry_id: 'e2', csr: Buffer.from([4]) }] },
  '/spire.api.server.agent.v1.Agent/RenewAgent': { params: { csr: Buffer.from([9, 9]) } },
  '/spire.api.server.bundle.v1.Bundle/GetBundle': {},
};

const RESPONSES: Record<string, object> = {
  '/spire.api.server.entry.v1.Entry/GetAuthorizedEntries': {
    entries: [{ id: 'x', spiffe_id: { trust_domain: 'example.org', path: '/w' }, selectors: [{ type: 'unix', value: 'uid:1' }], x509_svid_ttl: 3600, revision_number: '12345678901234', federates_with: ['a.org'], hint: 'h' }],
  },
  '/spire.api.server.svid.v1.SVID/BatchNewX509SVID': { results: [{ status: { code: 0, message: '' }, svid: { id: { trust_domain: 'example.org', path: '/w' }, cert_chain: [Buffer.from([1, 2])], expires_at: '1800000000' } }] },
  '/spire.api.server.bundle.v1.Bundle/GetBundle': { trust_domain: 'example.org', x509_authorities: [{ asn1: Buffer.from([7]), tainted: true }], refresh_hint: '300', sequence_number: '2' },
};

describe('service definitions without proto-loader (PROTO_SETS)', () => {
  const ref = reference();
  const roots = { parsed: parseProtoSet('spire-server'), 'precompiled JSON': rootFromJSON(JSON.parse(JSON.stringify(parseProtoSet('spire-server').toJSON()))) };

  it.each(Object.keys(roots))('%s: the same services, paths, streaming flags and bytes as proto-loader', (which) => {
    const ours = serviceDefinitionsOf(roots[which as keyof typeof roots]);
    const refServices = Object.entries(ref).filter(([, v]) => !(v as { format?: string }).format);
    expect([...ours.keys()].sort()).toEqual(refServices.map(([k]) => k).sort());
    let checked = 0;
    for (const [name, refDef] of refServices) {
      const def = ours.get(name)!;
      for (const [method, r] of Object.entries(refDef as grpc.ServiceDefinition)) {
        const m = def[method]!;
        expect({ path: m.path, requestStream: m.requestStream, responseStream: m.responseStream }).toEqual({ path: r.path, requestStream: r.requestStream, responseStream: r.responseStream });
        const req = SAMPLES[m.path];
        if (req) {
          const bytes = m.requestSerialize(req);
          expect(Buffer.from(bytes).equals(Buffer.from(r.requestSerialize(req)))).toBe(true);
          expect(m.requestDeserialize(bytes)).toEqual(r.requestDeserialize(bytes));
          checked++;
        }
        const res = RESPONSES[m.path];
        if (res) {
          const bytes = r.responseSerialize(res);
          expect(Buffer.from(m.responseSerialize(res)).equals(Buffer.from(bytes))).toBe(true);
          expect(m.responseDeserialize(bytes)).toEqual(r.responseDeserialize(bytes));
          checked++;
        }
      }
    }
    expect(checked).toBe(Object.keys(SAMPLES).length + Object.keys(RESPONSES).length);
  });

  it('decodes int64 as strings, enums as names and fills defaults, as the session code expects', () => {
    const m = serviceDefinitionsOf(roots.parsed).get('spire.api.server.entry.v1.Entry')!['GetAuthorizedEntries']!;
    const bytes = m.responseSerialize(RESPONSES['/spire.api.server.entry.v1.Entry/GetAuthorizedEntries']!);
    const got = m.responseDeserialize(bytes) as { entries: Array<Record<string, unknown>> };
    expect(got.entries[0]).toMatchObject({ revision_number: '12345678901234', admin: false, dns_names: [] });
  });

  it('the SPIRE server client constructors carry every method the session calls', () => {
    const ctors = loadServiceConstructors();
    expect(typeof (ctors.svid.prototype as unknown as Record<string, unknown>)['BatchNewX509SVID']).toBe('function');
    expect(typeof (ctors.entry.prototype as unknown as Record<string, unknown>)['SyncAuthorizedEntries']).toBe('function');
    expect(typeof (ctors.agent.prototype as unknown as Record<string, unknown>)['AttestAgent']).toBe('function');
    expect(typeof (ctors.bundle.prototype as unknown as Record<string, unknown>)['GetFederatedBundle']).toBe('function');
  });
});

describe('every PROTO_SETS set, parsed and precompiled, against proto-loader', () => {
  it.each(Object.keys(PROTO_SETS) as (keyof typeof PROTO_SETS)[])('%s: services, paths, flags; empty messages encode and decode (defaults) alike', (set) => {
    const dir = protoRoot();
    const ref = protoLoader.loadSync(PROTO_SETS[set].map((f) => join(dir, f)), { ...PROTO_OPTIONS, includeDirs: [dir] });
    const refServices = Object.entries(ref).filter(([, v]) => !(v as { format?: string }).format) as [string, grpc.ServiceDefinition][];
    expect(refServices.length).toBeGreaterThan(0);
    for (const root of [parseProtoSet(set), rootFromJSON(JSON.parse(JSON.stringify(parseProtoSet(set).toJSON())))]) {
      const ours = serviceDefinitionsOf(root);
      expect([...ours.keys()].sort()).toEqual(refServices.map(([k]) => k).sort());
      for (const [name, refDef] of refServices) {
        for (const [method, r] of Object.entries(refDef)) {
          const m = ours.get(name)![method]!;
          expect({ path: m.path, requestStream: m.requestStream, responseStream: m.responseStream }).toEqual({ path: r.path, requestStream: r.requestStream, responseStream: r.responseStream });
          expect(Buffer.from(m.requestSerialize({})).equals(Buffer.from(r.requestSerialize({})))).toBe(true);
          expect(m.requestDeserialize(Buffer.alloc(0))).toEqual(r.requestDeserialize(Buffer.alloc(0)));
          expect(m.responseDeserialize(Buffer.alloc(0))).toEqual(r.responseDeserialize(Buffer.alloc(0)));
        }
      }
    }
  });

  it('loadProto gives service constructors with .service, as grpc.loadPackageDefinition does', () => {
    const wl = loadProto('spiffe/workload/workload.proto') as unknown as { SpiffeWorkloadAPI: grpc.ServiceClientConstructor };
    const dir = protoRoot();
    const ref = protoLoader.loadSync(join(dir, 'spiffe/workload/workload.proto'), { ...PROTO_OPTIONS, includeDirs: [dir] })['SpiffeWorkloadAPI'] as grpc.ServiceDefinition;
    expect(Object.keys(wl.SpiffeWorkloadAPI.service).sort()).toEqual(Object.keys(ref).sort());
    expect(Object.keys(wl.SpiffeWorkloadAPI.service)).toContain('FetchX509SVID');
    expect(wl.SpiffeWorkloadAPI.service['FetchX509SVID']!.path).toBe('/SpiffeWorkloadAPI/FetchX509SVID');
  });
});
