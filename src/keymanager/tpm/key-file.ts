/**
 * The file KeyManager "tpm" keeps in its directory: for each key, the TPM's blobs of the sealed
 * data object that holds the key's private scalar, and the key's public half. Nothing in it is
 * secret: the private blob is encrypted and integrity-protected by this TPM's storage root key,
 * which never leaves the TPM.
 *
 *   magic      "SPAKTPM\x01"            8 bytes: spiffe-agent, TPM-sealed keys, format 1
 *   srkName    u16 length + bytes       Name of the storage root key the blobs were sealed under
 *   count      u16
 *   count x {  id        u16 + UTF-8
 *              spki      u16 + DER     the public key, to match a certificate without the TPM
 *              public    u16 + bytes   TPMT_PUBLIC of the sealed object
 *              private   u16 + bytes   TPM2B_PRIVATE contents }
 *   sha256     32 bytes over all of the above
 *
 * The checksum tells a truncated or damaged file (a disk fault, a hand edit) from a file this TPM
 * cannot unseal, without the TPM; it is no defence against someone who can write the file. The
 * SRK's Name lets the start tell "another TPM, or this one was cleared" before loading anything.
 */
import { createHash } from 'node:crypto';
import { SpiffeAgentError } from '../../errors.js';
import type {} from '../errors.js';

export const KEY_FILE = 'tpm-sealed-keys.bin';
const MAGIC = Buffer.from('SPAKTPM\x01', 'latin1');
const SUM = 32;

export interface SealedKeyRecord {
  readonly id: string;
  readonly spki: Uint8Array;
  readonly public: Uint8Array;
  readonly private: Uint8Array;
}

export interface SealedKeyFile {
  readonly srkName: Uint8Array;
  readonly keys: readonly SealedKeyRecord[];
}

function field(parts: Buffer[], v: Uint8Array, what: string): void {
  if (v.length > 0xffff) throw new RangeError(`keymanager(tpm): ${what} is ${v.length} bytes, over the file format's 65535`);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(v.length);
  parts.push(len, Buffer.from(v));
}

export function encodeKeyFile(f: SealedKeyFile): Buffer {
  const parts: Buffer[] = [MAGIC];
  field(parts, f.srkName, 'the SRK name');
  const count = Buffer.alloc(2);
  count.writeUInt16BE(f.keys.length);
  parts.push(count);
  for (const k of f.keys) {
    field(parts, Buffer.from(k.id, 'utf8'), `key id ${JSON.stringify(k.id)}`);
    field(parts, k.spki, 'a public key');
    field(parts, k.public, 'a TPM public blob');
    field(parts, k.private, 'a TPM private blob');
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

/**
 * Parses a key file, or throws keymanager_corrupt naming `path` and what is wrong with it (never
 * its bytes: messages reach logs).
 */
export function decodeKeyFile(bytes: Buffer, path: string): SealedKeyFile {
  const bad = (msg: string): SpiffeAgentError =>
    new SpiffeAgentError('keymanager_corrupt', `keymanager(tpm): ${path}: ${msg}; restore it from a backup or remove it (the agent then attests again)`);
  if (bytes.length < MAGIC.length) throw bad(`truncated: ${bytes.length} bytes, shorter than the header`);
  if (!bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    if (bytes.subarray(0, 7).equals(MAGIC.subarray(0, 7))) throw bad(`format version ${bytes[7]} is not one this agent reads (it reads 1)`);
    throw bad('not a TPM-sealed key file (wrong header)');
  }
  if (bytes.length < MAGIC.length + 4 + SUM) throw bad(`truncated: ${bytes.length} bytes, too short to hold a key list and its checksum`);
  const body = bytes.subarray(0, bytes.length - SUM);
  if (!createHash('sha256').update(body).digest().equals(bytes.subarray(bytes.length - SUM))) {
    throw bad('checksum mismatch: the file is truncated or was altered');
  }
  // Past the checksum, a structural fault means the writer was broken, not the disk.
  let at = MAGIC.length;
  const take = (what: string): Buffer => {
    if (at + 2 > body.length) throw bad(`malformed: ends before ${what}`);
    const n = body.readUInt16BE(at);
    if (at + 2 + n > body.length) throw bad(`malformed: ${what} runs past the end`);
    const v = body.subarray(at + 2, at + 2 + n);
    at += 2 + n;
    return v;
  };
  const srkName = take('the SRK name');
  if (at + 2 > body.length) throw bad('malformed: ends before the key count');
  const count = body.readUInt16BE(at);
  at += 2;
  const keys: SealedKeyRecord[] = [];
  const seen = new Set<string>();
  for (let i = 1; i <= count; i++) {
    const id = take(`the id of key #${i}`).toString('utf8');
    if (id === '' || seen.has(id)) throw bad(`malformed: key #${i} has ${id === '' ? 'an empty' : 'a repeated'} id`);
    seen.add(id);
    const spki = take(`the public key of key #${i}`);
    const pub = take(`the TPM public blob of key #${i}`);
    const priv = take(`the TPM private blob of key #${i}`);
    if (spki.length === 0 || pub.length === 0 || priv.length === 0) throw bad(`malformed: key #${i} has an empty field`);
    keys.push(Object.freeze({ id, spki, public: pub, private: priv }));
  }
  if (at !== body.length) throw bad(`malformed: ${body.length - at} bytes after the last key`);
  if (srkName.length === 0) throw bad('malformed: no SRK name');
  return Object.freeze({ srkName, keys: Object.freeze(keys) });
}
