/**
 * Envoy SDS v3 through the real daemon, called by a real client process (test/helpers/sds-client.mjs,
 * grpc-js with the repo's protos) under distinct uids: the xDS conversation on one stream (request,
 * ACK, pushed updates on entry edits, stale nonces ignored, NACKs logged but honoured, unauthorized
 * names ending the stream), FetchSecrets without any security header, DeltaSecrets Unimplemented,
 * the audit trail, and `disable_sds_api` / `disable_workload_api`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, REPO, TD, cli, sleep, uidEntry, type EntryJson } from '../helpers/agent-process.js';

const CLIENT = join(REPO, 'test/helpers/sds-client.mjs');
const SECRET = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
const WEB = { uid: 1411, gid: 1411 };
const NOBODY = { uid: 1412, gid: 1412 };

interface Secret {
  name: string;
  tls_certificate?: { certificate_chain: { inline_bytes: string }; private_key: { inline_bytes: string } };
  validation_context?: { custom_validator_config?: { name: string; typed_config: { trust_domains: { name: string }[] } }; trusted_ca?: unknown };
}
interface Response {
  version_info?: string;
  nonce?: string;
  type_url?: string;
  resources?: Secret[];
}
type Event = { response: Response } | { status: { code: string; details: string } };

/** One client process; events are consumed in order. */
class SdsClient {
  private readonly events: Event[] = [];
  private readonly waiters: (() => void)[] = [];
  private readonly proc: ChildProcess;

  constructor(socketPath: string, ids: { uid: number; gid: number }) {
    this.proc = spawn(process.execPath, [CLIENT, socketPath], { stdio: ['pipe', 'pipe', 'inherit'], ...ids });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      this.events.push(JSON.parse(l) as Event);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  cmd(c: Record<string, unknown>): void {
    this.proc.stdin!.write(`${JSON.stringify(c)}\n`);
  }

  async next(timeoutMs = 10_000): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    while (this.events.length === 0) {
      if (Date.now() > deadline) throw new Error(`no SDS event within ${timeoutMs} ms`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(100)]);
    }
    return this.events.shift()!;
  }

  async response(timeoutMs?: number): Promise<Response> {
    const e = await this.next(timeoutMs);
    if (!('response' in e)) throw new Error(`expected a response, got ${JSON.stringify(e)}`);
    return e.response;
  }

  async status(timeoutMs?: number): Promise<{ code: string; details: string }> {
    const e = await this.next(timeoutMs);
    if (!('status' in e)) throw new Error(`expected a status, got ${JSON.stringify(e).slice(0, 300)}`);
    return e.status;
  }

  /** Nothing arrives for a while. */
  async quiet(ms: number): Promise<void> {
    await sleep(ms);
    expect(this.events.map((e) => JSON.stringify(e).slice(0, 200))).toEqual([]);
  }

  kill(): void {
    this.proc.kill('SIGKILL');
  }
}

const names = (r: Response): string[] => (r.resources ?? []).map((s) => s.name);
const leafOf = (s: Secret): X509Certificate => new X509Certificate(s.tls_certificate!.certificate_chain.inline_bytes.split(/(?<=-----END CERTIFICATE-----\n)/)[0]!);

let agent: AgentProcess;
const base: EntryJson[] = [uidEntry('/web', WEB.uid)];

beforeAll(async () => {
  agent = await AgentProcess.start({ entries: base });
});
afterAll(async () => {
  await agent?.stop();
});

