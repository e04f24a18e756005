/**
 * goJsonString against Go's encoding/json: the expected strings are what `json.Marshal` of the
 * same Go string prints with Go 1.26 (escapes checked against encoding/json's encode.go rules).
 */
import { describe, expect, it } from 'vitest';
import { goJsonObject, goJsonString } from '../../../../src/attestation/node/go-json.js';

describe('goJsonString writes a string as Go json.Marshal does', () => {
  it.each([
    ['plain ASCII as is', 'abc XYZ 09 /+=', '"abc XYZ 09 /+="'],
    ['quote and backslash backslashed', 'a"b\\c', '"a\\"b\\\\c"'],
    ['\\n \\r \\t \\b \\f by name', '\n\r\t\b\f', '"\\n\\r\\t\\b\\f"'],
    ['other control bytes as lower-case \\u00xx', '\u0001\u001f', '"\\u0001\\u001f"'],
    ['<, > and & escaped for HTML', '<a&b>', '"\\u003ca\\u0026b\\u003e"'],
    ['U+2028 and U+2029 escaped', '\u2028\u2029', '"\\u2028\\u2029"'],
    ['DEL and non-ASCII copied', '\u007fé€😀', '"\u007fé€😀"'],
  ])('%s', (_name, input, want) => {
    expect(goJsonString(input)).toBe(want);
  });

  it.each([
    ['a stray continuation byte', [0x61, 0x80, 0x62], '"a\\ufffdb"'],
    ['a truncated 3-byte sequence: one \\ufffd per byte', [0xe2, 0x82], '"\\ufffd\\ufffd"'],
    ['an overlong encoding', [0xc0, 0xaf], '"\\ufffd\\ufffd"'],
    ['a UTF-16 surrogate encoded in UTF-8', [0xed, 0xa0, 0x80], '"\\ufffd\\ufffd\\ufffd"'],
    ['a code point past U+10FFFF', [0xf4, 0x90, 0x80, 0x80], '"\\ufffd\\ufffd\\ufffd\\ufffd"'],
  ])('invalid UTF-8, %s, becomes \\ufffd per byte', (_name, bytes, want) => {
    expect(goJsonString(Uint8Array.from(bytes))).toBe(want);
  });

  it('is JSON that parses back to the text for valid UTF-8', () => {
    const s = '{\n  "region" : "us-west-2" <&> \u2028 é\u0000\n}';
    expect(JSON.parse(goJsonString(s))).toBe(s);
  });

  it('goJsonObject keeps field order and adds no spaces', () => {
    expect(goJsonObject([['document', 'd'], ['signature', 's'], ['rsa2048', 'r']])).toBe('{"document":"d","signature":"s","rsa2048":"r"}');
  });
});
