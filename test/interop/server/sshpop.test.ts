/**
 * sshpop against a real spire-server v1.13.3 (NodeAttestor "sshpop" with cert_authorities),
 * spire-agent v1.13.3 and spiffe-agent on the same host keys and certificates made by ssh-keygen:
 * the same agent ID (sshpop/<fingerprint>), attestation type, reattestability and selectors;
 * every host key type signs an answer the server accepts; a certificate from a CA the server does
 * not trust is refused, and an expired one is refused with a message an operator can act on.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UID_A, agentConfFor, startAgent, startSpireServer, waitForSvid, type AgentKind, type SpireBinaries, type SpireServer } from '../../helpers/spire/index.js';
import { requireTool } from '../../helpers/require-tool.js';
import { SSHTestCA, hasSshKeygen } from '../../helpers/ssh-certs.js';
import { Cleanup, KINDS, TD, id, plan, tag, uidEntry } from './fixture.js';

const noSsh = requireTool('ssh-keygen', hasSshKeygen(), 'apt-get install openssh-client');

let bins: SpireBinaries;
let server: SpireServer;
let ca: SSHTestCA;
let otherCa: SSHTestCA;
const cleanup = new Cleanup();

beforeAll(async () => {
  if (plan.skip || noSsh) return;
  bins = plan.require();
  const dir = await mkdtemp('/tmp/spire-it-sshpop-');
  await chmod(dir, 0o755);
  cleanup.defer(() => rm(dir, { recursive: true, force: true }));
  ca = await SSHTestCA.create(dir, 'ssh-ca');
  otherCa = await SSHTestCA.create(dir, 'other-ca');
  server = cleanup.add(
    await startSpireServer({
      bins,
      nodeAttestors: { joinToken: true },
      pluginsExtra: `    NodeAttestor "sshpop" { plugin_data { cert_authorities = ["${ca.publicKeyLine}"] } }\n`,
      cacheReloadInterval: '1s',
    }),
  );
});
afterAll(() => cleanup.run());

interface Seen {
  id: string;
  attestationType: string;
  canReattest: boolean;
  selectors: unknown;
}

describe.skipIf(plan.skip || noSsh)('sshpop with spire-server v1.13.3', () => {
  it('the same host key and certificate give both agents the same agent ID, attestation type, reattestability and selectors', async () => {
    const t = tag('spiffe-agent', 'sshpop-same');
    const host = await ca.issue('node1.example.org');
    const agentId = host.agentId(TD);
    await server.createEntries([uidEntry(id(`/${t}/a`), agentId, UID_A)]);
    const seen: Partial<Record<AgentKind, Seen>> = {};
    // One after the other: the second attestation of the same certificate replaces the first agent.
    for (const kind of KINDS) {
      const agent = cleanup.add(await startAgent(kind, bins, await agentConfFor(server, { sshpop: host }, `${t}-${kind}`)));
      await waitForSvid(agent, UID_A, id(`/${t}/a`));
      const me = (await server.listAgents()).find((x) => x.id === agentId);
      expect(me, `agent list has ${agentId}`).toBeDefined();
      seen[kind] = { id: me!.id, attestationType: me!.attestationType, canReattest: me!.canReattest, selectors: me!.raw['selectors'] ?? [] };
      await agent.destroy();
    }
    for (const s of Object.values(seen)) expect(s).toMatchObject({ id: agentId, attestationType: 'sshpop', canReattest: true });
    if (seen['spire-agent'] && seen['spiffe-agent']) expect(seen['spiffe-agent']).toEqual(seen['spire-agent']);
  });

  it.each(KINDS)('%s: an ECDSA and an RSA host key answer the challenge as the server verifies it', async (kind) => {
    for (const type of ['ecdsa', 'rsa'] as const) {
      const t = tag(kind, `sshpop-${type}`);
      const host = await ca.issue(`${t}.example.org`, { type });
      await server.createEntries([uidEntry(id(`/${t}/a`), host.agentId(TD), UID_A)]);
      const agent = cleanup.add(await startAgent(kind, bins, await agentConfFor(server, { sshpop: host }, t)));
      await waitForSvid(agent, UID_A, id(`/${t}/a`));
      expect((await server.listAgents()).some((x) => x.id === host.agentId(TD))).toBe(true);
      await agent.destroy();
    }
  });

  // Refused agents give up after their retries (spire-agent's take ~40 s): all of them at once.
  it('a certificate from a CA the server does not trust is refused; an expired one too, and spiffe-agent says so before asking', async () => {
    const runs = KINDS.flatMap((kind) =>
      (['other-ca', 'expired'] as const).map(async (what) => {
        const t = tag(kind, `sshpop-${what}`);
        const host = what === 'other-ca' ? await otherCa.issue(`${t}.example.org`) : await ca.issue(`${t}.example.org`, { validity: '20200101:20200102' });
        const agent = cleanup.add(await startAgent(kind, bins, await agentConfFor(server, { sshpop: host }, t), { waitReady: false }));
        const log = await agent.waitExit(120_000);
        expect(agent.daemon.proc.exitCode, agent.logTail()).not.toBe(0);
        expect((await server.listAgents()).some((x) => x.id === host.agentId(TD))).toBe(false);
        return { kind, what, log };
      }),
    );
    for (const { kind, what, log } of await Promise.all(runs)) {
      if (what === 'other-ca') expect(log, `${kind}: ${what}`).toMatch(/failed to check host key: ssh: no authorities for hostname/);
      else if (kind === 'spire-agent') expect(log, `${kind}: ${what}`).toMatch(/ssh: cert has expired/);
      else expect(log, `${kind}: ${what}`).toMatch(/nodeattestor\(sshpop\): host certificate ".*-cert\.pub" expired at 2020-01-02T00:00:00\.000Z; renew it/);
    }
  });
});
