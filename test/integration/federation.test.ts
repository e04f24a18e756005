/**
 * Federation through the real daemon: the embedded authority loads a partner trust
 * domain's bundle (PEM made with TestCA) from embedded_authority.federated_bundles, and
 * only workloads whose entries federate with it receive it. Callers are real CLI
 * processes under distinct uids.
 */
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, Output, cli, field, spawnCli, uidEntry } from '../helpers/agent-process.js';
import { TestCA } from '../helpers/test-ca.js';

let agent: AgentProcess;
let partner: TestCA;
let pemDir: string;
const FED = { uid: 1311, gid: 1311 };
const PLAIN = { uid: 1312, gid: 1312 };

const entries = (federate: boolean) => [
  uidEntry('/fed', FED.uid, federate ? { federates_with: ['partner.org'] } : {}),
  uidEntry('/plain', PLAIN.uid),
];

beforeAll(async () => {
  partner = await TestCA.create('partner.org');
  pemDir = mkdtempSync('/tmp/spiffe-fed-');
  const pem = join(pemDir, 'partner.pem');
  writeFileSync(pem, partner.cert.toString('pem'));
  agent = await AgentProcess.start({
    entries: entries(true),
    embedded: `federated_bundles = { "partner.org" = "${pem}" }`,
  });
});
afterAll(async () => {
  await agent?.stop();
  rmSync(pemDir, { recursive: true, force: true });
});

const sock = (): string[] => ['-socketPath', agent.socketPath];
const partnerDer = (): Buffer => Buffer.from(partner.der());

/** Base64 DER values of the federated-bundles map in `-output json`, keyed as on the wire. */
function federatedFromJson(stdout: string): Record<string, string> {
  const doc = JSON.parse(stdout) as Record<string, unknown>;
  const key = Object.keys(doc).find((k) => /^federated_?bundles$/i.test(k));
  return (key ? doc[key] : {}) as Record<string, string>;
}

function writableDir(): string {
  const d = mkdtempSync('/tmp/spiffe-fed-write-');
  chmodSync(d, 0o777);
  return d;
}

describe('federated bundles', () => {
  it('serves the partner bundle, keyed spiffe://partner.org, to a workload whose entry federates with it', async () => {
    const r = await cli(['api', 'fetch', 'x509', ...sock(), '-output', 'json'], FED);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const fed = federatedFromJson(r.stdout);
    expect(Object.keys(fed)).toEqual(['spiffe://partner.org']);
    expect(Buffer.from(fed['spiffe://partner.org']!, 'base64')).toEqual(partnerDer());
  });

  it('prints the partner CA lines in pretty output and writes federated_bundle.0.0.pem with the partner CA', async () => {
    const dir = writableDir();
    try {
      const r = await cli(['api', 'fetch', 'x509', ...sock(), '-write', dir], FED);
      expect(r.code).toBe(0);
      expect(field(r.stdout, 'SPIFFE ID')).toEqual(['spiffe://example.org/fed']);
      expect(r.stdout).toMatch(/^\[(spiffe:\/\/)?partner\.org\] CA #1 Valid After:/m);
      expect(r.stdout).not.toMatch(/CA #2/);
      const files = readdirSync(dir).sort();
      expect(files).toEqual(['bundle.0.pem', 'federated_bundle.0.0.pem', 'svid.0.key', 'svid.0.pem']);
      const written = new X509Certificate(readFileSync(join(dir, 'federated_bundle.0.0.pem')));
      expect(written.raw).toEqual(partnerDer());
      const own = new X509Certificate(readFileSync(join(dir, 'bundle.0.pem')));
      expect(own.raw).not.toEqual(partnerDer());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('does not give the partner bundle to a workload whose entry does not federate', async () => {
    const json = await cli(['api', 'fetch', 'x509', ...sock(), '-output', 'json'], PLAIN);
    expect(json.code).toBe(0);
    expect(federatedFromJson(json.stdout)).toEqual({});
    const dir = writableDir();
    try {
      const r = await cli(['api', 'fetch', 'x509', ...sock(), '-write', dir], PLAIN);
      expect(r.code).toBe(0);
      expect(field(r.stdout, 'SPIFFE ID')).toEqual(['spiffe://example.org/plain']);
      expect(r.stdout).not.toContain('partner.org');
      expect(existsSync(join(dir, 'federated_bundle.0.0.pem'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('removes the partner bundle from an open watch stream when the entry stops federating', async () => {
    const watch = spawnCli(['api', 'watch', ...sock()], FED);
    const out = new Output(watch);
    /** The last complete update: from the last "Received" line to the end, once its CA lines are printed. */
    const last = (t: string): string | undefined => {
      const i = t.lastIndexOf('Received ');
      const m = i >= 0 ? t.slice(i) : undefined;
      return m && /CA #1 Valid Until:.*\n/.test(m) ? m : undefined;
    };
    try {
      await out.until((t) => /partner\.org\] CA #1 Valid Until/.test(last(t) ?? ''), 10_000, 'an update carrying the partner bundle');
      const before = out.text.length;
      await agent.writeEntries(entries(false));
      await out.until(
        (t) => {
          const m = last(t.slice(before));
          return m !== undefined && m.includes('spiffe://example.org/fed') && !m.includes('partner.org');
        },
        8_000,
        'an update without the partner bundle',
      );
      expect(watch.exitCode).toBeNull();
    } finally {
      watch.kill('SIGINT');
      await agent.writeEntries(entries(true));
    }
  });
});
