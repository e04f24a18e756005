/**
 * azure_msi, differentially, inside network namespaces this test creates. spire-agent v1.13.3
 * always asks http://169.254.169.254 (it has no endpoint setting, so neither agent.conf has one):
 * in each namespace that address is on the namespace's own loopback and the fake Azure IMDS
 * (test/helpers/cloud/azure-imds.ts) listens there; the agents run inside (`ip netns exec`) and
 * reach the recording stand-in and spire-server, which run outside, through relays on the
 * namespace's 127.0.0.1 (test/helpers/cloud/netns.ts). Nothing is sent to the host's link-local
 * range, and each namespace is deleted in afterAll, pass or fail.
 *
 * 1. Both agents, same agent.conf, same stand-in answer: byte-identical payloads carrying the
 *    stand-in's token, after the same request (path, query, Metadata header).
 * 2. The real spire-server v1.13.3 with its azure_msi plugin: it fetches Microsoft's signing keys
 *    (login.microsoftonline.com) after decoding the payload and before checking the token, so
 *    without that access both agents are refused at that step; with it, at the token's key ID
 *    (the stand-in signs with a test key). Never a payload parse error.
 * 3. Failures of the metadata service, for both agents: what each did is printed.
 *
 * What cannot be tested here: a real Azure IMDS and Microsoft's signatures.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentDir, startAgent, startSpireServer, waitFor, type AgentConf, type AgentKind, type SpireBinaries, type SpireServer } from '../../helpers/spire/index.js';
import { AZURE_CLAIMS, FakeAzureIMDS, type SeenAzureRequest } from '../../helpers/cloud/azure-imds.js';
import { TestNetns } from '../../helpers/cloud/netns.js';
import { RecordingAttestServer, type RecordedAttestation } from '../../helpers/recording-attest-server.js';
import { requireTool } from '../../helpers/require-tool.js';
import { Cleanup, KINDS, plan } from './fixture.js';

const IMDS_IP = '169.254.169.254';
const RESOURCE = 'api://spire-server-test';
const skipNs = requireTool('root and ip netns', process.getuid?.() === 0 && spawnSync('ip', ['netns', 'list']).status === 0, 'run as root on a host with iproute2 (ip netns)');
const skip = plan.skip || skipNs;

let bins: SpireBinaries;
let dir: string;
const cleanup = new Cleanup();

beforeAll(async () => {
  if (skip) return;
  bins = plan.require();
  dir = await mkdtemp('/tmp/spire-it-azure-msi-');
  cleanup.defer(() => rm(dir, { recursive: true, force: true }));
});
afterAll(() => cleanup.run());

/** A namespace with 169.254.169.254 on its loopback, and (unless `down`) the stand-in listening there. */
async function namespace(down = false): Promise<{ ns: TestNetns; imds?: FakeAzureIMDS }> {
  const ns = await TestNetns.create([IMDS_IP]);
  cleanup.defer(() => ns.close());
  if (down) return { ns };
  const { handle } = await ns.listen(IMDS_IP, 80);
  const imds = cleanup.add(await FakeAzureIMDS.start(handle));
  return { ns, imds };
}

/** One agent.conf shape for both agents; the server is reached through a relay inside the namespace. */
async function conf(kind: AgentKind, ns: TestNetns, server: { trustDomain: string; port: number; bundlePath: string }): Promise<AgentConf> {
  return {
    dir: await agentDir(`azure-msi-${kind}`),
    trustDomain: server.trustDomain,
    serverAddress: '127.0.0.1',
    serverPort: await ns.relay(server.port),
    trustBundlePath: server.bundlePath,
    keyManager: 'memory',
    nodeAttestor: { name: 'azure_msi', data: `            resource_id = "${RESOURCE}"` },
    runIn: ns.prefix,
  };
}

