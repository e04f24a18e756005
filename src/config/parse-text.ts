/**
 * Text → plain object, HCL or JSON. spire-agent reads HCL1, and so does ./hcl1.ts, with the line of
 * every problem; JSON goes through our JSON parser (bounded nesting, errors with a line).
 */
import { scan } from './scan.js';
import { ConfigError } from './errors.js';
import { HclSyntaxError, parseHcl1 } from './hcl1.js';
import { JSONParseError, MAX_JSON_DEPTH, parseJSON } from '../parse/json.js';

/**
 * HCL nesting the parser and everything after it can take: each block becomes an array holding an
 * object, so this keeps what it returns within MAX_JSON_DEPTH.
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
  // Checked before the parser runs: it recurses, and so does our validation.
  const deep = tooDeepLine(src, MAX_HCL_DEPTH);
  if (deep !== undefined) {
    throw new ConfigError([{ file, line: deep, key: '', message: `nested deeper than ${MAX_HCL_DEPTH} levels; flatten the configuration` }], 'config_syntax');
  }
  try {
    return parseHcl1(src).value;
  } catch (err) {
    if (!(err instanceof HclSyntaxError)) throw err;
    throw new ConfigError([{ file, line: err.line, key: '', message: `syntax error: ${err.detail}` }], 'config_syntax', { cause: err });
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
