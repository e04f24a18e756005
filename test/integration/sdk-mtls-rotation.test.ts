/**
 * README "Node SDK" mTLS example, end to end: two Node processes of different uids, each a
 * workload with its own SPIFFE ID from the real agent over the Workload API, talk https with mTLS
 * (@spiffe-agent/sdk/tls). With an X.509-SVID TTL of 4 s both rotate every ~2 s; one keep-alive
 * connection carries requests across three rotations of each side, well past the expiry of the
 * certificates it was opened with, and a fresh connection after each rotation shows both sides
 * presenting their new SVIDs (the server through setSecureContext).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, Output, REPO, collect, uidEntry } from '../helpers/agent-process.js';

const SERVER = { uid: 1121, gid: 1121 };
const CLIENT = { uid: 1122, gid: 1122 };
const SERVER_ID = 'spiffe://example.org/mtls/server';
const CLIENT_ID = 'spiffe://example.org/mtls/client';
const FIXTURES = join(REPO, 'test', 'fixtures', 'clients');

let agent: AgentProcess;
let server: ChildProcess | undefined;

beforeAll(async () => {
  agent = await AgentProcess.start({
    entries: [uidEntry('/mtls/server', SERVER.uid, { x509_svid_ttl: 4 }), uidEntry('/mtls/client', CLIENT.uid, { x509_svid_ttl: 4 })],
  });
});
afterAll(async () => {
  server?.kill('SIGKILL');
  await agent?.stop();
});

interface Summary {
  requests: number;
  keepAliveConns: number[];
  errors: string[];
  fresh: { clientSerialSeenByServer: string; clientSerialNow: string; serverSerial: string; conn: number }[];
  ownSerials: string[];
  firstNotAfter: number;
  ranUntil: number;
}

describe('mTLS between two workloads across SVID rotations', () => {
  it('one keep-alive connection stays up across three rotations of both sides, and fresh connections present the new SVIDs', async () => {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', SPIFFE_ENDPOINT_SOCKET: `unix://${agent.socketPath}` };
    server = spawn(process.execPath, [join(FIXTURES, 'mtls-server.mjs'), CLIENT_ID], { stdio: ['ignore', 'pipe', 'pipe'], env, ...SERVER });
    const serverOut = new Output(server);
    await serverOut.until((t) => /listening \d+/.test(t), 30_000, 'the server listening');
    const port = /listening (\d+)/.exec(serverOut.text)![1]!;
    expect(serverOut.text).toContain(`svid ${SERVER_ID} `);

    const client = spawn(process.execPath, [join(FIXTURES, 'mtls-client.mjs'), port, SERVER_ID, '3'], { stdio: ['ignore', 'pipe', 'pipe'], env, ...CLIENT });
    const r = await collect(client, 120_000);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout.trim().split('\n').pop()!) as Summary;
    console.log(`mtls: ${s.requests} requests on ${s.keepAliveConns.length} keep-alive connection(s), ${s.ownSerials.length - 1} client rotations, ${s.fresh.length} fresh connections, ${Math.round((s.ranUntil - s.firstNotAfter) / 1000)} s past the first SVID's expiry`);

    expect(s.errors).toEqual([]);
    expect(serverOut.text).not.toContain('refused');
    // Three rotations of the client's SVID, three distinct server certificates on fresh connections.
    expect(s.ownSerials.length).toBeGreaterThanOrEqual(4);
    expect(new Set(s.fresh.map((f) => f.serverSerial)).size).toBeGreaterThanOrEqual(3);
    expect((serverOut.text.match(/^rotated /gm) ?? []).length).toBeGreaterThanOrEqual(3);
    // The keep-alive connection: one connection for every request, still used after its certificates expired.
    expect(s.keepAliveConns).toHaveLength(1);
    expect(s.requests).toBeGreaterThan(10);
    expect(s.ranUntil).toBeGreaterThan(s.firstNotAfter);
    // Each fresh connection was a new one and carried the client's SVID of that moment.
    for (const f of s.fresh) {
      expect(f.conn).not.toBe(s.keepAliveConns[0]);
      expect(s.ownSerials).toContain(f.clientSerialSeenByServer);
    }
    expect(s.fresh.filter((f) => f.clientSerialSeenByServer === f.clientSerialNow).length).toBeGreaterThanOrEqual(2);
  }, 150_000);
});
