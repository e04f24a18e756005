import { createHash } from 'node:crypto';
import type { Selector } from '../types.js';
import { EmbeddedAuthorityError } from './errors.js';
import { JSONParseError, parseJSONSteps } from '../../parse/json.js';
import { runSteps, runStepsAsync, type Steps } from '../../parse/steps.js';
import { spiffeIdProblem, trustDomainOf, trustDomainProblem } from './spiffe-id.js';

/**
 * Registration entries as `spire-server entry create -data <file>` reads them:
 * {"entries":[{"spiffe_id", "parent_id", "selectors":[{"type","value"}], ...}]}.
 * Like SPIRE (protojson), both the proto names (snake_case) and the JSON names
 * (lowerCamelCase) are accepted. `ttl` is the legacy name of `x509_svid_ttl`.
 */
export interface EntryDefinition {
  /** Given in the file, or derived from the identity fields (stable across reloads). */
  id: string;
  spiffeId: string;
  parentId: string;
  selectors: Selector[];
  x509SvidTtl: number;
  jwtSvidTtl: number;
  dnsNames: string[];
  hint: string;
  federatesWith: string[];
  admin: boolean;
  downstream: boolean;
  jwtSvidIncludeJti: boolean;
  /** Unix seconds, 0 = never. */
  entryExpiry: number;
}

type Kind = 'spiffe_id' | 'string' | 'ttl' | 'bool' | 'strings' | 'selectors' | 'int64' | 'ignored';

/** Canonical field -> kind. */
const FIELDS: Record<string, Kind> = {
  entry_id: 'string',
  spiffe_id: 'spiffe_id',
  parent_id: 'spiffe_id',
  selectors: 'selectors',
  x509_svid_ttl: 'ttl',
  jwt_svid_ttl: 'ttl',
  ttl: 'ttl',
  dns_names: 'strings',
  hint: 'string',
  federates_with: 'strings',
  admin: 'bool',
  downstream: 'bool',
  jwt_svid_include_jti: 'bool',
  entry_expiry: 'int64',
  // Set by the server, not by the file's author; accepted so exported entries load.
  store_svid: 'ignored',
  revision_number: 'ignored',
  created_at: 'ignored',
};

const ALIASES: Record<string, string> = Object.fromEntries(
  Object.keys(FIELDS).map((k) => [k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()), k]),
);

const DNS_RE = /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const ENTRY_ID_RE = /^[\x21-\x7e]{1,255}$/;
const MAX_TTL = 2_147_483_647;
/** A message listing thousands of problems helps nobody; the count is still given. */
const MAX_REPORTED_PROBLEMS = 100;
/** Entries validated between two yields of the parse (see parse/steps.ts). */
const ENTRIES_PER_STEP = 64;

export interface EntriesFileProblem {
  path: string;
  line: number;
  message: string;
}

/**
 * What a broken file costs, which only the caller knows: at start there are no previous entries to
 * keep, so the agent does not start; a reload keeps the entries in use; `validate` only reports.
 */
export type EntriesFileOutcome = 'start' | 'reload' | 'check';

const OUTCOME: Record<EntriesFileOutcome, string> = {
  start: 'there are no previous entries to keep, so the agent does not start; fix the file',
  reload: 'fix the file; the previous entries stay in use',
  check: 'fix the file',
};

export class EntriesFileError extends EmbeddedAuthorityError {
  /** The first MAX_REPORTED_PROBLEMS problems; `total` counts them all. */
  readonly problems: EntriesFileProblem[];
  readonly total: number;

  constructor(
    readonly file: string,
    problems: EntriesFileProblem[],
    readonly outcome: EntriesFileOutcome = 'check',
    total = problems.length,
  ) {
    const shown = problems.slice(0, MAX_REPORTED_PROBLEMS);
    const lines = shown.map((p) => `  ${p.path || '(file)'}${p.line ? ` (line ${p.line})` : ''}: ${p.message}`);
    if (total > shown.length) lines.push(`  ... and ${total - shown.length} more`);
    super('entries_file', `entries-file: ${file}: ${total} problem(s); ${OUTCOME[outcome]}:\n${lines.join('\n')}`);
    this.problems = shown;
    this.total = total;
  }

  /** The same problems, saying what they cost where the caller is. */
  withOutcome(outcome: EntriesFileOutcome): EntriesFileError {
    return outcome === this.outcome ? this : new EntriesFileError(this.file, this.problems, outcome, this.total);
  }
}

/** Parse and validate; throws EntriesFileError listing every problem. */
export function parseEntriesFile(file: string, text: string, trustDomain: string): EntryDefinition[] {
  return runSteps(parseEntriesSteps(file, text, trustDomain));
}

/** The same, giving the event loop a turn every few milliseconds: for reloads in the running agent. */
export function parseEntriesFileAsync(file: string, text: string, trustDomain: string): Promise<EntryDefinition[]> {
  return runStepsAsync(parseEntriesSteps(file, text, trustDomain));
}

