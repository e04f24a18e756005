/**
 * Node attestation against a real spire-server v1.13.3, the same scenario run with spire-agent
 * (reference) and spiffe-agent: join_token (agent.conf, -joinToken flag, join_token_file) and
 * x509pop (with intermediates), a reused join token refused, a wrong trust bundle refused.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  UID_A,
  UID_B,
  UID_NONE,
  agentConfFor,
  fetchX509,
  makeX509popCA,
  startAgent,
  startSpireServer,
  waitForSvid,
  type SpireBinaries,
  type SpireServer,
  type X509popCA,
} from '../../helpers/spire/index.js';
import { TestCA } from '../../helpers/test-ca.js';
import { Cleanup, KINDS, id, plan, tag, uidEntry } from './fixture.js';

let bins: SpireBinaries;
let server: SpireServer;
let popCA: X509popCA;
const cleanup = new Cleanup();

beforeAll(async () => {
  bins = plan.require();
  popCA = cleanup.add(await makeX509popCA());
  server = cleanup.add(
    await startSpireServer({ bins, nodeAttestors: { joinToken: true, x509pop: { caBundlePath: popCA.caBundlePath } }, cacheReloadInterval: '1s' }),
  );
});
afterAll(() => cleanup.run());

describe.skipIf(plan.skip).each(KINDS)('node attestation to spire-server v1.13.3: %s', (kind) => {
  it.each(['conf', 'flag', 'file'] as const)('join_token (given via %s): the server lists a join_token agent and workloads get their entries', async (via) => {
    const t = tag(kind, `jt-${via}`);
    const alias = id(`/node/${t}`);
    const token = await server.generateToken(alias);
    await server.createEntries([uidEntry(id(`/${t}/a`), alias, UID_A), uidEntry(id(`/${t}/b`), alias, UID_B, { hint: 'b-hint' })]);
    const agent = cleanup.add(await startAgent(kind, bins, await agentConfFor(server, { joinToken: token, joinTokenVia: via }, t)));

    const a = await waitForSvid(agent, UID_A, id(`/${t}/a`));
    expect(a.svids.map((s) => s.id)).toEqual([id(`/${t}/a`)]);
    expect(a.svids[0]!.verified, a.svids[0]!.verifyError).toBe(true);
    expect(Object.keys(a.bundles)).toEqual([`spiffe://${server.trustDomain}`]);
    const b = await waitForSvid(agent, UID_B, id(`/${t}/b`));
    expect(b.svids[0]!.hint).toBe('b-hint');
    const none = await fetchX509(agent, UID_NONE, { timeoutS: 5 });
    expect(none.ok, JSON.stringify(none)).toBe(false);
    expect(none.code).toBe('PermissionDenied');

    const agents = await server.listAgents();
    const me = agents.find((x) => x.id === server.agentIdForToken(token));
    expect(me, `agent list: ${JSON.stringify(agents.map((x) => x.id))}`).toBeDefined();
    expect(me!.attestationType).toBe('join_token');
    expect(me!.canReattest).toBe(false);
    expect(me!.banned).toBe(false);
    await agent.destroy();
  });

  it.each([false, true])('x509pop (intermediate: %s): challenge answered, agent ID from the leaf fingerprint, reattestable', async (viaIntermediate) => {
    const t = tag(kind, 'pop');
    const node = await popCA.issueNode(t, { viaIntermediate });
    const agentId = node.agentId(server.trustDomain);
    await server.createEntries([uidEntry(id(`/${t}/a`), agentId, UID_A)]);
    const agent = cleanup.add(await startAgent(kind, bins, await agentConfFor(server, { x509pop: node }, t)));
    await waitForSvid(agent, UID_A, id(`/${t}/a`));
    const me = (await server.listAgents()).find((x) => x.id === agentId);
    expect(me).toBeDefined();
    expect(me!.attestationType).toBe('x509pop');
    expect(me!.canReattest).toBe(true);
    await agent.destroy();
  });

  // The two refusals wait for the agent to give up (spire-agent retries ~40 s first): run them together.
  it.concurrent('a second agent with an already used join token is refused and exits with an error naming the token problem', async () => {
    const t = tag(kind, 'reuse');
    const token = await server.generateToken();
    const first = cleanup.add(await startAgent(kind, bins, await agentConfFor(server, { joinToken: token }, t)));
    const before = (await server.listAgents()).filter((x) => x.id === server.agentIdForToken(token));
    expect(before).toHaveLength(1);
    const second = cleanup.add(await startAgent(kind, bins, await agentConfFor(server, { joinToken: token }, `${t}-2`), { waitReady: false }));
    const log = await second.waitExit(60_000);
    expect(second.daemon.proc.exitCode, second.logTail()).not.toBe(0);
    expect(log).toMatch(/join token|token .*(used|not found|does not exist)|failed to attest/i);
    // The first agent is untouched and still the only one with this ID.
    expect(first.daemon.alive()).toBe(true);
    expect((await server.listAgents()).filter((x) => x.id === server.agentIdForToken(token))).toHaveLength(1);
    await first.destroy();
    await second.destroy();
  });

  it.concurrent('a trust bundle that does not hold the server CA is refused with a clear error, and the token stays unused', async () => {
    const t = tag(kind, 'badbundle');
    const alias = id(`/node/${t}`);
    const token = await server.generateToken(alias);
    const other = await TestCA.create(server.trustDomain);
    const conf = await agentConfFor(server, { joinToken: token }, t);
    const wrong = join(conf.dir, 'wrong-bundle.pem');
    await writeFile(wrong, `-----BEGIN CERTIFICATE-----\n${Buffer.from(other.der()).toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`);
    const bad = cleanup.add(await startAgent(kind, bins, { ...conf, trustBundlePath: wrong }, { waitReady: false }));
    const log = await bad.waitExit(90_000);
    expect(bad.daemon.proc.exitCode, bad.logTail()).not.toBe(0);
    expect(log).toMatch(/certificate signed by unknown authority|unknown authority|verify|x509|trust bundle/i);
    expect((await server.listAgents()).some((x) => x.id === server.agentIdForToken(token))).toBe(false);
    // With the right bundle the same token still works: nothing was sent before the TLS check failed.
    await server.createEntries([uidEntry(id(`/${t}/a`), alias, UID_A)]);
    const good = cleanup.add(await startAgent(kind, bins, conf));
    await waitForSvid(good, UID_A, id(`/${t}/a`));
    await good.destroy();
  });
});
