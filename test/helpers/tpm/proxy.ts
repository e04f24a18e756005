/**
 * A Unix socket between the client and a TPM socket (swtpm), to see and shape what crosses it:
 * it records each command, can answer one itself (a FAKE response, which the test names), and can
 * deliver the TPM's real response in pieces. Real sockets both ways.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Answer = Buffer | 'forward';

function readMessage(sock: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const onData = (c: Buffer): void => {
      chunks.push(c);
      n += c.length;
      const all = Buffer.concat(chunks);
      if (n >= 6 && n >= all.readUInt32BE(2)) {
        sock.off('data', onData);
        resolve(all);
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.once('close', () => reject(new Error('closed before a whole message')));
  });
}

export class TpmProxy {
  readonly commands: Buffer[] = [];
  /** Decides, per command, whether to forward it or answer with these bytes. */
  answer: (command: Buffer, index: number) => Answer = () => 'forward';
  /** Bytes per write of the response sent back; 0 sends it whole. */
  pieceSize = 0;

  private constructor(
    readonly path: string,
    private readonly dir: string,
    private readonly server: Server,
  ) {}

  static async start(target: string): Promise<TpmProxy> {
    const dir = mkdtempSync(join(tmpdir(), 'tpm-proxy-'));
    const path = join(dir, 'proxy.sock');
    let proxy!: TpmProxy;
    const server = createServer((client) => {
      client.on('error', () => undefined);
      void (async () => {
        const command = await readMessage(client);
        const index = proxy.commands.push(command) - 1;
        const decided = proxy.answer(command, index);
        let response: Buffer;
        if (decided === 'forward') {
          const tpm = connect(target);
          tpm.write(command);
          response = await readMessage(tpm);
          tpm.destroy();
        } else {
          response = decided;
        }
        if (proxy.pieceSize === 0) client.end(response);
        else {
          for (let i = 0; i < response.length; i += proxy.pieceSize) {
            client.write(response.subarray(i, i + proxy.pieceSize));
            await new Promise((r) => setTimeout(r, 1));
          }
          client.end();
        }
      })().catch(() => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    proxy = new TpmProxy(path, dir, server);
    return proxy;
  }

  async close(): Promise<void> {
    await new Promise((r) => this.server.close(r));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A bare TPM response header: tag NO_SESSIONS, size 10, the code. */
export function rcResponse(rc: number): Buffer {
  const b = Buffer.alloc(10);
  b.writeUInt16BE(0x8001, 0);
  b.writeUInt32BE(10, 2);
  b.writeUInt32BE(rc, 6);
  return b;
}
