/**
 * HCL1, the language of spire-agent's agent.conf, read natively, with the line of every key.
 * The subset SPIRE's configs use: blocks with bare or quoted type and labels (`plugins {`,
 * `NodeAttestor "join_token" {`, `"KeyManager" "disk" {`), `key = value`, strings with escapes
 * (interpolations `${...}` kept as written), numbers (decimal, hex, exponent), bools, null,
 * lists, objects, heredocs (`<<EOT`, `<<-EOT`), and `#`, `//`, `/* *\/` comments. Items may
 * share a line (`KeyManager "memory" { plugin_data {} }`), as HCL1 allows.
 *
 * The result has the shape the rest of src/config reads (the one hcl2json produced before):
 * a block is an array of bodies under its type, nested by label (`{ NodeAttestor: { join_token:
 * [ {...} ] } }`); an attribute is its value. Setting an attribute twice is an error, as before.
 */
import { SpiffeAgentError } from '../errors.js';

export class HclSyntaxError extends SpiffeAgentError<'config_syntax'> {
  constructor(
    readonly line: number,
    readonly column: number,
    readonly detail: string,
  ) {
    super('config_syntax', `hcl: ${line}:${column}: ${detail}`);
  }
}

export interface Hcl1Document {
  readonly value: Record<string, unknown>;
  /** Dotted key (block labels joined with dots) → line where it is first written. */
  readonly lines: ReadonlyMap<string, number>;
}

type Tok =
  | { k: 'ident' | 'string' | 'number' | 'heredoc'; v: string; line: number; col: number; endLine: number }
  | { k: 'punct'; v: '{' | '}' | '[' | ']' | '=' | ',' | ':'; line: number; col: number; endLine: number }
  | { k: 'nl' | 'eof'; v: ''; line: number; col: number; endLine: number };

const IDENT_START = /[A-Za-z_]/;
const IDENT = /[A-Za-z0-9_\-.]/;
const NUMBER = /^-?(0[xX][0-9a-fA-F]+|\d+(\.\d+)?([eE][+-]?\d+)?)/;

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const col = (at: number) => at - lineStart + 1;
  const fail = (msg: string, at = i): never => {
    throw new HclSyntaxError(line, col(at), msg);
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') {
      out.push({ k: 'nl', v: '', line, col: col(i), endLine: line });
      i++;
      line++;
      lineStart = i;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '#' || (c === '/' && src[i + 1] === '/')) {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const close = src.indexOf('*/', i + 2);
      if (close < 0) fail('Unterminated comment; this /* comment has no */');
      for (let k = i; k < close; k++) {
        if (src[k] === '\n') {
          line++;
          lineStart = k + 1;
        }
      }
      i = close + 2;
    } else if ('{}[]=,:'.includes(c)) {
      out.push({ k: 'punct', v: c as '{', line, col: col(i), endLine: line });
      i++;
    } else if (c === '"') {
      const startLine = line;
      const startCol = col(i);
      let v = '';
      let depth = 0; // inside ${ ... }, where quotes nest
      i++;
      for (;;) {
        if (i >= src.length) fail('Unterminated string; a string needs its closing quote', i);
        const d = src[i]!;
        if (d === '\n' && depth === 0) fail('Unterminated string; strings end on the line they start (use a heredoc for several lines)', i);
        if (depth > 0) {
          if (d === '}') depth--;
          else if (d === '{') depth++;
          v += d;
          i++;
          continue;
        }
        if (d === '"') break;
        if (d === '$' && src[i + 1] === '{') {
          depth = 1;
          v += '${';
          i += 2;
          continue;
        }
        if (d === '\\') {
          const e = src[i + 1];
          const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\' };
          if (e !== undefined && simple[e] !== undefined) {
            v += simple[e];
            i += 2;
          } else if (e === 'u' || e === 'U') {
            const n = e === 'u' ? 4 : 8;
            const hex = src.slice(i + 2, i + 2 + n);
            if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) fail(`Invalid escape sequence; \\${e} needs ${n} hex digits`, i);
            const cp = parseInt(hex, 16);
            if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) fail(`Invalid escape sequence; \\${e}${hex} is not a Unicode scalar value`, i);
            v += String.fromCodePoint(cp);
            i += 2 + n;
          } else {
            fail(`Invalid escape sequence; \\${e ?? ''} is not one HCL knows (\\n \\t \\r \\" \\\\ \\uXXXX)`, i);
          }
          continue;
        }
        v += d;
        i++;
      }
      i++;
      out.push({ k: 'string', v, line: startLine, col: startCol, endLine: line });
    } else if (c === '<' && src[i + 1] === '<') {
      const m = /^<<(-?)([A-Za-z_][A-Za-z0-9_-]*)\r?\n/.exec(src.slice(i, i + 260));
      if (!m) fail('Invalid heredoc; write <<EOT (or <<-EOT) and the text on the next line');
      const startLine = line;
      const startCol = col(i);
      const indent = m![1] === '-';
      const marker = m![2]!;
      i += m![0].length;
      line++;
      lineStart = i;
      const lines: string[] = [];
      for (;;) {
        if (i >= src.length) throw new HclSyntaxError(startLine, startCol, `Unterminated heredoc; no line with just ${marker} closes the heredoc started here`);
        const nl = src.indexOf('\n', i);
        const end = nl < 0 ? src.length : nl;
        const text = src.slice(i, end).replace(/\r$/, '');
        i = end;
        if (text.trim() === marker && (indent || text === marker)) break;
        lines.push(text);
        if (nl < 0) throw new HclSyntaxError(startLine, startCol, `Unterminated heredoc; no line with just ${marker} closes the heredoc started here`);
        i = nl + 1;
        line++;
        lineStart = i;
      }
      let body = lines;
      if (indent) {
        const widths = lines.filter((l) => l.trim() !== '').map((l) => /^[ \t]*/.exec(l)![0].length);
        const cut = widths.length > 0 ? Math.min(...widths) : 0;
        body = lines.map((l) => l.slice(Math.min(cut, /^[ \t]*/.exec(l)![0].length)));
      }
      out.push({ k: 'heredoc', v: body.map((l) => `${l}\n`).join(''), line: startLine, col: startCol, endLine: line });
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      const m = NUMBER.exec(src.slice(i, i + 400));
      if (!m || IDENT.test(src[i + m[0].length] ?? ' ')) fail('Invalid number; write digits (1, 0.5, 1e3, 0x1f), or quote a string');
      out.push({ k: 'number', v: m![0], line, col: col(i), endLine: line });
      i += m![0].length;
    } else if (IDENT_START.test(c)) {
      const start = i;
      while (i < src.length && IDENT.test(src[i]!)) i++;
      out.push({ k: 'ident', v: src.slice(start, i), line, col: col(start), endLine: line });
    } else {
      fail(`Invalid character; ${describeChar(c)} cannot start anything in HCL`);
    }
  }
  out.push({ k: 'eof', v: '', line, col: col(i), endLine: line });
  return out;
}

