/**
 * experimental.require_pq_kem against the real spire-server v1.13.3 (built with Go 1.24 or later,
 * whose TLS accepts X25519MLKEM768). With the key set, spiffe-agent offers that group alone, so a
 * connection that succeeds proves the hybrid exchange was used. It needs OpenSSL 3.5: spiffe-agent
 * runs on the Node.js 24 from scripts/node.sh; on an older Node the key is refused at load (unit test).
 * spire-agent v1.13.3 runs the same agent.conf as the reference and cannot connect at all: its policy
 * names the draft group X25519Kyber768Draft00 (0x6399), which Go 1.24 removed, so its TLS has no group
 * left to offer ("tls: no supported elliptic curves for ECDHE"). The README's differences table says so.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UID_A, agentConfFor, startAgent, startSpireServer, waitForSvid, type SpireBinaries, type SpireServer } from '../../helpers/spire/index.js';
import { waitFor } from '../../helpers/spire/proc.js';
import { Cleanup, KINDS, id, plan, tag, uidEntry } from './fixture.js';

const REPO = join(import.meta.dirname, '../../..');
let bins: SpireBinaries;
let server: SpireServer;
let node24: string;
const cleanup = new Cleanup();

beforeAll(async () => {
  bins = plan.require();
  node24 = execFileSync('bash', [join(REPO, 'scripts/node.sh')], { encoding: 'utf8' }).trim().split('\n').pop()!;
  server = cleanup.add(await startSpireServer({ bins, nodeAttestors: { joinToken: true }, cacheReloadInterval: '1s' }));
}, 300_000);
afterAll(() => cleanup.run());

describe.skipIf(plan.skip)('require_pq_kem = true against spire-server v1.13.3', () => {
  it.runIf(KINDS.includes('spiffe-agent'))('spiffe-agent attests over X25519MLKEM768 alone and serves the workload', async () => {
    const t = tag('spiffe-agent', 'pqkem');
    const alias = id(`/node/${t}`);
    const token = await server.generateToken(alias);
    await server.createEntries([uidEntry(id(`/${t}/a`), alias, UID_A)]);
    const conf = await agentConfFor(server, { joinToken: token, agentExtra: '    experimental { require_pq_kem = true }', nodeBin: node24 }, t);
    const agent = cleanup.add(await startAgent('spiffe-agent', bins, conf));
    const got = await waitForSvid(agent, UID_A, id(`/${t}/a`));
    expect(got.svids[0]!.verified, got.svids[0]!.verifyError).toBe(true);
    await agent.destroy();
  });

  it.runIf(KINDS.includes('spire-agent'))('spire-agent v1.13.3 (the reference) has no group to offer and never connects', async () => {
    const t = tag('spire-agent', 'pqkem');
    const token = await server.generateToken(id(`/node/${t}`));
    const conf = await agentConfFor(server, { joinToken: token, agentExtra: '    experimental { require_pq_kem = true }' }, t);
    const agent = cleanup.add(await startAgent('spire-agent', bins, conf, { waitReady: false }));
    await waitFor('spire-agent\'s TLS failure', () => (/no supported elliptic curves for ECDHE/.test(agent.daemon.lines.join('\n')) ? true : undefined), {
      timeoutMs: 60_000,
      describe: () => agent.logTail(),
    });
    expect((await server.listAgents()).map((a) => a.id)).not.toContain(server.agentIdForToken(token));
    await agent.destroy();
  });
});

// The control that makes the test above mean something: Go's GODEBUG=tlsmlkem=0 takes
// X25519MLKEM768 out of the server's TLS, and then an agent that offers nothing else must fail.
describe.skipIf(plan.skip)('require_pq_kem against a server without X25519MLKEM768 (GODEBUG=tlsmlkem=0)', () => {
  it('spiffe-agent cannot connect with the key set, and connects without it', async () => {
    const classic = cleanup.add(await startSpireServer({ bins, nodeAttestors: { joinToken: true }, cacheReloadInterval: '1s', env: { GODEBUG: 'tlsmlkem=0' } }));
    const t = tag('spiffe-agent', 'pqkem-classic');
    const alias = id(`/node/${t}`);
    await classic.createEntries([uidEntry(id(`/${t}/a`), alias, UID_A)]);
    const refused = await agentConfFor(classic, { joinToken: await classic.generateToken(alias), agentExtra: '    experimental { require_pq_kem = true }', nodeBin: node24 }, `${t}-pq`);
    const pq = cleanup.add(await startAgent('spiffe-agent', bins, refused, { waitReady: false }));
    await waitFor('a TLS handshake failure', () => (/handshake failure|no shared group|unsupported group|SSL alert number 40/i.test(pq.daemon.lines.join('\n')) ? true : undefined), {
      timeoutMs: 60_000,
      describe: () => pq.logTail(),
    });
    expect(await classic.listAgents()).toEqual([]);
    await pq.destroy();
    const plain = await agentConfFor(classic, { joinToken: await classic.generateToken(alias), nodeBin: node24 }, `${t}-plain`);
    const ok = cleanup.add(await startAgent('spiffe-agent', bins, plain));
    await waitForSvid(ok, UID_A, id(`/${t}/a`));
    await ok.destroy();
  });
});
