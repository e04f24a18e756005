/**
 * A small lexer over HCL/JSON source for the key locator (./locate.ts) and the nesting
 * pre-check: it finds lines without parsing. It does not validate; the parsers do.
 */
export interface Token {
  readonly kind: 'word' | 'string' | 'punct' | 'newline';
  /** For strings, the unquoted text (escapes left as written). */
  readonly text: string;
  readonly line: number;
  readonly start: number;
  readonly end: number;
}

const WORD = /[A-Za-z0-9_.\-+]/;

export function scan(src: string): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  const push = (kind: Token['kind'], text: string, start: number, end: number, at = line) =>
    out.push({ kind, text, line: at, start, end });
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') {
      push('newline', '\n', i, i + 1);
      line++;
      i++;
    } else if (c === '#' || (c === '/' && src[i + 1] === '/')) {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const close = src.indexOf('*/', i + 2);
      const stop = close < 0 ? src.length : close + 2;
      for (let k = i; k < stop; k++) if (src[k] === '\n') line++;
      i = stop;
    } else if (c === '"') {
      const start = i;
      const at = line;
      i++;
      let depth = 0;
      while (i < src.length) {
        const d = src[i]!;
        if (d === '\\') i += 2;
        else if (d === '$' && src[i + 1] === '{') (depth++, (i += 2));
        else if (d === '}' && depth > 0) (depth--, i++);
        else if (d === '"' && depth === 0) break;
        else {
          if (d === '\n') line++;
          i++;
        }
      }
      i = Math.min(i + 1, src.length);
      push('string', src.slice(start + 1, i - 1), start, i, at);
    } else if (c === '<' && src[i + 1] === '<' && /[-A-Za-z_]/.test(src[i + 2] ?? '')) {
      const m = /^<<-?([A-Za-z_][A-Za-z0-9_]*)/.exec(src.slice(i));
      const start = i;
      const at = line;
      if (!m) {
        i += 2;
        continue;
      }
      const marker = m[1]!;
      i += m[0].length;
      while (i < src.length) {
        const nl = src.indexOf('\n', i);
        if (nl < 0) {
          i = src.length;
          break;
        }
        line++;
        i = nl + 1;
        const end = src.indexOf('\n', i);
        const body = src.slice(i, end < 0 ? src.length : end);
        if (body.trim() === marker) {
          i = end < 0 ? src.length : end;
          break;
        }
      }
      push('string', '', start, i, at);
    } else if (WORD.test(c)) {
      const start = i;
      while (i < src.length && WORD.test(src[i]!)) i++;
      push('word', src.slice(start, i), start, i);
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else {
      push('punct', c, i, i + 1);
      i++;
    }
  }
  return out;
}