describe('SDS on the public socket', () => {
  it('answers the first request, stays quiet on an ACK, pushes entry changes, ignores stale nonces, honours NACKed names', async () => {
    const c = new SdsClient(agent.socketPath, WEB);
    try {
      c.cmd({ stream: true });
      c.cmd({ send: { node: { id: 'envoy-it', cluster: 'it' }, resource_names: ['default', 'ROOTCA'], type_url: SECRET } });
      const r1 = await c.response();
      expect(r1.version_info).toBe('1');
      expect(r1.nonce).toMatch(/^[0-9a-f]{8}$/);
      expect(r1.type_url).toBe(SECRET);
      expect(names(r1)).toEqual(['ROOTCA', 'default']);
      expect(leafOf(r1.resources![1]!).subjectAltName).toBe(`URI:spiffe://${TD}/web`);
      expect(r1.resources![1]!.tls_certificate!.private_key.inline_bytes).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
      expect(r1.resources![0]!.validation_context!.custom_validator_config!.typed_config.trust_domains.map((t) => t.name)).toEqual([TD]);

      // ACK: nothing new to say.
      c.cmd({ send: { version_info: '1', response_nonce: r1.nonce, resource_names: ['default', 'ROOTCA'], type_url: SECRET } });
      await c.quiet(700);

      // A new entry for this caller changes what it sees: pushed with the next version.
      await agent.writeEntries([...base, uidEntry('/web-admin', WEB.uid)]);
      const r2 = await c.response(15_000);
      expect(r2.version_info).toBe('2');
      expect(r2.nonce).not.toBe(r1.nonce);
      expect(names(r2)).toEqual(['ROOTCA', 'default']);

      // Stale nonce (the first response's): ignored, even though it asks for other names.
      c.cmd({ send: { version_info: '1', response_nonce: r1.nonce, resource_names: [`spiffe://${TD}/web-admin`], type_url: SECRET } });
      await c.quiet(700);

      // NACK of r2 (right nonce, the old version) that also changes the names: answered.
      c.cmd({ send: { version_info: '1', response_nonce: r2.nonce, resource_names: [`spiffe://${TD}/web-admin`], type_url: SECRET } });
      const r3 = await c.response();
      expect(names(r3)).toEqual([`spiffe://${TD}/web-admin`]);
      expect(leafOf(r3.resources![0]!).subjectAltName).toBe(`URI:spiffe://${TD}/web-admin`);
      expect(r3.version_info).toBe('2');

      // Withdrawing the requested identity ends the stream with InvalidArgument.
      await agent.writeEntries(base);
      expect(await c.status(15_000)).toEqual({
        code: 'INVALID_ARGUMENT',
        details: `workload is not authorized for the requested identities ["spiffe://${TD}/web-admin"]`,
      });
      const logs = agent.logs.join('\n');
      expect(logs).toMatch(/Received unexpected nonce; ignoring request/);
      expect(logs).toMatch(/Client rejected expected version and rolled back/);
      expect(logs).toMatch(/method=StreamSecrets decision=granted .*uid=1411/);
      expect(logs).toMatch(/method=StreamSecrets decision=denied .*reason="workload is not authorized/);
    } finally {
      c.kill();
    }
  });

  it('ends a stream with OK when the client closes its side, and refuses unauthorized names on open', async () => {
    const c = new SdsClient(agent.socketPath, WEB);
    try {
      c.cmd({ stream: true });
      c.cmd({ send: { resource_names: ['ROOTCA'], type_url: SECRET } });
      expect(names(await c.response())).toEqual(['ROOTCA']);
      c.cmd({ close: true });
      expect((await c.status()).code).toBe('OK');

      c.cmd({ stream: true });
      c.cmd({ send: { resource_names: ['default', `spiffe://${TD}/other`], type_url: SECRET } });
      expect(await c.status()).toEqual({ code: 'INVALID_ARGUMENT', details: `workload is not authorized for the requested identities ["spiffe://${TD}/other"]` });
    } finally {
      c.kill();
    }
  });

  it('FetchSecrets needs no security header; a caller without entries still gets bundles; DeltaSecrets is Unimplemented', async () => {
    const c = new SdsClient(agent.socketPath, NOBODY);
    try {
      c.cmd({ fetch: { resource_names: [], type_url: SECRET } });
      const all = await c.response();
      expect(all.version_info ?? '').toBe('');
      expect(all.nonce ?? '').toBe('');
      expect(names(all)).toEqual([`spiffe://${TD}`]);
      c.cmd({ fetch: { resource_names: ['default'], type_url: SECRET } });
      expect((await c.status()).code).toBe('INVALID_ARGUMENT');
      c.cmd({ delta: true });
      expect(await c.status()).toEqual({ code: 'UNIMPLEMENTED', details: 'Method is not implemented' });
    } finally {
      c.kill();
    }
    const w = new SdsClient(agent.socketPath, WEB);
    try {
      w.cmd({ fetch: { resource_names: ['default', `spiffe://${TD}`], node: { user_agent_build_version: { version: { major_number: 1, minor_number: 17 } } } } });
      const r = await w.response();
      expect(names(r)).toEqual([`spiffe://${TD}`, 'default']);
      expect(r.resources![0]!.validation_context!.trusted_ca).toBeDefined();
      expect(r.resources![0]!.validation_context!.custom_validator_config).toBeUndefined();
    } finally {
      w.kill();
    }
  });
});

describe('disable_sds_api and disable_workload_api', () => {
  it('serves only the API left enabled', async () => {
    const noSds = await AgentProcess.start({ entries: base, agent: 'disable_sds_api = true' });
    try {
      const c = new SdsClient(noSds.socketPath, WEB);
      try {
        c.cmd({ fetch: { resource_names: ['default'] } });
        expect((await c.status()).code).toBe('UNIMPLEMENTED');
      } finally {
        c.kill();
      }
      const r = await cli(['api', 'fetch', 'x509', '-socketPath', noSds.socketPath], WEB);
      expect(r.code).toBe(0);
      expect(noSds.logs.join('\n')).toMatch(/Starting Workload API/);
    } finally {
      await noSds.stop();
    }
    const noWl = await AgentProcess.start({ entries: base, agent: 'disable_workload_api = true' });
    try {
      const c = new SdsClient(noWl.socketPath, WEB);
      try {
        c.cmd({ fetch: { resource_names: ['default'] } });
        expect(names(await c.response())).toEqual(['default']);
      } finally {
        c.kill();
      }
      const r = await cli(['api', 'fetch', 'x509', '-socketPath', noWl.socketPath], WEB);
      expect(r.code).not.toBe(0);
      expect(noWl.logs.join('\n')).toMatch(/Starting SDS API/);
    } finally {
      await noWl.stop();
    }
  });
});
