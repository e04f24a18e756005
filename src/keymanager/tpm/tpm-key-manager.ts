/**
 * KeyManager "tpm": the agent's private keys are sealed by this node's TPM at rest, so a copy of
 * the directory (a backup, a stolen disk, a cloned VM image without its TPM) cannot act as this
 * node. At start every sealed key is unsealed once and kept in this process's memory as a
 * KeyObject until the agent exits (the TPM is not asked again: TLS needs the key in memory
 * anyway, see ManagedKey.unsealForTLS).
 *
 * A new key is sealed first, then the whole key file is replaced atomically (temp file, fsync,
 * rename), so a kill -9 at any moment leaves the previous file or the new one, never a mix; a
 * sealed object that never reached the file is just lost, as it lives only in its blobs.
 */
import { mkdir, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { SpiffeAgentError } from '../../errors.js';
import { readFileIfExists, writeFileAtomic } from '../../storage/atomic-file.js';
import type { KeyManager, ManagedKey } from '../types.js';
import type { SoftwareKey } from '../key-entry.js';
import { KeyManagerTpmError } from './errors.js';
import { KEY_FILE, decodeKeyFile, encodeKeyFile, type SealedKeyRecord } from './key-file.js';
import { newP256, sealKey, unsealKey, withSRK, type TpmAccess } from './sealing.js';

/** Where a crash test may stop key creation (tests only; the agent passes no hook). */
export type CreationStep = 'tpm-opened' | 'sealed' | 'temp-written' | 'renamed';

export interface TpmKeyManagerDeps extends TpmAccess {
  readonly atStep?: (step: CreationStep) => Promise<void>;
}

interface Held {
  readonly key: SoftwareKey;
  readonly record: SealedKeyRecord;
}

export class TpmKeyManager implements KeyManager {
  readonly name = 'tpm';
  readonly path: string;
  private readonly held = new Map<string, Held>();
  /** The SRK Name the file records; undefined until the first key is sealed. */
  private srkName: Uint8Array | undefined;
  /** generateKey calls one at a time: each rewrites the whole file. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly d: TpmKeyManagerDeps) {
    this.path = join(d.config.directory, KEY_FILE);
  }

  /** Reads the key file and unseals every key in it; a file this TPM cannot unseal is an error. */
  static async open(d: TpmKeyManagerDeps): Promise<TpmKeyManager> {
    const km = new TpmKeyManager(d);
    await km.load();
    return km;
  }

  get directory(): string {
    return this.d.config.directory;
  }

  async generateKey(id: string): Promise<ManagedKey> {
    const next = this.queue.then(() => this.generate(id));
    this.queue = next.catch(() => undefined);
    return next;
  }

  async getKeys(): Promise<readonly ManagedKey[]> {
    return [...this.held.values()].map((h) => h.key);
  }

  async close(): Promise<void> {
    // Drops our references; the KeyObjects go when the session's channel does.
    this.held.clear();
  }

  private async load(): Promise<void> {
    await removeStaleTemps(this.d.config.directory);
    const raw = await readFileIfExists(this.path);
    const file = raw === undefined ? undefined : decodeKeyFile(raw, this.path);
    // The TPM is opened even with nothing to unseal: an agent that cannot reach its TPM fails at
    // start, before it attests, rather than at its first key.
    await withSRK(this.d, async (use) => {
      if (file === undefined) return;
      if (!use.srkName.equals(Buffer.from(file.srkName))) throw this.foreign();
      for (const rec of file.keys) this.held.set(rec.id, { key: await unsealKey(use, rec, this.path), record: rec });
    });
    if (file === undefined) {
      this.d.log.info({ directory: this.directory }, 'No TPM-sealed keys yet; a key will be generated and sealed by the TPM');
      return;
    }
    this.srkName = file.srkName;
    this.d.log.info({ directory: this.directory, keys: file.keys.map((k) => k.id) }, 'Resumed keys sealed by the TPM');
  }

  private async generate(id: string): Promise<ManagedKey> {
    const { key, scalar } = newP256(id);
    let record: SealedKeyRecord;
    let srkName: Uint8Array;
    try {
      ({ record, srkName } = await withSRK(this.d, async (use) => {
        // The TPM was cleared (or swapped) since start: sealing under the new SRK would leave the
        // other keys unreadable, so refuse and say why.
        if (this.srkName !== undefined && !use.srkName.equals(Buffer.from(this.srkName))) throw this.foreign();
        await this.d.atStep?.('tpm-opened');
        return { record: await sealKey(use, id, scalar, key.publicKeySpki), srkName: use.srkName };
      }));
    } finally {
      scalar.fill(0);
    }
    await this.d.atStep?.('sealed');
    const records = [...[...this.held.values()].map((h) => h.record).filter((r) => r.id !== id), record];
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.path, encodeKeyFile({ srkName, keys: records }), 0o600, { beforeRename: () => this.d.atStep?.('temp-written') ?? Promise.resolve() });
    await this.d.atStep?.('renamed');
    this.srkName = srkName;
    this.held.set(id, { key, record });
    this.d.log.info({ key_id: id, directory: this.directory }, 'Generated a key and sealed it with the TPM');
    return key;
  }

  private foreign(): KeyManagerTpmError {
    const dir = this.directory;
    return new KeyManagerTpmError(
      'keymanager_tpm_foreign',
      `keymanager(tpm): the keys in ${dir} were sealed by another TPM, or this TPM was cleared since (its storage root key differs); ` +
        `they cannot be unsealed here. Remove ${this.path} (and the agent's data_dir state) to attest again as a new agent`,
    );
  }
}

/** Temp files of a write a crash interrupted (writeFileAtomic names them .<file>.<hex>.tmp). */
async function removeStaleTemps(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const n of names) {
    if (n.startsWith(`.${KEY_FILE}.`) && n.endsWith('.tmp')) await unlink(join(dir, n)).catch(() => undefined);
  }
}

/**
 * For `validate`: the directory and the key file are sane, without the TPM (validate may run
 * while the agent holds a TPM that allows one user, or on a machine without the node's TPM).
 * Whether this TPM can unseal the file is known only at `run`.
 */
export async function verifyKeyDirectory(directory: string): Promise<void> {
  const st = await stat(directory).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
  if (st === undefined) return; // nothing sealed yet: the agent creates it at the first key
  if (!st.isDirectory()) throw new SpiffeAgentError('keymanager_corrupt', `keymanager(tpm): directory ${directory} is not a directory`);
  const path = join(directory, KEY_FILE);
  const raw = await readFileIfExists(path);
  if (raw === undefined) return;
  const mode = (await stat(path)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new SpiffeAgentError('keymanager_corrupt', `keymanager(tpm): ${path} has mode 0${mode.toString(8)}; anyone who reads it and can use this TPM can unseal the agent's key. chmod 600 it`);
  }
  decodeKeyFile(raw, path);
}
