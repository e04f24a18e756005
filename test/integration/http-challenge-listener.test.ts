/**
 * http_challenge's listener on real sockets: the server's side is played by a stream that, when it
 * gets the challenge answer, GETs the challenge URL over TCP as spire-server does (the first 64
 * bytes, trimmed). The port answers only while an attestation runs and refuses connections after
 * it ends: after success, after the server's refusal, and after an abort; a port already taken
 * fails with an error naming it.
 */
import * as http from 'node:http';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpChallengeAttestor, challengePath, parseHttpChallengeConfig } from '../../src/attestation/node/http_challenge/index.js';
import type { AttestationStream } from '../../src/attestation/node/types.js';
import type { PluginConfig } from '../../src/config/types.js';
import { nullLogger } from '../../src/telemetry/logger.js';

const plugin = (data: Record<string, unknown>): PluginConfig => ({ type: 'NodeAttestor', name: 'http_challenge', enabled: true, data, dataFile: undefined, path: 'plugins.NodeAttestor.http_challenge' });
const NONCE = 'T2xkIGhhYml0cyBkaWUgaGFyZC4gVGhpcyBpcyBhIG5vbmNlIQ==';

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

/** Resolves with the connect error code, or "connected". */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve('connected')));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

interface Seen {
  payload?: { hostname: string; agentname: string; port: number };
  answer?: string;
  fetched?: { status: number; body: string };
  wrongPath?: number;
}

/** The server's side: challenge on the payload, fetch on the answer, then `outcome`. */
function fakeServer(seen: Seen, outcome: 'issue' | 'refuse' | 'hang' = 'issue'): AttestationStream {
  return {
    sendAttestationData: async (d) => {
      seen.payload = JSON.parse(Buffer.from(d.payload).toString()) as Seen['payload'];
      return new TextEncoder().encode(JSON.stringify({ nonce: NONCE }));
    },
    sendChallengeResponse: async (r) => {
      seen.answer = Buffer.from(r).toString();
      const p = seen.payload!;
      const res = await get(p.port, challengePath(p.agentname));
      seen.fetched = { status: res.status, body: res.body.slice(0, 64).trim() };
      seen.wrongPath = (await get(p.port, challengePath('other'))).status;
      if (outcome === 'refuse') throw Object.assign(new Error('challenge verification failed'), { code: 7 });
      if (outcome === 'hang') return new Promise<never>(() => undefined);
      return undefined;
    },
  };
}

const opened: Server[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => new Promise((r) => s.close(r))));
});

describe('http_challenge listener', () => {
  it.each([
    ['every interface (as run binds it)', undefined],
    ['loopback', '127.0.0.1'],
  ])('serves the nonce on %s while attesting, and the port is closed once the server has answered', async (_what, bindHost) => {
    const c = parseHttpChallengeConfig(plugin({ hostname: 'node1.example.org' }));
    const att = new HttpChallengeAttestor(c, { log: nullLogger, bindHost });
    const seen: Seen = {};
    await att.attest(fakeServer(seen), new AbortController().signal);
    expect(seen.payload).toMatchObject({ hostname: 'node1.example.org', agentname: 'default' });
    expect(seen.payload!.port).toBeGreaterThan(0);
    expect(seen.answer).toBe('\n');
    expect(seen.fetched).toEqual({ status: 200, body: NONCE });
    expect(seen.wrongPath).toBe(404);
    expect(await tryConnect(seen.payload!.port)).toBe('ECONNREFUSED');
  });

  it('answers on the configured port and advertises advertised_port; the port is closed after a refusal', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const c = parseHttpChallengeConfig(plugin({ hostname: 'node1.example.org', agentname: 'web1', port, advertised_port: 80 }));
    const att = new HttpChallengeAttestor(c, { log: nullLogger, bindHost: '127.0.0.1' });
    const seen: Seen = {};
    // The fake server reads the advertised port from the payload; here it must call the real one.
    const stream = fakeServer(seen, 'refuse');
    const send = stream.sendAttestationData.bind(stream);
    let advertised = 0;
    stream.sendAttestationData = async (d) => {
      const r = await send(d);
      advertised = seen.payload!.port;
      seen.payload!.port = port;
      return r;
    };
    await expect(att.attest(stream, new AbortController().signal)).rejects.toThrow(/challenge verification failed/);
    expect(advertised).toBe(80);
    expect(seen.fetched).toEqual({ status: 200, body: NONCE });
    expect(await tryConnect(port)).toBe('ECONNREFUSED');
  });

  it('an aborted attestation closes the port, even while the server has not answered', async () => {
    const c = parseHttpChallengeConfig(plugin({ hostname: 'node1.example.org' }));
    const att = new HttpChallengeAttestor(c, { log: nullLogger, bindHost: '127.0.0.1' });
    const seen: Seen = {};
    const ac = new AbortController();
    const running = att.attest(fakeServer(seen, 'hang'), ac.signal);
    await expect.poll(() => seen.fetched, { timeout: 5_000 }).toBeDefined();
    // Still attesting: the nonce is still served.
    expect(await get(seen.payload!.port, challengePath('default'))).toEqual({ status: 200, body: `${NONCE}\n` });
    ac.abort(new Error('agent stopping'));
    await expect(running).rejects.toThrow(/agent stopping/);
    expect(await tryConnect(seen.payload!.port)).toBe('ECONNREFUSED');
  });

  it('close() during an attestation releases the port', async () => {
    const c = parseHttpChallengeConfig(plugin({ hostname: 'node1.example.org' }));
    const att = new HttpChallengeAttestor(c, { log: nullLogger, bindHost: '127.0.0.1' });
    const seen: Seen = {};
    const running = att.attest(fakeServer(seen, 'hang'), new AbortController().signal);
    running.catch(() => undefined);
    await expect.poll(() => seen.fetched, { timeout: 5_000 }).toBeDefined();
    await att.close();
    expect(await tryConnect(seen.payload!.port)).toBe('ECONNREFUSED');
  });

  it('a port in use fails with an error naming the port and what to do, before anything is sent', async () => {
    const taken = createServer();
    opened.push(taken);
    await new Promise<void>((r) => taken.listen(0, r));
    const port = (taken.address() as AddressInfo).port;
    const c = parseHttpChallengeConfig(plugin({ hostname: 'node1.example.org', port }));
    const att = new HttpChallengeAttestor(c, { log: nullLogger });
    const seen: Seen = {};
    await expect(att.attest(fakeServer(seen), new AbortController().signal)).rejects.toThrow(
      expect.objectContaining({
        code: 'node_attestor_listen',
        message: expect.stringMatching(new RegExp(`^nodeattestor\\(http_challenge\\): could not listen on port ${port}: .*EADDRINUSE.*another process holds it`)),
      }),
    );
    expect(seen.payload).toBeUndefined();
  });
});
