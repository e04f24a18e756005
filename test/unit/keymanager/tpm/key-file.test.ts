/**
 * The TPM key file's format: what is written reads back; a truncated, altered or foreign file is
 * keymanager_corrupt with a message naming the path and the fault, never the file's bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeKeyFile, encodeKeyFile, type SealedKeyFile } from '../../../../src/keymanager/tpm/key-file.js';

const PATH = '/var/lib/spire/agent/tpm-sealed-keys.bin';
const sample: SealedKeyFile = {
  srkName: Buffer.concat([Buffer.from([0x00, 0x0b]), randomBytes(32)]),
  keys: [
    { id: 'agent-svid-A', spki: randomBytes(91), public: randomBytes(78), private: randomBytes(126) },
    { id: 'agent-svid-B', spki: randomBytes(91), public: randomBytes(78), private: randomBytes(126) },
  ],
};

/** Rewrites the checksum so a structural fault reaches the parser behind it. */
function resum(body: Buffer): Buffer {
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

describe('TPM key file', () => {
  it('reads back what it wrote, byte for byte, and starts with its magic', () => {
    const bytes = encodeKeyFile(sample);
    expect(bytes.subarray(0, 8).toString('latin1')).toBe('SPAKTPM\x01');
    const back = decodeKeyFile(bytes, PATH);
    expect(Buffer.from(back.srkName).equals(Buffer.from(sample.srkName))).toBe(true);
    expect(back.keys.map((k) => k.id)).toEqual(['agent-svid-A', 'agent-svid-B']);
    for (const [i, k] of back.keys.entries()) {
      const s = sample.keys[i]!;
      for (const f of ['spki', 'public', 'private'] as const) expect(Buffer.from(k[f]).equals(Buffer.from(s[f])), f).toBe(true);
    }
    expect(encodeKeyFile(back).equals(bytes)).toBe(true);
  });

  it('holds an empty key list', () => {
    expect(decodeKeyFile(encodeKeyFile({ srkName: sample.srkName, keys: [] }), PATH).keys).toEqual([]);
  });

  it('every truncation is a clear error, never a key list', () => {
    const bytes = encodeKeyFile(sample);
    for (let n = 0; n < bytes.length; n++) {
      expect(() => decodeKeyFile(bytes.subarray(0, n), PATH), `truncated to ${n}`).toThrow(
        expect.objectContaining({ code: 'keymanager_corrupt', message: expect.stringMatching(/^keymanager\(tpm\): \/var\/lib\/spire\/agent\/tpm-sealed-keys\.bin: (truncated|checksum mismatch)/) }),
      );
    }
  });

  it('any flipped byte is a clear error', () => {
    const bytes = encodeKeyFile(sample);
    for (let i = 0; i < bytes.length; i += 7) {
      const bad = Buffer.from(bytes);
      bad[i] = bad[i]! ^ 0x01;
      expect(() => decodeKeyFile(bad, PATH), `byte ${i}`).toThrow(expect.objectContaining({ code: 'keymanager_corrupt' }));
    }
  });

  it.each([
    ['another file', Buffer.from('{"keys": {}}\n'.repeat(4)), /not a TPM-sealed key file \(wrong header\)/],
    ['a later format', Buffer.concat([Buffer.from('SPAKTPM\x02', 'latin1'), randomBytes(60)]), /format version 2 is not one this agent reads \(it reads 1\)/],
    ['an empty file', Buffer.alloc(0), /truncated: 0 bytes/],
    ['a repeated id', resum(encodeKeyFile({ srkName: sample.srkName, keys: [sample.keys[0]!, sample.keys[0]!] }).subarray(0, -32)), /key #2 has a repeated id/],
    ['a field running past the end', resum(Buffer.concat([Buffer.from('SPAKTPM\x01', 'latin1'), Buffer.from([0x00, 0x40]), randomBytes(10)])), /malformed: the SRK name runs past the end/],
    ['bytes after the last key', resum(Buffer.concat([encodeKeyFile(sample).subarray(0, -32), Buffer.from([0])])), /malformed: 1 bytes after the last key/],
  ])('%s is a clear error', (_name, bytes, message) => {
    expect(() => decodeKeyFile(bytes, PATH)).toThrow(expect.objectContaining({ code: 'keymanager_corrupt', message: expect.stringMatching(message) }));
  });

  it('a message never carries the file content', () => {
    const secretish = Buffer.from('SPAKTPM\x01', 'latin1').toString('hex');
    try {
      decodeKeyFile(Buffer.concat([encodeKeyFile(sample).subarray(0, 50)]), PATH);
    } catch (e) {
      const m = (e as Error).message;
      expect(m).not.toContain(secretish);
      expect(m).not.toContain(Buffer.from(sample.srkName).toString('hex'));
      expect(m).not.toContain(Buffer.from(sample.srkName).toString('base64'));
      return;
    }
    throw new Error('no error');
  });
});