describe.skipIf(skip)('azure_msi: spire-agent v1.13.3 and spiffe-agent send the same payload', () => {
  let ns: TestNetns;
  let imds: FakeAzureIMDS;
  let recorder: RecordingAttestServer;
  beforeAll(async () => {
    ({ ns, imds } = (await namespace()) as { ns: TestNetns; imds: FakeAzureIMDS });
    recorder = cleanup.add(await RecordingAttestServer.start(dir));
  });

  async function capture(kind: AgentKind): Promise<{ rec: RecordedAttestation; reqs: SeenAzureRequest[] }> {
    const before = recorder.recorded.length;
    imds.requests.length = 0;
    const agent = cleanup.add(await startAgent(kind, bins, await conf(kind, ns, recorder), { waitReady: false }));
    await waitFor(`${kind} to send its attestation data`, () => (recorder.recorded.length > before ? true : undefined), { timeoutMs: 30_000, describe: () => agent.logTail() });
    await agent.destroy();
    // The token is never logged, not even at debug level.
    expect(agent.daemon.lines.join('\n'), kind).not.toContain(imds.token.split('.')[2]);
    return { rec: recorder.recorded[before]!, reqs: [...imds.requests] };
  }

  it('byte-identical payloads, {"token": the stand-in\'s token}, after the same request to 169.254.169.254', async () => {
    const seen: Partial<Record<AgentKind, { rec: RecordedAttestation; reqs: SeenAzureRequest[] }>> = {};
    for (const kind of KINDS) seen[kind] = await capture(kind);
    for (const kind of KINDS) {
      const { rec, reqs } = seen[kind]!;
      expect(rec.type, kind).toBe('azure_msi');
      expect(imds.token.length, kind).toBeGreaterThan(100);
      expect(JSON.parse(rec.payload.toString('utf8')), kind).toEqual({ token: imds.token });
      expect(reqs, kind).toEqual([{ method: 'GET', path: '/metadata/identity/oauth2/token?api-version=2018-02-01&resource=api%3A%2F%2Fspire-server-test', metadata: 'true' }]);
    }
    const [a, b] = [seen['spire-agent'], seen['spiffe-agent']];
    if (a && b) expect(b.rec.payload.toString('hex')).toBe(a.rec.payload.toString('hex'));
  });

  it('byte-identical for a token with characters Go escapes, invalid UTF-8, other key case and trailing text', async () => {
    imds.body = Buffer.concat([Buffer.from(' {"Access_Token":"ey<a>&b\\u2028\\t'), Buffer.from([0xff, 0xe2, 0x82]), Buffer.from('c","token_type":"Bearer"}\n{"x":1}')]);
    try {
      const seen: Partial<Record<AgentKind, RecordedAttestation>> = {};
      for (const kind of KINDS) seen[kind] = (await capture(kind)).rec;
      for (const kind of KINDS) expect(seen[kind]!.payload.toString('utf8'), kind).toBe('{"token":"ey\\u003ca\\u003e\\u0026b\\u2028\\t\ufffd\ufffd\ufffdc"}');
      if (seen['spire-agent'] && seen['spiffe-agent']) expect(seen['spiffe-agent'].payload.toString('hex')).toBe(seen['spire-agent'].payload.toString('hex'));
    } finally {
      imds.body = undefined;
    }
  });
});

describe.skipIf(skip)('azure_msi with spire-server v1.13.3 and its azure_msi plugin', () => {
  let server: SpireServer;
  beforeAll(async () => {
    // App credentials for the tenant, so the plugin never asks the host's 169.254.169.254 for its own identity.
    const tenant = `"${AZURE_CLAIMS.tid}" = { resource_id = "${RESOURCE}", subscription_id = "11111111-2222-3333-4444-555555555555", app_id = "${AZURE_CLAIMS.appid}", app_secret = "not-a-secret" }`;
    server = cleanup.add(await startSpireServer({ bins, nodeAttestors: { joinToken: true }, pluginsExtra: `    NodeAttestor "azure_msi" { plugin_data { tenants = { ${tenant} } } }\n` }));
  });

  it('both agents are refused at token verification with the same message, never a payload parse error', async () => {
    const { ns } = await namespace();
    // Without access to Microsoft: `unable to obtain JWKS: …`; with it, the stand-in's key ID is unknown.
    const refusal = /(unable to obtain JWKS|key id "[0-9a-f]+" not found)/;
    const runs = KINDS.map(async (kind) => {
      const agent = cleanup.add(await startAgent(kind, bins, await conf(kind, ns, server), { waitReady: false }));
      await waitFor(`${kind} to be refused`, () => (refusal.test(agent.daemon.lines.join('\n')) ? true : undefined), { timeoutMs: 90_000, describe: () => agent.logTail() });
      const log = agent.daemon.lines.join('\n');
      await agent.destroy();
      const detail = /(unable to obtain JWKS|key id "[0-9a-f]+" not found)[^\n]{0,160}/.exec(log)![0];
      return { kind, log, why: refusal.exec(log)![1]!, detail };
    });
    const results = await Promise.all(runs);
    for (const r of results) {
      console.info(`azure_msi real server: ${r.kind} refused: ${r.detail}`);
      expect(r.log, r.kind).not.toMatch(/failed to unmarshal data payload|missing token from attestation data|missing attestation payload/);
    }
    if (results.length === 2) expect(results[1]!.why).toBe(results[0]!.why);
    expect(server.logTail(400)).toMatch(refusal);
    expect(await server.listAgents()).toEqual([]);
  });
});