function* parseEntriesSteps(file: string, text: string, trustDomain: string): Steps<EntryDefinition[]> {
  let parsed;
  try {
    parsed = yield* parseJSONSteps(text);
  } catch (err) {
    if (!(err instanceof JSONParseError)) throw err;
    const message = err.reason === 'too_deep' ? err.message.replace(/^json: line \d+, column \d+: /, '') : `not valid JSON: ${err.message.replace(/^json: /, '')}`;
    throw new EntriesFileError(file, [{ path: '', line: err.line, message }]);
  }
  // Lines are found afterwards, for the few problems shown: keeping a line for every value would cost
  // memory and time on every valid file.
  const problems: EntriesFileProblem[] = [];
  const bad = (path: string, message: string): void => void problems.push({ path, line: 0, message });
  const fail = function* (): Steps<never> {
    const shown = problems.slice(0, MAX_REPORTED_PROBLEMS);
    const located = yield* parseJSONSteps(text, { locate: shown.map((p) => p.path) });
    for (const p of shown) p.line = located.lineOf(p.path);
    throw new EntriesFileError(file, problems);
  };
  for (const d of parsed.duplicates) bad(d, 'duplicate key');

  const root = parsed.value;
  if (!isObject(root)) {
    bad('', 'must be a JSON object with an "entries" array');
    return yield* fail();
  }
  for (const k of Object.keys(root)) if (k !== 'entries') bad(k, 'unknown key (expected only "entries")');
  const list = root['entries'];
  if (!Array.isArray(list)) {
    bad('entries', list === undefined ? 'is required' : 'must be an array');
    return yield* fail();
  }
  const out: EntryDefinition[] = [];
  const ids = new Map<string, number>();
  for (let i = 0; i < list.length; i++) {
    if (i % ENTRIES_PER_STEP === ENTRIES_PER_STEP - 1) yield;
    const base = `entries[${i}]`;
    const def = parseEntry(list[i], base, trustDomain, bad);
    if (!def) continue;
    const prev = ids.get(def.id);
    if (prev !== undefined) {
      bad(`${base}.entry_id`, `entry id "${def.id}" is the same as entries[${prev}] (same entry_id, or same spiffe_id, parent_id and selectors)`);
      continue;
    }
    ids.set(def.id, i);
    out.push(def);
  }
  if (problems.length > 0) return yield* fail();
  return out;
}

function parseEntry(
  raw: unknown,
  base: string,
  trustDomain: string,
  bad: (path: string, message: string) => void,
): EntryDefinition | undefined {
  if (!isObject(raw)) {
    bad(base, 'must be an object');
    return undefined;
  }
  let count = 0;
  const report = (path: string, message: string): void => {
    count++;
    bad(path, message);
  };
  const fields = new Map<string, { key: string; value: unknown }>();
  for (const [key, value] of Object.entries(raw)) {
    // hasOwn, not `in`: "constructor" or "__proto__" must be unknown keys, not Object.prototype members.
    const canon = Object.hasOwn(FIELDS, key) ? key : Object.hasOwn(ALIASES, key) ? ALIASES[key] : undefined;
    if (canon === undefined) {
      report(`${base}.${key}`, 'unknown key');
      continue;
    }
    if (fields.has(canon)) {
      report(`${base}.${key}`, `duplicates "${fields.get(canon)?.key ?? canon}"`);
      continue;
    }
    fields.set(canon, { key, value });
  }
  const pathOf = (canon: string): string => `${base}.${fields.get(canon)?.key ?? canon}`;
  const get = <T>(canon: string, kind: Kind, dflt: T): T => {
    const f = fields.get(canon);
    if (!f) return dflt;
    const v = checkKind(f.value, kind, pathOf(canon), report);
    return v === undefined ? dflt : (v as T);
  };

  const spiffeId = get('spiffe_id', 'spiffe_id', '');
  const parentId = get('parent_id', 'spiffe_id', '');
  if (!fields.has('spiffe_id')) report(`${base}.spiffe_id`, 'is required');
  if (!fields.has('parent_id')) report(`${base}.parent_id`, 'is required');
  if (spiffeId !== '') {
    if (trustDomainOf(spiffeId) !== trustDomain) report(pathOf('spiffe_id'), `must be in trust domain "${trustDomain}"`);
    else if (spiffeId === `spiffe://${trustDomain}`) report(pathOf('spiffe_id'), 'must have a path (a trust domain ID cannot be an SVID)');
  }
  const selectors = get<Selector[] | undefined>('selectors', 'selectors', undefined);
  if (!fields.has('selectors')) report(`${base}.selectors`, 'is required (at least one selector)');
  const x509Ttl = get('x509_svid_ttl', 'ttl', 0);
  const legacyTtl = get('ttl', 'ttl', 0);
  if (fields.has('ttl') && fields.has('x509_svid_ttl')) report(pathOf('ttl'), 'use either "ttl" or "x509_svid_ttl", not both');
  const dnsNames = get<string[]>('dns_names', 'strings', []);
  dnsNames.forEach((d, j) => {
    if (d.length > 253 || !DNS_RE.test(d)) report(`${pathOf('dns_names')}[${j}]`, `"${d}" is not a valid DNS name`);
  });
  const federatesWith = get<string[]>('federates_with', 'strings', []).map((td, j) => {
    const name = td.startsWith('spiffe://') ? td.slice('spiffe://'.length) : td;
    const problem = trustDomainProblem(name);
    if (problem) report(`${pathOf('federates_with')}[${j}]`, `"${td}": ${problem}`);
    else if (name === trustDomain) report(`${pathOf('federates_with')}[${j}]`, 'cannot federate with its own trust domain');
    return name;
  });
  const givenId = get<string>('entry_id', 'string', '');
  if (fields.has('entry_id') && !ENTRY_ID_RE.test(givenId)) report(pathOf('entry_id'), 'must be 1-255 printable ASCII characters without spaces');
  const def: EntryDefinition = {
    id: '',
    spiffeId,
    parentId,
    selectors: selectors ?? [],
    x509SvidTtl: fields.has('x509_svid_ttl') ? x509Ttl : legacyTtl,
    jwtSvidTtl: get('jwt_svid_ttl', 'ttl', 0),
    dnsNames,
    hint: get('hint', 'string', ''),
    federatesWith,
    admin: get('admin', 'bool', false),
    downstream: get('downstream', 'bool', false),
    jwtSvidIncludeJti: get('jwt_svid_include_jti', 'bool', false),
    entryExpiry: get('entry_expiry', 'int64', 0),
  };
  for (const k of ['store_svid', 'revision_number', 'created_at']) if (fields.has(k)) get(k, 'ignored', undefined);
  if (count > 0) return undefined;
  def.id = givenId !== '' ? givenId : deriveEntryId(def);
  return def;
}

