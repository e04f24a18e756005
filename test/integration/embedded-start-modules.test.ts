/**
 * Idle memory (issue 9): the embedded-mode agent does not load @peculiar/x509 (with reflect-metadata,
 * tsyringe and the @peculiar/asn1-* packages) or jose on its start path nor to serve X.509-SVIDs. A
 * resolve hook in the real daemon records every module it loads; jose shows up on the first JWT-SVID,
 * which proves the hook sees lazily loaded packages.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, REPO, cli, field, uidEntry } from '../helpers/agent-process.js';

const W = { uid: 1191, gid: 1191 };
const HEAVY = /node_modules\/(@peculiar\/|reflect-metadata\/|tsyringe\/|jose\/)/;
let agent: AgentProcess;
let trace: string;

beforeAll(async () => {
  const hook = pathToFileURL(join(REPO, 'test/helpers/resolve-trace.mjs')).href;
  trace = join('/tmp', `resolve-trace-${process.pid}-${Date.now()}.txt`);
  agent = await AgentProcess.start({ entries: [uidEntry('/w', W.uid)], env: { NODE_OPTIONS: `--import ${hook}`, RESOLVE_TRACE_FILE: trace } });
});
afterAll(async () => {
  await agent?.stop();
  await import('node:fs/promises').then((fs) => fs.rm(trace, { force: true }));
});

const loaded = async (): Promise<string[]> => (await readFile(trace, 'utf8')).split('\n').filter(Boolean);

describe('embedded mode start path', () => {
  it('serves the first X.509-SVID without the certificate library or jose', async () => {
    const r = await cli(['api', 'fetch', 'x509', '-socketPath', agent.socketPath], W);
    expect(r.stderr).toBe('');
    expect(field(r.stdout, 'SPIFFE ID')).toEqual(['spiffe://example.org/w']);
    const urls = await loaded();
    // The hook saw the agent's own modules, including the embedded CA.
    expect(urls.some((u) => u.endsWith('/dist/src/authority/embedded/x509-issuer.js'))).toBe(true);
    expect(urls.filter((u) => HEAVY.test(u))).toEqual([]);
  });

  it('loads jose on the first JWT-SVID, and still no certificate library', async () => {
    const r = await cli(['api', 'fetch', 'jwt', '-audience', 'svc', '-socketPath', agent.socketPath], W);
    expect(r.code).toBe(0);
    const urls = await loaded();
    expect(urls.some((u) => /node_modules\/jose\//.test(u))).toBe(true);
    expect(urls.filter((u) => /node_modules\/(@peculiar\/|reflect-metadata\/|tsyringe\/)/.test(u))).toEqual([]);
  });
});