const MAX_DEPTH = 100;

class Parser {
  private p = 0;
  readonly lines = new Map<string, number>();
  constructor(private readonly toks: Tok[]) {}

  private peek(skipNl = true): Tok {
    let q = this.p;
    while (skipNl && this.toks[q]!.k === 'nl') q++;
    return this.toks[q]!;
  }

  private next(skipNl = true): Tok {
    while (skipNl && this.toks[this.p]!.k === 'nl') this.p++;
    return this.toks[this.p++]!;
  }

  private fail(t: Tok, msg: string): never {
    throw new HclSyntaxError(t.line, t.col, msg);
  }

  private record(path: string, line: number): void {
    if (path && !this.lines.has(path)) this.lines.set(path, line);
  }

  /** Items until `}` (nested) or end of input (top level). */
  body(path: string, depth: number, closer: '}' | 'eof', open?: Tok): Record<string, unknown> {
    if (depth > MAX_DEPTH) this.fail(this.peek(), `Nesting too deep; more than ${MAX_DEPTH} levels`);
    const obj: Record<string, unknown> = {};
    const attrs = new Map<string, number>();
    for (;;) {
      let t = this.peek();
      while (t.k === 'punct' && t.v === ',') {
        this.next();
        t = this.peek();
      }
      if (closer === '}' && t.k === 'punct' && t.v === '}') return obj;
      if (t.k === 'eof') {
        if (closer === 'eof') return obj;
        this.fail(open ?? t, 'Unclosed block; this { has no matching }');
      }
      this.item(obj, attrs, path, depth);
    }
  }

  private key(t: Tok): string {
    if (t.k === 'ident' || t.k === 'string') return t.v;
    if (t.k === 'punct' || t.k === 'eof' || t.k === 'nl') this.fail(t, `Argument or block definition required; found ${t.k === 'punct' ? describe(t) : 'the end of the input'}`);
    return this.fail(t, `Invalid key; a key is a name or a quoted string, not ${describe(t)}`);
  }

