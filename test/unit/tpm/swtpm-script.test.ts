/**
 * scripts/swtpm.sh: starting is idempotent, stopping leaves nothing (no process, no directory),
 * it never removes a directory it did not make, and the cached template holds what a tpm_devid
 * node needs: a DevID key spire-agent can load, its certificate, and the EK's issuing CAs.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ALG, OBJECT_ATTR as A, parsePublic, publicKeyOf } from '../../../src/tpm/index.js';
import { requireTool } from '../../helpers/require-tool.js';
import { Swtpm, SWTPM_SCRIPT, SWTPM_WHY, swtpmFound } from '../../helpers/tpm/swtpm.js';

const run = promisify(execFile);
const skip = requireTool('swtpm', swtpmFound(), SWTPM_WHY);

/** Running as swtpm; an exited daemon stays a zombie until init reaps it, which counts as gone. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.includes('(swtpm)') && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describe.skipIf(skip)('scripts/swtpm.sh', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'swtpm-script-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('start twice is one swtpm; stop kills it and removes its directory; stop again is a no-op', async () => {
    const tpm = await Swtpm.start();
    const again = await run('bash', [SWTPM_SCRIPT, 'start', tpm.dir]);
    expect(again.stdout).toContain(`SWTPM_PID=${tpm.pid}`);
    expect(alive(tpm.pid)).toBe(true);
    await tpm.stop();
    expect(alive(tpm.pid)).toBe(false);
    expect(existsSync(tpm.dir)).toBe(false);
    await tpm.stop();
  });

  it('refuses to start in a directory it did not make, and stop leaves such a directory alone', async () => {
    const foreign = mkdtempSync(join(scratch, 'foreign-'));
    writeFileSync(join(foreign, 'keep-me'), 'x');
    await expect(run('bash', [SWTPM_SCRIPT, 'start', foreign])).rejects.toThrow(/not an swtpm.sh directory/);
    await run('bash', [SWTPM_SCRIPT, 'stop', foreign]);
    expect(readFileSync(join(foreign, 'keep-me'), 'utf8')).toBe('x');
  });

  it('provision is cached: a second call returns the same template without rebuilding it', async () => {
    const first = (await run('bash', [SWTPM_SCRIPT, 'provision'])).stdout.trim();
    const made = statSync(join(first, 'ready')).mtimeMs;
    const t0 = performance.now();
    const second = (await run('bash', [SWTPM_SCRIPT, 'provision'])).stdout.trim();
    expect(second).toBe(first);
    expect(statSync(join(second, 'ready')).mtimeMs).toBe(made);
    expect(performance.now() - t0, 'a cached provision runs no swtpm_setup').toBeLessThan(5_000);
  });

  it('the template holds a DevID as spire-agent wants it, certified by the test CA, and the EK CAs', async () => {
    const tpl = (await run('bash', [SWTPM_SCRIPT, 'provision'])).stdout.trim();
    const file = (n: string): Buffer => readFileSync(join(tpl, n));
    const devid = parsePublic(file('devid_pub.bin')).area;
    expect(devid).toMatchObject({ type: ALG.RSA, keyBits: 2048, scheme: { scheme: ALG.RSASSA, hash: ALG.SHA256 } });
    expect(devid.attributes).toBe(A.sign | A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth);
    const cert = new X509Certificate(file('devid.pem'));
    const ca = new X509Certificate(file('devid-ca.pem'));
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.publicKey.export({ format: 'jwk' })).toEqual(publicKeyOf(devid).export({ format: 'jwk' }));
    const [root, issuer] = file('ek-ca.pem').toString().split(/(?<=-----END CERTIFICATE-----\n)/).map((p) => new X509Certificate(p));
    expect(issuer!.verify(root!.publicKey)).toBe(true);
    expect(root!.verify(root!.publicKey)).toBe(true);
  });
});
