/**
 * Raw TPM 2.0 commands over a Linux TPM character device. /dev/tpmrm0 is the kernel's resource
 * manager: objects a client loads are swapped out for others and flushed when its file closes.
 * The kernel takes a whole command in one write(2) and returns the whole response to one read(2),
 * which blocks until the TPM has answered.
 *
 * The read runs on libuv's thread pool and cannot be interrupted. On a timeout the command is
 * abandoned and the transport refuses further commands: the next read would otherwise get the
 * abandoned command's response. The kernel bounds the blocked read with its own command timeouts.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { commandName, MAX_RESPONSE_SIZE } from '../constants.js';
import { TpmError } from '../errors.js';
import { announcedSize } from '../wire.js';
import { abortError } from './socket.js';
import type { TpmTransport } from './types.js';

export class DeviceTransport implements TpmTransport {
  readonly description: string;
  private broken: TpmError | undefined;
  private busy = false;

  private constructor(
    readonly path: string,
    private readonly file: FileHandle,
  ) {
    this.description = `${path} (device)`;
  }

  static async open(path: string): Promise<DeviceTransport> {
    try {
      return new DeviceTransport(path, await open(path, 'r+'));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const hint = e.code === 'EACCES' || e.code === 'EPERM' ? ': the agent needs read and write access to it (on most distributions, membership of the tss group)' : e.code === 'EBUSY' ? ': another program holds it open; use /dev/tpmrm0, which many programs can share' : '';
      throw new TpmError('tpm_io', `tpm: cannot open ${path}: ${e.message}${hint}`, { cause: err });
    }
  }

  async send(command: Buffer, cc: number, signal: AbortSignal): Promise<Buffer> {
    const name = commandName(cc);
    if (this.broken) throw this.broken;
    if (this.busy) throw new TpmError('tpm_io', `tpm: ${name}: ${this.path} is still answering another command`);
    if (signal.aborted) throw abortError(signal, name, this.path);
    this.busy = true;
    let onAbort: (() => void) | undefined;
    const abandoned = new Promise<never>((_, reject) => {
      onAbort = () => {
        const err = abortError(signal, name, this.path);
        this.broken = new TpmError('tpm_io', `tpm: ${this.path} is unusable: an earlier ${name} was abandoned before it answered; open the TPM again`);
        reject(err);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
    const exchange = (async () => {
      try {
        const { bytesWritten } = await this.file.write(command, 0, command.length, null);
        if (bytesWritten !== command.length) throw new TpmError('tpm_io', `tpm: ${name}: ${this.path} took ${bytesWritten} of ${command.length} bytes`);
        const buf = Buffer.alloc(MAX_RESPONSE_SIZE + 1);
        const { bytesRead } = await this.file.read(buf, 0, buf.length, null);
        if (bytesRead === 0) throw new TpmError('tpm_io', `tpm: ${this.path} returned no response to ${name}`);
        const response = buf.subarray(0, bytesRead);
        if (bytesRead < 10) throw new TpmError('tpm_malformed_response', `tpm: malformed ${name} response: ${bytesRead} bytes, shorter than a header`);
        const size = announcedSize(response, cc);
        if (size !== bytesRead) throw new TpmError('tpm_malformed_response', `tpm: malformed ${name} response: responseSize says ${size} bytes, ${bytesRead} arrived`);
        return Buffer.from(response);
      } catch (err) {
        if (err instanceof TpmError) throw err;
        throw new TpmError('tpm_io', `tpm: ${name} on ${this.path} failed: ${(err as Error).message}`, { cause: err });
      } finally {
        this.busy = false;
      }
    })();
    try {
      return await Promise.race([exchange, abandoned]);
    } finally {
      signal.removeEventListener('abort', onAbort!);
      // The losing promise must not become an unhandled rejection.
      exchange.catch(() => undefined);
      abandoned.catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    const closing = this.file.close().catch(() => undefined);
    // FileHandle.close waits for the pending read an abandoned command left; do not wait with it.
    if (!this.broken) await closing;
  }
}
