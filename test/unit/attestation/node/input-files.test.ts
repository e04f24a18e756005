/**
 * Server-mode input files are read like every other input (regular files only, bounded):
 * a FIFO planted as join_token_file or as an x509pop key must be refused at once, not
 * hang the agent's start-up waiting for a writer.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveJoinToken } from '../../../../src/attestation/node/catalog.js';
import { loadX509popMaterial } from '../../../../src/attestation/node/x509pop/index.js';

const dir = mkdtempSync(join(tmpdir(), 'node-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fifo(name: string): string {
  const p = join(dir, name);
  execFileSync('mkfifo', [p]);
  return p;
}

describe('server-mode input files', () => {
  it('refuses a FIFO as join_token_file at once, naming the key', async () => {
    // A FIFO with no writer blocks its reader for ever: returning at all is the proof.
    await expect(resolveJoinToken({ joinTokenFile: fifo('token') })).rejects.toThrow(/join_token_file.*not a regular file|not a regular file.*join_token_file/s);
  });

  it('refuses a join_token_file over the token size limit', async () => {
    const p = join(dir, 'big-token');
    writeFileSync(p, 'x'.repeat((1 << 20) + 1));
    await expect(resolveJoinToken({ joinTokenFile: p })).rejects.toThrow(/join_token_file/);
  });

  it('refuses a FIFO as the x509pop private key', async () => {
    const cert = join(dir, 'cert.pem');
    writeFileSync(cert, '');
    await expect(
      loadX509popMaterial({ privateKeyPath: fifo('key'), certificatePath: cert } as Parameters<typeof loadX509popMaterial>[0]),
    ).rejects.toThrow(/not a regular file/);
  });
});
