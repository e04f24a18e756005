/**
 * A strict JSON (RFC 8259) parser for files people write and the agent reads: registration
 * entries, JSON agent.conf, plugin_data_file, and the agent's own data files (agent-data.json,
 * keys.json, the embedded CA's manifest). Unlike JSON.parse it
 * - is iterative, and bounds nesting depth, so a deeply nested document is a clear error
 *   instead of a stack overflow in whatever walks the value afterwards;
 * - reports duplicate object keys (JSON.parse keeps the last one silently);
 * - can say on which line a value starts (`locate`), so validators can point into the file;
 * - is a generator that yields every few thousand tokens (see ./steps.ts), so a large file
 *   can be parsed without holding the event loop;
 * - never quotes the text in its errors. JSON.parse does (V8: `Unexpected token 'r', "root:$6$..."
 *   is not valid JSON`), and a path the agent reads may hold another file than it expects (a
 *   symlink to /etc/shadow, a token): the agent's data files are parsed here for that reason too.
 * Everything is linear in the size of the input.
 */
import { SpiffeAgentError } from '../errors.js';
import { runSteps, type Steps } from './steps.js';

/** Far deeper than any real config or entries file; shallow enough for any recursive consumer. */
export const MAX_JSON_DEPTH = 64;

/** Tokens between two yields; small enough to keep a slice under a millisecond. */
const TOKENS_PER_STEP = 4096;
/** Slots for recently seen member names (a power of two). */
const NAME_CACHE_SIZE = 256;

declare module '../errors.js' {
  interface ErrorCodes {
    json: 'json_invalid';
  }
}

/** Its message says where and what is wrong, never what the text holds there (see describeChar). */
export class JSONParseError extends SpiffeAgentError<'json_invalid'> {
  /** "line 3, column 5: expected a value, found a letter": for messages that name the file themselves. */
  readonly detail: string;

  constructor(
    readonly reason: 'syntax' | 'too_deep',
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super('json_invalid', `json: line ${line}, column ${column}: ${message}`);
    this.detail = `line ${line}, column ${column}: ${message}`;
  }
}

export interface ParseJSONOptions {
  maxDepth?: number;
  /**
   * Dotted paths ("entries[2].selectors[0].type") whose line to find; see ParsedJSON.lineOf.
   * Only these paths cost anything, so a second pass with the paths of a few problems is cheap.
   */
  locate?: readonly string[];
}

export interface ParsedJSON {
  value: unknown;
  /** Dotted paths of repeated object keys (the repeat, not the first). */
  duplicates: string[];
  /** Line of a path given in `locate`, else of its nearest located ancestor; 0 when unknown. */
  lineOf(path: string): number;
}

interface PathNode {
  line: number;
  children: Map<string, PathNode>;
}

interface Frame {
  /** The container being filled. */
  readonly c: Record<string, unknown> | unknown[];
  /** Name of this container in its parent, for duplicate paths. */
  readonly name: string | number | undefined;
  /** Pending member name (objects). */
  key: string;
  /** Where `locate` paths go below this container; undefined when none do. */
  readonly node: PathNode | undefined;
}

export function parseJSON(text: string, opts: ParseJSONOptions = {}): ParsedJSON {
  return runSteps(parseJSONSteps(text, opts));
}

