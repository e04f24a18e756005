/**
 * Reads the managed-identity token answer as spire-agent v1.13.3 does (Go's json.Decoder into a
 * struct with one `access_token` string field), so the same answers are accepted and the same
 * token text is sent:
 *   - only the first JSON value is read; text after it is ignored, as a Decoder does;
 *   - the key is matched case-insensitively, the last match winning, as Go's struct decoding does;
 *   - `null` decodes to nothing (then "missing access_token"); another non-object, or a non-string
 *     access_token, is an error;
 *   - a byte that is not valid UTF-8 inside the token becomes U+FFFD, one per byte, as Go decodes it.
 */

/** Bytes as Go's JSON decoder sees a string's bytes: each invalid UTF-8 byte is one U+FFFD. */
function goUtf8(b: Uint8Array): string {
  // TextDecoder's WHATWG rules replace a truncated sequence with one U+FFFD; Go with one per byte.
  let out = '';
  let i = 0;
  const cont = (j: number, lo = 0x80, hi = 0xbf) => i + j < b.length && b[i + j]! >= lo && b[i + j]! <= hi;
  while (i < b.length) {
    const c = b[i]!;
    let n = 0;
    if (c < 0x80) n = 1;
    else if (c >= 0xc2 && c <= 0xdf) n = cont(1) ? 2 : 0;
    else if (c === 0xe0) n = cont(1, 0xa0) && cont(2) ? 3 : 0;
    else if (c === 0xed) n = cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
    else if (c >= 0xe1 && c <= 0xef) n = cont(1) && cont(2) ? 3 : 0;
    else if (c === 0xf0) n = cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
    else if (c >= 0xf1 && c <= 0xf3) n = cont(1) && cont(2) && cont(3) ? 4 : 0;
    else if (c === 0xf4) n = cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
    out += n === 0 ? '\ufffd' : Buffer.from(b.subarray(i, i + n)).toString('utf8');
    i += Math.max(n, 1);
  }
  return out;
}

/** The first JSON value of `text` (after leading white space), as a Decoder would take it; the rest is left. */
function firstValue(text: string): string {
  const s = text.replace(/^[ \t\r\n]+/, '');
  if (s[0] !== '{' && s[0] !== '[') {
    const m = /^("(?:[^"\\]|\\.)*"|[^\s,\]}]+)/.exec(s);
    return m ? m[1]! : s;
  }
  let depth = 0;
  let inString = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') {
      depth--;
      if (depth === 0) return s.slice(0, i + 1);
    }
  }
  return s;
}

export type TokenAnswer = { ok: true; token: string } | { ok: false; why: string };

/** The access token of an answer body, or why there is none (never quoting the token). */
export function readAccessToken(body: Uint8Array): TokenAnswer {
  const text = goUtf8(body);
  if (text.trim() === '') return { ok: false, why: 'an empty answer, not JSON' };
  let value: unknown;
  try {
    value = JSON.parse(firstValue(text));
  } catch (err) {
    return { ok: false, why: `not JSON (${(err as Error).message})` };
  }
  if (value === null) return { ok: false, why: 'no access_token in the answer' };
  if (typeof value !== 'object' || Array.isArray(value)) return { ok: false, why: `a JSON ${Array.isArray(value) ? 'array' : typeof value}, not an object` };
  let token: unknown;
  for (const [k, v] of Object.entries(value)) if (k.toLowerCase() === 'access_token') token = v;
  if (token === undefined || token === null || token === '') return { ok: false, why: 'no access_token in the answer' };
  if (typeof token !== 'string') return { ok: false, why: `access_token is a JSON ${typeof token}, not a string` };
  return { ok: true, token };
}
