/**
 * The helpers on real node:tls and node:https sockets over loopback. The source is a stand-in that
 * holds a fixed X509Context and lets the test rotate it (no Workload API here; the integration test
 * sdk-mtls-rotation runs the real agent).
 */
import { once } from 'node:events';
import https from 'node:https';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TestCA } from '../../../helpers/test-ca.js';
import { BundleSet, parseX509SVID, type X509Bundle, type X509SVID } from '../../../../src/svid/index.js';
import type { X509Context } from '../../../../src/sdk/index.js';
import { MTLSAgent, authorizeAny, authorizeID, hookMTLSServer, mtlsClientOptions, mtlsServerOptions, type X509SourceLike } from '../../../../src/sdk/tls/index.js';

class StaticSource implements X509SourceLike {
  #ctx: X509Context;
  readonly #listeners = new Set<(ctx: X509Context) => void>();
  constructor(svid: X509SVID, bundles: X509Bundle[]) {
    this.#ctx = { svids: [svid], bundles: new BundleSet(bundles) };
  }
  getX509SVID(): X509SVID {
    return this.#ctx.svids[0] as X509SVID;
  }
  getX509Context(): X509Context {
    return this.#ctx;
  }
  onUpdate(l: (ctx: X509Context) => void): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }
  rotate(svid: X509SVID): void {
    this.#ctx = { ...this.#ctx, svids: [svid] };
    for (const l of this.#listeners) l(this.#ctx);
  }
}

const ca = await TestCA.create('example.org');
const other = await TestCA.create('other.test');
async function svid(issuer: TestCA, id: string, opts: Parameters<TestCA['createX509SVID']>[1] = {}): Promise<X509SVID> {
  const s = await issuer.createX509SVID(id, opts);
  return parseX509SVID(s.chain, s.privateKeyPkcs8);
}
const SERVER = 'spiffe://example.org/server';
const CLIENT = 'spiffe://example.org/client';

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

/** A tls server that echoes the client's ID; returns its port and the refusals it saw. */
async function echoServer(source: StaticSource, authorizer = authorizeID(CLIENT)): Promise<{ port: number; refused: Error[] }> {
  const refused: Error[] = [];
  const server = tls.createServer(mtlsServerOptions(source), (socket) => socket.end(`hello ${socket.getPeerX509Certificate()?.subjectAltName}\n`));
  server.on('tlsClientError', () => {});
  cleanup.push(hookMTLSServer(server, source, authorizer, { onRefused: (err) => refused.push(err) }), () => server.close());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, refused };
}

/** Connects, reads until the server closes; resolves with what it read or rejects with the error. */
function talk(port: number, source: StaticSource, authorizer = authorizeID(SERVER)): Promise<{ text: string; serverSerial: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ ...mtlsClientOptions(source, authorizer), host: '127.0.0.1', port });
    let text = '';
    let serverSerial = '';
    socket.setEncoding('utf8');
    socket.on('secureConnect', () => (serverSerial = (socket.getPeerX509Certificate()?.serialNumber ?? '').toLowerCase().replace(/^0+/, '')));
    socket.on('data', (d: string) => (text += d));
    socket.on('error', reject);
    socket.on('close', () => resolve({ text, serverSerial }));
  });
}

