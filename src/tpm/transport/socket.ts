/**
 * Raw TPM 2.0 commands over a Unix stream socket, as swtpm serves them (`swtpm socket --server
 * type=unixio`). Like go-tpm, and so spire-agent, one connection per command: swtpm serves one
 * connection at a time, so holding one open would lock out every other client (tpm2-tools, a
 * second agent) for as long as the agent runs. The TPM's state outlives the connection.
 */
import { connect } from 'node:net';
import { commandName, MAX_RESPONSE_SIZE } from '../constants.js';
import { TpmError } from '../errors.js';
import { announcedSize } from '../wire.js';
import type { TpmTransport } from './types.js';

export class SocketTransport implements TpmTransport {
  readonly description: string;

  constructor(readonly path: string) {
    this.description = `${path} (socket)`;
  }

  send(command: Buffer, cc: number, signal: AbortSignal): Promise<Buffer> {
    const name = commandName(cc);
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let received = 0;
      let expected: number | undefined;
      let settled = false;
      const sock = connect(this.path);
      const finish = (err: TpmError | undefined, value?: Buffer): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        sock.destroy();
        if (err) reject(err);
        else resolve(value!);
      };
      const onAbort = (): void => finish(abortError(signal, name, this.path));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      sock.on('connect', () => sock.write(command));
      sock.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        received += chunk.length;
        try {
          if (expected === undefined && received >= 10) expected = announcedSize(Buffer.concat(chunks), cc);
        } catch (err) {
          return finish(err as TpmError);
        }
        if (expected !== undefined && received > expected) {
          return finish(new TpmError('tpm_malformed_response', `tpm: malformed ${name} response: ${received} bytes arrived for a responseSize of ${expected}`));
        }
        if (received > MAX_RESPONSE_SIZE) return finish(new TpmError('tpm_malformed_response', `tpm: malformed ${name} response: over ${MAX_RESPONSE_SIZE} bytes`));
        if (expected === received) finish(undefined, Buffer.concat(chunks, received));
      });
      sock.on('error', (err: NodeJS.ErrnoException) => {
        const hint = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? ': is the TPM simulator running?' : '';
        finish(new TpmError('tpm_io', `tpm: ${name} over ${this.path} failed: ${err.message}${hint}`, { cause: err }));
      });
      sock.on('close', () => {
        if (received === 0) finish(new TpmError('tpm_io', `tpm: ${this.path} closed the connection without answering ${name}`));
        else finish(new TpmError('tpm_malformed_response', `tpm: malformed ${name} response: the connection closed after ${received} of ${expected ?? 'at least 10'} bytes`));
      });
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export function abortError(signal: AbortSignal, command: string, path: string): TpmError {
  const reason: unknown = signal.reason;
  if (reason instanceof TpmError) return reason;
  return new TpmError('tpm_timeout', `tpm: ${command} on ${path} was abandoned: ${reason instanceof Error ? reason.message : String(reason)}`, { cause: reason });
}
