/**
 * A TPM command the TPM asks to have sent again keeps the process alive while the client waits:
 * the clock's timers are unref'd, and with a socket transport nothing else may be open between two
 * commands. Found when spiffe-agent exited (code 13) in the middle of a tpm_devid attestation
 * because swtpm answered TPM2_Certify with TPM_RC_RETRY. Runs the built client in a child process
 * with nothing else holding its event loop.
 */
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const dist = (p: string) => pathToFileURL(join(resolve(dirname(fileURLToPath(import.meta.url)), '../../..'), 'dist/src', p)).href;

describe('TpmClient retries', () => {
  it('keep the event loop alive while waiting to send a command again', () => {
    const script = `
      const { TpmClient } = await import(${JSON.stringify(dist('tpm/client.js'))});
      const { propertiesCommand } = await import(${JSON.stringify(dist('tpm/commands/capability.js'))});
      // A fake TPM: TPM_RC_RETRY first, then an empty GetCapability answer. Nothing here is a handle.
      const hdr = (rc, body) => { const b = Buffer.alloc(10); b.writeUInt16BE(0x8001, 0); b.writeUInt32BE(10 + body.length, 2); b.writeUInt32BE(rc, 6); return Buffer.concat([b, body]); };
      const answers = [hdr(0x922, Buffer.alloc(0)), hdr(0, Buffer.from([0, 0, 0, 0, 6, 0, 0, 0, 0]))];
      const transport = { description: 'fake', send: async () => answers.shift(), close: async () => {} };
      const client = new TpmClient(transport, { retryDelayMs: 200 });
      const page = await client.run(propertiesCommand(0x105, 1));
      console.log(JSON.stringify({ more: page.more, items: page.items.length }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(JSON.parse(out)).toEqual({ more: false, items: 0 });
  });
});
