/**
 * The daemon's logger: spire-agent-like text lines or JSON, and censoring of key and
 * token fields whatever a caller passes. Output goes to an in-memory stream.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { callerFields, createControlledLogger, createLogger, type LogFormat, type LogLevel } from '../../../src/telemetry/logger.js';
import { AuditLog } from '../../../src/telemetry/audit.js';

function sink(): { stream: Writable; lines: () => string[] } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, lines: () => text.split('\n').filter(Boolean) };
}

function logger(format: LogFormat, level: LogLevel = 'debug') {
  const s = sink();
  return { log: createLogger({ level, format, destination: s.stream }), lines: s.lines };
}

const SECRET = 'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg-SECRET';
const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy9hIn0.c2lnbmF0dXJl';

describe('logger: text format', () => {
  it('writes time="..." level=info msg="..." then key=value fields, keeping pid', () => {
    const { log, lines } = logger('text');
    log.info({ pid: 4242, uid: 1000, spiffe_id: 'spiffe://example.org/a' }, 'Workload API decision');
    expect(lines()).toHaveLength(1);
    const line = lines()[0]!;
    expect(line).toMatch(/^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z" level=info msg="Workload API decision" /);
    expect(line).toContain(' pid=4242');
    expect(line).toContain(' uid=1000');
    expect(line).toContain(' spiffe_id=spiffe://example.org/a');
    expect(line).not.toMatch(/hostname=/);
  });

  it('stamps the current time', () => {
    const { log, lines } = logger('text');
    const before = Date.now();
    log.info('tick');
    const t = Date.parse(/time="([^"]+)"/.exec(lines()[0]!)![1]!);
    expect(t).toBeGreaterThanOrEqual(before - 1);
    expect(t).toBeLessThanOrEqual(Date.now() + 1);
  });

  it.each(['trace', 'debug', 'info', 'error'] as const)('names level %s in lower case, as logrus does', (fn) => {
    const { log, lines } = logger('text', 'trace');
    log[fn]('m');
    expect(lines()[0]).toMatch(new RegExp(` level=${fn} `));
  });

  // spire-agent (logrus) writes level=warning; operators grep for it.
  it('names warnings level=warning like spire-agent (logrus)', () => {
    const { log, lines } = logger('text');
    log.warn('m');
    expect(lines()[0]).toMatch(/ level=warning /);
  });

  it('quotes values with spaces, quotes or equals signs, and empty values; leaves plain ones bare', () => {
    const { log, lines } = logger('text');
    log.info({ a: 'two words', b: 'say "hi"', c: 'k=v', d: '', e: 'plain', n: 7, l: ['x', 'y'] }, 'msg with "quotes"');
    const line = lines()[0]!;
    expect(line).toContain('msg="msg with \\"quotes\\""');
    expect(line).toContain(' a="two words"');
    expect(line).toContain(' b="say \\"hi\\""');
    expect(line).toContain(' c="k=v"');
    expect(line).toContain(' d=""');
    expect(line).toContain(' e=plain');
    expect(line).toContain(' n=7');
    expect(line).toContain(' l="[\\"x\\",\\"y\\"]"');
  });

  it('includes child bindings on every line', () => {
    const { log, lines } = logger('text');
    log.child({ subsystem_name: 'endpoints' }).info({ pid: 1 }, 'x');
    expect(lines()[0]).toMatch(/^time="[^"]+" level=info msg="x" .*subsystem_name=endpoints/);
  });

  it('drops lines below the configured level', () => {
    const { log, lines } = logger('text', 'warn');
    log.debug('no');
    log.info('no');
    log.warn('yes');
    log.error('yes');
    expect(lines().map((l) => /level=(\w+)/.exec(l)![1])).toEqual(['warning', 'error']);
  });
});

describe('logger: JSON format', () => {
  it('writes one parseable object per line with level names, msg, time and fields', () => {
    const { log, lines } = logger('json');
    log.info({ pid: 9, selectors: ['unix:uid:1000'] }, 'hello');
    log.child({ subsystem_name: 'cache' }).error('bad');
    const [a, b] = lines().map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(a).toMatchObject({ level: 'info', msg: 'hello', pid: 9, selectors: ['unix:uid:1000'] });
    expect(typeof a!.time).toBe('number');
    expect(a).not.toHaveProperty('hostname');
    expect(b).toMatchObject({ level: 'error', msg: 'bad', subsystem_name: 'cache' });
  });

  it('appends to a file when one is given', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'logger-'));
    const file = join(dir, 'agent.log');
    const log = createLogger({ level: 'info', format: 'json', file });
    log.info({ pid: 1 }, 'to file');
    // The file is written asynchronously: wait for the line, not for a fixed time.
    const read = (): string => (existsSync(file) ? readFileSync(file, 'utf8').trim() : '');
    for (let i = 0; i < 200 && !read(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(JSON.parse(read())).toMatchObject({ msg: 'to file', pid: 1 });
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('logger: censoring', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['privateKey', { privateKey: SECRET }],
    ['private_key', { private_key: SECRET }],
    ['key', { key: SECRET }],
    ['token', { token: JWT }],
    ['svid', { svid: JWT }],
    ['jwt', { jwt: JWT }],
    ['joinToken', { joinToken: SECRET }],
    ['join_token', { join_token: SECRET }],
    ['a nested privateKey', { identity: { spiffe_id: 'spiffe://example.org/a', privateKey: SECRET } }],
    ['a nested token', { request: { audience: ['x'], token: JWT } }],
  ];

  for (const format of ['text', 'json'] as const) {
    it.each(cases)(`censors %s in ${format} output`, (_name, fields) => {
      const { log, lines } = logger(format);
      log.info({ ...fields, pid: 5 }, 'm');
      const out = lines().join('\n');
      expect(out).not.toContain(SECRET);
      expect(out).not.toContain(JWT);
      expect(out).toContain('[redacted]');
      expect(out).toMatch(format === 'text' ? /pid=5/ : /"pid":5/);
    });
  }

  it('does not touch the object the caller logged', () => {
    const { log } = logger('json');
    const fields = { token: JWT, nested: { privateKey: SECRET } };
    log.info(fields, 'm');
    expect(fields).toEqual({ token: JWT, nested: { privateKey: SECRET } });
  });

  it('censors a token passed in child bindings', () => {
    const { log, lines } = logger('json');
    log.child({ token: JWT }).info('m');
    expect(lines().join('\n')).not.toContain(JWT);
  });
});

describe('LevelControl', () => {
  it('changes the level of existing child loggers at run time, and resets to the launch level', () => {
    const s = sink();
    const { log, level } = createControlledLogger({ level: 'info', format: 'json', destination: s.stream });
    const child = log.child({ subsystem_name: 'x' }).child({ y: 1 });
    child.debug('hidden-1');
    level.set('debug');
    expect(level.get()).toBe('debug');
    child.debug('shown');
    level.set('error');
    child.warn('hidden-2');
    level.reset();
    expect(level.get()).toBe('info');
    expect(level.launch).toBe('info');
    child.info('shown-again');
    expect(s.lines().map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['shown', 'shown-again']);
  });
});

describe('logger: audit records and the run-time level', () => {
  it('keeps writing audit records however the Logger API level is set, while other lines follow it', () => {
    const s = sink();
    const { log, level, audit } = createControlledLogger({ level: 'info', format: 'text', destination: s.stream });
    const records = new AuditLog(audit, ['unix:uid']);
    const decision = (pid: number): void =>
      records.record({ method: 'FetchX509SVID', caller: { pid, uid: 1000, gid: 1000 }, decision: 'granted', spiffeIds: ['spiffe://example.org/a'] });
    for (const [i, l] of (['error', 'fatal', 'panic'] as const).entries()) {
      level.set(l);
      expect(level.get()).toBe(l);
      log.info('ordinary line');
      log.warn('ordinary warning');
      log.error(`ordinary error at ${l}`);
      decision(101 + i);
    }
    const lines = s.lines();
    expect(lines.filter((x) => x.includes('ordinary'))).toEqual([expect.stringContaining('ordinary error at error')]);
    expect(lines.filter((x) => x.includes('msg="Workload API decision"')).map((x) => /pid=(\d+)/.exec(x)?.[1])).toEqual(['101', '102', '103']);
  });

  it.each(['fatal', 'panic'] as const)('log_level = %s at launch (logrus levels): nothing but audit records, and it reads back and resets as %s', (l) => {
    const s = sink();
    const { log, level, audit } = createControlledLogger({ level: l, format: 'json', destination: s.stream });
    log.error('ordinary error');
    new AuditLog(audit, []).record({ method: 'FetchJWTSVID', caller: { pid: 7, uid: 0, gid: 0 }, decision: 'granted' });
    expect(level.get()).toBe(l);
    expect(level.launch).toBe(l);
    level.set('error');
    level.reset();
    expect(level.get()).toBe(l);
    log.error('still silenced');
    expect(s.lines().map((x) => (JSON.parse(x) as { msg: string }).msg)).toEqual(['Workload API decision']);
  });

  it('writes audit records even when the agent was started at log level error', () => {
    const s = sink();
    const { audit } = createControlledLogger({ level: 'error', format: 'json', destination: s.stream });
    new AuditLog(audit, []).record({ method: 'FetchJWTSVID', caller: { pid: 7, uid: 0, gid: 0 }, decision: 'granted' });
    expect(s.lines().map((l) => JSON.parse(l) as { msg: string; audit: boolean })).toMatchObject([{ msg: 'Workload API decision', audit: true }]);
  });
});

describe('logger: log_source_location', () => {
  function located(format: LogFormat, sourceLocation: boolean) {
    const s = sink();
    return { log: createLogger({ level: 'info', format, destination: s.stream, sourceLocation }), lines: s.lines };
  }

  it('names the function and this file:line that logged, as logrus ReportCaller does, in text and JSON', () => {
    const t = located('text', true);
    function reportsSomething() {
      t.log.child({ subsystem: 'x' }).info({ a: 1 }, 'located');
    }
    reportsSomething();
    expect(t.lines()[0]).toMatch(/ func=reportsSomething file=\S*logger\.test\.ts:\d+ /);
    const j = located('json', true);
    j.log.warn('json located');
    const rec = JSON.parse(j.lines()[0]!) as Record<string, string>;
    expect(rec.file).toMatch(/logger\.test\.ts:\d+$/);
    expect(typeof rec.func).toBe('string');
  });

  it('adds nothing when off (the default)', () => {
    const t = located('text', false);
    t.log.info('plain');
    expect(t.lines()[0]).not.toMatch(/ func=| file=/);
  });

  it('skips pino and the logger module\'s own frames', () => {
    const stack = [
      'Error',
      '    at Object.mixin (file:///app/dist/src/telemetry/logger.js:40:30)',
      '    at Pino.write (/app/node_modules/pino/lib/proto.js:200:35)',
      '    at Pino.LOG [as info] (/app/node_modules/pino/lib/tools.js:62:21)',
      '    at Object.info (file:///app/dist/src/telemetry/logger.js:120:9)',
      '    at Agent.start (file:///app/dist/src/agent/agent.js:88:14)',
    ].join('\n');
    expect(callerFields(stack)).toEqual({ func: 'Agent.start', file: '/app/dist/src/agent/agent.js:88' });
    expect(callerFields(undefined)).toEqual({});
  });
});
