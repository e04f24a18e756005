/**
 * Reading a file the agent takes as input (config, entries, bundles, tokens, CA files).
 * Such a path may name a FIFO, a device or something huge, by mistake or on purpose:
 * open() of a FIFO blocks until a writer appears (a stuck thread-pool thread, a daemon
 * that never finishes starting), /dev/zero never ends. So: open without blocking, fstat
 * the descriptor we opened (not the path, which can be swapped in between), accept only
 * regular files, and never read more than a limit.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { SpiffeAgentError } from '../errors.js';

export type InputFileErrorCode = 'input_not_found' | 'input_unreadable' | 'input_not_regular' | 'input_too_large';

declare module '../errors.js' {
  interface ErrorCodes {
    inputFile: InputFileErrorCode;
  }
}

export class InputFileError extends SpiffeAgentError<InputFileErrorCode> {
  constructor(
    code: InputFileErrorCode,
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

export interface BoundedReadOptions {
  /** Refuse files larger than this many bytes. */
  maxBytes: number;
  /** What the file is, for messages ("config file", "registration entries file"). */
  what: string;
}

/** Limits, in one place so they are documented together. */
export const INPUT_LIMITS = {
  /** agent.conf and plugin_data_file: real ones are a few KiB; plugin data may embed certificates. */
  config: 4 << 20,
  /** ~300 bytes an entry pretty-printed: room for over 400,000 entries. */
  entries: 128 << 20,
  /** A SPIFFE bundle or PEM file of CA certificates. */
  bundle: 16 << 20,
  /** Service-account and join tokens, private keys. */
  token: 1 << 20,
  /** /etc/passwd and /etc/group: ~60 bytes a line, room for a quarter of a million users. */
  userDb: 16 << 20,
} as const;

// O_NONBLOCK: open() of a FIFO returns at once instead of waiting for a writer; reads of
// regular files ignore the flag. O_NOCTTY: a terminal device never becomes our controlling tty.
const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

export async function readBoundedFile(path: string, o: BoundedReadOptions): Promise<string> {
  let fh;
  try {
    fh = await open(path, FLAGS);
  } catch (err) {
    throw openError(path, o, err);
  }
  try {
    let buf = initialBuffer(path, o, await fh.stat());
    let len = 0;
    for (;;) {
      if (len === buf.length) buf = grow(buf, path, o);
      const { bytesRead } = await fh.read(buf, len, buf.length - len, null);
      if (bytesRead === 0) break;
      len += bytesRead;
    }
    if (len > o.maxBytes) throw tooLarge(path, o);
    return buf.toString('utf8', 0, len);
  } catch (err) {
    throw err instanceof InputFileError ? err : readError(path, o, err);
  } finally {
    await fh.close().catch(() => {});
  }
}

/** The same, synchronously, for code that runs once at start-up inside a constructor. */
export function readBoundedFileSync(path: string, o: BoundedReadOptions): string {
  let fd: number;
  try {
    fd = openSync(path, FLAGS);
  } catch (err) {
    throw openError(path, o, err);
  }
  try {
    let buf = initialBuffer(path, o, fstatSync(fd));
    let len = 0;
    for (;;) {
      if (len === buf.length) buf = grow(buf, path, o);
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
    }
    if (len > o.maxBytes) throw tooLarge(path, o);
    return buf.toString('utf8', 0, len);
  } catch (err) {
    throw err instanceof InputFileError ? err : readError(path, o, err);
  } finally {
    closeSync(fd);
  }
}

/** Sized from fstat plus one byte, so that a file read in full is seen to end (read returns 0). */
function initialBuffer(path: string, o: BoundedReadOptions, st: Stats): Buffer {
  if (!st.isFile()) {
    throw new InputFileError('input_not_regular', path, `input: ${o.what} ${path} is ${kind(st)}, not a regular file; point the setting at a regular file`);
  }
  if (st.size > o.maxBytes) throw tooLarge(path, o);
  return Buffer.allocUnsafe(Math.max(st.size, 4095) + 1);
}

/** The file grew after fstat (or reports no size): grow, but never past one byte over the limit. */
function grow(buf: Buffer, path: string, o: BoundedReadOptions): Buffer {
  if (buf.length > o.maxBytes) throw tooLarge(path, o);
  const next = Buffer.allocUnsafe(Math.min(buf.length * 2, o.maxBytes + 1));
  buf.copy(next);
  return next;
}

function kind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

function tooLarge(path: string, o: BoundedReadOptions): InputFileError {
  return new InputFileError('input_too_large', path, `input: ${o.what} ${path} is larger than the limit of ${formatBytes(o.maxBytes)}; make it smaller`);
}

function openError(path: string, o: BoundedReadOptions, err: unknown): InputFileError {
  const errno = (err as NodeJS.ErrnoException).code;
  if (errno === 'ENOENT') return new InputFileError('input_not_found', path, `input: ${o.what} ${path} does not exist`, { cause: err });
  // ENXIO: a Unix socket, which cannot be opened as a file.
  if (errno === 'ENXIO') return new InputFileError('input_not_regular', path, `input: ${o.what} ${path} is not a regular file; point the setting at a regular file`, { cause: err });
  return readError(path, o, err);
}

function readError(path: string, o: BoundedReadOptions, err: unknown): InputFileError {
  return new InputFileError('input_unreadable', path, `input: cannot read ${o.what} ${path}: ${(err as Error).message}`, { cause: err });
}

function formatBytes(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n >> 20} MiB`;
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n >> 10} KiB`;
  return `${n} bytes`;
}