type Case = { name: string; set?: (f: FakeAzureIMDS) => void; ours: RegExp };
const URL_RE = 'http://169\\.254\\.169\\.254/metadata/identity/oauth2/token\\?api-version=2018-02-01&resource=api%3A%2F%2Fspire-server-test';
const CASES: Case[] = [
  { name: 'down', ours: /no metadata service at http:\/\/169\.254\.169\.254 \(connect ECONNREFUSED 169\.254\.169\.254:80\): this node is not on Azure/ },
  // Never answers within the test: spiffe-agent gives up after 30 s per attempt; spire-agent's request has no timeout.
  { name: 'slow', set: (f) => void (f.slowMs = 600_000), ours: new RegExp(`GET ${URL_RE}: the metadata service accepted the connection but did not answer within 30000 ms`) },
  { name: '400 no identity', set: (f) => void (f.status = 400), ours: new RegExp(`GET ${URL_RE} answered HTTP 400, want 200: no managed identity is assigned to this VM.*\\(invalid_request: Identity not found\\)`) },
  { name: '401', set: (f) => void (f.status = 401), ours: /answered HTTP 401, want 200: the metadata service refused the request/ },
  { name: '403', set: (f) => void (f.status = 403), ours: /answered HTTP 403, want 200: the metadata service refused the request/ },
  { name: '404', set: (f) => void (f.status = 404), ours: /answered HTTP 404, want 200: the identity endpoint is not available/ },
  { name: 'malformed', set: (f) => void (f.body = Buffer.from('<html>proxy error</html>')), ours: new RegExp(`malformed managed-identity token answer from ${URL_RE}: not JSON`) },
  { name: 'no access_token', set: (f) => void (f.body = Buffer.from('{"token_type":"Bearer","expires_in":"86399"}')), ours: /malformed managed-identity token answer from .*: no access_token in the answer/ },
];

describe.skipIf(skip)('azure_msi when the metadata service fails', () => {
  it('spiffe-agent stops with an error naming the URL and sends nothing; spire-agent\'s outcome is recorded', async () => {
    const runs = CASES.map(async (c) => {
      const { ns, imds } = await namespace(c.name === 'down');
      if (imds && c.set) c.set(imds);
      return Promise.all(
        KINDS.map(async (kind) => {
          const rec = cleanup.add(await RecordingAttestServer.start(dir));
          const agent = cleanup.add(await startAgent(kind, bins, await conf(kind, ns, rec), { waitReady: false }));
          const t0 = Date.now();
          // spire-agent waits for ever on a metadata service that never answers: record that it is still waiting.
          const wait = c.name === 'slow' && kind === 'spire-agent' ? 100_000 : 180_000;
          const log = await agent.waitExit(wait).catch(() => agent.daemon.lines.join('\n'));
          const exit = agent.daemon.alive() ? 'still running' : String(agent.daemon.proc.exitCode);
          await agent.destroy();
          return { c, kind, log, exit, sent: rec.recorded.length, ms: Date.now() - t0 };
        }),
      );
    });
    for (const r of (await Promise.all(runs)).flat()) {
      const last = r.log.split('\n').filter((l) => /azure|msi|token|attest|crashed|failed/i.test(l)).slice(-1)[0] ?? '';
      console.info(`azure_msi ${r.c.name}: ${r.kind} exit=${r.exit} sent=${r.sent} after ${r.ms} ms: ${last.slice(0, 400)}`);
      expect(r.sent, `${r.kind} ${r.c.name}`).toBe(0);
      if (r.kind === 'spiffe-agent') {
        expect(r.exit, r.c.name).not.toBe('0');
        expect(r.exit, r.c.name).not.toBe('still running');
        expect(r.log, r.c.name).toMatch(r.c.ours);
        expect(r.log, r.c.name).not.toContain('eyJ');
      } else if (r.c.name === 'slow') expect(r.exit, r.c.name).toBe('still running');
      else expect(r.exit, `${r.kind} ${r.c.name}`).not.toBe('0');
    }
    // Every case and both agents at once, each waiting out its retries (about a minute, more under load).
  }, 300_000);
});
