/**
 * Selector matching: a workload matches an entry when every one of the entry's
 * selectors is among the workload's. The index maps each selector to the entries
 * that use it, so a match touches only entries sharing at least one selector.
 */
import type { RegistrationEntry, Selector } from '../authority/types.js';

export function selectorKey(s: Selector): string {
  return `${s.type}:${s.value}`;
}

export function parseSelector(text: string): Selector {
  const i = text.indexOf(':');
  if (i <= 0 || i === text.length - 1) throw new Error(`selector "${text}" must be type:value`);
  return { type: text.slice(0, i), value: text.slice(i + 1) };
}

export class EntryIndex {
  private readonly bySelector = new Map<string, RegistrationEntry[]>();
  readonly entries: readonly RegistrationEntry[];

  constructor(entries: readonly RegistrationEntry[]) {
    this.entries = [...entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const e of this.entries) {
      for (const s of e.selectors) {
        const k = selectorKey(s);
        const list = this.bySelector.get(k);
        if (list) list.push(e);
        else this.bySelector.set(k, [e]);
      }
    }
  }

  /** Matching entries, sorted by entry id (SPIRE's order: the first is the default identity). */
  match(selectors: readonly Selector[]): RegistrationEntry[] {
    const have = new Set(selectors.map(selectorKey));
    const found = new Map<string, RegistrationEntry>();
    for (const k of have) {
      for (const e of this.bySelector.get(k) ?? []) {
        if (found.has(e.id)) continue;
        if (e.selectors.length > 0 && e.selectors.every((s) => have.has(selectorKey(s)))) found.set(e.id, e);
      }
    }
    return [...found.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  byId(id: string): RegistrationEntry | undefined {
    return this.entries.find((e) => e.id === id);
  }
}

/**
 * Non-empty hints must be unique in one response: keep the entry created first
 * (ties: lowest entry id), as SPIRE does. Input order is preserved otherwise.
 */
export function dedupeHints(entries: readonly RegistrationEntry[]): RegistrationEntry[] {
  const winner = new Map<string, RegistrationEntry>();
  for (const e of entries) {
    if (!e.hint) continue;
    const cur = winner.get(e.hint);
    if (!cur || e.createdAt < cur.createdAt || (e.createdAt === cur.createdAt && e.id < cur.id)) winner.set(e.hint, e);
  }
  return entries.filter((e) => !e.hint || winner.get(e.hint) === e);
}