describe('mTLS with X509-SVIDs over node:tls', () => {
  it('both sides verify and authorize each other by SPIFFE ID', async () => {
    const { port } = await echoServer(new StaticSource(await svid(ca, SERVER), [ca.bundle()]));
    const got = await talk(port, new StaticSource(await svid(ca, CLIENT), [ca.bundle()]));
    expect(got.text).toBe(`hello URI:${CLIENT}\n`);
  });

  it('the client refuses a server with another ID before sending anything (tlsconfig_unauthorized)', async () => {
    const { port } = await echoServer(new StaticSource(await svid(ca, 'spiffe://example.org/impostor'), [ca.bundle()]));
    await expect(talk(port, new StaticSource(await svid(ca, CLIENT), [ca.bundle()]))).rejects.toMatchObject({
      code: 'tlsconfig_unauthorized',
      message: 'tlsconfig: unexpected ID "spiffe://example.org/impostor" (want "spiffe://example.org/server")',
    });
  });

  it('the server drops a client with another ID before reading from it, and says why', async () => {
    const { port, refused } = await echoServer(new StaticSource(await svid(ca, SERVER), [ca.bundle()]));
    const got = await talk(port, new StaticSource(await svid(ca, 'spiffe://example.org/intruder'), [ca.bundle()])).catch((e: Error) => ({ text: `error ${e.message}` }));
    expect(got.text).not.toContain('hello');
    expect(refused.map((e) => e.message)).toEqual(['tlsconfig: unexpected ID "spiffe://example.org/intruder" (want "spiffe://example.org/client")']);
  });

  it('a client whose SVID comes from a trust domain the server has no bundle for fails the handshake', async () => {
    const { port, refused } = await echoServer(new StaticSource(await svid(ca, SERVER), [ca.bundle()]), authorizeAny());
    const got = await talk(port, new StaticSource(await svid(other, 'spiffe://other.test/client'), [ca.bundle(), other.bundle()]), authorizeAny()).catch((e: Error) => ({ text: `error ${e.message}` }));
    expect(got.text).not.toContain('hello');
    expect(refused).toEqual([]); // OpenSSL refused it during the handshake, the hook never saw it
  });

  it('a server presenting an expired SVID, or one not chaining to its own trust domain, is refused by the client', async () => {
    const client = new StaticSource(await svid(ca, CLIENT), [ca.bundle(), other.bundle()]);
    const expired = await echoServer(new StaticSource(await svid(ca, SERVER, { notBefore: new Date(Date.now() - 7200_000), ttlMs: 3600_000 }), [ca.bundle()]));
    await expect(talk(expired.port, client)).rejects.toMatchObject({ code: 'CERT_HAS_EXPIRED' });
    // other.test's CA vouching for an example.org ID: OpenSSL accepts the chain (both are trusted), SPIFFE does not.
    const forged = await echoServer(new StaticSource(await svid(other, SERVER), [ca.bundle(), other.bundle()]));
    await expect(talk(forged.port, client)).rejects.toMatchObject({ code: 'x509svid_invalid', reason: 'unverifiable' });
  });

  it('mtlsServerOptions alone authorizes nobody: without hookMTLSServer any client chaining to a source authority is served (README says the hook is required)', async () => {
    const server = tls.createServer(mtlsServerOptions(new StaticSource(await svid(ca, SERVER), [ca.bundle()])), (socket) => socket.end('served\n'));
    server.on('tlsClientError', () => {});
    cleanup.push(() => server.close());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const got = await talk((server.address() as AddressInfo).port, new StaticSource(await svid(ca, 'spiffe://example.org/intruder'), [ca.bundle()]));
    expect(got.text).toBe('served\n');
  });

  it('a client without an SVID that ends at a bundle authority is refused even with authorizeAny (no URI SAN)', async () => {
    const { port, refused } = await echoServer(new StaticSource(await svid(ca, SERVER), [ca.bundle()]), authorizeAny());
    const noSan = await ca.createX509SVID(CLIENT, { uris: [], dnsNames: ['client.example.org'] });
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      key: (await import('../../../../src/svid/index.js')).pemEncodePrivateKey(noSan.privateKeyPkcs8),
      cert: (await import('../../../../src/svid/index.js')).pemEncodeCertificates(noSan.chain),
      rejectUnauthorized: false,
    });
    socket.on('error', () => {});
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    await once(socket, 'close');
    expect(text).toBe('');
    expect(refused.map((e) => (e as Error & { reason?: string }).reason)).toEqual(['no_uri_san']);
  });

  it('after the server source rotates, new connections get its new SVID (setSecureContext)', async () => {
    const serverSource = new StaticSource(await svid(ca, SERVER), [ca.bundle()]);
    const { port } = await echoServer(serverSource);
    const client = new StaticSource(await svid(ca, CLIENT), [ca.bundle()]);
    const before = await talk(port, client);
    const next = await svid(ca, SERVER);
    serverSource.rotate(next);
    const after = await talk(port, client);
    expect(before.serverSerial).not.toBe(after.serverSerial);
    expect(after.serverSerial).toBe(next.serial);
  });

  it('the server issues no session tickets, so no connection resumes a handshake made before a rotation', async () => {
    const { port } = await echoServer(new StaticSource(await svid(ca, SERVER), [ca.bundle()]));
    const client = new StaticSource(await svid(ca, CLIENT), [ca.bundle()]);
    const connect = (session?: Buffer): Promise<{ reused: boolean; session: Buffer | undefined }> =>
      new Promise((resolve, reject) => {
        let got: Buffer | undefined;
        const socket = tls.connect({ ...mtlsClientOptions(client, authorizeID(SERVER)), host: '127.0.0.1', port, ...(session ? { session } : {}) });
        socket.on('session', (s: Buffer) => (got = s));
        socket.on('data', () => {});
        socket.on('error', reject);
        let reused = false;
        socket.on('secureConnect', () => (reused = socket.isSessionReused()));
        socket.on('close', () => resolve({ reused, session: got }));
      });
    const first = await connect();
    const second = await connect(first.session);
    expect(second.reused).toBe(false);
  });
});

describe('MTLSAgent over node:https', () => {
  it('keeps one keep-alive connection across a rotation, and a new connection presents the new client SVID', async () => {
    const serverSource = new StaticSource(await svid(ca, SERVER), [ca.bundle()]);
    const server = https.createServer(mtlsServerOptions(serverSource), (req, res) => {
      const socket = req.socket as tls.TLSSocket;
      res.end(`${socket.getPeerX509Certificate()?.serialNumber.toLowerCase().replace(/^0+/, '')} ${(socket as unknown as { n?: number }).n ?? 'x'}`);
    });
    let conns = 0;
    server.on('secureConnection', (s) => ((s as unknown as { n: number }).n = ++conns));
    cleanup.push(hookMTLSServer(server, serverSource, authorizeID(CLIENT)), () => server.close());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;

    const clientSource = new StaticSource(await svid(ca, CLIENT), [ca.bundle()]);
    const agent = new MTLSAgent(clientSource, authorizeID(SERVER), { keepAlive: true, maxSockets: 1 });
    cleanup.push(() => agent.destroy());
    const get = (): Promise<string> =>
      new Promise((resolve, reject) => {
        https.get({ host: '127.0.0.1', port, agent, path: '/' }, (res) => {
          let b = '';
          res.on('data', (d: Buffer) => (b += d.toString()));
          res.on('end', () => resolve(b));
        }).on('error', reject);
      });
    const first = clientSource.getX509SVID().serial;
    expect(await get()).toBe(`${first} 1`);
    const rotated = await svid(ca, CLIENT);
    clientSource.rotate(rotated);
    expect(await get()).toBe(`${first} 1`); // the open connection carries on
    agent.destroy();
    const fresh = new MTLSAgent(clientSource, authorizeID(SERVER), { keepAlive: true });
    cleanup.push(() => fresh.destroy());
    const again = await new Promise<string>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port, agent: fresh, path: '/' }, (res) => {
        let b = '';
        res.on('data', (d: Buffer) => (b += d.toString()));
        res.on('end', () => resolve(b));
      }).on('error', reject);
    });
    expect(again).toBe(`${rotated.serial} 2`);
  });
});
