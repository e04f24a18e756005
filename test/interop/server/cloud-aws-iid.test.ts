/**
 * aws_iid, differentially: spire-agent v1.13.3 and spiffe-agent, each with the same agent.conf
 * (ec2_metadata_endpoint pointed at the fake IMDS in test/helpers/cloud/aws-imds.ts), attest to
 * the recording stand-in (test/helpers/recording-attest-server.ts), which keeps the payload each
 * sends. They must be byte-identical, and carry the stand-in's document (so equality is not two
 * empty payloads). The two agents' IMDS requests (token PUT with its TTL, GETs with the token)
 * are compared too.
 *
 * Then against the real spire-server v1.13.3 with its aws_iid plugin: the document parses and both
 * agents are refused at signature verification (the fake's signatures are by a test key, not AWS's).
 *
 * What cannot be tested here: a real EC2 metadata service and AWS's own signatures. The recorded
 * answers follow AWS's documented formats; the payload's equality with spire-agent's is proved
 * for the same answers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentDir, startAgent, startSpireServer, waitFor, type AgentConf, type AgentKind, type SpireBinaries, type SpireServer } from '../../helpers/spire/index.js';
import { FakeIMDS, RECORDED, type SeenRequest } from '../../helpers/cloud/aws-imds.js';
import { RecordingAttestServer, type RecordedAttestation } from '../../helpers/recording-attest-server.js';
import { Cleanup, KINDS, plan } from './fixture.js';

let bins: SpireBinaries;
let imds: FakeIMDS;
let recorder: RecordingAttestServer;
const cleanup = new Cleanup();

beforeAll(async () => {
  if (plan.skip) return;
  bins = plan.require();
  const dir = await mkdtemp('/tmp/spire-it-aws-iid-');
  cleanup.defer(() => rm(dir, { recursive: true, force: true }));
  imds = cleanup.add(await FakeIMDS.start());
  recorder = cleanup.add(await RecordingAttestServer.start(dir));
});
afterAll(() => cleanup.run());

/** One agent.conf shape for both agents; only the server it points at differs between tests. */
async function conf(kind: AgentKind, server: { trustDomain: string; address: string; port: number; bundlePath: string }, endpoint = imds.endpoint): Promise<AgentConf> {
  return {
    dir: await agentDir(`aws-iid-${kind}`),
    trustDomain: server.trustDomain,
    serverAddress: server.address,
    serverPort: server.port,
    trustBundlePath: server.bundlePath,
    keyManager: 'memory',
    nodeAttestor: { name: 'aws_iid', data: `            ec2_metadata_endpoint = "${endpoint}"` },
  };
}

/** Runs one agent against the recorder until it has sent its attestation data; returns that and its IMDS requests. */
async function capture(kind: AgentKind): Promise<{ rec: RecordedAttestation; imds: SeenRequest[] }> {
  const before = recorder.recorded.length;
  imds.requests.length = 0;
  const agent = cleanup.add(await startAgent(kind, bins, await conf(kind, recorder), { waitReady: false }));
  await waitFor(`${kind} to send its attestation data to the stand-in`, () => (recorder.recorded.length > before ? true : undefined), {
    timeoutMs: 30_000,
    describe: () => agent.logTail(),
  });
  await agent.destroy();
  return { rec: recorder.recorded[before]!, imds: [...imds.requests] };
}

const shape = (reqs: SeenRequest[]) => reqs.map((r) => `${r.method} ${r.path}${r.ttl ? ` ttl=${r.ttl}` : ''}${r.token ? ' +token' : ''}`);

describe.skipIf(plan.skip)('aws_iid: spire-agent v1.13.3 and spiffe-agent send the same payload', () => {
  it('byte-identical payloads for the recorded document, carrying it verbatim, after the same IMDS requests', async () => {
    const seen: Partial<Record<AgentKind, { rec: RecordedAttestation; imds: SeenRequest[] }>> = {};
    for (const kind of KINDS) seen[kind] = await capture(kind);
    for (const kind of KINDS) {
      const { rec } = seen[kind]!;
      expect(rec.type, kind).toBe('aws_iid');
      expect(rec.payload.length, kind).toBeGreaterThan(RECORDED.document.length);
      const doc = JSON.parse(rec.payload.toString('utf8')) as Record<string, string>;
      expect(doc, kind).toEqual({ document: RECORDED.document.toString(), signature: RECORDED.signature.toString(), rsa2048: RECORDED.rsa2048.toString() });
    }
    const [a, b] = [seen['spire-agent'], seen['spiffe-agent']];
    if (a && b) {
      expect(b.rec.payload.toString('hex')).toBe(a.rec.payload.toString('hex'));
      expect(shape(b.imds)).toEqual(shape(a.imds));
    }
  });

  it('byte-identical for a document with characters Go escapes (<, >, &, U+2028, tab, CR) and invalid UTF-8', async () => {
    const tricky = Buffer.concat([
      Buffer.from('{\n  "accountId" : "123456789012",\n  "instanceId" : "i-0<tag>&amp;\u2028\u2029",\n  "region" : "us-west-2",\r\n\t"note" : "'),
      Buffer.from([0xff, 0xe2, 0x82, 0xc0, 0xaf]),
      Buffer.from('"\n}'),
    ]);
    imds.document = tricky;
    try {
      const seen: Partial<Record<AgentKind, RecordedAttestation>> = {};
      for (const kind of KINDS) seen[kind] = (await capture(kind)).rec;
      for (const kind of KINDS) expect(seen[kind]!.payload.toString('utf8'), kind).toContain('i-0\\u003ctag\\u003e\\u0026amp;\\u2028\\u2029');
      if (seen['spire-agent'] && seen['spiffe-agent']) expect(seen['spiffe-agent'].payload.toString('hex')).toBe(seen['spire-agent'].payload.toString('hex'));
    } finally {
      imds.document = RECORDED.document;
    }
  });
});

