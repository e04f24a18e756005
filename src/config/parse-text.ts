/**
 * Text → plain object, HCL or JSON. spire-agent reads HCL1, and so does ./hcl1.ts, with the line of
 * every problem; JSON goes through JSON.parse.
 */
import { ConfigError } from './errors.js';
import { HclSyntaxError, parseHcl1 } from './hcl1.js';

export async function parseHclText(src: string, file: string): Promise<Record<string, unknown>> {
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
