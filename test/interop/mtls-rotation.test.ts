/**
 * Real peers: two go-spiffe v2.8.1 workloads (workloadapi.NewX509Source + tlsconfig.MTLSServerConfig /
 * MTLSClientConfig + tlsconfig.AuthorizeID) talking mTLS to each other with SVIDs from spiffe-agent,
 * while the agent rotates 20 s X.509-SVIDs underneath them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentUnderTest, TD, UID_A, UID_B, assertPrerequisites, explain, spawnAs, uidEntry } from './harness.js';

const ID_A = `spiffe://${TD}/a`;
const ID_B = `spiffe://${TD}/b`;
const CLIENT_SECONDS = 45;

let agent: AgentUnderTest;

beforeAll(async () => {
  assertPrerequisites();
  agent = await AgentUnderTest.start({ entries: [uidEntry(ID_A, UID_A), uidEntry(ID_B, UID_B)], x509SvidTtl: '20s' });
});

afterAll(async () => {
  await agent?.stop();
});

describe('go-spiffe mTLS across X.509-SVID rotation', () => {
  it(
    `server as uid 1001 (a) and client as uid 1002 (b) keep handshaking for ${CLIENT_SECONDS}s with a 20s TTL`,
    async () => {
      // The server outlives the client so every client dial has someone to talk to.
      const server = spawnAs(
        UID_A,
        agent,
        agent.goClient,
        ['mtls-server', '-addr', '127.0.0.1:0', '-expect-id', ID_B, '-duration', `${CLIENT_SECONDS + 8}s`],
        (CLIENT_SECONDS + 60) * 1000,
      );
      const [, addr] = await server.waitForStderr(/LISTENING (\S+)/, 30_000);
      const client = spawnAs(
        UID_B,
        agent,
        agent.goClient,
        ['mtls-client', '-addr', addr!, '-expect-id', ID_A, '-duration', `${CLIENT_SECONDS}s`, '-interval', '500ms'],
        (CLIENT_SECONDS + 60) * 1000,
      );
      const c = await client.result;
      const s = await server.result;
      const detail = `client: ${explain(c, agent)}\n\nserver: ${explain(s, agent)}`;
      const brief = (j: any) =>
        j ? `ok=${j.handshakesOk} failed=${j.failures} peerSerials=${j.peerSerials?.length} sourceUpdates=${j.sourceUpdates}` : 'no JSON';
      console.info(`mTLS over rotation: client ${brief(c.json)}; server ${brief(s.json)}`);

      expect(c.code, detail).toBe(0);
      expect(s.code, detail).toBe(0);
      expect(c.json.failures, detail).toBe(0);
      expect(s.json.failures, detail).toBe(0);
      // ~90 dials at 500 ms; demand most of them so a stalled client cannot pass.
      expect(c.json.handshakesOk, detail).toBeGreaterThanOrEqual(CLIENT_SECONDS);
      expect(s.json.handshakesOk, detail).toBe(c.json.handshakesOk);
      // Rotation happened and reached both workloads: each saw at least two distinct peer SVIDs ...
      expect(c.json.peerSerials.length, detail).toBeGreaterThanOrEqual(2);
      expect(s.json.peerSerials.length, detail).toBeGreaterThanOrEqual(2);
      // ... and what one side presented is what the other side saw.
      expect([...s.json.ownSerials].sort(), detail).toEqual([...c.json.peerSerials].sort());
      expect([...c.json.ownSerials].sort(), detail).toEqual([...s.json.peerSerials].sort());
    },
    (CLIENT_SECONDS + 90) * 1000,
  );
});
