/**
 * Real peer: Envoy's own Go API types (go-control-plane/envoy v1.40.0, generated from Envoy's protos,
 * with their protoc-gen-validate rules), built by setup.sh into sds-client and run as distinct Unix
 * uids against the compiled spiffe-agent daemon. It speaks SDS v3 as Envoy does: StreamSecrets with
 * ACKs carrying version and nonce, FetchSecrets, DeltaSecrets.
 */
import { chmod, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentUnderTest, SDS_CLIENT_BUILT, TD, UID_A, UID_B, UID_NONE, assertPrerequisites, explain, runAs, uidEntry } from './harness.js';

const ID_A = `spiffe://${TD}/a`;
const ID_B = `spiffe://${TD}/b`;

let agent: AgentUnderTest;
let client: string;

beforeAll(async () => {
  assertPrerequisites({ sds: true });
  // A short TTL so an SVID rotates within the test; the stream must carry the new one.
  agent = await AgentUnderTest.start({ entries: [uidEntry(ID_A, UID_A), uidEntry(ID_B, UID_B)], x509SvidTtl: '12s' });
  client = path.join(agent.dir, 'sds-client');
  await copyFile(SDS_CLIENT_BUILT, client);
  await chmod(client, 0o755);
});

afterAll(async () => {
  await agent?.stop();
});

async function sds(uid: number, args: string[]) {
  const r = await runAs(uid, agent, client, args, 90_000);
  if (r.json === undefined) throw new Error(`sds-client printed no JSON\n${explain(r, agent)}`);
  return r;
}

describe('Envoy SDS v3 (go-control-plane types) against spiffe-agent', () => {
  it('streams default + ROOTCA, and after the ACK pushes the rotated SVID on the same stream', async () => {
    const r = await sds(UID_A, ['stream', '-names', 'default,ROOTCA', '-updates', '1', '-timeout', '60s']);
    expect(r.code, explain(r, agent)).toBe(0);
    const [first, second] = r.json.responses;
    for (const resp of [first, second]) {
      expect(resp.typeUrl).toBe('type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret');
      expect(resp.nonce).toMatch(/^[0-9a-f]{8}$/);
      expect(resp.secrets.map((s: { name: string }) => s.name).sort()).toEqual(['ROOTCA', 'default']);
      const svid = resp.secrets.find((s: { name: string }) => s.name === 'default');
      expect(svid).toMatchObject({ kind: 'tls_certificate', spiffeId: ID_A, keyMatches: true, keyPemType: 'PRIVATE KEY', verifiedBy: 'ROOTCA' });
      const root = resp.secrets.find((s: { name: string }) => s.name === 'ROOTCA');
      expect(root.kind).toBe('validation_context');
      expect(root.validator).toBe('envoy.tls.cert_validator.spiffe');
      expect(root.trustDomains).toEqual([{ name: TD, caCount: expect.any(Number) }]);
      expect(root.trustDomains[0].caCount).toBeGreaterThanOrEqual(1);
    }
    const s1 = first.secrets.find((s: { name: string }) => s.name === 'default');
    const s2 = second.secrets.find((s: { name: string }) => s.name === 'default');
    expect(s2.serial).not.toBe(s1.serial);
    expect(Date.parse(s2.notAfter)).toBeGreaterThan(Date.parse(s1.notAfter));
    expect(Number(second.versionInfo)).toBeGreaterThan(Number(first.versionInfo));
    expect(second.nonce).not.toBe(first.nonce);
    // Closing the send side ends the stream cleanly (OK), as spire-agent does.
    expect(r.json.end).toBe('EOF');
    // ACKs were accepted: no NACK or stale-nonce complaints in the agent's log.
    expect(agent.logTail(400)).not.toMatch(/rolled back|unexpected nonce/);
  });

  it('FetchSecrets ALL gives one SPIFFE validator with every trust domain the caller may see, no version or nonce', async () => {
    const r = await sds(UID_A, ['fetch', '-names', 'ALL']);
    expect(r.code, explain(r, agent)).toBe(0);
    const [resp] = r.json.responses;
    expect(resp.versionInfo).toBe('');
    expect(resp.nonce).toBe('');
    expect(resp.secrets).toHaveLength(1);
    expect(resp.secrets[0]).toMatchObject({ name: 'ALL', kind: 'validation_context', validator: 'envoy.tls.cert_validator.spiffe' });
    expect(resp.secrets[0].trustDomains.map((t: { name: string }) => t.name)).toEqual([TD]);
  });

  it('an empty name list returns every entitled SVID (by SPIFFE ID) and the trust domain bundle (by TD ID)', async () => {
    const r = await sds(UID_B, ['fetch']);
    expect(r.code, explain(r, agent)).toBe(0);
    const secrets = r.json.responses[0].secrets;
    expect(secrets.map((s: { name: string }) => s.name)).toEqual([`spiffe://${TD}`, ID_B]);
    expect(secrets[1]).toMatchObject({ spiffeId: ID_B, verifiedBy: `spiffe://${TD}` });
  });

  it('Envoy 1.17 and the node metadata override get a legacy trusted_ca validation context; ALL is then impossible', async () => {
    for (const args of [['-envoy-version', '1.17.4'], ['-disable-spiffe-validation', "'true'"], ['-disable-spiffe-validation', 'true']]) {
      const r = await sds(UID_A, ['fetch', '-names', 'ROOTCA,default', ...args]);
      expect(r.code, explain(r, agent)).toBe(0);
      const root = r.json.responses[0].secrets.find((s: { name: string }) => s.name === 'ROOTCA');
      expect(root.validator).toBeUndefined();
      expect(root.trustedCaCount).toBeGreaterThanOrEqual(1);
      expect(r.json.responses[0].secrets.find((s: { name: string }) => s.name === 'default').verifiedBy).toBe('ROOTCA');
    }
    const r = await sds(UID_A, ['fetch', '-names', 'ALL', '-envoy-version', '1.17.0']);
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ ok: false, code: 'Internal' });
    // A build version of 1.18 or later, or none at all, gets the SPIFFE validator.
    const none = await sds(UID_A, ['fetch', '-names', 'ROOTCA', '-envoy-version', '']);
    expect(none.json.responses[0].secrets[0].validator).toBe('envoy.tls.cert_validator.spiffe');
  });

  it('a name the caller is not entitled to is InvalidArgument, on FetchSecrets and on a stream', async () => {
    const f = await sds(UID_A, ['fetch', '-names', `default,${ID_B}`]);
    expect(f.json).toMatchObject({ ok: false, code: 'InvalidArgument', message: `workload is not authorized for the requested identities ["${ID_B}"]` });
    const s = await sds(UID_A, ['stream', '-names', ID_B]);
    expect(s.json).toMatchObject({ ok: false, code: 'InvalidArgument', responses: null });
    // No entry at all: bundles still come (not an error for SDS), an SVID does not.
    const none = await sds(UID_NONE, ['fetch', '-names', 'ROOTCA']);
    expect(none.code, explain(none, agent)).toBe(0);
    const noneSvid = await sds(UID_NONE, ['fetch', '-names', 'default']);
    expect(noneSvid.json).toMatchObject({ ok: false, code: 'InvalidArgument' });
  });

  it('DeltaSecrets is Unimplemented, as in spire-agent', async () => {
    const r = await sds(UID_A, ['delta', '-names', 'default']);
    expect(r.json).toMatchObject({ ok: false, code: 'Unimplemented' });
  });
});
