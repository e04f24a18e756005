import { describe, expect, it } from 'vitest';
import type { RegistrationEntry, Selector } from '../../../src/authority/types.js';
import { EntryIndex, dedupeHints, parseSelector } from '../../../src/cache/selectors.js';
import { makeEntry } from '../../helpers/entries.js';

const entry = makeEntry;

const sel = (...s: string[]): Selector[] => s.map(parseSelector);

describe('selector matching', () => {
  const index = new EntryIndex([
    entry('c', ['unix:uid:1000', 'unix:path:/usr/bin/app']),
    entry('a', ['unix:uid:1000']),
    entry('b', ['unix:uid:1001']),
    entry('empty', []),
  ]);

  it('matches an entry only when all of its selectors are present', () => {
    expect(index.match(sel('unix:uid:1000')).map((e) => e.id)).toEqual(['a']);
    expect(index.match(sel('unix:uid:1000', 'unix:path:/usr/bin/app', 'unix:gid:0')).map((e) => e.id)).toEqual(['a', 'c']);
  });

  it('returns matches sorted by entry id so the default identity is stable', () => {
    expect(index.match(sel('unix:path:/usr/bin/app', 'unix:uid:1000')).map((e) => e.id)).toEqual(['a', 'c']);
  });

  it('never matches an entry without selectors, nor a caller without selectors', () => {
    expect(index.match([])).toEqual([]);
    expect(index.match(sel('unix:uid:0'))).toEqual([]);
  });

  it('compares values exactly, not as prefixes', () => {
    expect(index.match(sel('unix:uid:10000'))).toEqual([]);
  });

  it('keeps the colon-bearing rest of a selector as its value', () => {
    expect(parseSelector('k8s:pod-label:app:web')).toEqual({ type: 'k8s', value: 'pod-label:app:web' });
    expect(() => parseSelector('nocolon')).toThrow();
  });
});

describe('hint de-duplication', () => {
  it('keeps the oldest entry for a repeated hint and ties go to the lowest id', () => {
    const out = dedupeHints([
      entry('b', ['x:1'], { hint: 'db', createdAt: 5 }),
      entry('a', ['x:1'], { hint: 'db', createdAt: 5 }),
      entry('c', ['x:1'], { hint: 'db', createdAt: 9 }),
      entry('d', ['x:1'], { hint: '' }),
      entry('e', ['x:1'], { hint: '' }),
    ]);
    expect(out.map((e) => e.id)).toEqual(['a', 'd', 'e']);
  });
});
