/**
 * `debug getinfo` and `logger get|set|reset` against the agent's real admin services
 * (buildAdminServer with DebugHandler and LoggerHandler over a real level control), on a Unix
 * socket. Expected text and JSON are spire-agent v1.15's (cmd/spire-agent/cli/debug and
 * logger, pkg/common/cliprinter): pretty on stdout, protojson sorted by key, `Error: ...` on stderr.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { protoJSON } from '../../../src/cli/commands/admin-common.js';
import { buildAdminServer } from '../../../src/endpoints/admin/server.js';
import { DebugHandler } from '../../../src/endpoints/admin/debug.js';
import { LoggerHandler } from '../../../src/endpoints/admin/logger-service.js';
import type { DelegatedIdentityHandler } from '../../../src/endpoints/admin/delegated-identity.js';
import { createControlledLogger } from '../../../src/telemetry/logger.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { TestCA } from '../../helpers/test-ca.js';

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += String(d)));
  stderr.on('data', (d) => (err += String(d)));
  const code = await main(args, { stdout, stderr, env: {}, signal: new AbortController().signal });
  return { code, out, err };
}

const STARTED = Date.UTC(2026, 0, 1, 10, 0, 0);
let server: grpc.Server;
let socketPath: string;
let chainExpiry: number;
const logs = new PassThrough();
const { log, level } = createControlledLogger({ level: 'info', format: 'json', destination: logs });

beforeAll(async () => {
  const clock = new FakeClock(STARTED + 3723_000); // 1h2m3s of uptime
  const ca = await TestCA.create('example.org');
  const svid = await ca.createX509SVID('spiffe://example.org/spire/agent/join_token/abc');
  chainExpiry = Math.floor(new Date(new (await import('node:crypto')).X509Certificate(svid.chain[0]!).validTo).getTime() / 1000);
  server = buildAdminServer({
    delegatedIdentity: { service: () => ({}) } as unknown as DelegatedIdentityHandler,
    debug: new DebugHandler({
      cache: { cachedX509Count: 3, cachedJWTCount: 2 },
      clock,
      startedAt: STARTED,
      status: () => ({
        mode: 'server',
        ready: true,
        agentSVID: { spiffeId: 'spiffe://example.org/spire/agent/join_token/abc', chain: [...svid.chain, ca.der()], notAfter: chainExpiry * 1000 },
        lastSyncSuccess: Date.UTC(2026, 0, 1, 10, 59, 30),
        serverReachable: true,
      }),
    }),
    logger: new LoggerHandler(level, log),
  });
  socketPath = join(mkdtempSync(join(tmpdir(), 'admin-cli-')), 'admin.sock');
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
});

afterAll(() => server?.forceShutdown());

describe('debug getinfo', () => {
  it("prints spire-agent v1.15's text", async () => {
    const r = await cli('debug', 'getinfo', '-socketPath', socketPath);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const expires = new Date(chainExpiry * 1000).toISOString().replace('.000Z', 'Z');
    expect(r.out).toMatch(
      new RegExp(
        [
          '^Agent Debug Info:',
          '  Uptime:                          1h2m3s',
          '  Last Sync Success:               2026-01-01T10:59:30Z',
          '  Cached X.509 SVIDs:              3',
          '  Cached JWT SVIDs:                2',
          '  Cached SVID Store X.509 SVIDs:   0',
          '  SVID Chain:',
          '    \\[0\\] SPIFFE ID:  spiffe://example.org/spire/agent/join_token/abc',
          '        Subject:    .*',
          `        Expires At: ${expires}`,
          '    \\[1\\] SPIFFE ID:  (spiffe://example.org|\\(none\\))\\n',
        ].join('\\n'),
      ),
    );
  });

  it('prints protojson with -output json: proto names, int64 as strings, sorted keys, no nulls', async () => {
    const r = await cli('debug', 'getinfo', '-socketPath', socketPath, '-output', 'json');
    expect(r.code).toBe(0);
    expect(r.out.endsWith('}\n')).toBe(true);
    const keys = [...r.out.matchAll(/"([a-z_0-9]+)":/g)].map((m) => m[1]);
    expect(keys.slice(0, 4)).toEqual(['cached_jwt_svids_count', 'cached_svidstore_x509_svids_count', 'cached_x509_svids_count', 'last_sync_success']);
    const j = JSON.parse(r.out) as Record<string, unknown> & { svid_chain: Record<string, unknown>[] };
    expect(j).toMatchObject({ uptime: 3723, svids_count: 3, cached_x509_svids_count: 3, cached_jwt_svids_count: 2, cached_svidstore_x509_svids_count: 0 });
    expect(j.last_sync_success).toBe(String(Date.UTC(2026, 0, 1, 10, 59, 30) / 1000));
    expect(j.svid_chain[0]).toMatchObject({ id: { trust_domain: 'example.org', path: '/spire/agent/join_token/abc' }, expires_at: String(chainExpiry) });
    expect(j.svid_chain).toHaveLength(2);
  });

  it("drops protojson's nulls at any depth, as spire's cliprinter does (a certificate without a SPIFFE ID)", () => {
    expect(protoJSON({ svid_chain: [{ id: null, subject: 'O=x' }], last: '0', gone: null })).toBe('{"last":"0","svid_chain":[{"subject":"O=x"}]}\n');
  });

  it('prints `Error: rpc error: ...` on stderr and exits 1 when the admin socket is not there', async () => {
    const r = await cli('debug', 'getinfo', '-socketPath', join(tmpdir(), 'no-such-admin.sock'));
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^Error: rpc error: code = Unavailable desc = /);
  });
});

describe('logger', () => {
  it('get, set, reset: the level changes in the agent and is printed with logrus names', async () => {
    expect(await cli('logger', 'get', '-socketPath', socketPath)).toEqual({ code: 0, out: 'Logger Level : info\nLaunch Level : info\n\n', err: '' });
    expect(await cli('logger', 'set', '-socketPath', socketPath, '-level', 'DEBUG')).toEqual({ code: 0, out: 'Logger Level : debug\nLaunch Level : info\n\n', err: '' });
    expect(level.get()).toBe('debug');
    expect(await cli('logger', 'set', '-socketPath', socketPath, '-level', 'warn', '-output', 'json')).toEqual({
      code: 0,
      out: '{"current_level":"WARN","launch_level":"INFO"}\n',
      err: '',
    });
    expect((await cli('logger', 'get', '-socketPath', socketPath)).out).toBe('Logger Level : warning\nLaunch Level : info\n\n');
    expect(await cli('logger', 'reset', '-socketPath', socketPath)).toEqual({ code: 0, out: 'Logger Level : info\nLaunch Level : info\n\n', err: '' });
    expect(level.get()).toBe('info');
  });

  it('set panic and set fatal read back as PANIC and FATAL, as spire-agent v1.15 answers', async () => {
    for (const [flag, pretty, json] of [['panic', 'panic', 'PANIC'], ['FATAL', 'fatal', 'FATAL']] as const) {
      expect(await cli('logger', 'set', '-socketPath', socketPath, '-level', flag)).toEqual({ code: 0, out: `Logger Level : ${pretty}\nLaunch Level : info\n\n`, err: '' });
      expect(await cli('logger', 'get', '-socketPath', socketPath, '-output', 'json')).toEqual({ code: 0, out: `{"current_level":"${json}","launch_level":"INFO"}\n`, err: '' });
      expect(level.get()).toBe(pretty);
    }
    expect((await cli('logger', 'reset', '-socketPath', socketPath)).out).toBe('Logger Level : info\nLaunch Level : info\n\n');
  });

  it('set refuses a missing or unknown level before calling the agent', async () => {
    expect(await cli('logger', 'set', '-socketPath', socketPath)).toEqual({ code: 1, out: '', err: 'Error: a value (-level) must be set\n' });
    expect(await cli('logger', 'set', '-socketPath', socketPath, '-level', 'loud')).toEqual({ code: 1, out: '', err: 'Error: the value "loud" is not a valid setting\n' });
    expect(level.get()).toBe('info');
  });

  it('an unknown -output is a usage error (exit 1, usage on stderr)', async () => {
    const r = await cli('logger', 'get', '-socketPath', socketPath, '-output', 'yaml');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^invalid value "yaml" for flag -output: .*\nUsage of logger get:\n/);
  });

  it('names the call that failed', async () => {
    const r = await cli('logger', 'reset', '-socketPath', join(tmpdir(), 'no-such-admin.sock'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^Error: failed to reset logger: rpc error: code = Unavailable/);
  });
});
