import { X509Certificate } from 'node:crypto';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyType } from '../../config/types.js';
import { ensurePrivateDir, readFileIfExists, writeFileAtomic } from '../../storage/atomic-file.js';
import { fromParts, type CAGeneration } from './ca.js';
import { EmbeddedAuthorityError } from './errors.js';
import { crypto, exportPrivateKeyPem, importKeyPairPem, isKeyType, publicJwk, toPem, type CryptoKeyPair } from '../../crypto/keys.js';
import { JSONParseError, parseJSON } from '../../parse/json.js';
import { assertSingleDer, certFields, pemDecode } from '../../svid/der.js';

/**
 * On-disk layout of <data_dir>/embedded-ca/ (directory 0700, files 0600):
 *   manifest.json            {"version":1,"active":id,"next":id|null,"retired":[id...]}
 *   <id>.json                {"ca_key_type":..., "jwt_key_type":..., "jwt_kid":...}
 *   <id>.ca.crt.pem          the CA certificate
 *   <id>.ca.key.pem          its PKCS#8 private key
 *   <id>.jwt.key.pem         the JWT signing key (PKCS#8)
 * Every file is written atomically and generation files are immutable; the manifest is
 * written last, so it is the commit point: a crash leaves either the old or the new set.
 * Files no manifest references are removed after each save.
 */
export interface CAState {
  active: CAGeneration;
  next: CAGeneration | undefined;
  /** No longer signing, still in the bundle until they expire. */
  retired: CAGeneration[];
}

interface Manifest {
  version: 1;
  active: string;
  next: string | null;
  retired: string[];
}

const ID_RE = /^[0-9a-f]{16}$/;