export function* parseJSONSteps(text: string, opts: ParseJSONOptions = {}): Steps<ParsedJSON> {
  const maxDepth = opts.maxDepth ?? MAX_JSON_DEPTH;
  const root = pathTrie(opts.locate ?? []);
  const n = text.length;
  const stack: Frame[] = [];
  const duplicates: string[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  let tokens = 0;
  let lastEscaped = false;

  const fail = (message: string, at = i): never => {
    throw new JSONParseError('syntax', message, line, at - lineStart + 1);
  };
  const ws = (): void => {
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 10) lineStart = i + 1, line++;
      else if (c !== 32 && c !== 9 && c !== 13) return;
    }
  };
  const str = (): string => {
    const start = i;
    let escaped = false;
    let j = i + 1;
    for (;;) {
      if (j >= n) return fail('unterminated string', start);
      const c = text.charCodeAt(j);
      if (c === 34) break;
      if (c === 92) {
        escaped = true;
        const e = text.charCodeAt(j + 1);
        if (e === 117) {
          if (!/^[0-9A-Fa-f]{4}$/.test(text.slice(j + 2, j + 6))) return fail('bad \\u escape in string', j);
          j += 6;
        } else if (e === 34 || e === 92 || e === 47 || e === 98 || e === 102 || e === 110 || e === 114 || e === 116) {
          j += 2;
        } else return fail('bad escape in string', j);
      } else if (c < 0x20) {
        return fail(c === 10 ? 'line break inside a string (write it as \\n)' : 'control character inside a string', j);
      } else j++;
    }
    i = j + 1;
    lastEscaped = escaped;
    return escaped ? (JSON.parse(text.slice(start, i)) as string) : text.slice(start + 1, j);
  };
  const num = (): number => {
    const start = i;
    if (text.charCodeAt(i) === 45) i++;
    const digits = (): number => {
      const s = i;
      while (i < n && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
      return i - s;
    };
    const first = text.charCodeAt(i);
    const intLen = digits();
    if (intLen === 0) return fail('bad number', start);
    if (first === 48 && intLen > 1) return fail('numbers must not have leading zeros', start);
    if (text.charCodeAt(i) === 46) {
      i++;
      if (digits() === 0) return fail('bad number: digits expected after "."', start);
    }
    const e = text.charCodeAt(i);
    if (e === 101 || e === 69) {
      i++;
      const sign = text.charCodeAt(i);
      if (sign === 43 || sign === 45) i++;
      if (digits() === 0) return fail('bad number: digits expected in the exponent', start);
    }
    return Number(text.slice(start, i));
  };
  // Member names repeat in every entry; reusing the string saves an allocation and a hash per member.
  const names: (string | undefined)[] = new Array(NAME_CACHE_SIZE);
  const name = (): string => {
    const start = i + 1;
    const end = text.indexOf('"', start);
    const len = end - start;
    if (len > 0 && len <= 32) {
      const slot = (len * 31 + text.charCodeAt(start) * 7 + text.charCodeAt(end - 1)) & (NAME_CACHE_SIZE - 1);
      const hit = names[slot];
      if (hit !== undefined && hit.length === len && text.startsWith(hit, start)) {
        i = end + 1;
        return hit;
      }
      const s = str();
      // Only names written without escapes, so that a hit is exactly the text it matched.
      if (!lastEscaped) names[slot] = s;
      return s;
    }
    return str();
  };
  const key = (top: Frame): void => {
    ws();
    if (text.charCodeAt(i) !== 34) return fail(i >= n ? 'unexpected end of input: expected a member name' : 'expected a member name in double quotes');
    top.key = name();
    ws();
    if (text.charCodeAt(i) !== 58) return fail('expected ":" after the member name');
    i++;
  };
  const childNode = (parent: Frame | undefined): PathNode | undefined => {
    if (parent === undefined) return root;
    if (parent.node === undefined) return undefined;
    return parent.node.children.get(Array.isArray(parent.c) ? String(parent.c.length) : parent.key);
  };

  let value: unknown;
  for (;;) {
    // A value starts here.
    if (++tokens % TOKENS_PER_STEP === 0) yield;
    ws();
    const parent = stack[stack.length - 1];
    const node = childNode(parent);
    if (node) node.line = line;
    const c = text.charCodeAt(i);
    if (c === 123 || c === 91) {
      if (stack.length >= maxDepth) {
        throw new JSONParseError('too_deep', `nested deeper than ${maxDepth} levels; flatten the document`, line, i - lineStart + 1);
      }
      const name = parent === undefined ? undefined : Array.isArray(parent.c) ? parent.c.length : parent.key;
      i++;
      ws();
      if (c === 123) {
        const frame: Frame = { c: {}, name, key: '', node };
        if (text.charCodeAt(i) === 125) {
          i++;
          value = frame.c;
        } else {
          stack.push(frame);
          key(frame);
          continue;
        }
      } else {
        const frame: Frame = { c: [], name, key: '', node };
        if (text.charCodeAt(i) === 93) {
          i++;
          value = frame.c;
        } else {
          stack.push(frame);
          continue;
        }
      }
    } else if (c === 34) value = str();
    else if (c === 45 || (c >= 48 && c <= 57)) value = num();
    else if (c === 116 && text.startsWith('true', i)) (value = true), (i += 4);
    else if (c === 102 && text.startsWith('false', i)) (value = false), (i += 5);
    else if (c === 110 && text.startsWith('null', i)) (value = null), (i += 4);
    else fail(i >= n ? 'unexpected end of input: expected a value' : `expected a value, found ${describeChar(text, i)}`);

    // A value is complete: store it, then close as many containers as end here.
    for (;;) {
      const top = stack[stack.length - 1];
      if (top === undefined) {
        ws();
        if (i < n) fail(`expected the end of the document, found ${describeChar(text, i)}`);
        return { value, duplicates, lineOf: (path) => lookup(root, path) };
      }
      ws();
      const d = text.charCodeAt(i);
      if (Array.isArray(top.c)) {
        top.c.push(value);
        if (d === 44) {
          i++;
          break;
        }
        if (d !== 93) fail(i >= n ? 'unexpected end of input: expected "," or "]"' : `expected "," or "]" after an array element, found ${describeChar(text, i)}`);
      } else {
        const obj = top.c;
        if (Object.hasOwn(obj, top.key)) duplicates.push(pathOf(stack, top.key));
        // JSON.parse makes "__proto__" an own property; plain assignment would set the prototype.
        if (top.key === '__proto__') Object.defineProperty(obj, top.key, { value, writable: true, enumerable: true, configurable: true });
        else obj[top.key] = value;
        if (d === 44) {
          i++;
          key(top);
          break;
        }
        if (d !== 125) fail(i >= n ? 'unexpected end of input: expected "," or "}"' : `expected "," or "}" after a member, found ${describeChar(text, i)}`);
      }
      i++;
      stack.pop();
      value = top.c;
    }
  }
}

