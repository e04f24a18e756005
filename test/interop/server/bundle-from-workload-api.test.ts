/**
 * trust_bundle_spiffe_workload_api (spire-agent v1.14's bootstrap source, absent from v1.13.3, so
 * only spiffe-agent runs it): a child agent takes its bootstrap bundle from a parent agent's
 * Workload API, then attests to the real spire-server v1.13.3 with a join token. The parent is
 * each of the two agents, so the client is checked against spire-agent's Workload API too.
 * The child runs as root, so root's entry under the parent is what lets it fetch bundles.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UID_A, agentConfFor, startAgent, startSpireServer, waitForSvid, type SpireBinaries, type SpireServer } from '../../helpers/spire/index.js';
import { waitFor } from '../../helpers/spire/proc.js';
import { Cleanup, KINDS, id, plan, tag, uidEntry } from './fixture.js';

let bins: SpireBinaries;
let server: SpireServer;
const cleanup = new Cleanup();

beforeAll(async () => {
  bins = plan.require();
  server = cleanup.add(await startSpireServer({ bins, nodeAttestors: { joinToken: true }, cacheReloadInterval: '1s' }));
});
afterAll(() => cleanup.run());

describe.skipIf(plan.skip).each(KINDS)('trust_bundle_spiffe_workload_api, parent %s', (parentKind) => {
  it('the child spiffe-agent bootstraps from the parent\'s Workload API and attests to the server', async () => {
    const t = tag(parentKind, 'wlbundle');
    const parentAlias = id(`/node/${t}-parent`);
    const childAlias = id(`/node/${t}-child`);
    const parentToken = await server.generateToken(parentAlias);
    await server.createEntries([uidEntry(id(`/${t}/child-agent`), parentAlias, 0)]);
    const parent = cleanup.add(await startAgent(parentKind, bins, await agentConfFor(server, { joinToken: parentToken }, `${t}-p`)));
    await waitForSvid(parent, 0, id(`/${t}/child-agent`));

    const childToken = await server.generateToken(childAlias);
    await server.createEntries([uidEntry(id(`/${t}/a`), childAlias, UID_A)]);
    const conf = await agentConfFor(server, { joinToken: childToken, trustBundlePath: undefined, agentExtra: `    trust_bundle_spiffe_workload_api = "${parent.endpoint}"` }, `${t}-c`);
    const child = cleanup.add(await startAgent('spiffe-agent', bins, conf));
    const got = await waitForSvid(child, UID_A, id(`/${t}/a`));
    expect(got.svids[0]!.verified, got.svids[0]!.verifyError).toBe(true);
    expect(child.daemon.lines.join('\n')).toMatch(/Server attestation attempt 1/);
    expect((await server.listAgents()).map((a) => a.id)).toContain(server.agentIdForToken(childToken));
    await child.destroy();
    await parent.destroy();
  });
});

describe.skipIf(plan.skip)('trust_bundle_spiffe_workload_api failures (spiffe-agent)', () => {
  it('no agent at the address: the child names the address, sends no attestation, and retries', async () => {
    const t = tag('spiffe-agent', 'wlbundle-none');
    const token = await server.generateToken(id(`/node/${t}`));
    const addr = `unix:///tmp/spire-it-${t}-nothing-here.sock`;
    const conf = await agentConfFor(server, { joinToken: token, trustBundlePath: undefined, agentExtra: `    trust_bundle_spiffe_workload_api = "${addr}"` }, t);
    const child = cleanup.add(await startAgent('spiffe-agent', bins, conf, { waitReady: false }));
    const want = new RegExp(`unable to fetch trust bundle from SPIFFE Workload API ${addr.replace(/[/.]/g, '\\$&')}`);
    await waitFor('the bootstrap failure to be logged', () => (want.test(child.daemon.lines.join('\n')) ? true : undefined), {
      timeoutMs: 60_000,
      describe: () => child.logTail(),
    });
    expect((await server.listAgents()).map((a) => a.id)).not.toContain(server.agentIdForToken(token));
    await child.destroy();
  });

  it('an address that is not a Workload API address is refused at start with the key named', async () => {
    const t = tag('spiffe-agent', 'wlbundle-bad');
    const conf = await agentConfFor(server, { joinToken: 'unused', trustBundlePath: undefined, agentExtra: '    trust_bundle_spiffe_workload_api = "http://127.0.0.1:1/x"' }, t);
    const child = cleanup.add(await startAgent('spiffe-agent', bins, conf, { waitReady: false }));
    const log = await child.waitExit(30_000);
    expect(child.daemon.proc.exitCode).not.toBe(0);
    expect(log).toMatch(/trust_bundle_spiffe_workload_api is not a valid SPIFFE Workload API endpoint address/);
  });
});
