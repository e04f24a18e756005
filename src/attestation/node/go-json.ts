/**
 * A JSON string exactly as Go's encoding/json (Go 1.22 and later, HTML escaping on, as
 * json.Marshal has it) writes one. Cloud attestors send metadata text the agent did not write
 * inside a JSON payload, so the bytes must match spire-agent's for any text, not just plain ASCII:
 * JSON.stringify differs on `<`, `>`, `&`, U+2028/U+2029 and invalid UTF-8.
 *
 * Go's rules: `"` and `\` backslashed; \b \f \n \r \t by name, other control bytes as \u00xx
 * (lower-case hex); `<` `>` `&` as \u003c \u003e \u0026; U+2028 and U+2029 as \u2028 \u2029;
 * each byte that does not start a valid UTF-8 sequence (utf8.DecodeRune's (RuneError, 1): stray
 * continuation bytes, overlong forms, surrogates, code points past U+10FFFF, truncated
 * sequences) as \ufffd. Everything else is copied as UTF-8.
 */
const HEX = '0123456789abcdef';
const NAMED: Record<number, string> = { 0x08: '\\b', 0x0c: '\\f', 0x0a: '\\n', 0x0d: '\\r', 0x09: '\\t', 0x22: '\\"', 0x5c: '\\\\' };
const HTML = new Set([0x3c, 0x3e, 0x26]);

/** Length of the valid UTF-8 sequence at `i`, or 0 if the byte there starts none (Go's utf8.DecodeRune rules). */
function validSequence(b: Uint8Array, i: number): number {
  const c0 = b[i]!;
  const cont = (j: number, lo = 0x80, hi = 0xbf) => i + j < b.length && b[i + j]! >= lo && b[i + j]! <= hi;
  if (c0 < 0x80) return 1;
  if (c0 >= 0xc2 && c0 <= 0xdf) return cont(1) ? 2 : 0;
  if (c0 === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if (c0 === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0; // no surrogates
  if (c0 >= 0xe1 && c0 <= 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c0 === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c0 >= 0xf1 && c0 <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c0 === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

/** `value` (text, or raw bytes as read from the network) as Go's json.Marshal writes a string. */
export function goJsonString(value: string | Uint8Array): string {
  const b = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  let out = '"';
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const n = validSequence(b, i);
    if (n === 0) {
      out += '\\ufffd';
      i += 1;
    } else if (n === 1) {
      if (NAMED[c] !== undefined) out += NAMED[c];
      else if (c < 0x20 || HTML.has(c)) out += `\\u00${HEX[c >> 4]}${HEX[c & 15]}`;
      else out += String.fromCharCode(c);
      i += 1;
    } else {
      // U+2028 and U+2029 are E2 80 A8 / E2 80 A9.
      if (n === 3 && c === 0xe2 && b[i + 1] === 0x80 && (b[i + 2] === 0xa8 || b[i + 2] === 0xa9)) out += b[i + 2] === 0xa8 ? '\\u2028' : '\\u2029';
      else out += Buffer.from(b.subarray(i, i + n)).toString('utf8');
      i += n;
    }
  }
  return `${out}"`;
}

/** A Go struct of string fields as json.Marshal writes it: fields in declaration order, no spaces. */
export function goJsonObject(fields: ReadonlyArray<readonly [string, string | Uint8Array]>): string {
  return `{${fields.map(([k, v]) => `${goJsonString(k)}:${goJsonString(v)}`).join(',')}}`;
}
