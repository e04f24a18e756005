/**
 * @spiffe-agent/sdk as a workload gets it: `npm pack` in packages/sdk (its prepack builds it from
 * src/), `npm install` of the tarball into an empty ESM project (dependencies from the npm registry
 * or npm's cache, as on a host), then plain `.mjs` imports of its three entry points fetch an SVID
 * from the real agent, and a TypeScript consumer type-checks against the shipped .d.ts.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, REPO, collect, uidEntry } from '../helpers/agent-process.js';

const run = promisify(execFile);
const PKG = join(REPO, 'packages', 'sdk');
let dir = '';
let files: string[] = [];
let agent: AgentProcess | undefined;

beforeAll(async () => {
  dir = await mkdtemp('/tmp/spiffe-sdk-pack-');
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: PKG, maxBuffer: 64 << 20 });
  const packed = (JSON.parse(stdout) as { filename: string; files: { path: string }[] }[])[0]!;
  files = packed.files.map((f) => f.path).sort();
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', private: true }));
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, packed.filename)], { cwd: dir, maxBuffer: 64 << 20 });
  agent = await AgentProcess.start({ entries: [uidEntry('/packaged-sdk', process.getuid!())] });
}, 240_000);

afterAll(async () => {
  await agent?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('npm pack of packages/sdk, installed into an empty project', () => {
  it('ships the SDK, the shared svid code and the Workload API proto, and nothing of the daemon', () => {
    expect(files).toContain('dist/sdk/index.js');
    expect(files).toContain('dist/sdk/index.d.ts');
    expect(files).toContain('dist/sdk/tls/index.d.ts');
    expect(files).toContain('dist/svid/x509-svid.js');
    expect(files).toContain('proto/spiffe/workload/workload.proto');
    const outside = files.filter((f) => !/^(package\.json|README\.md|dist\/(sdk|svid)\/.*|dist\/errors\.(js|d\.ts)|proto\/spiffe\/workload\/workload\.proto)$/.test(f));
    expect(outside).toEqual([]);
  });

  it('installs only the SDK dependencies, not the daemon', () => {
    const nm = join(dir, 'node_modules');
    expect(existsSync(join(nm, '@spiffe-agent', 'sdk', 'package.json'))).toBe(true);
    for (const dep of ['@grpc/grpc-js', '@peculiar/x509']) expect(existsSync(join(nm, dep)), dep).toBe(true);
    for (const daemonOnly of ['spiffe-agent', 'pino', 'koffi', 'prom-client', 'systeminformation', 'jose']) expect(existsSync(join(nm, daemonOnly)), daemonOnly).toBe(false);
  });

  it('plain ESM imports its entry points and gets an SVID from the real agent; deep imports are closed', async () => {
    await writeFile(
      join(dir, 'fetch.mjs'),
      `import { X509Source } from '@spiffe-agent/sdk';
import { authorizeMemberOf, mtlsClientOptions } from '@spiffe-agent/sdk/tls';
import { SpiffeId } from '@spiffe-agent/sdk/svid';
const source = await X509Source.create({ address: 'unix://${agent!.socketPath}', timeoutMs: 30000 });
const svid = source.getX509SVID();
const opts = mtlsClientOptions(source, authorizeMemberOf('example.org'));
console.log('id', svid.id.toString(), svid.id instanceof SpiffeId, typeof opts.checkServerIdentity);
await source.close();
try { await import('@spiffe-agent/sdk/dist/sdk/client.js'); console.log('deep import allowed'); } catch (e) { console.log('deep', e.code); }
`,
    );
    const r = await collect(spawn(process.execPath, ['fetch.mjs'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }), 60_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('id spiffe://example.org/packaged-sdk true function');
    expect(r.stdout).toContain('deep ERR_PACKAGE_PATH_NOT_EXPORTED');
  }, 60_000);

  it('a TypeScript consumer type-checks against the shipped .d.ts, and a misuse does not', async () => {
    const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
    const tsconfig = {
      compilerOptions: {
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        target: 'ES2022',
        strict: true,
        noEmit: true,
        types: ['node'],
        typeRoots: [join(REPO, 'node_modules', '@types')],
        // The shipped .d.ts are checked too, not only used (that makes tsc take ~30 s).
        skipLibCheck: false,
      },
      files: ['consumer.ts'],
    };
    await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
    const good = `import https from 'node:https';
import { X509Source, type X509SVID } from '@spiffe-agent/sdk';
import { MTLSAgent, authorizeID, hookMTLSServer, mtlsServerOptions, type Authorizer } from '@spiffe-agent/sdk/tls';
import { TrustDomain } from '@spiffe-agent/sdk/svid';
export async function main(): Promise<string> {
  const source = await X509Source.create({ timeoutMs: 1000 });
  const svid: X509SVID = source.getX509SVID();
  const check: Authorizer = authorizeID('spiffe://example.org/client');
  const server = https.createServer(mtlsServerOptions(source), (_req, res) => res.end('ok'));
  const stop: () => void = hookMTLSServer(server, source, check);
  const agent = new MTLSAgent(source, check, { keepAlive: true });
  stop(); agent.destroy();
  return svid.id.trustDomain.equals(TrustDomain.parse('example.org')) ? svid.serial : '';
}
`;
    await writeFile(join(dir, 'consumer.ts'), good);
    const ok = await run(process.execPath, [tsc, '-p', dir]).then(() => ({ code: 0, stdout: '' }), (e: { code: number; stdout: string }) => e);
    expect(ok.stdout).toBe('');
    expect(ok.code).toBe(0);
    // The same file with a mistake: proves the types are real, not `any`.
    await writeFile(join(dir, 'consumer.ts'), good.replace('const svid: X509SVID = source.getX509SVID();', 'const svid: X509SVID = source.getX509SVID();\n  const wrong: number = svid.id;'));
    const bad = await run(process.execPath, [tsc, '-p', dir]).then(() => ({ code: 0, stdout: '' }), (e: { code: number; stdout: string }) => e);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toContain("Type 'SpiffeId' is not assignable to type 'number'");
  }, 180_000);
});
