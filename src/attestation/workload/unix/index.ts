/**
 * The unix workload attestor, with spire-agent's selectors and options:
 * uid, user, gid, group, supplementary_gid, supplementary_group, and with
 * discover_workload_path: path and sha256 of the binary read through /proc/<pid>/exe.
 */
import { createHash } from 'node:crypto';
import type { PluginConfig } from '../../../config/types.js';
import { PluginDataReader } from '../../../config/plugin-data.js';
import type { ProcReader } from '../../../proc/proc-reader.js';
import { WorkloadRefusedError, type WorkloadAttestor } from '../types.js';
import { UserDb } from './user-db.js';

export interface UnixAttestorConfig {
  readonly discoverWorkloadPath: boolean;
  /** Bytes; 0 = no limit, negative = never hash. */
  readonly workloadSizeLimit: number;
}

export function parseUnixConfig(plugin: PluginConfig, file?: string, text?: string): UnixAttestorConfig {
  const r = new PluginDataReader(plugin, { file, text });
  const cfg = {
    discoverWorkloadPath: r.bool('discover_workload_path', false),
    workloadSizeLimit: r.int('workload_size_limit', 0),
  };
  r.finish();
  return Object.freeze(cfg);
}

interface HashCacheEntry {
  readonly key: string;
  readonly digest: string;
}

export class UnixAttestor implements WorkloadAttestor {
  readonly name = 'unix';
  readonly ignoresSignal = true;
  /** Keyed by device/inode/size/mtime: a replaced binary gets a new inode or mtime and is hashed again. */
  private readonly hashes = new Map<string, HashCacheEntry>();
  private static readonly HASH_CACHE_MAX = 512;

  constructor(
    private readonly config: UnixAttestorConfig,
    private readonly proc: ProcReader,
    private readonly users: UserDb = new UserDb(),
  ) {}

  async attest(pid: number, _signal: AbortSignal): Promise<string[]> {
    const status = await this.proc.status(pid);
    const out: string[] = [`uid:${status.uid}`];
    const [user, group] = await Promise.all([this.users.userName(status.uid), this.users.groupName(status.gid)]);
    if (user !== undefined) out.push(`user:${user}`);
    out.push(`gid:${status.gid}`);
    if (group !== undefined) out.push(`group:${group}`);
    for (const g of status.groups) {
      out.push(`supplementary_gid:${g}`);
      const name = await this.users.groupName(g);
      if (name !== undefined) out.push(`supplementary_group:${name}`);
    }
    if (this.config.discoverWorkloadPath) {
      const path = await this.proc.exePath(pid);
      out.push(`path:${path}`);
      if (this.config.workloadSizeLimit >= 0) out.push(`sha256:${await this.sha256(pid)}`);
    }
    return out;
  }

  private async sha256(pid: number): Promise<string> {
    const fh = await this.proc.openExe(pid);
    try {
      const st = await fh.stat();
      const limit = this.config.workloadSizeLimit;
      if (limit > 0 && st.size > limit) {
        throw new WorkloadRefusedError(
          'workload_too_large',
          `unix: workload binary of pid ${pid} is ${st.size} bytes, over workload_size_limit ${limit}; raise workload_size_limit or set it to -1 to skip hashing`,
        );
      }
      const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
      const hit = this.hashes.get(key);
      if (hit) return hit.digest;
      const hash = createHash('sha256');
      for await (const chunk of fh.createReadStream({ autoClose: false, start: 0 })) hash.update(chunk as Buffer);
      const digest = hash.digest('hex');
      if (this.hashes.size >= UnixAttestor.HASH_CACHE_MAX) this.hashes.delete(this.hashes.keys().next().value!);
      this.hashes.set(key, { key, digest });
      return digest;
    } finally {
      await fh.close();
    }
  }
}