/**
 * What stands at `i`, without quoting the file: the text may be another file than the one
 * expected (a symlink to /etc/shadow, a token), and these messages reach logs. JSON's own
 * punctuation is named; anything else only by its kind.
 */
function describeChar(text: string, i: number): string {
  const ch = text[i] ?? '';
  if ('{}[],:"'.includes(ch) && ch !== '') return `"${ch}"`;
  if (ch === "'") return 'a single quote (JSON strings take double quotes)';
  if (/^[A-Za-z]$/.test(ch)) return 'a letter';
  if (/^[0-9]$/.test(ch)) return 'a digit';
  if (/^[\x21-\x7e]$/.test(ch)) return 'a punctuation character';
  if (/^[\x00-\x1f\x7f]$/.test(ch)) return 'a control character';
  return 'a non-ASCII character';
}

function pathOf(stack: readonly Frame[], last: string): string {
  let path = '';
  for (let k = 1; k < stack.length; k++) path = join(path, stack[k]!.name!);
  return join(path, last);
}

function join(path: string, seg: string | number): string {
  if (typeof seg === 'number') return `${path}[${seg}]`;
  return path === '' ? seg : `${path}.${seg}`;
}

/** "a.b[3].c" -> ["a", "b", "3", "c"]. Keys containing "." or "[" resolve to an ancestor: fine for pointing at lines. */
function segments(path: string): string[] {
  const out: string[] = [];
  for (const m of path.matchAll(/\[(\d+)\]|([^.[\]]+)/g)) out.push(m[1] ?? m[2]!);
  return out;
}

function pathTrie(paths: readonly string[]): PathNode | undefined {
  if (paths.length === 0) return undefined;
  const root: PathNode = { line: 0, children: new Map() };
  for (const p of paths) {
    let node = root;
    for (const s of segments(p)) {
      let next = node.children.get(s);
      if (!next) node.children.set(s, (next = { line: 0, children: new Map() }));
      node = next;
    }
  }
  return root;
}

function lookup(root: PathNode | undefined, path: string): number {
  let node = root;
  let line = root?.line ?? 0;
  for (const s of segments(path)) {
    node = node?.children.get(s);
    if (!node?.line) break;
    line = node.line;
  }
  return line;
}
