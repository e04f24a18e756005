/**
 * The differential test's comparator and its allow-list, README.md's table "Differences from
 * spire-agent". Kept apart from the test so the test can check both on known inputs first: a
 * comparator that found nothing, or a table read as zero rows, would make every comparison pass.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../../helpers/spire/index.js';

export interface Difference {
  /** The row's stable key (first column): what the test names when it allows a difference. */
  key: string;
  what: string;
  spire: string;
  ours: string;
  /** The path pattern in the differential test's output (`*` matches anything), or undefined for `—`. */
  pattern: string | undefined;
  reason: string;
  re: RegExp | undefined;
}

const SECTION = '## Differences from spire-agent';
export const TABLE_HEADER = ['Key', 'Behaviour', 'spire-agent v1.13.3', 'spiffe-agent', 'Why', 'Path in the differential test'];
const NOT_OBSERVED = '—';
const KEY = /^`([a-z0-9]+(?:-[a-z0-9]+)*)`$/;

/** Cells of a table row; a `|` inside backticks (a path pattern, a regex) is not a separator. */
const cellsOf = (line: string): string[] => {
  const body = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  const cells: string[] = [];
  let cur = '';
  let code = false;
  for (const ch of body) {
    if (ch === '`') code = !code;
    if (ch === '|' && !code) {
      cells.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  cells.push(cur.trim());
  return cells;
};

/**
 * Every row of the table. Throws when the section, the header or the rows are not what the test
 * expects (a renamed column, a broken separator, a row with a missing or repeated key, an empty
 * cell, an unreadable path cell, or no row at all), so a table the parser cannot read fails instead
 * of allowing nothing.
 */
export function readDifferences(readme = readFileSync(join(REPO, 'README.md'), 'utf8')): Difference[] {
  const start = readme.indexOf(`${SECTION}\n`);
  if (start < 0) throw new Error(`README.md has no "${SECTION}" section`);
  const lines = readme.slice(start).split(/\n## /)[0]!.split('\n');
  const at = lines.findIndex((l) => l.trim().startsWith('|'));
  const table: string[] = [];
  for (let i = at; i >= 0 && i < lines.length && lines[i]!.trim().startsWith('|'); i++) table.push(lines[i]!);
  const where = `README.md "${SECTION.slice(3)}"`;
  const n = TABLE_HEADER.length;
  if (table.length === 0 || JSON.stringify(cellsOf(table[0]!)) !== JSON.stringify(TABLE_HEADER)) {
    throw new Error(`${where}: the table must start with the header | ${TABLE_HEADER.join(' | ')} |; found ${table[0] ?? 'no table'}`);
  }
  if (!table[1] || !cellsOf(table[1]).every((c) => /^:?-{3,}:?$/.test(c)) || cellsOf(table[1]).length !== n) {
    throw new Error(`${where}: the header's separator row is missing or broken: ${table[1] ?? '(none)'}`);
  }
  const seen = new Set<string>();
  const rows = table.slice(2).map((line): Difference => {
    const cells = cellsOf(line);
    if (cells.length !== n) throw new Error(`${where}: a row needs ${n} cells, found ${cells.length}: ${line}`);
    const [keyCell, what, spire, ours, reason, path] = cells as [string, string, string, string, string, string];
    const key = KEY.exec(keyCell)?.[1];
    if (!key) throw new Error(`${where}: "${what}": the key column must be one \`kebab-case-key\`, found ${keyCell || '(empty)'}`);
    if (seen.has(key)) throw new Error(`${where}: the key ${key} is used by two rows; keys are unique`);
    seen.add(key);
    for (const [name, cell] of [['behaviour', what], ['spire-agent v1.13.3', spire], ['spiffe-agent', ours]] as const) {
      if (!cell) throw new Error(`${where}: ${key}: the ${name} column is empty`);
    }
    if (reason.length < 10) throw new Error(`${where}: ${key} needs a reason (Why column)`);
    if (path === NOT_OBSERVED) return { key, what, spire, ours, pattern: undefined, reason, re: undefined };
    const m = /^`([^`]+)`$/.exec(path);
    if (!m) throw new Error(`${where}: ${key}: the path column must be one \`path\` or ${NOT_OBSERVED}, found ${path}`);
    return { key, what, spire, ours, pattern: m[1]!, reason, re: patternRe(m[1]!) };
  });
  if (rows.length === 0) throw new Error(`${where}: the table has no rows; the parser read nothing`);
  return rows;
}

/** `x509Svids[*].hint` → a RegExp over whole paths; `*` matches any run of characters. */
export function patternRe(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+?^${}()|\\[\]]/g, '\\$&').replace(/\*/g, '[^]*?')}$`);
}

/** The rows the differential test observes: their paths are allowed to differ. */
export function readAllowList(readme?: string): (Difference & { pattern: string; re: RegExp })[] {
  return readDifferences(readme).filter((d): d is Difference & { pattern: string; re: RegExp } => d.re !== undefined);
}

/** Splits differences into those a row allows (with the row's key) and those no row lists. */
export function explain(found: FieldDiff[], allow: ReturnType<typeof readAllowList>): { allowed: (FieldDiff & { key: string })[]; unlisted: FieldDiff[] } {
  const allowed: (FieldDiff & { key: string })[] = [];
  const unlisted: FieldDiff[] = [];
  for (const d of found) {
    const row = allow.find((r) => r.re.test(d.path));
    if (row) allowed.push({ ...d, key: row.key });
    else unlisted.push(d);
  }
  return { allowed, unlisted };
}

/** JSON → "a.b[0].c" → scalar as JSON text. Empty arrays and objects are leaves ("[]", "{}"). */
export function flatten(v: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(v)) {
    if (v.length === 0) out.set(prefix, '[]');
    v.forEach((x, i) => flatten(x, `${prefix}[${i}]`, out));
  } else if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v as object).sort();
    if (keys.length === 0) out.set(prefix, '{}');
    for (const k of keys) flatten((v as Record<string, unknown>)[k], prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix, JSON.stringify(v));
  }
  return out;
}

export interface FieldDiff {
  path: string;
  ref: string;
  ours: string;
}

/** Every leaf path of either side whose value differs; missing on one side shows as "<absent>". */
export function diff(a: unknown, b: unknown): FieldDiff[] {
  const fa = flatten(a);
  const fb = flatten(b);
  const out: FieldDiff[] = [];
  for (const path of new Set([...fa.keys(), ...fb.keys()])) {
    const x = fa.get(path) ?? '<absent>';
    const y = fb.get(path) ?? '<absent>';
    if (x !== y) out.push({ path, ref: x, ours: y });
  }
  return out.sort((p, q) => p.path.localeCompare(q.path));
}
