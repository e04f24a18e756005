/**
 * A workload that starts before its agent (the usual order at boot and at pod start): a top-level
 * `await X509Source.create()` / `JWTSource.create()` waits for the agent instead of ending the
 * process (it used to exit with code 13 and no message, because the SDK's retry timers do not hold
 * the event loop), says once what it waits for, and gives up only at the caller's timeout.
 * The workloads are real child processes importing the built SDK; the agent is the real daemon.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, REPO, collect, sleep, uidEntry } from '../helpers/agent-process.js';

const SDK = join(REPO, 'dist/src/sdk/index.js');
let dir: string;
const agents: AgentProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp('/tmp/sdk-waits-');
});
afterAll(async () => {
  for (const a of agents) await a.stop();
  await rm(dir, { recursive: true, force: true });
});

async function workload(name: string, body: string): Promise<string> {
  const file = join(dir, `${name}.mjs`);
  await writeFile(file, `import { X509Source, JWTSource } from ${JSON.stringify(SDK)};\n${body}\n`);
  return file;
}

describe('SDK sources wait for an agent that is not up yet', () => {
  it('X509Source.create() and JWTSource.create() at top level: the agent starts 3 s later, both get their identity, one warning each', async () => {
    const sock = join(dir, 'late', 'public', 'api.sock');
    await mkdir(join(dir, 'late'));
    const file = await workload(
      'late',
      `const x = await X509Source.create({ address: 'unix://${sock}' });
console.log('x509', x.getX509SVID().id.toString());
const j = await JWTSource.create({ address: 'unix://${sock}' });
console.log('jwt', (await j.fetchJWTSVID({ audience: ['a'] })).id.toString());
await x.close(); await j.close();`,
    );
    const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const result = collect(child, 60_000);
    await sleep(3_000);
    expect(child.exitCode, 'the workload must still be waiting, not gone').toBeNull();
    agents.push(await AgentProcess.start({ dir: join(dir, 'late'), socketPath: sock, entries: [uidEntry('/early-bird', process.getuid!())] }));
    const r = await result;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('x509 spiffe://example.org/early-bird');
    expect(r.stdout).toContain('jwt spiffe://example.org/early-bird');
    expect(r.stderr.match(/waiting for the SPIFFE Workload API at unix:\/\//g) ?? []).toHaveLength(1);
  });

  it('gives up at timeoutMs with the address and the last failure, and the process exits normally', async () => {
    const sock = join(dir, 'never.sock');
    const file = await workload(
      'never',
      `try { await X509Source.create({ address: 'unix://${sock}', timeoutMs: 1500 }); console.log('unexpected'); }
catch (e) { console.log('rejected', e.code, e.message); }`,
    );
    const r = await collect(spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] }), 20_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`rejected workloadapi_timeout workloadapi: no update from the SPIFFE Workload API at unix://${sock.replace(/[.]/g, '\\.')} within 1500 ms: `));
  });

  it('an abort signal ends the wait at once', async () => {
    const file = await workload(
      'abort',
      `const ac = new AbortController(); setTimeout(() => ac.abort(), 500);
const t0 = Date.now();
try { await X509Source.create({ address: 'unix://${join(dir, 'none.sock')}', signal: ac.signal }); } catch (e) { console.log('closed', e.code, Date.now() - t0 < 5000); }`,
    );
    const r = await collect(spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] }), 20_000);
    expect(r.stdout).toContain('closed workloadapi_source_closed true');
  });
});
