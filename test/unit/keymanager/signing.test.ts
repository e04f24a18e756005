/**
 * The KeyManager signing contract: the agent gets a key's public half and signatures from it,
 * and the private half only through unsealForTLS, for the mTLS channel.
 */
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeAgentCSR } from '../../../src/authority/server/attest-agent.js';
import { DiskKeyManager } from '../../../src/keymanager/disk.js';
import { MemoryKeyManager } from '../../../src/keymanager/memory.js';
import type { ManagedKey } from '../../../src/keymanager/types.js';
import { x509 } from '../../../src/svid/x509-cert.js';

const spkiKey = (k: ManagedKey) => createPublicKey({ key: Buffer.from(k.publicKeySpki), format: 'der', type: 'spki' });

describe('KeyManager signing contract', () => {
  it.each(['memory', 'disk'] as const)('%s: sign() is ECDSA-SHA256 (DER) by the key publicKeySpki names; unsealForTLS() is that key', async (kind) => {
    const dir = await mkdtemp(join(tmpdir(), 'km-sign-'));
    try {
      const km = kind === 'memory' ? new MemoryKeyManager() : new DiskKeyManager({ directory: dir });
      const key = await km.generateKey('agent-svid-A');
      const data = new TextEncoder().encode('certification request info');
      const sig = await key.sign(data);
      expect(sig[0]).toBe(0x30);
      expect(verify('sha256', data, { key: spkiKey(key), dsaEncoding: 'der' }, sig)).toBe(true);
      expect(verify('sha256', new TextEncoder().encode('other'), { key: spkiKey(key), dsaEncoding: 'der' }, sig)).toBe(false);
      const tlsKey = await key.unsealForTLS();
      expect(tlsKey.type).toBe('private');
      expect(createPublicKey(tlsKey).export({ type: 'spki', format: 'der' }).equals(Buffer.from(key.publicKeySpki))).toBe(true);
      // The private half is not a property a caller can reach or serialize.
      expect(Object.keys(key).sort()).toEqual(['id', 'publicKeySpki']);
      expect(JSON.stringify(key)).not.toMatch(/"d"|PRIVATE/);
      if (kind === 'disk') {
        const [reloaded] = await new DiskKeyManager({ directory: dir }).getKeys();
        expect(verify('sha256', data, { key: spkiKey(key), dsaEncoding: 'der' }, await reloaded!.sign(data))).toBe(true);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the agent CSR is signed by the key manager: a key that only signs (no private half to hand out) makes a valid CSR', async () => {
    // Stands in for a manager whose key never leaves it: the test holds the key, the CSR code gets only sign().
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const signed: Uint8Array[] = [];
    const key = {
      publicKeySpki: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })),
      sign: async (data: Uint8Array) => (signed.push(data), new Uint8Array(sign('sha256', data, { key: privateKey, dsaEncoding: 'der' }))),
    };
    const der = await makeAgentCSR(key);
    const csr = new x509.Pkcs10CertificateRequest(der);
    expect(await csr.verify()).toBe(true);
    expect(csr.subject).toBe('C=US, O=SPIRE');
    expect(signed).toHaveLength(1);
    // What was signed is the CSR's CertificationRequestInfo, carried in the CSR as signed.
    expect(Buffer.from(der).includes(Buffer.from(signed[0]!))).toBe(true);
  });
});
