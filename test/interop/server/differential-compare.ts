/**
 * The differential test's comparator and its allow-list, README.md's table "Differences from
 * spire-agent". Kept apart from the test so the test can check both on known inputs first: a
 * comparator that found nothing, or a table read as zero rows, would make every comparison pass.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../../helpers/spire/index.js';

export interface Difference {
  what: string;
  /** The path pattern in the differential test's output (`*` matches anything), or undefined for `—`. */
  pattern: string | undefined;
  reason: string;
  re: RegExp | undefined;
}

const SECTION = '## Differences from spire-agent';
export const TABLE_HEADER = ['What differs', 'Path in the differential test', 'Why'];
const NOT_OBSERVED = '—';

const cellsOf = (line: string): string[] => line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());

/**
 * Every row of the table. Throws when the section, the header or the rows are not what the test
 * expects (a renamed column, a broken separator, a row with a missing reason or an unreadable path
 * cell, or no row at all), so a table the parser cannot read fails instead of allowing nothing.
 */
export function readDifferences(readme = readFileSync(join(REPO, 'README.md'), 'utf8')): Difference[] {
  const start = readme.indexOf(`${SECTION}\n`);
  if (start < 0) throw new Error(`README.md has no "${SECTION}" section`);
  const lines = readme.slice(start).split(/\n## /)[0]!.split('\n');
  const at = lines.findIndex((l) => l.trim().startsWith('|'));
  const table: string[] = [];
  for (let i = at; i >= 0 && i < lines.length && lines[i]!.trim().startsWith('|'); i++) table.push(lines[i]!);
  const where = `README.md "${SECTION.slice(3)}"`;
  if (table.length === 0 || JSON.stringify(cellsOf(table[0]!)) !== JSON.stringify(TABLE_HEADER)) {
    throw new Error(`${where}: the table must start with the header | ${TABLE_HEADER.join(' | ')} |; found ${table[0] ?? 'no table'}`);
  }
  if (!table[1] || !cellsOf(table[1]).every((c) => /^:?-{3,}:?$/.test(c)) || cellsOf(table[1]).length !== 3) {
    throw new Error(`${where}: the header's separator row is missing or broken: ${table[1] ?? '(none)'}`);
  }
  const rows = table.slice(2).map((line): Difference => {
    const cells = cellsOf(line);
    if (cells.length !== 3) throw new Error(`${where}: a row needs 3 cells, found ${cells.length}: ${line}`);
    const [what, where2, reason] = cells as [string, string, string];
    if (reason.length < 10) throw new Error(`${where}: "${what}" needs a reason (third column)`);
    if (where2 === NOT_OBSERVED) return { what, pattern: undefined, reason, re: undefined };
    const m = /^`([^`]+)`$/.exec(where2);
    if (!m) throw new Error(`${where}: "${what}": the path column must be one \`path\` or ${NOT_OBSERVED}, found ${where2}`);
    return { what, pattern: m[1]!, reason, re: patternRe(m[1]!) };
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
