/**
 * A plain line (plain-line.ts, what the audit record is written with) is the line pino writes for
 * the same call: the same bytes in json and text, batched or not, with child bindings, redacted keys,
 * and values that need quoting or escaping. Only the time differs, and it is removed before comparing.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createControlledLogger, type LogFormat, type Logger } from '../../../src/telemetry/logger.js';
import { AuditLog } from '../../../src/telemetry/audit.js';
import type { PlainFields, PlainLevel } from '../../../src/telemetry/plain-line.js';

function sink(): { stream: Writable; text: () => string } {
  const writes: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      writes.push(chunk.toString());
      cb();
    },
  });
  return { stream, text: () => writes.join('').replace(/time="[^"]*"/g, 'time=T').replace(/"time":\d+/g, '"time":0') };
}

/** Each case written once through pino (level methods) and once as a plain line; both outputs. */
function both(format: LogFormat, cases: [PlainLevel, PlainFields, string][], child?: Record<string, unknown>): { pino: string; plain: string } {
  const out = { pino: '', plain: '' };
  for (const how of ['pino', 'plain'] as const) {
    const s = sink();
    const { log, flush } = createControlledLogger({ level: 'trace', format, destination: s.stream, batch: false });
    const l: Logger = child ? log.child(child) : log;
    for (const [level, fields, msg] of cases) {
      if (how === 'plain') {
        expect(l.plain, 'the daemon logger offers plain lines').toBeDefined();
        l.plain!(level, fields, msg);
      } else l[level]({ ...fields }, msg);
    }
    flush();
    out[how] = s.text();
  }
  return out;
}

const AWKWARD = ['', 'plain', 'with space', 'quote " inside', 'a=b', 'tab\there', 'new\nline', 'back\\slash', 'ünïcødé ✓', '\u0001\u001f', 'emoji 😀', 'x'.repeat(300)];

const CASES: [PlainLevel, PlainFields, string][] = [
  ['info', { method: 'FetchX509SVID', decision: 'granted', pid: 42, uid: 1000, gid: 1000, binary: '/usr/bin/x y', selectors: ['unix:uid:1000', 'unix:path:[redacted]'] }, 'Workload API decision'],
  ['warn', { method: 'FetchJWTSVID', decision: 'denied', pid: 7, uid: 0, gid: 0, reason: 'no registration entry "x" matches' }, 'Workload API decision'],
  ['error', { ok: true, off: false, zero: 0, neg: -1.5, empty: [], undef: undefined }, 'msg with "quotes" and = sign'],
  ['debug', { token: 'secret-token', key: 'secret-key', jwt: 'eyJ.secret', keep: 'visible' }, ''],
  ['trace', Object.fromEntries(AWKWARD.map((v, i) => [`k${i}`, v])), AWKWARD.join('|')],
  ['info', { list: AWKWARD }, 'arrays'],
];

describe('plain lines are the lines pino writes', () => {
  for (const format of ['json', 'text'] as const) {
    it(`${format}: the same bytes for every case, secrets redacted in both`, () => {
      const r = both(format, CASES);
      expect(r.plain.split('\n').filter(Boolean)).toHaveLength(CASES.length);
      expect(r.plain).toBe(r.pino);
      expect(r.plain).not.toMatch(/secret/);
    });

    it(`${format}: under child bindings (the audit logger's subsystem and flag)`, () => {
      const r = both(format, CASES, { subsystem: 'audit', audit: true, tags: ['a b', 'c'] });
      expect(r.plain).toBe(r.pino);
      expect(r.plain).toContain(format === 'json' ? '"subsystem":"audit","audit":true' : 'subsystem=audit audit=true');
    });

    it(`${format}: random strings from a hostile alphabet`, () => {
      const alphabet = ['a', ' ', '"', '=', '\\', '\n', '\t', '\u0000', '\u007f', 'é', '😀', '\u2028', '{', '}', ':', ','];
      let seed = 19;
      const rnd = (n: number): number => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % n;
      };
      const str = (): string => Array.from({ length: rnd(12) }, () => alphabet[rnd(alphabet.length)]).join('');
      const cases: [PlainLevel, PlainFields, string][] = Array.from({ length: 200 }, () => ['info', { a: str(), b: [str(), str()], [`k${str()}`]: str() }, str()]);
      const r = both(format, cases);
      expect(r.plain).toBe(r.pino);
    });
  }

  it('a child with a binding a plain line cannot write (an object) falls back to pino', () => {
    const s = sink();
    const { log } = createControlledLogger({ level: 'info', format: 'json', destination: s.stream });
    expect(log.child({ subsystem: 'x' }).plain).toBeDefined();
    expect(log.child({ nested: { a: 1 } }).plain).toBeUndefined();
  });

  it('levels below the logger level write nothing; log_source_location keeps pino (its caller fields)', () => {
    const s = sink();
    const { log } = createControlledLogger({ level: 'warn', format: 'json', destination: s.stream });
    log.plain!('info', { a: 'b' }, 'dropped');
    log.plain!('warn', { a: 'b' }, 'kept');
    expect(s.text()).not.toContain('dropped');
    expect(s.text()).toContain('"msg":"kept"');
    const located = createControlledLogger({ level: 'info', format: 'json', destination: sink().stream, sourceLocation: true });
    expect(located.log.plain).toBeUndefined();
    expect(located.audit.plain).toBeUndefined();
  });

  it('the audit record takes the plain path and writes what pino wrote for it', () => {
    const record = { method: 'FetchX509SVID', caller: { pid: 2, uid: 1000, gid: 1000, binary: '/bin/x' }, decision: 'granted' as const, selectors: [{ type: 'unix', value: 'uid:1000' }], entryIds: ['e1'], spiffeIds: ['spiffe://example.org/w'], serials: ['01'] };
    const lines: Record<string, string> = {};
    for (const fast of [true, false]) {
      const s = sink();
      const { audit } = createControlledLogger({ level: 'info', format: 'text', destination: s.stream });
      const l = fast ? audit : { ...audit, plain: undefined, child: (b: Record<string, unknown>) => ({ ...audit.child(b), plain: undefined }) };
      new AuditLog(l, ['unix']).record(record);
      lines[String(fast)] = s.text();
    }
    expect(lines.true).toBe(lines.false);
    expect(lines.true).toContain('subsystem_name=audit audit=true method=FetchX509SVID decision=granted pid=2 uid=1000 gid=1000 binary=/bin/x');
  });
});
