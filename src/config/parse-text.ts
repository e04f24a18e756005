/**
 * Text → plain object, HCL or JSON. spire-agent reads HCL1; hcl2json speaks HCL2, which rejects two
 * HCL1 forms common in spire configs: nested blocks on one line (`KeyManager "memory" { plugin_data {} }`)
 * and quoted block types (`"NodeAttestor" "x509pop" {`). We rewrite those before parsing and keep a
 * line map so that syntax errors still point at the user's line.
 */
import { parseHclIsolated as parseHcl2 } from './hcl-isolated.js';
import { scan } from './scan.js';
import { ConfigError, type ConfigProblem } from './errors.js';

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

export async function parseHclText(src: string, file: string): Promise<Record<string, unknown>> {
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
    value = JSON.parse(src);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const pos = /position (\d+)/.exec(msg);
    const lineCol = /line (\d+)/.exec(msg);
    const line = lineCol ? Number(lineCol[1]) : pos ? src.slice(0, Number(pos[1])).split('\n').length : undefined;
    throw new ConfigError([{ file, ...(line === undefined ? {} : { line }), key: '', message: `syntax error: ${msg}` }], 'config_syntax', {
      cause: err,
    });
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
