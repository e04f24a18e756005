/**
 * uid → user name and gid → group name from /etc/passwd and /etc/group, re-read
 * only when the file changes, so attestation does not parse them per call. Whether
 * a file changed is checked at most once per CHECK_MS, and concurrent attestations
 * share one check: a burst of connections would otherwise stat both files for each.
 */
import { stat } from 'node:fs/promises';
import { INPUT_LIMITS, readBoundedFile } from '../../../storage/bounded-file.js';

interface Table {
  mtimeMs: number;
  size: number;
  byId: Map<number, string>;
}

/** An edit to /etc/passwd or /etc/group is seen within this long. */
const CHECK_MS = 1000;

export class UserDb {
  private readonly tables = new Map<string, Table>();
  private readonly checks = new Map<string, { at: number; table: Promise<Table> }>();

  constructor(
    private readonly passwdPath = '/etc/passwd',
    private readonly groupPath = '/etc/group',
    private readonly now: () => number = () => performance.now(),
  ) {}

  async userName(uid: number): Promise<string | undefined> {
    return (await this.table(this.passwdPath)).byId.get(uid);
  }

  async groupName(gid: number): Promise<string | undefined> {
    return (await this.table(this.groupPath)).byId.get(gid);
  }

  private table(path: string): Promise<Table> {
    const t = this.now();
    const c = this.checks.get(path);
    if (c && t - c.at < CHECK_MS) return c.table;
    const table = this.load(path);
    this.checks.set(path, { at: t, table });
    return table;
  }

  private async load(path: string): Promise<Table> {
    let st;
    try {
      st = await stat(path);
    } catch {
      return { mtimeMs: 0, size: 0, byId: new Map() };
    }
    const cached = this.tables.get(path);
    if (cached && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return cached;
    let text: string;
    try {
      // Bounded: a huge or special file there (a FIFO, /dev/zero bind-mounted) must not hang or
      // exhaust the agent; names are then missing (no user:/group: selectors), as for a missing file.
      text = await readBoundedFile(path, { maxBytes: INPUT_LIMITS.userDb, what: 'user database' });
    } catch {
      return { mtimeMs: 0, size: 0, byId: new Map() };
    }
    const byId = new Map<number, string>();
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const [name, , id] = line.split(':');
      if (name && id && /^\d+$/.test(id) && !byId.has(Number(id))) byId.set(Number(id), name);
    }
    const t = { mtimeMs: st.mtimeMs, size: st.size, byId };
    this.tables.set(path, t);
    return t;
  }
}
