/**
 * http_challenge against a real spire-server v1.13.3 (NodeAttestor "http_challenge" with
 * allowed_dns_patterns, allow_non_root_ports = true and a required_port), spire-agent v1.13.3 and
 * spiffe-agent from the same agent.conf, on loopback (hostname "127.0.0.1": the server refuses
 * "localhost"). Both get the same agent ID (http_challenge/127.0.0.1), selectors and
 * reattestability; a workload is served; the challenge port is closed once attested; the agent
 * renews its SVID (TOFU: re-attesting would be refused). A host name the server does not allow is
 * refused at once with the server's words; a port it does not allow is retried with spire-agent's
 * backoff until the minute is up, which spiffe-agent logs once and spire-agent at every retry.
 * A second server that allows only port 81 with tofu = false makes the node re-attestable: both
 * agents then attest again at rotation (this needs root, as the suite does).
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  JSON_LOGS,
  UID_A,
  agentConfFor,
  freePort,
  jsonLogs,
  startAgent,
  startSpireServer,
  waitFor,
  waitForSvid,
  type AgentKind,
  type HttpChallengeConf,
  type SpireBinaries,
  type SpireServer,
} from '../../helpers/spire/index.js';
import { Cleanup, KINDS, TD, id, plan, tag, uidEntry } from './fixture.js';

const HOST = '127.0.0.1';
const AGENT_ID = `spiffe://${TD}/spire/agent/http_challenge/${HOST}`;

let bins: SpireBinaries;
let server: SpireServer;
/** The server's required_port: every agent that should pass listens there, one at a time. */
let port: number;
const cleanup = new Cleanup();

beforeAll(async () => {
  if (plan.skip) return;
  bins = plan.require();
  port = await freePort();
  server = cleanup.add(
    await startSpireServer({
      bins,
      nodeAttestors: { joinToken: true },
      // A short agent SVID so the test sees a renewal within a minute.
      agentTtl: '1m',
      pluginsExtra: `    NodeAttestor "http_challenge" {
        plugin_data {
            allowed_dns_patterns = ["^127\\\\.0\\\\.0\\\\.1$"]
            allow_non_root_ports = true
            required_port = ${port}
        }
    }\n`,
      cacheReloadInterval: '1s',
    }),
  );
});
afterAll(() => cleanup.run());

function tryConnect(p: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: HOST, port: p });
    s.once('connect', () => (s.destroy(), resolve('connected')));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

const confFor = (t: string, h: HttpChallengeConf, extra = '') => agentConfFor(server, { httpChallenge: h, agentExtra: `${JSON_LOGS}${extra}` }, t);

interface Seen {
  id: string;
  attestationType: string;
  canReattest: boolean;
  selectors: unknown;
}

