import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { constants, createHash, generateKeyPairSync, publicDecrypt, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { p256 } from '@noble/curves/nist.js';
import { calculateResponse, parseChallenge } from '../../../../src/attestation/node/x509pop/challenge.js';
import { parseX509popConfig } from '../../../../src/attestation/node/x509pop/config.js';
import { X509popAttestor, createX509popAttestor } from '../../../../src/attestation/node/x509pop/index.js';
import { checkNodeAttestorConfig, createNodeAttestor } from '../../../../src/attestation/node/catalog.js';
import { noTpm } from '../../../helpers/no-tpm.js';
import type { PluginConfig } from '../../../../src/config/types.js';
import { pemEncodeCertificates } from '../../../../src/svid/der.js';
import { systemClock } from '../../../../src/clock.js';
import { nullLogger } from '../../../../src/telemetry/logger.js';
import { TestCA } from '../../../helpers/test-ca.js';

const deps = { log: nullLogger, clock: systemClock, openTpm: noTpm };

const plugin = (name: string, data: Record<string, unknown> = {}): PluginConfig => ({
  type: 'NodeAttestor',
  name,
  enabled: true,
  data,
  dataFile: undefined,
  path: `plugins.NodeAttestor.${name}`,
});

const digest = (a: Uint8Array, b: Uint8Array) => createHash('sha256').update(a).update(b).digest();

/** RFC 8017 EMSA-PSS-VERIFY with the digest as mHash, as Go's rsa.VerifyPSS(pub, SHA256, digest, sig, nil). */
function verifyPss(pub: KeyObject, mHash: Uint8Array, sig: Uint8Array): boolean {
  const em = publicDecrypt({ key: pub, padding: constants.RSA_NO_PADDING }, sig);
  const modBits = pub.asymmetricKeyDetails!.modulusLength!;
  const emLen = Math.ceil((modBits - 1) / 8);
  const e = em.subarray(em.length - emLen);
  if (e[e.length - 1] !== 0xbc) return false;
  const h = e.subarray(emLen - 33, emLen - 1);
  const masked = Buffer.from(e.subarray(0, emLen - 33));
  const mask: Buffer[] = [];
  for (let c = 0; mask.length * 32 < masked.length; c++) {
    const ctr = Buffer.alloc(4);
    ctr.writeUInt32BE(c);
    mask.push(createHash('sha256').update(h).update(ctr).digest());
  }
  const m = Buffer.concat(mask);
  for (let i = 0; i < masked.length; i++) masked[i] = masked[i]! ^ m[i]!;
  masked[0] = masked[0]! & (0xff >> (8 * emLen - (modBits - 1)));
  const one = masked.indexOf(1);
  if (one < 0 || masked.subarray(0, one).some((b) => b !== 0)) return false;
  const salt = masked.subarray(one + 1);
  return createHash('sha256').update(Buffer.alloc(8)).update(mHash).update(salt).digest().equals(h);
}

describe('x509pop challenge/response', () => {
  it('ECDSA: signs SHA-256(challenge ‖ nonce) as a digest, r/s minimal big-endian, Go field order', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const nonce = randomBytes(32);
    const challenge = Buffer.from(JSON.stringify({ rsa_signature: null, ecdsa_signature: { nonce: nonce.toString('base64') } }));
    const own = randomBytes(32);
    const text = Buffer.from(calculateResponse(privateKey, parseChallenge(challenge), own)).toString();
    expect(Object.keys(JSON.parse(text))).toEqual(['rsa_signature', 'ecdsa_signature']);
    const r = JSON.parse(text);
    expect(r.rsa_signature).toBeNull();
    expect(Buffer.from(r.ecdsa_signature.nonce, 'base64').equals(own)).toBe(true);
    const rb = Buffer.from(r.ecdsa_signature.r, 'base64');
    const sb = Buffer.from(r.ecdsa_signature.s, 'base64');
    expect(rb[0]).not.toBe(0);
    const sig = Buffer.concat([Buffer.alloc(32 - rb.length), rb, Buffer.alloc(32 - sb.length), sb]);
    const jwk = publicKey.export({ format: 'jwk' });
    const pub = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
    expect(p256.verify(sig, digest(nonce, own), pub, { prehash: false })).toBe(true);
    // And not over the re-hashed digest: the server would reject that.
    expect(p256.verify(sig, createHash('sha256').update(digest(nonce, own)).digest(), pub, { prehash: false })).toBe(false);
  });

  it('RSA: PSS over the digest itself (SHA-256/MGF1-SHA-256)', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const nonce = randomBytes(32);
    const own = randomBytes(32);
    const resp = JSON.parse(Buffer.from(calculateResponse(privateKey, { rsaNonce: nonce }, own)).toString());
    expect(resp.ecdsa_signature).toBeNull();
    expect(verifyPss(publicKey, digest(nonce, own), Buffer.from(resp.rsa_signature.signature, 'base64'))).toBe(true);
    expect(verifyPss(publicKey, digest(own, nonce), Buffer.from(resp.rsa_signature.signature, 'base64'))).toBe(false);
  });

  it('refuses a challenge for the other key type and a short nonce', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(() => calculateResponse(privateKey, { rsaNonce: randomBytes(32) })).toThrow(/expecting ECDSA challenge/);
    expect(() => calculateResponse(privateKey, { ecdsaNonce: randomBytes(16) })).toThrow(/invalid challenge nonce/);
  });
});