  private item(obj: Record<string, unknown>, attrs: Map<string, number>, path: string, depth: number): void {
    const first = this.next();
    const keys = [this.key(first)];
    for (;;) {
      const t = this.peek(false);
      if (t.k === 'ident' || t.k === 'string') {
        this.next(false);
        keys.push(t.v);
        continue;
      }
      break;
    }
    const t = this.peek(false);
    const full = (ks: string[]) => [path, ...ks].filter(Boolean).join('.');
    if (t.k === 'punct' && (t.v === '=' || t.v === ':')) {
      if (keys.length > 1) this.fail(first, `Invalid argument; an argument has one name, not ${keys.length}`);
      this.next(false);
      const name = keys[0]!;
      const at = attrs.get(name);
      if (at !== undefined || (name in obj && !attrs.has(name))) {
        this.fail(first, `Attribute redefined; ${JSON.stringify(name)} was already set${at === undefined ? ' as a block' : ` at line ${at}`}. Each argument may be set only once.`);
      }
      attrs.set(name, first.line);
      this.record(full([name]), first.line);
      obj[name] = this.value(t, full([name]), depth + 1);
      return;
    }
    if (t.k === 'punct' && t.v === '{') {
      this.next(false);
      const [type, ...labels] = keys as [string, ...string[]];
      if (attrs.has(type)) this.fail(first, `Attribute redefined; ${JSON.stringify(type)} was already set at line ${attrs.get(type)!} as an argument`);
      for (let n = 1; n <= keys.length; n++) this.record(full(keys.slice(0, n)), first.line);
      const body = this.body(full(keys), depth + 1, '}', t);
      this.next();
      if (labels.length === 0) {
        const list = (obj[type] ??= []) as unknown[];
        list.push(body);
        return;
      }
      let node = (obj[type] ??= {}) as Record<string, unknown>;
      for (const l of labels.slice(0, -1)) node = (node[l] ??= {}) as Record<string, unknown>;
      ((node[labels[labels.length - 1]!] ??= []) as unknown[]).push(body);
      return;
    }
    // Not the words themselves: this is where a file that is not HCL at all (a token) fails.
    this.fail(t.k === 'nl' || t.k === 'eof' ? first : t, `Invalid argument or block; expected = or { after ${keys.length === 1 ? 'the name' : `${keys.length} names`}, found ${describe(t)}`);
  }

  /** A value; `after` is the token before it, whose line a missing value is reported on. */
  private value(after: Tok, path: string, depth: number): unknown {
    if (depth > MAX_DEPTH) this.fail(after, `Nesting too deep; more than ${MAX_DEPTH} levels`);
    const t = this.peek(false);
    if (t.k === 'nl' || t.k === 'eof' || (t.k === 'punct' && t.v !== '[' && t.v !== '{')) {
      this.fail(after, `Invalid expression; expected a value (string, number, bool, list, object or heredoc) after ${describe(after)}`);
    }
    this.next(false);
    switch (t.k) {
      case 'string':
      case 'heredoc':
        return t.v;
      case 'number':
        return t.v.replace(/^-/, '').startsWith('0x') || t.v.replace(/^-/, '').startsWith('0X') ? (t.v.startsWith('-') ? -1 : 1) * parseInt(t.v.replace(/^-?0[xX]/, ''), 16) : Number(t.v);
      case 'ident':
        if (t.v === 'true') return true;
        if (t.v === 'false') return false;
        if (t.v === 'null') return null;
        return this.fail(t, 'Invalid expression; a bare word is not a value: quote strings ("like this"), or write true, false or null');
      case 'punct':
        if (t.v === '[') return this.list(path, depth);
        return this.object(path, depth);
    }
    return this.fail(t, 'Invalid expression');
  }

  private list(path: string, depth: number): unknown[] {
    const out: unknown[] = [];
    for (;;) {
      const t = this.peek();
      if (t.k === 'punct' && t.v === ']') {
        this.next();
        return out;
      }
      if (t.k === 'eof') this.fail(t, 'Unclosed list; a [ is missing its ]');
      const before = this.toks[this.p - 1]!;
      while (this.toks[this.p]!.k === 'nl') this.p++;
      out.push(this.value(before, path, depth + 1));
      const sep = this.peek();
      if (sep.k === 'punct' && sep.v === ',') this.next();
      else if (!(sep.k === 'punct' && sep.v === ']')) this.fail(sep, `Missing comma; list items are separated by commas, found ${describe(sep)}`);
    }
  }

  private object(path: string, depth: number): Record<string, unknown> {
    const obj = this.body(path, depth + 1, '}', this.toks[this.p - 1]);
    this.next();
    return obj;
  }
}

/**
 * A token in a syntax error, by its kind: never its text. The config path may hold something
 * else than HCL (a symlink to a token or a key), and these messages are logged and printed.
 * Punctuation is HCL's own, so it is quoted.
 */
function describe(t: Tok): string {
  switch (t.k) {
    case 'punct':
      return `"${t.v}"`;
    case 'ident':
      return 'a bare word';
    case 'string':
      return 'a quoted string';
    case 'number':
      return 'a number';
    case 'heredoc':
      return 'a heredoc';
    case 'nl':
      return 'the end of the line';
    case 'eof':
      return 'the end of the input';
  }
}

/** A character that starts no token, by its kind (see describe). */
function describeChar(c: string): string {
  if (/^[\x21-\x7e]$/.test(c)) return 'a punctuation character';
  if (/^[\x00-\x1f\x7f]$/.test(c)) return 'a control character';
  return 'a non-ASCII character';
}

/** Parses HCL1 text; throws HclSyntaxError with the line and column of the first problem. */
export function parseHcl1(src: string): Hcl1Document {
  const parser = new Parser(lex(src));
  const value = parser.body('', 0, 'eof');
  return { value, lines: parser.lines };
}
