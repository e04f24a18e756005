/**
 * Shared set-up for the server-mode scenario files: which agents to run (both by default; the
 * reference spire-agent half proves the harness and the test logic), entries keyed to Unix uids,
 * and a cleanup list run in afterAll.
 */
import { AGENT_KINDS, planServerSuite, removeGoClientCopy, type AgentKind, type EntryInput } from '../../helpers/spire/index.js';

export const plan = planServerSuite();
export const TD = 'example.org';

/** SERVER_SUITE_AGENTS=spire-agent (or spiffe-agent) runs one half; default both. */
const selected = (process.env.SERVER_SUITE_AGENTS ?? '').split(',').filter(Boolean) as AgentKind[];
for (const k of selected) if (!AGENT_KINDS.includes(k)) throw new Error(`SERVER_SUITE_AGENTS: unknown agent "${k}" (use ${AGENT_KINDS.join(' or ')})`);
export const KINDS: AgentKind[] = selected.length ? selected : AGENT_KINDS;

export function id(path: string): string {
  return `spiffe://${TD}${path.startsWith('/') ? path : `/${path}`}`;
}

export function uidEntry(spiffeId: string, parentId: string, uid: number, extra: Partial<EntryInput> = {}): EntryInput {
  return { spiffe_id: spiffeId, parent_id: parentId, selectors: [{ type: 'unix', value: `uid:${uid}` }], ...extra };
}

/** Things to undo in afterAll, last first; one failing step does not stop the others. */
export class Cleanup {
  private fns: (() => Promise<unknown> | unknown)[] = [];
  add<T extends { destroy(): Promise<unknown> } | { close(): Promise<unknown> }>(thing: T): T {
    this.fns.push(() => ('destroy' in thing ? thing.destroy() : thing.close()));
    return thing;
  }
  defer(fn: () => Promise<unknown> | unknown): void {
    this.fns.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.fns.splice(0).reverse()) {
      try {
        await fn();
      } catch (e) {
        console.warn(`cleanup: ${e instanceof Error ? e.message : e}`);
      }
    }
    await removeGoClientCopy();
  }
}

/** A short unique tag for IDs made by one test (several tests share one server). */
let n = 0;
export function tag(kind: AgentKind, what: string): string {
  n += 1;
  return `${kind === 'spire-agent' ? 'ref' : 'ours'}-${what}-${n}`;
}
