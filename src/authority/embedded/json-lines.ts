/**
 * JSON.parse plus the line each value starts on, keyed by dotted path
 * ("entries[2].selectors[0].type"), so validation errors can point into the file.
 * Also reports duplicate object keys, which JSON.parse silently collapses.
 */
import { SpiffeAgentError } from '../../errors.js';

export interface ParsedJSON {
  value: unknown;
  lines: Map<string, number>;
  duplicates: string[];
}

export class JSONSyntaxError extends SpiffeAgentError<'json_syntax'> {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super('json_syntax', message);
  }
}

export function parseJSONWithLines(text: string): ParsedJSON {
  // JSON.parse is the authority on validity; the scanner below only maps positions.
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const m = /position (\d+)/.exec((err as Error).message);
    const line = m ? lineAt(text, Number(m[1])) : 0;
    throw new JSONSyntaxError((err as Error).message, line);
  }
  const lines = new Map<string, number>();
  const duplicates: string[] = [];
  let i = 0;
  const ws = (): void => {
    while (i < text.length && /\s/.test(text[i] ?? '')) i++;
  };
  const str = (): string => {
    const start = i;
    i++; // opening quote
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const val = (path: string): void => {
    ws();
    lines.set(path, lineAt(text, i));
    const c = text[i];
    if (c === '{') {
      i++;
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        const key = str();
        const child = path === '' ? key : `${path}.${key}`;
        if (seen.has(key)) duplicates.push(child);
        seen.add(key);
        ws();
        i++; // ':'
        val(child);
        ws();
        if (text[i++] === '}') return;
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (let n = 0; ; n++) {
        val(`${path}[${n}]`);
        ws();
        if (text[i++] === ']') return;
      }
    } else if (c === '"') {
      str();
    } else {
      while (i < text.length && /[^\s,\]}]/.test(text[i] ?? '')) i++;
    }
  };
  val('');
  return { value, lines, duplicates };
}

function lineAt(text: string, pos: number): number {
  let line = 1;
  for (let k = 0; k < pos && k < text.length; k++) if (text.charCodeAt(k) === 10) line++;
  return line;
}
