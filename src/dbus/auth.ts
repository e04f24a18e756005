/**
 * The SASL handshake that opens every D-Bus connection. We only speak EXTERNAL: the bus
 * checks the uid we claim against the socket's peer credentials, so nothing secret is sent.
 */
import type { Socket } from 'node:net';
import { DBusError } from './errors.js';

const MAX_LINE = 16 * 1024;

/**
 * Runs the handshake on a connected socket; resolves with any bytes the server sent after its
 * OK line (they belong to the message stream), or rejects on REJECTED, ERROR, close or abort.
 */
export function authenticateExternal(socket: Socket, uid: number, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (err: DBusError): void => {
      cleanup();
      reject(err);
    };
    const onAbort = (): void => fail(new DBusError('dbus_aborted', 'dbus: authentication aborted', { cause: signal.reason }));
    const onClose = (): void => fail(new DBusError('dbus_auth_failed', 'dbus: bus closed the connection during authentication'));
    const onError = (cause: Error): void => fail(new DBusError('dbus_auth_failed', `dbus: authentication failed: ${cause.message}`, { cause }));
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf('\r\n');
      if (nl < 0) {
        if (buf.length > MAX_LINE) fail(new DBusError('dbus_auth_failed', 'dbus: authentication reply too long'));
        return;
      }
      const line = buf.toString('ascii', 0, nl);
      const rest = buf.subarray(nl + 2);
      if (line.startsWith('OK ')) {
        cleanup();
        socket.write('BEGIN\r\n');
        resolve(rest);
        return;
      }
      fail(new DBusError('dbus_auth_failed', `dbus: the bus refused EXTERNAL authentication as uid ${uid} (${line.slice(0, 200)})`));
    };
    if (signal.aborted) return onAbort();
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
    // The uid is sent as its decimal digits, hex-encoded.
    socket.write(Buffer.concat([Buffer.from([0]), Buffer.from(`AUTH EXTERNAL ${Buffer.from(String(uid), 'ascii').toString('hex')}\r\n`)]));
  });
}