describe.skipIf(plan.skip)('http_challenge with spire-server v1.13.3', () => {
  it('both agents get the same agent ID, selectors and reattestability, serve a workload, close the port and renew', async () => {
    const t = tag('spiffe-agent', 'http-same');
    await server.createEntries([uidEntry(id(`/${t}/a`), AGENT_ID, UID_A)]);
    const seen: Partial<Record<AgentKind, Seen>> = {};
    // One after the other on the required port; TOFU: the first agent is evicted before the second attests.
    for (const kind of KINDS) {
      const agent = cleanup.add(await startAgent(kind, bins, await confFor(`${t}-${kind}`, { hostname: HOST, port })));
      await waitForSvid(agent, UID_A, id(`/${t}/a`));
      const me = (await server.listAgents()).find((x) => x.id === AGENT_ID);
      expect(me, `${kind}: agent list has ${AGENT_ID}`).toBeDefined();
      seen[kind] = { id: me!.id, attestationType: me!.attestationType, canReattest: me!.canReattest, selectors: me!.raw['selectors'] ?? [] };
      expect(await tryConnect(port), `${kind}: the challenge port is closed once attested`).toBe('ECONNREFUSED');
      // Not re-attestable (tofu): rotation must renew; a re-attestation would be refused and keep the serial.
      const renewed = await waitFor(
        `${kind} to renew its agent SVID`,
        async () => {
          const now = (await server.listAgents()).find((x) => x.id === AGENT_ID);
          return now && now.serial !== me!.serial ? now : undefined;
        },
        { timeoutMs: 75_000, intervalMs: 1_000, describe: () => agent.logTail() },
      );
      expect(renewed.attestationType).toBe('http_challenge');
      expect(jsonLogs(agent).some((r) => /attestation data has already been used/.test(JSON.stringify(r))), agent.logTail()).toBe(false);
      await waitForSvid(agent, UID_A, id(`/${t}/a`));
      await agent.destroy();
      await server.evictAgent(AGENT_ID);
    }
    for (const s of Object.values(seen)) {
      expect(s).toMatchObject({ id: AGENT_ID, attestationType: 'http_challenge', canReattest: false, selectors: [{ type: 'http_challenge', value: `hostname:${HOST}` }] });
    }
    if (seen['spire-agent'] && seen['spiffe-agent']) expect(seen['spiffe-agent']).toEqual(seen['spire-agent']);
  }, 300_000);

  it('a host name the server does not allow is refused at once, in the server\'s words, by both', async () => {
    for (const kind of KINDS) {
      const t = tag(kind, 'http-host');
      const agent = cleanup.add(await startAgent(kind, bins, await confFor(t, { hostname: 'node.not-allowed.example', port }), { waitReady: false }));
      const started = Date.now();
      const log = await agent.waitExit(60_000);
      expect(agent.daemon.proc.exitCode, agent.logTail()).not.toBe(0);
      // PermissionDenied is final: no backoff (the first wait alone would be 4.5 s or more).
      expect(Date.now() - started, agent.logTail()).toBeLessThan(15_000);
      expect(log, kind).toMatch(/the requested hostname is not allowed to connect/);
      // spiffe-agent adds what to change.
      if (kind === 'spiffe-agent') expect(log).toMatch(/hostname \\?"node\.not-allowed\.example\\?" matches none of the server's allowed_dns_patterns/);
      expect(jsonLogs(agent).filter((r) => r['msg'] === 'Failed to retrieve attestation result'), kind).toEqual([]);
      expect((await server.listAgents()).some((x) => x.id.endsWith('/node.not-allowed.example'))).toBe(false);
      await agent.destroy();
    }
  }, 180_000);

  // The server allows only a root port (81) and so may turn TOFU off: the node is re-attestable, and
  // rotation attests again over the challenge (the port opens for it and closes after), as spire-agent does.
  it('with tofu = false and a root port both agents re-attest at rotation instead of renewing', async () => {
    const rootPort = 81;
    const strict = cleanup.add(
      await startSpireServer({
        bins,
        nodeAttestors: { joinToken: true },
        agentTtl: '1m',
        pluginsExtra: `    NodeAttestor "http_challenge" {
        plugin_data {
            allowed_dns_patterns = ["^127\\\\.0\\\\.0\\\\.1$"]
            allow_non_root_ports = false
            required_port = ${rootPort}
            tofu = false
        }
    }\n`,
        cacheReloadInterval: '1s',
      }),
    );
    const t = tag('spiffe-agent', 'http-reattest');
    await strict.createEntries([uidEntry(id(`/${t}/a`), AGENT_ID, UID_A)]);
    const seen: Partial<Record<AgentKind, Seen>> = {};
    for (const kind of KINDS) {
      const conf = await agentConfFor(strict, { httpChallenge: { hostname: HOST, port: rootPort }, agentExtra: JSON_LOGS }, `${t}-${kind}`);
      const agent = cleanup.add(await startAgent(kind, bins, conf));
      await waitForSvid(agent, UID_A, id(`/${t}/a`));
      const me = (await strict.listAgents()).find((x) => x.id === AGENT_ID);
      expect(me, `${kind}: agent list has ${AGENT_ID}`).toBeDefined();
      seen[kind] = { id: me!.id, attestationType: me!.attestationType, canReattest: me!.canReattest, selectors: me!.raw['selectors'] ?? [] };
      await waitFor(
        `${kind} to re-attest`,
        async () => {
          const now = (await strict.listAgents()).find((x) => x.id === AGENT_ID);
          return now && now.serial !== me!.serial ? now : undefined;
        },
        { timeoutMs: 75_000, intervalMs: 1_000, describe: () => agent.logTail() },
      );
      const msgs = jsonLogs(agent).map((r) => String(r['msg']));
      if (kind === 'spire-agent') expect(msgs, agent.logTail()).toContain('Successfully reattested node');
      else expect(msgs.filter((m) => m === 'Attesting with an HTTP challenge').length, agent.logTail()).toBeGreaterThanOrEqual(2);
      expect(await tryConnect(rootPort), `${kind}: port ${rootPort} closed after re-attesting`).toBe('ECONNREFUSED');
      await waitForSvid(agent, UID_A, id(`/${t}/a`));
      await agent.destroy();
      await strict.evictAgent(AGENT_ID);
    }
    for (const s of Object.values(seen)) expect(s).toMatchObject({ id: AGENT_ID, attestationType: 'http_challenge', canReattest: true });
    if (seen['spire-agent'] && seen['spiffe-agent']) expect(seen['spiffe-agent']).toEqual(seen['spire-agent']);
  }, 300_000);

  // Both at once (each on a port of its own that the server does not allow): ~41 s of retries each.
  it('a port the server does not allow is retried with spire-agent\'s backoff for a minute; spiffe-agent logs the repeats at debug', async () => {
    const runs = KINDS.map(async (kind) => {
      const t = tag(kind, 'http-port');
      const own = await freePort();
      const agent = cleanup.add(await startAgent(kind, bins, await confFor(t, { hostname: HOST, port: own }), { waitReady: false }));
      const log = await agent.waitExit(120_000);
      const failures = jsonLogs(agent).filter((r) => r['msg'] === 'Failed to retrieve attestation result');
      return { kind, own, log, failures, exitCode: agent.daemon.proc.exitCode, tail: agent.logTail() };
    });
    const results = await Promise.all(runs);
    for (const r of results) {
      expect(r.exitCode, r.tail).not.toBe(0);
      expect(r.log, r.kind).toMatch(new RegExp(`port ${r.own} is not allowed to be used by this server`));
      // 5 + 7.5 + 11.25 + 16.875 s of waits; the next (25.3 s) would pass the minute: four retries
      // (five only if every jitter drew near -10 %).
      expect(r.failures.length, `${r.kind}\n${r.tail}`).toBeGreaterThanOrEqual(4);
      expect(r.failures.length, `${r.kind}\n${r.tail}`).toBeLessThanOrEqual(5);
      const warned = r.failures.filter((f) => f['level'] === 'warning');
      expect(warned.length, r.kind).toBe(r.kind === 'spire-agent' ? r.failures.length : 1);
      expect(await tryConnect(r.own), `${r.kind}: port closed after the refusals`).toBe('ECONNREFUSED');
    }
  }, 180_000);
});
