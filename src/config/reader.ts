/**
 * Typed reads from a parsed (untrusted) object with problem collection: every read either returns a
 * valid value or records a problem under its dotted key and returns the default, so one pass finds
 * every mistake. Shared by agent.conf validation and by plugins reading their plugin_data.
 */
import { parseGoDuration } from '../duration.js';
import type { ConfigProblem } from './errors.js';
import type { KeyLocator } from './locate.js';

export class ProblemList {
  readonly items: ConfigProblem[] = [];

  constructor(
    readonly file: string,
    private readonly locator?: KeyLocator,
  ) {}

  lineOf(key: string): number | undefined {
    return this.locator?.line(key);
  }

  add(key: string, message: string, at?: { file?: string; line?: number }): void {
    const file = at?.file ?? this.file;
    const line = at?.line ?? (file === this.file ? this.locator?.line(key) : undefined);
    this.items.push(line === undefined ? { file, key, message } : { file, line, key, message });
  }
}

export type Raw = Record<string, unknown>;

export function isPlainObject(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function describe(v: unknown): string {
  if (Array.isArray(v)) return v.every(isPlainObject) && v.length > 0 ? 'a block' : `a list ${short(v)}`;
  if (isPlainObject(v)) return 'a block';
  if (typeof v === 'number') return `the number ${v}`;
  if (typeof v === 'boolean') return `the boolean ${v}`;
  if (v === null) return 'null';
  return short(v);
}

function short(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

const MAX_SUGGEST_LENGTH = 64;
/** "Did you mean" hints per block: enough for typos, bounded for a file of thousands of unknown keys. */
const MAX_SUGGESTIONS = 20;

/** Levenshtein distance, for "did you mean" hints on misspelt keys. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

export function suggest(key: string, known: Iterable<string>): string | undefined {
  // Levenshtein is quadratic in the key's length; a hint for a 1 MB key helps nobody.
  if (key.length > MAX_SUGGEST_LENGTH) return undefined;
  const limit = Math.max(2, Math.floor(key.length / 4));
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    // The distance is at least the difference in length: most known keys are ruled out without computing it.
    if (Math.abs(k.length - key.length) > limit) continue;
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best !== undefined && bestD <= limit ? best : undefined;
}

/**
 * A block written as `name { ... }` comes out of hcl1.ts as `[{...}]`; in JSON it is usually `{...}`.
 * Returns the object, merging repeats and reporting them.
 */
export function unwrapBlock(v: unknown, key: string, problems: ProblemList, opts: { repeatable?: boolean } = {}): Raw | undefined {
  if (isPlainObject(v)) return v;
  if (Array.isArray(v) && v.every(isPlainObject)) {
    if (v.length > 1 && !opts.repeatable) problems.add(key, `declared ${v.length} times; declare it once`);
    return Object.assign({}, ...v) as Raw;
  }
  problems.add(key, `expected a block like ${key.split('.').pop()} { ... }, got ${describe(v)}`);
  return undefined;
}

export class ObjectReader {
  private readonly used = new Set<string>();

  constructor(
    readonly obj: Raw,
    /** Dotted prefix of this object, "" at the top. */
    readonly path: string,
    readonly problems: ProblemList,
  ) {}

  key(name: string): string {
    return this.path ? `${this.path}.${name}` : name;
  }

  has(name: string): boolean {
    return this.obj[name] !== undefined;
  }

  /** Marks keys as accepted without reading them (spire-agent keys we do not act on). */
  ignore(...names: string[]): void {
    for (const n of names) this.used.add(n);
  }

  raw(name: string): unknown {
    this.used.add(name);
    return this.obj[name];
  }

  private fail(name: string, expected: string, got: unknown): void {
    this.problems.add(this.key(name), `expected ${expected}, got ${describe(got)}`);
  }

  bool(name: string, def: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined) return def;
    if (typeof v === 'boolean') return v;
    this.fail(name, 'true or false', v);
    return def;
  }

  optionalBool(name: string): boolean | undefined {
    return this.has(name) ? this.bool(name, false) : (this.raw(name), undefined);
  }

  int(name: string, def: number, opts: { min?: number; max?: number } = {}): number {
    const v = this.raw(name);
    if (v === undefined) return def;
    // HCL1 (spire-agent) decodes "8081" into an int field; so do we.
    const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v.trim()) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
      this.fail(name, 'an integer', v);
      return def;
    }
    if (opts.min !== undefined && n < opts.min) {
      this.problems.add(this.key(name), `must be at least ${opts.min}, got ${n}`);
      return def;
    }
    if (opts.max !== undefined && n > opts.max) {
      this.problems.add(this.key(name), `must be at most ${opts.max}, got ${n}`);
      return def;
    }
    return n;
  }

  string(name: string, def: string): string {
    return this.optionalString(name) ?? def;
  }

  optionalString(name: string): string | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (typeof v === 'string') return v;
    // HCL1 decodes numbers into string fields (health_checks.bind_port = 8080).
    if (typeof v === 'number') return String(v);
    this.fail(name, 'a string', v);
    return undefined;
  }

  enum<T extends string>(name: string, allowed: readonly T[], def: T, opts: { caseInsensitive?: boolean; aliases?: Record<string, T> } = {}): T {
    const s = this.optionalString(name);
    if (s === undefined) return def;
    const probe = opts.caseInsensitive ? s.toLowerCase() : s;
    const hit = allowed.find((a) => (opts.caseInsensitive ? a.toLowerCase() : a) === probe) ?? opts.aliases?.[probe];
    if (hit !== undefined) return hit;
    this.problems.add(this.key(name), `expected one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(s)}`);
    return def;
  }

  /** A Go duration string ("90s", "1h30m"), in milliseconds. A bare 0 is accepted, as Go accepts "0". */
  duration(name: string, def: string): number {
    return this.optionalDuration(name) ?? parseGoDuration(def)!;
  }

  optionalDuration(name: string): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (v === 0) return 0;
    const ms = typeof v === 'string' ? parseGoDuration(v.trim()) : undefined;
    if (ms !== undefined) return ms;
    const hint = typeof v === 'number' ? ' (a number needs a unit: write it as a string like "5s")' : '';
    this.problems.add(this.key(name), `expected a duration like "5s", got ${describe(v)}${hint}`);
    return undefined;
  }

  stringList(name: string, def: readonly string[]): string[] {
    const v = this.raw(name);
    if (v === undefined) return [...def];
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return [...(v as string[])];
    this.fail(name, 'a list of strings like ["a", "b"]', v);
    return [...def];
  }

  /** A string or a list of strings (HCL1 accepts both for list fields of one element). */
  stringOrList(name: string, def: readonly string[]): string[] {
    const v = this.obj[name];
    if (typeof v === 'string') return (this.raw(name), [v]);
    return this.stringList(name, def);
  }

  stringMap(name: string): Record<string, string> {
    const v = this.raw(name);
    if (v === undefined) return {};
    const obj = Array.isArray(v) && v.length === 1 && isPlainObject(v[0]) ? v[0] : v;
    if (!isPlainObject(obj)) {
      this.fail(name, 'a map like { "name" = "value" }', v);
      return {};
    }
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(obj)) {
      if (typeof val === 'string') out[k] = val;
      else this.problems.add(`${this.key(name)}.${k}`, `expected a string, got ${describe(val)}`);
    }
    return out;
  }

  block(name: string): ObjectReader | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    const obj = unwrapBlock(v, this.key(name), this.problems);
    return obj ? new ObjectReader(obj, this.key(name), this.problems) : undefined;
  }

  /** Reports every key nobody read, with a spelling hint. */
  finish(): void {
    let hints = 0;
    for (const k of Object.keys(this.obj)) {
      if (this.used.has(k)) continue;
      const near = hints++ < MAX_SUGGESTIONS ? suggest(k, this.used) : undefined;
      this.problems.add(this.key(k), `unknown key${near ? `; did you mean "${near}"?` : ' (check the spelling, or remove it)'}`);
    }
  }
}
