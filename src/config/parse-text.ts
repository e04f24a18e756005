/**
 * Text → plain object, HCL or JSON. spire-agent reads HCL1; hcl2json speaks HCL2, which rejects two
 * HCL1 forms common in spire configs: nested blocks on one line (`KeyManager "memory" { plugin_data {} }`)
 * and quoted block types (`"NodeAttestor" "x509pop" {`). We rewrite those before parsing and keep a
 * line map so that syntax errors still point at the user's line.
 */
import { parseHclIsolated as parseHcl2 } from './hcl-isolated.js';
import { scan } from './scan.js';
import { ConfigError, type ConfigProblem } from './errors.js';
import { JSONParseError, MAX_JSON_DEPTH, parseJSON } from '../parse/json.js';

const IDENT = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export interface Hcl1Rewrite {
  readonly text: string;
  /** Line in the original text for a line of the rewritten text. */
  originalLine(line: number): number;
}

export function rewriteHcl1(src: string): Hcl1Rewrite {
  const toks = scan(src);
  const inserts: { at: number; text: string }[] = [];
  const replaces: { start: number; end: number; text: string }[] = [];
  let statementStart = true;
  // Block bodies take bare names only; object constructors (`x = { "a" = 1 }`) keep their quotes.
  const bodies: ('block' | 'object')[] = [];
  let prevSignificant: string | undefined;
  for (let k = 0; k < toks.length; k++) {
    const t = toks[k]!;
    const next = toks[k + 1];
    const inBlock = bodies.length === 0 || bodies[bodies.length - 1] === 'block';
    if (t.kind === 'string' && statementStart && inBlock && next && next.line === t.line && IDENT.test(t.text)) {
      if (next.kind === 'string' || next.kind === 'word' || (next.kind === 'punct' && (next.text === '{' || next.text === '='))) {
        replaces.push({ start: t.start, end: t.end, text: t.text });
      }
    }
    if (t.kind === 'punct' && t.text === '{') bodies.push(prevSignificant !== undefined && '=:[,('.includes(prevSignificant) ? 'object' : 'block');
    if (t.kind === 'punct' && t.text === '}') bodies.pop();
    if (t.kind !== 'newline') prevSignificant = t.kind === 'punct' ? t.text : 'value';
    if (t.kind === 'punct' && t.text === '{' && next && next.kind !== 'newline') inserts.push({ at: t.end, text: '\n' });
    if (t.kind === 'punct' && t.text === '}') {
      const prev = toks[k - 1];
      if (prev && prev.kind !== 'newline' && prev.line === t.line) inserts.push({ at: t.start, text: '\n' });
    }
    statementStart = t.kind === 'newline' || (t.kind === 'punct' && (t.text === '{' || t.text === '}'));
  }
  const edits = [...inserts.map((e) => ({ start: e.at, end: e.at, text: e.text })), ...replaces].sort((a, b) => a.start - b.start);
  let text = '';
  const lineMap = [1];
  let origLine = 1;
  let from = 0;
  const copy = (chunk: string) => {
    for (const ch of chunk) if (ch === '\n') lineMap.push(++origLine);
    text += chunk;
  };
  for (const e of edits) {
    copy(src.slice(from, e.start));
    if (e.text === '\n') {
      lineMap.push(origLine);
      text += '\n';
    } else text += e.text;
    from = e.end;
  }
  copy(src.slice(from));
  return { text, originalLine: (line) => lineMap[line - 1] ?? line };
}

const HCL_NAME = 'agentconf';
const HCL_ERROR = new RegExp(`${HCL_NAME}:(\\d+),\\d+(?:-[\\d,]+)?: (.*?)(?=\\s*${HCL_NAME}:\\d|\\]?$)`, 'gs');

/**
 * HCL nesting the parser and everything after it can take: hcl2json turns each block into an array
 * holding an object, so this keeps the JSON it returns within MAX_JSON_DEPTH.
 */
export const MAX_HCL_DEPTH = MAX_JSON_DEPTH / 2 - 1;

/** Brackets, braces and parentheses outside strings and comments; the first line deeper than `max`. */
function tooDeepLine(src: string, max: number): number | undefined {
  let depth = 0;
  for (const t of scan(src)) {
    if (t.kind !== 'punct') continue;
    if (t.text === '{' || t.text === '[' || t.text === '(') {
      if (++depth > max) return t.line;
    } else if (t.text === '}' || t.text === ']' || t.text === ')') depth = Math.max(0, depth - 1);
  }
  return undefined;
}

export async function parseHclText(src: string, file: string): Promise<Record<string, unknown>> {
  // Checked before the parser runs: its Go and JS sides recurse, and so does our validation.
  const deep = tooDeepLine(src, MAX_HCL_DEPTH);
  if (deep !== undefined) {
    throw new ConfigError([{ file, line: deep, key: '', message: `nested deeper than ${MAX_HCL_DEPTH} levels; flatten the configuration` }], 'config_syntax');
  }
  const rw = rewriteHcl1(src);
  try {
    return (await parseHcl2(HCL_NAME, rw.text)) as Record<string, unknown>;
  } catch (err) {
    const raw = err instanceof Error ? err.message : String(err);
    const problems: ConfigProblem[] = [];
    for (const m of raw.matchAll(HCL_ERROR)) {
      problems.push({ file, line: rw.originalLine(Number(m[1])), key: '', message: `syntax error: ${m[2]!.trim()}` });
    }
    if (problems.length === 0) problems.push({ file, key: '', message: `syntax error: ${raw.replace(/^parse config: /, '')}` });
    throw new ConfigError(problems, 'config_syntax', { cause: err });
  }
}

export function parseJsonText(src: string, file: string): Record<string, unknown> {
  let value: unknown;
  try {
    // Our parser rather than JSON.parse: nesting is bounded (deep values would overflow the stack of
    // whatever walks them later) and errors carry a line.
    value = parseJSON(src).value;
  } catch (err) {
    if (!(err instanceof JSONParseError)) throw err;
    const message = err.reason === 'too_deep' ? `nested deeper than ${MAX_JSON_DEPTH} levels; flatten the configuration` : `syntax error: ${err.message.replace(/^json: line \d+, /, '')}`;
    throw new ConfigError([{ file, line: err.line, key: '', message }], 'config_syntax', { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError([{ file, line: 1, key: '', message: 'syntax error: expected a JSON object at the top level' }], 'config_syntax');
  }
  return value as Record<string, unknown>;
}

export function isJsonFile(file: string): boolean {
  return file.toLowerCase().endsWith('.json');
}

export async function parseText(src: string, file: string): Promise<Record<string, unknown>> {
  return isJsonFile(file) ? parseJsonText(src, file) : parseHclText(src, file);
}