function checkKind(v: unknown, kind: Kind, path: string, report: (path: string, message: string) => void): unknown {
  switch (kind) {
    case 'ignored':
      return undefined;
    case 'spiffe_id': {
      if (typeof v !== 'string') return void report(path, 'must be a string');
      const problem = spiffeIdProblem(v);
      if (problem) return void report(path, `"${v}" is not a valid SPIFFE ID: ${problem}`);
      return v;
    }
    case 'string':
      return typeof v === 'string' ? v : void report(path, 'must be a string');
    case 'bool':
      return typeof v === 'boolean' ? v : void report(path, 'must be true or false');
    case 'ttl':
    case 'int64':
      if (typeof v !== 'number' || !Number.isInteger(v)) return void report(path, 'must be an integer (seconds)');
      if (v < 0) return void report(path, 'must not be negative');
      if (kind === 'ttl' && v > MAX_TTL) return void report(path, `must be at most ${MAX_TTL}`);
      return v;
    case 'strings':
      if (!Array.isArray(v)) return void report(path, 'must be an array of strings');
      if (!v.every((s, j) => (typeof s === 'string' && s !== '') || void report(`${path}[${j}]`, 'must be a non-empty string'))) return undefined;
      return v as string[];
    case 'selectors':
      return checkSelectors(v, path, report);
  }
}

function checkSelectors(v: unknown, path: string, report: (path: string, message: string) => void): Selector[] | undefined {
  if (!Array.isArray(v)) return void report(path, 'must be an array of {"type","value"} objects');
  if (v.length === 0) return void report(path, 'must have at least one selector');
  const out: Selector[] = [];
  let ok = true;
  v.forEach((s, j) => {
    const p = `${path}[${j}]`;
    if (!isObject(s)) {
      ok = false;
      return report(p, 'must be an object {"type","value"}');
    }
    for (const k of Object.keys(s)) {
      if (k !== 'type' && k !== 'value') {
        ok = false;
        report(`${p}.${k}`, 'unknown key (expected "type" and "value")');
      }
    }
    const type = s['type'];
    const value = s['value'];
    if (typeof type !== 'string' || type === '') {
      ok = false;
      report(`${p}.type`, type === undefined ? 'is required' : 'must be a non-empty string');
    } else if (type.includes(':')) {
      ok = false;
      report(`${p}.type`, `"${type}" must not contain ":" (write {"type":"unix","value":"uid:1000"})`);
    }
    if (typeof value !== 'string' || value === '') {
      ok = false;
      report(`${p}.value`, value === undefined ? 'is required' : 'must be a non-empty string');
    }
    if (typeof type === 'string' && typeof value === 'string') out.push({ type, value });
  });
  return ok ? out : undefined;
}

/**
 * A UUID-shaped id from what identifies an entry for SPIRE (spiffe_id, parent_id and
 * the selector set), so an entry keeps its id across reloads and restarts.
 */
export function deriveEntryId(e: { spiffeId: string; parentId: string; selectors: readonly Selector[] }): string {
  const sel = e.selectors.map((s) => `${s.type}:${s.value}`).sort();
  const h = createHash('sha256').update(JSON.stringify([e.spiffeId, e.parentId, sel])).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
