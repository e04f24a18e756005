/**
 * tpm_devid against a real spire-server v1.13.3 (NodeAttestor "tpm_devid" with devid_ca_path = the
 * test DevID CA and endorsement_ca_path = swtpm-localca's root and intermediate), with
 * spire-agent v1.13.3 and spiffe-agent attesting one after the other from the SAME swtpm and the
 * same DevID files (scripts/swtpm.sh provisions them as spire-agent expects): the same agent ID
 * (tpm_devid/<sha1 of the DevID certificate>), attestation type, reattestability and selectors;
 * a workload entry under a node alias on tpm_devid:subject:cn:… is served; renewal re-attests
 * through the TPM; and the TPM is left free for the other agent. Refusals: a DevID certificate
 * from another CA, an EK the server's endorsement CA did not issue, a wrong hierarchy password.
 * With KeyManager "tpm" as well, nothing secret is on disk: attest, renew, resume after kill -9.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UID_A, agentConfFor, startAgent, startSpireServer, waitFor, waitForSvid, type AgentKind, type SpireBinaries, type SpireServer, type TpmDevidFiles } from '../../helpers/spire/index.js';
import { requireTool } from '../../helpers/require-tool.js';
import { Swtpm, SWTPM_WHY, swtpmFound } from '../../helpers/tpm/swtpm.js';
import { Cleanup, KINDS, id, plan, tag, uidEntry } from './fixture.js';

const noSwtpm = requireTool('swtpm', swtpmFound(), SWTPM_WHY);
const run = promisify(execFile);

const AGENT_TTL_S = 40;
const SUBJECT_CN = 'spiffe-agent test DevID';

let bins: SpireBinaries;
let server: SpireServer;
let tpm: Swtpm;
let dir: string;
const cleanup = new Cleanup();

const serverPlugin = (devidCa: string, ekCa: string) => `    NodeAttestor "tpm_devid" { plugin_data {
        devid_ca_path = "${devidCa}"
        endorsement_ca_path = "${ekCa}"
    } }\n`;

function files(t: Swtpm, extra: Partial<TpmDevidFiles> = {}): TpmDevidFiles {
  return {
    devicePath: t.socket,
    certPath: join(t.template, 'devid.pem'),
    pubPath: join(t.template, 'devid_pub.bin'),
    privPath: join(t.template, 'devid_priv.bin'),
    devidPassword: t.devidPassword,
    ...extra,
  };
}

beforeAll(async () => {
  if (plan.skip || noSwtpm) return;
  bins = plan.require();
  dir = await mkdtemp('/tmp/spire-it-tpm-devid-');
  await chmod(dir, 0o755);
  cleanup.defer(() => rm(dir, { recursive: true, force: true }));
  tpm = await Swtpm.start();
  cleanup.defer(() => tpm.stop());
  server = cleanup.add(
    await startSpireServer({
      bins,
      agentTtl: `${AGENT_TTL_S}s`,
      nodeAttestors: { joinToken: true },
      pluginsExtra: serverPlugin(join(tpm.template, 'devid-ca.pem'), join(tpm.template, 'ek-ca.pem')),
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

async function sha1Hex(pemPath: string): Promise<string> {
  const { stdout } = await run('openssl', ['x509', '-in', pemPath, '-noout', '-fingerprint', '-sha1']);
  return stdout.trim().split('=')[1]!.replace(/:/g, '').toLowerCase();
}

describe.skipIf(plan.skip || noSwtpm)('tpm_devid with spire-server v1.13.3', () => {
  it('one TPM and one set of DevID files give both agents the same agent ID and selectors; a workload under a node alias is served; renewal re-attests', async () => {
    const t = tag('spiffe-agent', 'tpm-devid-same');
    const agentId = `spiffe://${server.trustDomain}/spire/agent/tpm_devid/${await sha1Hex(join(tpm.template, 'devid.pem'))}`;
    const alias = id(`/node/${t}`);
    await server.createEntries([
      { spiffe_id: alias, parent_id: `spiffe://${server.trustDomain}/spire/server`, selectors: [{ type: 'tpm_devid', value: `subject:cn:${SUBJECT_CN}` }] },
      uidEntry(id(`/${t}/a`), alias, UID_A),
    ]);
    const seen: Partial<Record<AgentKind, Seen>> = {};
    // One after the other, on the same TPM: each must leave it as it found it for the next.
    for (const kind of KINDS) {
      const agent = cleanup.add(await startAgent(kind, bins, await agentConfFor(server, { tpmDevid: files(tpm) }, `${t}-${kind}`)));
      await waitForSvid(agent, UID_A, id(`/${t}/a`));
      const first = (await server.listAgents()).find((x) => x.id === agentId);
      expect(first, `agent list has ${agentId}: ${agent.logTail()}`).toBeDefined();
      // The server says tpm_devid agents can re-attest, so renewal at half-life attests again through the TPM.
      const renewed = await waitFor(
        `${kind} to re-attest at renewal (new agent SVID serial)`,
        async () => {
          const r = (await server.listAgents()).find((x) => x.id === agentId);
          return r && r.serial !== first!.serial ? r : undefined;
        },
        { timeoutMs: AGENT_TTL_S * 1000 + 30_000, intervalMs: 1000, describe: () => agent.logTail() },
      );
      expect(renewed.expiresAt).toBeGreaterThan(first!.expiresAt);
      if (kind === 'spiffe-agent') expect(agent.logTail(400).match(/Attesting with DevID certificate/g)?.length, agent.logTail()).toBeGreaterThanOrEqual(2);
      await waitForSvid(agent, UID_A, id(`/${t}/a`));
      seen[kind] = { id: renewed.id, attestationType: renewed.attestationType, canReattest: renewed.canReattest, selectors: renewed.raw['selectors'] ?? [] };
      await agent.destroy();
      expect(await tpm.loaded(), `${kind} left objects or sessions in the TPM`).toEqual([]);
    }
    const caFp = await sha1Hex(join(tpm.template, 'devid-ca.pem'));
    for (const s of Object.values(seen)) {
      expect(s).toMatchObject({ id: agentId, attestationType: 'tpm_devid', canReattest: true });
      expect(s.selectors).toEqual(
        expect.arrayContaining([
          { type: 'tpm_devid', value: `subject:cn:${SUBJECT_CN}` },
          { type: 'tpm_devid', value: 'issuer:cn:spiffe-agent test DevID CA' },
          { type: 'tpm_devid', value: `ca:fingerprint:${caFp}` },
        ]),
      );
    }
    if (seen['spire-agent'] && seen['spiffe-agent']) expect(seen['spiffe-agent']).toEqual(seen['spire-agent']);
  }, 420_000);

  // Nothing secret on disk: the node proves itself with the TPM's DevID, and the agent's own key is
  // sealed by the same TPM. Both plugins share the one TPM (swtpm: one connection per command).
  it('spiffe-agent with tpm_devid and KeyManager "tpm" on one TPM: attests, renews by re-attesting, resumes after kill -9 without attesting, leaves the TPM free', async () => {
    const t = tag('spiffe-agent', 'tpm-devid-sealed');
    const agentId = `spiffe://${server.trustDomain}/spire/agent/tpm_devid/${await sha1Hex(join(tpm.template, 'devid.pem'))}`;
    const alias = id(`/node/${t}`);
    await server.createEntries([
      { spiffe_id: alias, parent_id: `spiffe://${server.trustDomain}/spire/server`, selectors: [{ type: 'tpm_devid', value: `subject:cn:${SUBJECT_CN}` }] },
      uidEntry(id(`/${t}/a`), alias, UID_A),
    ]);
    const conf = await agentConfFor(server, { tpmDevid: files(tpm), keyManager: 'tpm', tpmDevicePath: tpm.socket }, t);
    const agent = cleanup.add(await startAgent('spiffe-agent', bins, conf));
    await waitForSvid(agent, UID_A, id(`/${t}/a`));
    const first = (await server.listAgents()).find((x) => x.id === agentId);
    expect(first, agent.logTail()).toBeDefined();
    expect(agent.daemon.lines.some((l) => l.includes('Generated a key and sealed it with the TPM'))).toBe(true);
    const renewed = await waitFor(
      're-attestation at renewal (new agent SVID serial)',
      async () => {
        const r = (await server.listAgents()).find((x) => x.id === agentId);
        return r && r.serial !== first!.serial ? r : undefined;
      },
      { timeoutMs: AGENT_TTL_S * 1000 + 30_000, intervalMs: 1000, describe: () => agent.logTail() },
    );
    await waitForSvid(agent, UID_A, id(`/${t}/a`));
    await agent.kill9();
    expect(await tpm.loaded(), 'nothing loaded between uses').toEqual([]);
    await agent.start();
    await waitForSvid(agent, UID_A, id(`/${t}/a`));
    const restarted = agent.daemon.lines.join('\n');
    expect(restarted).toMatch(/Resumed keys sealed by the TPM/);
    expect(restarted, 'a valid stored SVID needs no attestation').not.toMatch(/Starting node attestation/);
    expect((await server.listAgents()).find((x) => x.id === agentId)?.serial).toBe(renewed.serial);
    await agent.destroy();
    expect(await tpm.loaded(), 'TPM left as found').toEqual([]);
  }, 300_000);

  // Refused agents give up after their retries: every case and agent at once, each on its own copy
  // of the TPM (same EK, same DevID key), so no two agents share a TPM connection.
  it('refused: a DevID certificate from another CA, an EK the endorsement CA did not issue, a wrong hierarchy password — each with a clear message', async () => {
    // The same DevID key, certified by a CA the server does not trust.
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-keyout', join(dir, 'other-ca.key'), '-out', join(dir, 'other-ca.pem'), '-subj', '/CN=other DevID CA']);
    await run('openssl', ['x509', '-new', '-force_pubkey', join(tpm.template, 'devid-pubkey.pem'), '-CA', join(dir, 'other-ca.pem'), '-CAkey', join(dir, 'other-ca.key'), '-subj', `/CN=${SUBJECT_CN}`, '-days', '1', '-out', join(dir, 'other-devid.pem')]);
    // A server whose endorsement CA is not the one that issued swtpm's EK certificate.
    const strict = cleanup.add(
      await startSpireServer({ bins, nodeAttestors: { joinToken: true }, pluginsExtra: serverPlugin(join(tpm.template, 'devid-ca.pem'), join(tpm.template, 'devid-ca.pem')) }),
    );
    const cases = [
      { what: 'other-ca', srv: server, extra: { certPath: join(dir, 'other-devid.pem') } },
      { what: 'ek-ca', srv: strict, extra: {} },
      { what: 'password', srv: server, extra: { endorsementHierarchyPassword: 'not-the-password' } },
    ] as const;
    const runs = KINDS.flatMap((kind) =>
      cases.map(async ({ what, srv, extra }) => {
        const own = await Swtpm.start();
        cleanup.defer(() => own.stop());
        const t = tag(kind, `tpm-devid-${what}`);
        const agent = cleanup.add(await startAgent(kind, bins, await agentConfFor(srv, { tpmDevid: files(own, extra) }, t), { waitReady: false }));
        const log = await agent.waitExit(180_000);
        expect(agent.daemon.proc.exitCode, agent.logTail()).not.toBe(0);
        // The main server knows this agent ID from the first test; the strict one must know none.
        if (srv !== server) expect((await srv.listAgents()).filter((a) => a.attestationType === 'tpm_devid')).toEqual([]);
        return { kind, what, log, loaded: await own.loaded() };
      }),
    );
    for (const { kind, what, log, loaded } of await Promise.all(runs)) {
      expect(loaded, `${kind} ${what}: TPM left as found; its log:\n${log.slice(-4000)}`).toEqual([]);
      if (what === 'other-ca') expect(log, `${kind}: ${what}`).toMatch(/unable to verify DevID signature: verification failed: x509: certificate signed by unknown authority/);
      if (what === 'ek-ca') expect(log, `${kind}: ${what}`).toMatch(/cannot verify EK signature: endorsement certificate verification failed: x509: certificate signed by unknown authority/);
      if (what === 'password') {
        if (kind === 'spire-agent') expect(log, `${kind}: ${what}`).toMatch(/cannot create endorsement key/);
        else expect(log, `${kind}: ${what}`).toMatch(/nodeattestor\(tpm_devid\): cannot create the endorsement key \(endorsement hierarchy\): the TPM refused endorsement_hierarchy_password/);
        expect(log).not.toContain('not-the-password');
      }
    }
  }, 420_000);
});