export class CAStore {
  readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'embedded-ca');
  }

  async load(): Promise<CAState | undefined> {
    const raw = await readFileIfExists(join(this.dir, 'manifest.json'));
    if (raw === undefined) return undefined;
    const m = this.parseManifest(raw.toString('utf8'));
    const [active, next, ...retired] = await Promise.all([
      this.loadGeneration(m.active),
      m.next === null ? Promise.resolve(undefined) : this.loadGeneration(m.next),
      ...m.retired.map((id) => this.loadGeneration(id)),
    ]);
    return { active: active as CAGeneration, next, retired: retired as CAGeneration[] };
  }

  async save(state: CAState): Promise<void> {
    await ensurePrivateDir(this.dir);
    const all = [state.active, ...(state.next ? [state.next] : []), ...state.retired];
    for (const g of all) await this.saveGeneration(g);
    const m: Manifest = {
      version: 1,
      active: state.active.id,
      next: state.next?.id ?? null,
      retired: state.retired.map((g) => g.id),
    };
    await writeFileAtomic(join(this.dir, 'manifest.json'), JSON.stringify(m, null, 2) + '\n');
    await this.removeUnreferenced(new Set(all.map((g) => g.id)));
  }

  private fail(message: string, cause?: unknown): never {
    throw new EmbeddedAuthorityError(
      'ca_store',
      `embedded-ca: ${message} in ${this.dir}; restore it from a backup, or remove the directory to create a new CA (workloads will need the new bundle)`,
      { cause },
    );
  }

  private parseManifest(text: string): Manifest {
    let v: unknown;
    try {
      v = parseJSON(text).value;
    } catch (err) {
      this.fail(`manifest.json is not valid JSON at ${err instanceof JSONParseError ? err.detail : 'its start'}`, err);
    }
    const m = v as Partial<Manifest> | null;
    const ok =
      m !== null &&
      typeof m === 'object' &&
      m.version === 1 &&
      typeof m.active === 'string' &&
      ID_RE.test(m.active) &&
      (m.next === null || (typeof m.next === 'string' && ID_RE.test(m.next))) &&
      Array.isArray(m.retired) &&
      m.retired.every((id) => typeof id === 'string' && ID_RE.test(id));
    if (!ok) this.fail('manifest.json has an unexpected shape');
    return m as Manifest;
  }

  private async loadGeneration(id: string): Promise<CAGeneration> {
    const read = async (name: string): Promise<string> => {
      const b = await readFileIfExists(join(this.dir, `${id}.${name}`));
      if (b === undefined) this.fail(`${id}.${name} is missing`);
      return b.toString('utf8');
    };
    try {
      // Not JSON.parse: its message, shown below, would quote the file.
      const meta = parseJSON(await read('json')).value as Record<string, unknown> | null;
      if (typeof meta !== 'object' || meta === null) this.fail(`${id}.json has an unexpected shape`);
      const caKeyType = meta['ca_key_type'];
      const jwtKeyType = meta['jwt_key_type'];
      const kid = meta['jwt_kid'];
      if (!isKeyType(caKeyType) || !isKeyType(jwtKeyType) || typeof kid !== 'string' || kid === '') {
        this.fail(`${id}.json has an unexpected shape`);
      }
      const cert = this.certificateDer(id, await read('ca.crt.pem'));
      const keys = await importKeyPairPem(caKeyType, await read('ca.key.pem'));
      await this.checkKeyMatchesCert(id, cert, keys);
      const jwtKeys = await importKeyPairPem(jwtKeyType, await read('jwt.key.pem'));
      const jwk = publicJwk(await crypto.subtle.exportKey('jwk', jwtKeys.publicKey));
      return fromParts(id, cert, caKeyType, keys, { kid, keyType: jwtKeyType as KeyType, keys: jwtKeys, publicJwk: jwk });
    } catch (err) {
      if (err instanceof EmbeddedAuthorityError) throw err;
      this.fail(`generation ${id} cannot be read (${(err as Error).message})`, err);
    }
  }

  /** The one certificate of a .ca.crt.pem, checked by node:crypto's parser. */
  private certificateDer(id: string, pem: string): Uint8Array {
    const blocks = pemDecode(pem, 'CERTIFICATE');
    if (blocks.length !== 1) this.fail(`${id}.ca.crt.pem holds ${blocks.length} certificates, not one`);
    const der = blocks[0]!;
    assertSingleDer(der);
    new X509Certificate(der);
    return der;
  }

  private async checkKeyMatchesCert(id: string, certDer: Uint8Array, keys: CryptoKeyPair): Promise<void> {
    const fromCert = certFields(certDer).spki;
    const fromKey = await crypto.subtle.exportKey('spki', keys.publicKey);
    if (!Buffer.from(fromCert).equals(Buffer.from(fromKey))) this.fail(`${id}.ca.key.pem does not match ${id}.ca.crt.pem`);
  }

  private async saveGeneration(g: CAGeneration): Promise<void> {
    // Generation files never change once written; skip the ones already on disk.
    const metaPath = join(this.dir, `${g.id}.json`);
    if ((await readFileIfExists(metaPath)) !== undefined) return;
    // One PEM block and a newline: byte for byte what the @peculiar/x509 writer produced.
    await writeFileAtomic(join(this.dir, `${g.id}.ca.crt.pem`), toPem('CERTIFICATE', g.certDer));
    await writeFileAtomic(join(this.dir, `${g.id}.ca.key.pem`), await exportPrivateKeyPem(g.keys.privateKey));
    await writeFileAtomic(join(this.dir, `${g.id}.jwt.key.pem`), await exportPrivateKeyPem(g.jwt.keys.privateKey));
    // Written last: its presence means the generation is complete.
    const meta = { ca_key_type: g.keyType, jwt_key_type: g.jwt.keyType, jwt_kid: g.jwt.kid };
    await writeFileAtomic(metaPath, JSON.stringify(meta, null, 2) + '\n');
  }

  private async removeUnreferenced(keep: Set<string>): Promise<void> {
    for (const name of await readdir(this.dir)) {
      const id = name.split('.')[0] ?? '';
      if (!ID_RE.test(id) || keep.has(id)) continue;
      await unlink(join(this.dir, name)).catch(() => {});
    }
  }
}
