/**
 * Large entries files: they parse (the old, quadratic parser took minutes for 8,000 entries, past
 * these tests' timeouts), problems deep inside are located, and a reload parses in slices so the
 * event loop keeps turning. How fast, and how long the loop may stall, are bench/parse-bounds.mjs's
 * to measure: timed assertions here failed on a loaded machine, not on a bug.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseEntriesFile, type EntriesFileError } from '../../../src/authority/embedded/index.js';
import { parseEntriesFileAsync } from '../../../src/authority/embedded/entries-file.js';
import { EntriesSource } from '../../../src/authority/embedded/entries-source.js';
import { FakeClock } from './fake-clock.js';
import { RecordingLogger, tempDir } from './helpers.js';

const TD = 'example.org';

function entriesText(count: number, selectorsEach = 2): string {
  const entries = [];
  for (let i = 0; i < count; i++) {
    const selectors = [];
    for (let j = 0; j < selectorsEach; j++) selectors.push({ type: 'unix', value: `uid:${i}-${j}` });
    entries.push({ spiffe_id: `spiffe://example.org/w/${i}`, parent_id: 'spiffe://example.org/agent', selectors, dns_names: [`w${i}.example.org`] });
  }
  return JSON.stringify({ entries }, null, 2);
}

/** Turns of the event loop (setImmediate callbacks) while `work` runs: 0 for work done in one go. */
async function loopTurnsDuring<T>(work: () => Promise<T>): Promise<{ result: T; turns: number }> {
  let turns = 0;
  let running = true;
  const tick = (): void => {
    if (!running) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  try {
    return { result: await work(), turns };
  } finally {
    running = false;
  }
}

describe('large entries files', () => {
  it('parses 8,000 entries, and one entry with 64,000 selectors (the old parser: 2 minutes, 49 s for 16,000 selectors)', () => {
    expect(parseEntriesFile('entries.json', entriesText(8000), TD)).toHaveLength(8000);
    const [one] = parseEntriesFile('entries.json', entriesText(1, 64000), TD);
    expect(one!.selectors).toHaveLength(64000);
  }, 120_000);

  it('still names the file, the entry path and the line of a problem deep in a large file', () => {
    const entries = JSON.parse(entriesText(5000)) as { entries: Record<string, unknown>[] };
    entries.entries[4321]!['spiffe_id'] = 'spiffe://other.org/x';
    const text = JSON.stringify(entries, null, 2);
    let err: EntriesFileError | undefined;
    try {
      parseEntriesFile('/etc/spire/entries.json', text, TD);
    } catch (e) {
      err = e as EntriesFileError;
    }
    const line = text.split('\n').findIndex((l) => l.includes('spiffe://other.org/x')) + 1;
    expect(err?.problems).toEqual([{ path: 'entries[4321].spiffe_id', line, message: 'must be in trust domain "example.org"' }]);
    expect(err?.message).toContain('/etc/spire/entries.json');
    expect(err?.message).toContain(`entries[4321].spiffe_id (line ${line})`);
  });

  it('lists at most 100 problems but counts them all', () => {
    const text = JSON.stringify({ entries: Array.from({ length: 500 }, () => ({ spiffe_id: 'bad' })) });
    try {
      parseEntriesFile('f', text, TD);
      expect.unreachable();
    } catch (e) {
      const err = e as EntriesFileError;
      expect(err.problems).toHaveLength(100);
      expect(err.total).toBe(1500);
      expect(err.message).toMatch(/1500 problem\(s\)[\s\S]*\.\.\. and 1400 more$/);
    }
  });
});

describe('entries file reload', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()?.();
  });

  it('parses a large file in slices: the event loop turns during the parse, where a one-go parse lets it turn 0 times', async () => {
    const text = entriesText(30_000);
    // The control: the synchronous parser, wrapped the same way, gives the loop no turn.
    expect((await loopTurnsDuring(async () => parseEntriesFile('entries.json', text, TD))).turns).toBe(0);
    // Slices of ~5 ms over a parse of 30,000 entries (≥ 100 ms anywhere): a slower machine only adds turns.
    const { result, turns } = await loopTurnsDuring(() => parseEntriesFileAsync('entries.json', text, TD));
    expect(result).toHaveLength(30_000);
    expect(turns).toBeGreaterThanOrEqual(5);
  }, 120_000);

  it('reloads a large file from disk', async () => {
    const d = await tempDir();
    cleanups.push(d.remove);
    const path = join(d.path, 'entries.json');
    await writeFile(path, entriesText(30_000));
    const src = new EntriesSource({ file: path, trustDomain: TD, clock: new FakeClock(), log: new RecordingLogger(), onChange: () => {} });
    cleanups.push(async () => src.close());
    expect(await src.reload()).toEqual({ changed: true });
    expect(src.entries()).toHaveLength(30_000);
  }, 120_000);
});

describe('entries file nesting', () => {
  it('refuses a 5,000-deep document with an EntriesFileError naming the file and line (it used to overflow the stack)', () => {
    const text = `{\n  "entries": [\n    ${'['.repeat(5000)}${']'.repeat(5000)}\n  ]\n}`;
    expect(() => parseEntriesFile('/etc/spire/entries.json', text, TD)).toThrow(
      expect.objectContaining({ code: 'entries_file', problems: [{ path: '', line: 3, message: 'nested deeper than 64 levels; flatten the document' }] }),
    );
  });
});