describe.skipIf(plan.skip)('aws_iid with spire-server v1.13.3 and its aws_iid plugin', () => {
  let server: SpireServer;
  beforeAll(async () => {
    server = cleanup.add(await startSpireServer({ bins, nodeAttestors: { joinToken: true }, pluginsExtra: '    NodeAttestor "aws_iid" { plugin_data {} }\n' }));
  });

  it('both agents are refused at signature verification, not earlier', async () => {
    const runs = KINDS.map(async (kind) => {
      const agent = cleanup.add(await startAgent(kind, bins, await conf(kind, server), { waitReady: false }));
      await waitFor(`${kind} to be refused`, () => (/failed verification of instance identity cryptographic signature/.test(agent.daemon.lines.join('\n')) ? true : undefined), {
        timeoutMs: 60_000,
        describe: () => agent.logTail(),
      });
      const log = agent.daemon.lines.join('\n');
      await agent.destroy();
      return { kind, log };
    });
    for (const { kind, log } of await Promise.all(runs)) {
      expect(log, kind).not.toMatch(/failed to unmarshal/);
    }
    expect(server.logTail(400)).toMatch(/failed verification of instance identity cryptographic signature/);
    expect(await server.listAgents()).toEqual([]);
  });
});

type Case = { name: string; set: (f: FakeIMDS) => void | Promise<void>; ours: RegExp };
const CASES: Case[] = [
  { name: 'down', set: (f) => f.close(), ours: /no metadata service at http:\/\/127\.0\.0\.1:\d+: this node is not on AWS, or IMDS is disabled/ },
  { name: 'slow', set: (f) => void (f.slowMs = 8000), ours: /accepted the connection but did not answer in time/ },
  { name: '403', set: (f) => void (f.dataStatus = 403), ours: /instance-identity\/document answered HTTP 403: the metadata service refused the request/ },
  { name: '401 on every GET', set: (f) => void (f.dataStatus = 401), ours: /instance-identity\/document answered HTTP 401: IMDSv1 is disabled on this instance/ },
  { name: '404', set: (f) => void (f.dataStatus = 404), ours: /instance-identity\/document answered HTTP 404: no instance identity document there/ },
  { name: 'malformed', set: (f) => void (f.document = Buffer.from('<html>not a document</html>')), ours: /malformed instance identity document from http:\/\/127\.0\.0\.1:\d+\/latest\/dynamic\/instance-identity\/document: not JSON/ },
  { name: 'v1 disabled, token refused', set: (f) => void ((f.tokenAnswer = 403), (f.v1 = false)), ours: /answered HTTP 401: IMDSv1 is disabled on this instance/ },
];

describe.skipIf(plan.skip)('aws_iid when the metadata service fails', () => {
  // All cases and both agents at once: each run ends with the agent giving up.
  it('spiffe-agent stops with an error naming the URL and sends nothing; spire-agent\'s outcome is recorded', async () => {
    const dir = await mkdtemp('/tmp/spire-it-aws-iid-err-');
    cleanup.defer(() => rm(dir, { recursive: true, force: true }));
    const runs = CASES.flatMap((c) =>
      KINDS.map(async (kind) => {
        const fake = cleanup.add(await FakeIMDS.start());
        const endpoint = fake.endpoint;
        await c.set(fake);
        const rec = cleanup.add(await RecordingAttestServer.start(dir));
        const agent = cleanup.add(await startAgent(kind, bins, await conf(kind, rec, endpoint), { waitReady: false }));
        const t0 = Date.now();
        const log = await agent.waitExit(150_000);
        return { c, kind, log, exit: agent.daemon.proc.exitCode, sent: rec.recorded.length, ms: Date.now() - t0 };
      }),
    );
    const results = await Promise.all(runs);
    for (const r of results) {
      const last = r.log.split('\n').filter((l) => /aws_iid|attest|metadata|EC2|imds/i.test(l)).slice(-1)[0] ?? '';
      console.info(`aws_iid ${r.c.name}: ${r.kind} exit=${r.exit} sent=${r.sent} after ${r.ms} ms: ${last.slice(0, 400)}`);
      expect(r.exit, `${r.kind} ${r.c.name}`).not.toBe(0);
      if (r.kind === 'spiffe-agent') {
        expect(r.log, r.c.name).toMatch(r.c.ours);
        expect(r.sent, r.c.name).toBe(0);
      } else {
        // spire-agent sends whatever the document URL returns; the server is left to refuse it.
        if (r.c.name === 'malformed') expect(r.sent, r.c.name).toBeGreaterThan(0);
        else expect(r.sent, r.c.name).toBe(0);
      }
    }
    // Every case and both agents at once, each waiting out its retries (about a minute, more under load).
  }, 300_000);
});
