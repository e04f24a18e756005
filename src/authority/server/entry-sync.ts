/**
 * Fetching the entries the server authorizes this agent for, the two ways spire-agent v1.13.3
 * can (pkg/agent/client/client.go): SyncAuthorizedEntries (default), which pages entry
 * revisions when there are many and then asks in full only for entries that are new or changed,
 * and the older one-shot GetAuthorizedEntries (use_sync_authorized_entries = false).
 */
import type * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../clock.js';
import type { Logger } from '../../telemetry/logger.js';
import { F } from '../../telemetry/names.js';
import { ServerAuthorityError } from './authority-errors.js';
import { ENTRY_OUTPUT_MASK, entryFromProto, type EntryMessage, type SyncedEntry } from './convert.js';
import { BidiReader, SERVER_CALL_TIMEOUT_MS, unary } from './rpc.js';

interface RevisionMessage {
  id?: string;
  revision_number?: string | number;
  created_at?: string | number;
}

interface SyncResponse {
  entry_revisions?: RevisionMessage[];
  entries?: EntryMessage[];
  more?: boolean;
}

/** How long each answer of the server may take, and the clock that times it. */
export interface CallTiming {
  readonly clock: Clock;
  readonly callTimeoutMs?: number;
}

export interface SyncStats {
  readonly total: number;
  readonly missing: number;
  readonly stale: number;
  readonly dropped: number;
}

function stale(cached: SyncedEntry, revision: number, createdAt: number): boolean {
  if (cached.entry.revisionNumber !== revision) return true;
  // A recreated entry can reuse an id and a revision; created_at tells them apart (0 = the server does not say).
  return createdAt !== 0 && cached.entry.createdAt !== createdAt;
}

function addEntries(into: Map<string, SyncedEntry>, messages: readonly EntryMessage[], seen: Set<string>, log: Logger, stats: { missing: number; stale: number }): void {
  for (const m of messages) {
    let synced: SyncedEntry;
    try {
      synced = entryFromProto(m);
    } catch (err) {
      log.warn({ [F.entryId]: m.id ?? '', [F.error]: (err as Error).message }, 'Received malformed entry from SPIRE server; are the server and agent versions compatible?');
      continue;
    }
    const id = synced.entry.id;
    seen.add(id);
    const prev = into.get(id);
    if (!prev) stats.missing++;
    else if (stale(prev, synced.entry.revisionNumber, synced.entry.createdAt)) stats.stale++;
    into.set(id, synced);
  }
}

/**
 * Updates `cached` in place to the server's current set. On any error `cached` may hold some
 * fresh entries but nothing is removed, so a failed sync never withdraws an identity.
 */
export async function syncAuthorizedEntries(client: grpc.Client, cached: Map<string, SyncedEntry>, log: Logger, timing: CallTiming): Promise<SyncStats> {
  const seen = new Set<string>();
  const stats = { missing: 0, stale: 0 };
  const stream = new BidiReader<unknown, SyncResponse>(client, 'SyncAuthorizedEntries', { clock: timing.clock, answerMs: timing.callTimeoutMs });
  try {
    stream.send({ output_mask: ENTRY_OUTPUT_MASK });
    let resp = await stream.next();
    const revisions = resp.entry_revisions ?? [];
    if (revisions.length === 0) {
      // Few enough entries for one page: the first response is the whole list.
      addEntries(cached, resp.entries ?? [], seen, log, stats);
    } else {
      const pageSize = revisions.length;
      const needFull: string[] = [];
      const onRevisions = (revs: readonly RevisionMessage[]): void => {
        for (const r of revs) {
          const rev = Number(r.revision_number ?? 0);
          if (!r.id || rev < 0) {
            log.warn({ [F.entryId]: r.id ?? '' }, 'Received malformed entry revision from SPIRE server; are the server and agent versions compatible?');
            continue;
          }
          seen.add(r.id);
          const prev = cached.get(r.id);
          if (!prev || stale(prev, rev, Number(r.created_at ?? 0))) needFull.push(r.id);
        }
      };
      onRevisions(revisions);
      while (resp.more) {
        resp = await stream.next();
        if ((resp.entries ?? []).length > 0) throw new ServerAuthorityError('sync_protocol', 'server-authority: unexpected entry in response receiving entry revisions; are the server and agent versions compatible?');
        onRevisions(resp.entry_revisions ?? []);
      }
      // Sorted, as the server looks them up in order; one page per request, as spire-agent asks.
      needFull.sort();
      for (let i = 0; i < needFull.length; i += pageSize) {
        stream.send({ ids: needFull.slice(i, i + pageSize) });
        for (;;) {
          resp = await stream.next();
          if ((resp.entry_revisions ?? []).length > 0) throw new ServerAuthorityError('sync_protocol', 'server-authority: unexpected entry revisions in response while requesting entries; are the server and agent versions compatible?');
          addEntries(cached, resp.entries ?? [], seen, log, stats);
          if (!resp.more) break;
        }
      }
    }
  } finally {
    stream.close();
  }
  let dropped = 0;
  for (const id of [...cached.keys()]) {
    if (!seen.has(id)) {
      cached.delete(id);
      dropped++;
    }
  }
  return { total: cached.size, missing: stats.missing, stale: stats.stale, dropped };
}

/** GetAuthorizedEntries: the whole set in one response; replaces `cached` on success. */
export async function getAuthorizedEntries(client: grpc.Client, cached: Map<string, SyncedEntry>, log: Logger, timing: CallTiming): Promise<SyncStats> {
  const resp = await unary<{ entries?: EntryMessage[] }>(client, 'GetAuthorizedEntries', { output_mask: ENTRY_OUTPUT_MASK }, timing.callTimeoutMs ?? SERVER_CALL_TIMEOUT_MS);
  const next = new Map<string, SyncedEntry>();
  const stats = { missing: 0, stale: 0 };
  const seen = new Set<string>();
  for (const [id, e] of cached) next.set(id, e);
  addEntries(next, resp.entries ?? [], seen, log, stats);
  let dropped = 0;
  for (const id of [...next.keys()]) {
    if (!seen.has(id)) {
      next.delete(id);
      dropped++;
    }
  }
  cached.clear();
  for (const [id, e] of next) cached.set(id, e);
  return { total: cached.size, missing: stats.missing, stale: stats.stale, dropped };
}
