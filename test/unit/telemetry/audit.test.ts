/**
 * The audit log: one record per Workload API decision, selector values redacted unless
 * their type (or type:key) is listed in log_selectors, never any key or token material.
 * Records go through the real text/JSON logger into an in-memory stream.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Selector } from '../../../src/authority/types.js';
import { AuditLog, type AuditRecord } from '../../../src/telemetry/audit.js';
import { createLogger, type LogFormat } from '../../../src/telemetry/logger.js';

function audit(visible: string[], format: LogFormat = 'json'): { audit: AuditLog; lines: () => string[] } {
  let text = '';
  const stream = new Writable({
    write(c: Buffer, _e, cb) {
      text += c.toString();
      cb();
    },
  });
  const log = createLogger({ level: 'debug', format, destination: stream });
  return { audit: new AuditLog(log, visible), lines: () => text.split('\n').filter(Boolean) };
}

const sel = (s: string): Selector => {
  const i = s.indexOf(':');
  return { type: s.slice(0, i), value: s.slice(i + 1) };
};

const SELECTORS = ['unix:uid:1000', 'unix:gid:1000', 'unix:sha256:abcd', 'k8s:ns:prod', 'k8s:pod-label:app:web', 'docker:image_id:sha256:ff', 'custom:opaque'].map(sel);

describe('audit: selector redaction', () => {
  it.each([
    {
      visible: [],
      want: ['unix:uid:[redacted]', 'unix:gid:[redacted]', 'unix:sha256:[redacted]', 'k8s:ns:[redacted]', 'k8s:pod-label:[redacted]', 'docker:image_id:[redacted]', 'custom:[redacted]'],
    },
    {
      visible: ['unix'],
      want: ['unix:uid:1000', 'unix:gid:1000', 'unix:sha256:abcd', 'k8s:ns:[redacted]', 'k8s:pod-label:[redacted]', 'docker:image_id:[redacted]', 'custom:[redacted]'],
    },
    {
      visible: ['unix:uid', 'k8s:pod-label'],
      want: ['unix:uid:1000', 'unix:gid:[redacted]', 'unix:sha256:[redacted]', 'k8s:ns:[redacted]', 'k8s:pod-label:app:web', 'docker:image_id:[redacted]', 'custom:[redacted]'],
    },
    {
      visible: ['docker:image_id', 'custom'],
      want: ['unix:uid:[redacted]', 'unix:gid:[redacted]', 'unix:sha256:[redacted]', 'k8s:ns:[redacted]', 'k8s:pod-label:[redacted]', 'docker:image_id:sha256:ff', 'custom:opaque'],
    },
  ])('with log_selectors $visible shows only listed types and type:key prefixes', ({ visible, want }) => {
    expect(audit(visible).audit.redact(SELECTORS)).toEqual(want);
  });

  it.each([
    ['a type:key prefix that is only a prefix of the key', ['unix:ui'], 'unix:uid:[redacted]'],
    ['a type that is only a prefix of the type', ['uni'], 'unix:uid:[redacted]'],
    ['a type:key of another type', ['k8s:uid'], 'unix:uid:[redacted]'],
    ['a whole selector rather than a prefix', ['unix:uid:1000'], 'unix:uid:[redacted]'],
  ])('does not reveal a value for %s', (_what, visible, want) => {
    expect(audit(visible).audit.redact([sel('unix:uid:1000')])).toEqual([want]);
  });
});

describe('audit: records', () => {
  const granted: AuditRecord = {
    method: 'FetchX509SVID',
    caller: { pid: 4321, uid: 1000, gid: 1001, binary: '/usr/bin/app' },
    decision: 'granted',
    selectors: [sel('unix:uid:1000'), sel('unix:sha256:deadbeef')],
    entryIds: ['e1', 'e2'],
    spiffeIds: ['spiffe://example.org/a', 'spiffe://example.org/b'],
    serials: ['01ab', '02cd'],
  };

  it('records who was granted what, with selectors redacted, as one JSON line at info', () => {
    const a = audit(['unix:uid']);
    a.audit.record(granted);
    const lines = a.lines();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toEqual({
      level: 'info',
      time: expect.any(Number),
      msg: 'Workload API decision',
      subsystem_name: 'audit',
      audit: true,
      method: 'FetchX509SVID',
      decision: 'granted',
      pid: 4321,
      uid: 1000,
      gid: 1001,
      binary: '[redacted]',
      selectors: ['unix:uid:1000', 'unix:sha256:[redacted]'],
      entry_ids: ['e1', 'e2'],
      spiffe_ids: ['spiffe://example.org/a', 'spiffe://example.org/b'],
      serials: ['01ab', '02cd'],
    });
  });

  it.each([
    { visible: [], shown: false },
    { visible: ['unix:uid', 'unix:sha256'], shown: false },
    { visible: ['unix:pat', 'k8s', 'path'], shown: false },
    { visible: ['unix:path'], shown: true },
    { visible: ['unix'], shown: true },
  ])('shows the binary with log_selectors $visible exactly when it shows the unix:path selector ($shown)', ({ visible, shown }) => {
    const a = audit(visible);
    a.audit.record({ ...granted, selectors: [sel('unix:path:/usr/bin/app'), sel('unix:uid:1000')] });
    const rec = JSON.parse(a.lines()[0]!) as { binary: string; selectors: string[] };
    expect(rec.binary).toBe(shown ? '/usr/bin/app' : '[redacted]');
    expect(rec.selectors[0]).toBe(shown ? 'unix:path:/usr/bin/app' : 'unix:path:[redacted]');
    expect(JSON.stringify(rec).includes('/usr/bin/app')).toBe(shown);
  });

  it('keeps the binary out of a text record when unix:path is redacted', () => {
    const a = audit(['unix:uid'], 'text');
    a.audit.record(granted);
    expect(a.lines()[0]).not.toContain('/usr/bin/app');
    expect(a.lines()[0]).toContain('binary=[redacted]');
  });

  it.each(['denied', 'withdrawn'] as const)('records a %s decision with its reason at warn', (decision) => {
    const a = audit([]);
    a.audit.record({ method: 'FetchJWTSVID', caller: { pid: 1, uid: 2, gid: 3 }, decision, audience: ['svc'], reason: 'no registration entry matches the caller' });
    const rec = JSON.parse(a.lines()[0]!) as Record<string, unknown>;
    expect(rec).toMatchObject({ level: 'warning', decision, audience: ['svc'], reason: 'no registration entry matches the caller', pid: 1, uid: 2, gid: 3 });
    expect(rec).not.toHaveProperty('binary');
    expect(rec).not.toHaveProperty('selectors');
  });

  it('writes a text record with the caller pid and decision as key=value fields', () => {
    const a = audit([], 'text');
    a.audit.record(granted);
    const line = a.lines()[0]!;
    expect(line).toMatch(/^time="[^"]+" level=info msg="Workload API decision" /);
    expect(line).toContain(' pid=4321');
    expect(line).toContain(' decision=granted');
    expect(line).toContain(' method=FetchX509SVID');
    expect(line).not.toContain('deadbeef');
  });

  it('never writes key or token material, even when the record object carries some', () => {
    const KEY = 'MIGHAgEAMBMGByqGSM49-PRIVATE-KEY';
    const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';
    const sneaky = { ...granted, privateKey: KEY, token: TOKEN, x509_svid_key: KEY, jwt: TOKEN, caller: { ...granted.caller, key: KEY } } as AuditRecord;
    for (const format of ['json', 'text'] as const) {
      const a = audit(['unix'], format);
      a.audit.record(sneaky);
      const out = a.lines().join('\n');
      expect(out).not.toContain(KEY);
      expect(out).not.toContain(TOKEN);
      expect(out).toContain('spiffe://example.org/a');
    }
  });
});
