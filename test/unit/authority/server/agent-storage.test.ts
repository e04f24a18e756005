import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentStorage, formatGoTime, parseGoTime } from '../../../../src/authority/server/agent-storage.js';
import { TestCA } from '../../../helpers/test-ca.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agent-data-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('agent-data.json (spire-agent v1.13.3 format)', () => {
  it('round-trips SVID, bundle, reattestable and bootstrap state, 0600, in Go field order', async () => {
    const ca = await TestCA.create('example.org');
    const svid = await ca.createX509SVID('spiffe://example.org/spire/agent/join_token/abc');
    const s = await AgentStorage.open(dir);
    await s.storeSVID(svid.chain, true);
    await s.storeBundle([ca.der()]);
    await s.storeBootstrapState({ use: 2, startTime: Date.UTC(2026, 10, 30, 1, 2, 3, 450), connectionAttempts: 3 });
    const text = await readFile(join(dir, 'agent-data.json'), 'utf8');
    expect(Object.keys(JSON.parse(text))).toEqual(['svid', 'bundle', 'reattestable', 'bootstrap_use', 'bootstrap_start_time', 'connection_attempts']);
    const doc = JSON.parse(text);
    expect(Buffer.from(doc.svid[0], 'base64').toString()).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    expect(doc.bootstrap_start_time).toBe('2026-11-30T01:02:03.45Z');
    expect((await stat(join(dir, 'agent-data.json'))).mode & 0o777).toBe(0o600);
    const again = await AgentStorage.open(dir);
    expect(again.svid().chain.map((c) => Buffer.from(c).toString('hex'))).toEqual(svid.chain.map((c) => Buffer.from(c).toString('hex')));
    expect(again.svid().reattestable).toBe(true);
    expect(Buffer.from(again.bundle()[0] as Uint8Array).equals(Buffer.from(ca.der()))).toBe(true);
    expect(again.bootstrapState()).toEqual({ use: 2, startTime: Date.UTC(2026, 10, 30, 1, 2, 3, 450), connectionAttempts: 3 });
  });

  it('writes null for a deleted SVID and Go zero time for no bootstrap clock, as Go does', async () => {
    const s = await AgentStorage.open(dir);
    await s.deleteSVID();
    expect(JSON.parse(await readFile(join(dir, 'agent-data.json'), 'utf8'))).toEqual({
      svid: null,
      bundle: null,
      reattestable: false,
      bootstrap_use: 0,
      bootstrap_start_time: '0001-01-01T00:00:00Z',
      connection_attempts: 0,
    });
  });

  it('reads what Go writes: nanosecond times with offsets, any key case', async () => {
    await writeFile(
      join(dir, 'agent-data.json'),
      '{"SVID":null,"bundle":null,"reattestable":false,"bootstrap_use":1,"bootstrap_start_time":"2026-11-30T02:03:04.123456789+01:00","connection_attempts":2}',
    );
    const s = await AgentStorage.open(dir);
    expect(s.bootstrapState()).toEqual({ use: 1, startTime: Date.UTC(2026, 10, 30, 1, 3, 4, 123), connectionAttempts: 2 });
    expect(s.svid().chain).toEqual([]);
  });

  it('refuses a corrupt file with its path and what to do', async () => {
    await writeFile(join(dir, 'agent-data.json'), '{"svid":["bm90IHBlbQ=="]}');
    await expect(AgentStorage.open(dir)).rejects.toMatchObject({ code: 'storage_corrupt', message: expect.stringContaining('agent-data.json') });
  });

  it('formats and parses Go times', () => {
    expect(formatGoTime(0)).toBe('0001-01-01T00:00:00Z');
    expect(formatGoTime(Date.UTC(2026, 0, 2, 3, 4, 5))).toBe('2026-01-02T03:04:05Z');
    expect(parseGoTime('0001-01-01T00:00:00Z')).toBe(0);
    expect(parseGoTime('garbage')).toBeNaN();
  });
});
