/** The JSON parser behind config and entries files, against JSON.parse as the reference. */
import { describe, it, expect } from 'vitest';
import { JSONParseError, parseJSON } from '../../../src/parse/json.js';
import { fc, jsonishText, onlyTypedErrors, fuzz } from './fuzz.js';

/** The nesting limit, pinned (README: "JSON nesting is limited to 64 levels"). */
const MAX_JSON_DEPTH = 64;

function native(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

function depth(v: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[v, 0]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (typeof x === 'object' && x !== null) {
      max = Math.max(max, d + 1);
      for (const c of Object.values(x)) stack.push([c, d + 1]);
    }
  }
  return max;
}

describe('fuzz: JSON parser', () => {
  it('accepts exactly what JSON.parse accepts (within the depth limit), with the same value', () => {
    fuzz(
      fc.property(jsonishText(), (text) => {
        const ours = onlyTypedErrors(() => parseJSON(text), JSONParseError);
        const ref = native(text);
        if (ref.ok && depth(ref.value) <= MAX_JSON_DEPTH) {
          expect(ours, text).toBeDefined();
          expect(JSON.stringify(ours!.value)).toBe(JSON.stringify(ref.value));
        } else if (ref.ok) {
          expect(ours).toBeUndefined();
        } else {
          expect(ours, text).toBeUndefined();
        }
      }),
      3000,
    );
  });

  it('round-trips any JSON value, duplicates reported only where the text repeats a key', () => {
    fuzz(
      fc.property(fc.jsonValue({ depthSize: 'medium' }), fc.boolean(), (v, pretty) => {
        const text = JSON.stringify(v, null, pretty ? 2 : undefined);
        const parsed = parseJSON(text);
        expect(JSON.stringify(parsed.value)).toBe(JSON.stringify(JSON.parse(text)));
        expect(parsed.duplicates).toEqual([]);
      }),
      1000,
    );
  });

  it('locates every located path on the line where its value starts', () => {
    fuzz(
      fc.property(fc.array(fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }), { maxLength: 6 }), (list) => {
        const text = JSON.stringify({ entries: list }, null, 2);
        const paths = list.flatMap((o, i) => Object.keys(o).map((k) => `entries[${i}].${k}`));
        const parsed = parseJSON(text, { locate: paths });
        const lines = text.split('\n');
        list.forEach((o, i) =>
          Object.keys(o).forEach((k) => {
            if (/[.[\]]/.test(k) || k === '') return; // such keys resolve to an ancestor, by design
            const line = parsed.lineOf(`entries[${i}].${k}`);
            expect(lines[line - 1]?.trimStart().startsWith(`${JSON.stringify(k)}:`), `${k} at line ${line}`).toBe(true);
          }),
        );
      }),
      500,
    );
  });
});
