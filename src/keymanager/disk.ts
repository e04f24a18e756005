/**
 * KeyManager "disk": spire-agent's <directory>/keys.json, {"keys": {"<id>": <base64 PKCS#8 DER>}},
 * written as Go's json.MarshalIndent(data, "", "\t") does (keys sorted, tab indent), atomically
 * with mode 0600, so spire-agent and spiffe-agent read each other's keys.
 */
import { join } from 'node:path';
import type { PluginConfig } from '../config/types.js';
import { PluginDataReader, type PluginDataReaderOptions } from '../config/plugin-data.js';
import { SpiffeAgentError } from '../errors.js';
// Brings keymanager_corrupt into ErrorCodes for programs that include this file alone (the interop tsconfig).
import type {} from './errors.js';
import { JSONParseError, parseJSON } from '../parse/json.js';
import { readFileIfExists, writeFileAtomic } from '../storage/atomic-file.js';
import { generateP256, keyFromPkcs8, type SoftwareKey } from './key-entry.js';
import type { KeyManager, ManagedKey } from './types.js';

export const KEYS_FILE = 'keys.json';

export interface DiskKeyManagerConfig {
  readonly directory: string;
}

export function parseDiskConfig(plugin: PluginConfig, ctx: PluginDataReaderOptions = {}): DiskKeyManagerConfig {
  const r = new PluginDataReader(plugin, ctx);
  const directory = r.string('directory', '');
  if (directory === '') r.problem('directory', 'directory must be configured (spire-agent keeps keys.json there; usually the data_dir)');
  r.finish();
  return Object.freeze({ directory });
}

export class DiskKeyManager implements KeyManager {
  readonly name = 'disk';
  private keys: Map<string, SoftwareKey> | undefined;
  readonly path: string;

  constructor(config: DiskKeyManagerConfig) {
    this.path = join(config.directory, KEYS_FILE);
  }

  async generateKey(id: string): Promise<ManagedKey> {
    const keys = new Map(await this.load());
    const key = generateP256(id);
    keys.set(id, key);
    await writeFileAtomic(this.path, encodeKeysFile(keys.values()), 0o600);
    this.keys = keys;
    return key;
  }

  async getKeys(): Promise<readonly ManagedKey[]> {
    return [...(await this.load()).values()];
  }

  private async load(): Promise<Map<string, SoftwareKey>> {
    if (this.keys === undefined) {
      const raw = await readFileIfExists(this.path);
      this.keys = raw === undefined ? new Map() : decodeKeysFile(raw.toString('utf8'), this.path);
    }
    return this.keys;
  }
}

export function encodeKeysFile(keys: Iterable<SoftwareKey>): string {
  const sorted = [...keys].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (sorted.length === 0) return '{\n\t"keys": {}\n}';
  const lines = sorted.map((k) => `\t\t${JSON.stringify(k.id)}: ${JSON.stringify(Buffer.from(k.pkcs8()).toString('base64'))}`);
  return `{\n\t"keys": {\n${lines.join(',\n')}\n\t}\n}`;
}

export function decodeKeysFile(text: string, path: string): Map<string, SoftwareKey> {
  const bad = (msg: string, cause?: unknown) =>
    new SpiffeAgentError('keymanager_corrupt', `keymanager(disk): ${path}: ${msg}; restore it or remove it (the agent then attests again)`, { cause });
  // Problems name the fault and the key's place, never the file's text: the path may lead (by a
  // symlink) to another file, and these messages reach logs.
  let doc: unknown;
  try {
    doc = parseJSON(text).value;
  } catch (err) {
    if (!(err instanceof JSONParseError)) throw err;
    throw bad(`unable to decode keys JSON at ${err.detail}`, err);
  }
  const keysObj = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>)['keys'] : undefined;
  const out = new Map<string, SoftwareKey>();
  if (keysObj === undefined || keysObj === null) return out;
  if (typeof keysObj !== 'object' || Array.isArray(keysObj)) throw bad('"keys" must be an object of id to base64 PKCS#8');
  let n = 0;
  for (const [id, v] of Object.entries(keysObj as Record<string, unknown>)) {
    n++;
    if (typeof v !== 'string') throw bad(`key #${n} of "keys" must be a base64 string`);
    try {
      out.set(id, keyFromPkcs8(id, Buffer.from(v, 'base64')));
    } catch (err) {
      throw bad(`key #${n} of "keys" is not a base64 PKCS#8 private key`, err);
    }
  }
  return out;
}
