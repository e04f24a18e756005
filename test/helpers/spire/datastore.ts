/**
 * Writes into a real spire-server's sqlite3 datastore what its API refuses to create, so the real
 * server serves it. spire-server v1.13.3 validates entries when they are created or updated
 * (pkg/server/api/entry.go, ProtoToRegistrationEntryWithMask: empty selector list, ':' in a
 * selector type, empty selector type or value, a SPIFFE ID outside its trust domain) but not
 * when it reads them back (RegistrationEntryToProto checks only that the SPIFFE ID, parent ID and
 * federated trust domains parse). Rows like these reach a real server from another writer of
 * the same database (an older or newer server version, a restore, a manual fix), which is why
 * spire-agent checks every entry it receives (pkg/agent/client/util.go).
 *
 * What the server then serves depends on its entry cache, so a test restarts it after writing:
 * - `events_based_cache = true` loads every row at start (pkg/server/endpoints/
 *   authorized_entryfetcher_registration_entries.go, loadCache) and serves all of them; rows
 *   written here make no entry event, so a running server would not notice them;
 * - the default full cache is rebuilt every cache_reload_interval but skips entries whose SPIFFE
 *   ID is outside the trust domain (pkg/server/cache/entrycache/fullcache.go, Build).
 * Neither serves a row without an entry ID: the datastore skips those when it lists entries
 * (pkg/server/datastore/sqlstore/sqlstore.go, rowsToCommonRegistrationEntries).
 */
import { join } from 'node:path';
import { run } from './proc.js';
import type { SpireServer } from './server.js';

export function datastorePath(server: SpireServer): string {
  return join(server.dir, 'data', 'datastore.sqlite3');
}

/** Runs SQL on the server's datastore with the sqlite3 CLI; throws with its output on failure. */
export async function datastoreExec(server: SpireServer, sql: string): Promise<string> {
  const r = await run('sqlite3', ['-bail', '-cmd', '.timeout 10000', datastorePath(server), sql], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`sqlite3 on ${datastorePath(server)} failed (exit ${r.code}): ${r.stderr || r.stdout}\nSQL: ${sql}`);
  return r.stdout;
}

const quote = (s: string): string => `'${s.replaceAll("'", "''")}'`;
const rowOf = (entryId: string): string => `(SELECT id FROM registered_entries WHERE entry_id = ${quote(entryId)})`;

/** Malformed shapes spire-agent drops (with the reason it logs) and that only a datastore write can produce. */
export type DatastoreDamage =
  | { kind: 'no-selectors' }
  | { kind: 'selector-type'; type: string }
  | { kind: 'selector-value'; value: string }
  | { kind: 'spiffe-id'; spiffeId: string };

/** Changes one entry (by entry ID) in place; throws when no row changed. */
export async function damageEntry(server: SpireServer, entryId: string, damage: DatastoreDamage): Promise<void> {
  let sql: string;
  switch (damage.kind) {
    case 'no-selectors':
      sql = `DELETE FROM selectors WHERE registered_entry_id = ${rowOf(entryId)}`;
      break;
    case 'selector-type':
      sql = `UPDATE selectors SET type = ${quote(damage.type)} WHERE registered_entry_id = ${rowOf(entryId)}`;
      break;
    case 'selector-value':
      sql = `UPDATE selectors SET value = ${quote(damage.value)} WHERE registered_entry_id = ${rowOf(entryId)}`;
      break;
    case 'spiffe-id':
      sql = `UPDATE registered_entries SET spiffe_id = ${quote(damage.spiffeId)} WHERE entry_id = ${quote(entryId)}`;
      break;
  }
  const changed = Number((await datastoreExec(server, `${sql}; SELECT changes();`)).trim());
  if (!(changed > 0)) throw new Error(`datastore: ${damage.kind} changed no row for entry ${entryId}`);
}

