/**
 * spire-agent's lru_cache_entry_{add,update,remove} counters and record map size: what each sync
 * changed in the agent's entries (by id; "update" is a new revision of an entry already held).
 */
import type { RegistrationEntry } from '../../domain/types.js';
import type { CounterHandle, Metrics } from '../../telemetry/metrics/index.js';

export interface EntryChangeCounters {
  readonly added: CounterHandle;
  readonly updated: CounterHandle;
  readonly removed: CounterHandle;
}

export function entryChangeCounters(metrics: Metrics): EntryChangeCounters {
  return {
    added: metrics.counter(['lru_cache_entry_add']),
    updated: metrics.counter(['lru_cache_entry_update']),
    removed: metrics.counter(['lru_cache_entry_remove']),
  };
}

export function countEntryChanges(before: readonly RegistrationEntry[], after: readonly RegistrationEntry[], c: EntryChangeCounters): void {
  const old = new Map(before.map((e) => [e.id, e.revisionNumber]));
  let added = 0;
  let updated = 0;
  for (const e of after) {
    const rev = old.get(e.id);
    if (rev === undefined) added++;
    else if (rev !== e.revisionNumber) updated++;
    old.delete(e.id);
  }
  if (added) c.added.inc(undefined, undefined, added);
  if (updated) c.updated.inc(undefined, undefined, updated);
  if (old.size) c.removed.inc(undefined, undefined, old.size);
}
