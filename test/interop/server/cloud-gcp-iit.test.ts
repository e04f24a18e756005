/**
 * gcp_iit, differentially: spire-agent v1.13.3 and spiffe-agent with the same agent.conf
 * (identity_token_host pointed at the fake GCE metadata server in test/helpers/cloud/gcp-metadata.ts)
 * attest to the recording stand-in (test/helpers/recording-attest-server.ts): the payloads must be
 * byte-identical and be the stand-in's token; the metadata requests (path, query, Metadata-Flavor)
 * must be the same.
 *
 * Then the real spire-server v1.13.3 with its gcp_iit plugin: it fetches Google's signing keys from
 * www.googleapis.com before it reads the payload, so on a machine without that access both agents
 * are refused at that step; with it, at signature verification (the token is signed by a test
 * key). Either way both are refused with the same server message, never a parse error.
 *
 * What cannot be tested here: a real GCE metadata server and Google's signatures.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentDir, startAgent, startSpireServer, waitFor, type AgentConf, type AgentKind, type SpireBinaries, type SpireServer } from '../../helpers/spire/index.js';
import { FakeGCEMetadata, type SeenGcpRequest } from '../../helpers/cloud/gcp-metadata.js';
import { RecordingAttestServer, type RecordedAttestation } from '../../helpers/recording-attest-server.js';
import { Cleanup, KINDS, plan } from './fixture.js';

let bins: SpireBinaries;
let gce: FakeGCEMetadata;
let recorder: RecordingAttestServer;
const cleanup = new Cleanup();

beforeAll(async () => {
  if (plan.skip) return;
  bins = plan.require();
  const dir = await mkdtemp('/tmp/spire-it-gcp-iit-');
  cleanup.defer(() => rm(dir, { recursive: true, force: true }));
  gce = cleanup.add(await FakeGCEMetadata.start());
  recorder = cleanup.add(await RecordingAttestServer.start(dir));
});
afterAll(() => cleanup.run());

async function conf(kind: AgentKind, server: { trustDomain: string; address: string; port: number; bundlePath: string }, host = gce.host): Promise<AgentConf> {
  return {
    dir: await agentDir(`gcp-iit-${kind}`),
    trustDomain: server.trustDomain,
    serverAddress: server.address,
    serverPort: server.port,
    trustBundlePath: server.bundlePath,
    keyManager: 'memory',
    nodeAttestor: { name: 'gcp_iit', data: `            identity_token_host = "${host}"\n            service_account = "node@spiffe-agent-test.iam.gserviceaccount.com"` },
  };
}

describe.skipIf(plan.skip)('gcp_iit: spire-agent v1.13.3 and spiffe-agent send the same payload', () => {
  it('byte-identical payloads: the stand-in\'s token, after the same metadata request', async () => {
    const seen: Partial<Record<AgentKind, { rec: RecordedAttestation; reqs: SeenGcpRequest[] }>> = {};
    for (const kind of KINDS) {
      const before = recorder.recorded.length;
      gce.requests.length = 0;
      const agent = cleanup.add(await startAgent(kind, bins, await conf(kind, recorder), { waitReady: false }));
      await waitFor(`${kind} to send its attestation data`, () => (recorder.recorded.length > before ? true : undefined), { timeoutMs: 30_000, describe: () => agent.logTail() });
      await agent.destroy();
      seen[kind] = { rec: recorder.recorded[before]!, reqs: [...gce.requests] };
    }
    for (const kind of KINDS) {
      expect(seen[kind]!.rec.type, kind).toBe('gcp_iit');
      expect(seen[kind]!.rec.payload.length, kind).toBeGreaterThan(0);
      expect(seen[kind]!.rec.payload.equals(gce.token), kind).toBe(true);
    }
    const [a, b] = [seen['spire-agent'], seen['spiffe-agent']];
    if (a && b) {
      expect(b.rec.payload.toString('hex')).toBe(a.rec.payload.toString('hex'));
      expect(b.reqs).toEqual(a.reqs);
    }
  });
});

describe.skipIf(plan.skip)('gcp_iit with spire-server v1.13.3 and its gcp_iit plugin', () => {
  let server: SpireServer;
  beforeAll(async () => {
    server = cleanup.add(await startSpireServer({ bins, nodeAttestors: { joinToken: true }, pluginsExtra: '    NodeAttestor "gcp_iit" { plugin_data { projectid_allow_list = ["spiffe-agent-test"] } }\n' }));
  });

  it('both agents are refused with the same server message, never a token parse error', async () => {
    // Without access to Google: `Get "https://www.googleapis.com/oauth2/v1/certs": …`; with it, the signature.
    const refusal = /(failed to validate the identity token signature|https:\/\/www\.googleapis\.com\/oauth2\/v1\/certs)/;
    const runs = KINDS.map(async (kind) => {
      const agent = cleanup.add(await startAgent(kind, bins, await conf(kind, server), { waitReady: false }));
      await waitFor(`${kind} to be refused`, () => (refusal.test(agent.daemon.lines.join('\n')) ? true : undefined), { timeoutMs: 90_000, describe: () => agent.logTail() });
      const log = agent.daemon.lines.join('\n');
      await agent.destroy();
      return { kind, log, why: refusal.exec(log)![1]! };
    });
    const results = await Promise.all(runs);
    for (const r of results) {
      console.info(`gcp_iit real server: ${r.kind} refused: ${r.why}`);
      expect(r.log, r.kind).not.toMatch(/unable to parse the identity token/);
    }
    if (results.length === 2) expect(results[1]!.why).toBe(results[0]!.why);
    expect(await server.listAgents()).toEqual([]);
  });
});

describe.skipIf(plan.skip)('gcp_iit when the metadata server fails', () => {
  const URL_RE = 'http://127\\.0\\.0\\.1:\\d+/computeMetadata/v1/instance/service-accounts/node@spiffe-agent-test\\.iam\\.gserviceaccount\\.com/identity\\?audience=spire-gcp-node-attestor&format=full';
  const CASES: { name: string; set: (f: FakeGCEMetadata) => void | Promise<void>; ours: RegExp }[] = [
    { name: 'down', set: (f) => f.close(), ours: /no metadata service at http:\/\/127\.0\.0\.1:\d+: this node is not on Google Cloud/ },
    // Never answers within the test: spiffe-agent gives up after 30 s per attempt; spire-agent's request has no timeout.
    { name: 'slow', set: (f) => void (f.slowMs = 600_000), ours: new RegExp(`GET ${URL_RE}: no answer within 30000 ms`) },
    { name: '401', set: (f) => void (f.status = 401), ours: new RegExp(`GET ${URL_RE} answered HTTP 401, want 200: the metadata server refused the request`) },
    { name: '403', set: (f) => void (f.status = 403), ours: /identity\?audience=spire-gcp-node-attestor&format=full answered HTTP 403, want 200/ },
    { name: '404', set: (f) => void (f.status = 404), ours: /answered HTTP 404, want 200: no service account/ },
    { name: 'malformed', set: (f) => void (f.token = Buffer.from('<html>proxy error</html>')), ours: new RegExp(`malformed identity token from ${URL_RE}: not a JWT`) },
  ];
  it('spiffe-agent stops with an error naming the URL and sends nothing; spire-agent\'s outcome is recorded', async () => {
    const dir = await mkdtemp('/tmp/spire-it-gcp-iit-err-');
    cleanup.defer(() => rm(dir, { recursive: true, force: true }));
    const runs = CASES.flatMap((c) =>
      KINDS.map(async (kind) => {
        const fake = cleanup.add(await FakeGCEMetadata.start());
        const host = fake.host;
        await c.set(fake);
        const rec = cleanup.add(await RecordingAttestServer.start(dir));
        const agent = cleanup.add(await startAgent(kind, bins, await conf(kind, rec, host), { waitReady: false }));
        const t0 = Date.now();
        // spire-agent waits for ever on a metadata server that never answers: record that it is still waiting.
        const log = await agent.waitExit(c.name === 'slow' && kind === 'spire-agent' ? 100_000 : 180_000).catch(() => agent.daemon.lines.join('\n'));
        const exit = agent.daemon.alive() ? 'still running' : String(agent.daemon.proc.exitCode);
        await agent.destroy();
        return { c, kind, log, exit, sent: rec.recorded.length, ms: Date.now() - t0 };
      }),
    );
    for (const r of await Promise.all(runs)) {
      const last = r.log.split('\n').filter((l) => /gcp_iit|crashed|failed/i.test(l)).slice(-1)[0] ?? '';
      console.info(`gcp_iit ${r.c.name}: ${r.kind} exit=${r.exit} sent=${r.sent} after ${r.ms} ms: ${last.slice(0, 400)}`);
      if (r.kind === 'spiffe-agent') {
        expect(r.exit, r.c.name).not.toBe('0');
        expect(r.exit, r.c.name).not.toBe('still running');
        expect(r.sent, r.c.name).toBe(0);
        expect(r.log, r.c.name).toMatch(r.c.ours);
      } else if (r.c.name === 'slow') {
        expect(r.exit, r.c.name).toBe('still running');
        expect(r.sent, r.c.name).toBe(0);
      } else {
        expect(r.exit, r.c.name).not.toBe('0');
        // spire-agent sends whatever the identity URL returns; the server is left to refuse it.
        if (r.c.name === 'malformed') expect(r.sent, r.c.name).toBeGreaterThan(0);
        else expect(r.sent, r.c.name).toBe(0);
      }
    }
    // Every case and both agents at once, each waiting out its retries (about a minute, more under load).
  }, 300_000);
});