describe('x509pop attestor', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'x509pop-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('sends leaf then intermediates, answers the challenge, stops on the result', async () => {
    const root = await TestCA.create('example.org');
    const inter = await root.createIntermediate();
    const leaf = await inter.createX509SVID('spiffe://example.org/node');
    await writeFile(join(dir, 'cert.pem'), pemEncodeCertificates([leaf.chain[0]!]));
    await writeFile(join(dir, 'key.pem'), `-----BEGIN PRIVATE KEY-----\n${Buffer.from(leaf.privateKeyPkcs8).toString('base64')}\n-----END PRIVATE KEY-----\n`);
    await writeFile(join(dir, 'inter.pem'), pemEncodeCertificates([inter.der()]));
    const att = await createX509popAttestor(
      parseX509popConfig(plugin('x509pop', { private_key_path: join(dir, 'key.pem'), certificate_path: join(dir, 'cert.pem'), intermediates_path: join(dir, 'inter.pem') })),
    );
    const sent: unknown[] = [];
    await att.attest(
      {
        sendAttestationData: async (d) => {
          sent.push(JSON.parse(Buffer.from(d.payload).toString()));
          expect(d.type).toBe('x509pop');
          return Buffer.from(JSON.stringify({ rsa_signature: null, ecdsa_signature: { nonce: randomBytes(32).toString('base64') } }));
        },
        sendChallengeResponse: async (r) => {
          sent.push(JSON.parse(Buffer.from(r).toString()));
          return undefined;
        },
      },
      new AbortController().signal,
    );
    expect((sent[0] as { certificates: string[] }).certificates).toEqual([Buffer.from(leaf.chain[0]!).toString('base64'), Buffer.from(inter.der()).toString('base64')]);
    expect((sent[1] as { ecdsa_signature: unknown }).ecdsa_signature).toBeTruthy();
    expect(att).toBeInstanceOf(X509popAttestor);
  });

  it('reports every missing key with its dotted path, and a key that does not match the certificate', async () => {
    await expect(checkNodeAttestorConfig(plugin('x509pop', { bogus: 1 }), { file: 'agent.conf' }, systemClock)).rejects.toThrow(
      /plugin_data\.private_key_path: private_key_path is required[\s\S]*plugin_data\.certificate_path: certificate_path is required[\s\S]*bogus/,
    );
    const ca = await TestCA.create('example.org');
    const a = await ca.createX509SVID('spiffe://example.org/a');
    const b = await ca.createX509SVID('spiffe://example.org/b');
    await writeFile(join(dir, 'cert.pem'), pemEncodeCertificates([a.chain[0]!]));
    await writeFile(join(dir, 'key.pem'), `-----BEGIN PRIVATE KEY-----\n${Buffer.from(b.privateKeyPkcs8).toString('base64')}\n-----END PRIVATE KEY-----\n`);
    await expect(createX509popAttestor(parseX509popConfig(plugin('x509pop', { private_key_path: join(dir, 'key.pem'), certificate_path: join(dir, 'cert.pem') })))).rejects.toThrow(/does not match/);
  });
});

describe('node attestor catalog', () => {
  it('an unknown NodeAttestor is a config error', async () => {
    await expect(checkNodeAttestorConfig(plugin('tpm_magic'), {}, systemClock)).rejects.toThrow(/unknown NodeAttestor "tpm_magic"/);
  });

  it('a join token wins over the configured attestor, as in spire-agent; join_token without token fails clearly', async () => {
    const withToken = await createNodeAttestor([plugin('aws_iid', {})], {}, { ...deps, joinToken: 'tok' });
    expect(withToken.name).toBe('join_token');
    // spire-agent still loads the configured plugin, whose Configure reads x509pop's key pair, and
    // refuses to start without it; validate says the same (validate-run-agree.test.ts).
    await expect(createNodeAttestor([plugin('x509pop', { private_key_path: '/nonexistent', certificate_path: '/nonexistent' })], {}, { ...deps, joinToken: 'tok' })).rejects.toThrow(
      /unable to load keypair: certificate_path "\/nonexistent"/,
    );
    const noToken = await createNodeAttestor([plugin('join_token')], {}, deps);
    await expect(noToken.attest({ sendAttestationData: async () => undefined, sendChallengeResponse: async () => undefined }, new AbortController().signal)).rejects.toThrow(/join token was not provided/);
    await expect(createNodeAttestor([], {}, { ...deps, joinToken: 'x' })).rejects.toThrow(/exactly one NodeAttestor/);
  });

  it('join_token_file is read and trimmed; an empty file is an error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'jt-'));
    try {
      await writeFile(join(dir, 't'), '  secret-token\n');
      let payload = '';
      const att = await createNodeAttestor([plugin('join_token')], {}, { ...deps, joinTokenFile: join(dir, 't') });
      await att.attest({ sendAttestationData: async (d) => ((payload = Buffer.from(d.payload).toString()), undefined), sendChallengeResponse: async () => undefined }, new AbortController().signal);
      expect(payload).toBe('secret-token');
      await writeFile(join(dir, 'e'), '\n');
      await expect(createNodeAttestor([plugin('join_token')], {}, { ...deps, joinTokenFile: join(dir, 'e') })).rejects.toThrow(/is empty/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('join_token refuses a challenge', async () => {
    const att = await createNodeAttestor([plugin('join_token')], {}, { ...deps, joinToken: 'tok' });
    await expect(att.attest({ sendAttestationData: async () => new Uint8Array([1]), sendChallengeResponse: async () => undefined }, new AbortController().signal)).rejects.toThrow(/unexpected challenge/);
  });
});
