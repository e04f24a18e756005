/**
 * One authenticated D-Bus connection over a Unix socket: method calls with per-call timeout and
 * AbortSignal, replies matched by serial. Incoming method calls go to one listener (only test
 * services install one) or are refused with UnknownMethod, as the bus expects every call answered.
 * It never reconnects by itself; whoever owns it opens a new one after `closed` turns true.
 */
import { connect, type Socket } from 'node:net';
import { authenticateExternal } from './auth.js';
import { parseAddress, type SocketTarget } from './address.js';
import { DBusError, DBusRemoteError } from './errors.js';
import { Flags, MessageType, decodeMessage, encodeMessage, messageLength, type Message } from './message.js';

export interface MethodCall {
  readonly destination: string;
  readonly path: string;
  readonly interface: string;
  readonly member: string;
  readonly signature?: string;
  readonly body?: readonly unknown[];
}

export interface CallOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  /** Reject a reply whose body signature differs (e.g. "o" for GetUnitByPID). */
  readonly replySignature?: string | undefined;
}

export interface OpenOptions extends CallOptions {
  /** The uid claimed in EXTERNAL auth; the bus checks it against the socket's credentials. */
  readonly uid: number;
}

/** A reply body to an incoming method call. */
export interface Reply {
  readonly signature: string;
  readonly body: readonly unknown[];
}
export type MethodCallListener = (call: Message) => void;

interface Pending {
  resolve(reply: Message): void;
  reject(err: Error): void;
}

const BUS = { destination: 'org.freedesktop.DBus', path: '/org/freedesktop/DBus', interface: 'org.freedesktop.DBus' } as const;

export class DBusConnection {
  private nextSerial = 1;
  private readonly pending = new Map<number, Pending>();
  private buffered: Buffer = Buffer.alloc(0);
  private closeReason: DBusError | undefined;
  private readonly closeListeners = new Set<(reason: DBusError) => void>();
  private callListener: MethodCallListener | undefined;
  private name = '';

  private constructor(
    private readonly socket: Socket,
    /** The address entry we are connected to, for messages. */
    readonly address: string,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.shutdown(new DBusError('dbus_connection_closed', `dbus: connection to ${address} failed: ${err.message}`, { cause: err })));
    socket.on('close', () => this.shutdown(new DBusError('dbus_connection_closed', `dbus: connection to ${address} closed`)));
  }

  /** Connects to the first reachable entry of `address`, authenticates and says Hello. */
  static async open(address: string, opts: OpenOptions): Promise<DBusConnection> {
    const deadline = AbortSignal.timeout(opts.timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
    const failures: string[] = [];
    for (const target of parseAddress(address)) {
      let socket: Socket;
      try {
        socket = await connectSocket(target, signal);
      } catch (err) {
        if (signal.aborted) throw abortError(signal, deadline, `connecting to ${address}`, opts.timeoutMs);
        failures.push(`${target.display}: ${(err as Error).message}`);
        continue;
      }
      try {
        const rest = await authenticateExternal(socket, opts.uid, signal);
        const conn = new DBusConnection(socket, target.display);
        if (rest.length > 0) conn.onData(rest);
        const [name] = await conn.call({ ...BUS, member: 'Hello' }, { timeoutMs: opts.timeoutMs, signal: opts.signal });
        conn.name = String(name);
        return conn;
      } catch (err) {
        socket.destroy();
        if (signal.aborted) throw abortError(signal, deadline, `connecting to ${address}`, opts.timeoutMs);
        throw err;
      }
    }
    throw new DBusError('dbus_connect_failed', `dbus: cannot connect to ${address}: ${failures.join('; ')}`);
  }

  /** Our unique bus name (":1.42"), assigned by Hello. */
  get uniqueName(): string {
    return this.name;
  }

  get closed(): boolean {
    return this.closeReason !== undefined;
  }

  onClose(listener: (reason: DBusError) => void): void {
    if (this.closeReason) listener(this.closeReason);
    else this.closeListeners.add(listener);
  }

  /** Receives incoming method calls, which it answers with `replyTo`; without one they get UnknownMethod. */
  onMethodCall(listener: MethodCallListener | undefined): void {
    this.callListener = listener;
  }

  /** Answers an incoming method call with a body or an error (nothing if it asked for no reply). */
  replyTo(call: Message, reply: Reply | DBusRemoteError): void {
    if ((call.flags & Flags.NoReplyExpected) !== 0 || this.closed) return;
    const base = { flags: Flags.NoAutoStart, serial: this.takeSerial(), replySerial: call.serial, destination: call.sender };
    this.send(
      reply instanceof DBusRemoteError
        ? { ...base, type: MessageType.Error, errorName: reply.errorName, signature: 's', body: [reply.detail] }
        : { ...base, type: MessageType.MethodReturn, signature: reply.signature, body: reply.body },
    );
  }

  call(m: MethodCall, opts: CallOptions): Promise<unknown[]> {
    return new Promise((resolve, reject) => {
      if (this.closeReason) return reject(this.closeReason);
      if (opts.signal?.aborted) return reject(new DBusError('dbus_aborted', `dbus: ${m.member} aborted`, { cause: opts.signal.reason }));
      const serial = this.takeSerial();
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => settle(() => reject(new DBusError('dbus_aborted', `dbus: ${m.member} aborted`, { cause: opts.signal?.reason })));
      const settle = (fn: () => void): void => {
        if (!this.pending.delete(serial)) return;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        fn();
      };
      this.pending.set(serial, {
        resolve: (reply) => settle(() => {
          const want = opts.replySignature;
          if (want === undefined || reply.signature === want) return resolve([...reply.body]);
          reject(new DBusError('dbus_protocol', `dbus: reply to ${m.interface}.${m.member} has signature "${reply.signature}", expected "${want}"`));
        }),
        reject: (err) => settle(() => reject(err)),
      });
      timer = setTimeout(
        () => settle(() => reject(new DBusError('dbus_timeout', `dbus: no reply to ${m.interface}.${m.member} from ${m.destination} within ${opts.timeoutMs} ms`))),
        opts.timeoutMs,
      ).unref();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        this.send({
          type: MessageType.MethodCall, flags: 0, serial, destination: m.destination, path: m.path,
          interface: m.interface, member: m.member, signature: m.signature ?? '', body: m.body ?? [],
        });
      } catch (err) {
        this.pending.get(serial)?.reject(err as Error);
      }
    });
  }

  close(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.destroy();
    });
  }

  private takeSerial(): number {
    const s = this.nextSerial;
    this.nextSerial = s >= 0xffffffff ? 1 : s + 1;
    return s;
  }

  private send(m: Message): void {
    this.socket.write(encodeMessage(m));
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    try {
      for (;;) {
        const n = messageLength(this.buffered);
        if (n === undefined) return;
        const msg = decodeMessage(this.buffered.subarray(0, n));
        this.buffered = this.buffered.subarray(n);
        this.dispatch(msg);
      }
    } catch (err) {
      // A stream we cannot parse cannot be resynchronised: drop the connection.
      this.shutdown(err instanceof DBusError ? err : new DBusError('dbus_protocol', `dbus: ${(err as Error).message}`, { cause: err }));
      this.socket.destroy();
    }
  }

  private dispatch(msg: Message): void {
    if (msg.type === MessageType.MethodReturn || msg.type === MessageType.Error) {
      const p = msg.replySerial === undefined ? undefined : this.pending.get(msg.replySerial);
      if (!p) return; // a reply to a call that already timed out or was aborted
      if (msg.type === MessageType.MethodReturn) p.resolve(msg);
      else p.reject(new DBusRemoteError(msg.errorName ?? 'org.freedesktop.DBus.Error.Failed', typeof msg.body[0] === 'string' ? msg.body[0] : ''));
      return;
    }
    if (msg.type !== MessageType.MethodCall) return;
    if (this.callListener) this.callListener(msg);
    else this.replyTo(msg, new DBusRemoteError('org.freedesktop.DBus.Error.UnknownMethod', `no method ${msg.interface ?? ''}.${msg.member ?? ''}`));
  }

  private shutdown(reason: DBusError): void {
    if (this.closeReason) return;
    this.closeReason = reason;
    for (const p of [...this.pending.values()]) p.reject(reason);
    for (const l of this.closeListeners) l(reason);
    this.closeListeners.clear();
  }
}

function connectSocket(target: SocketTarget, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path: target.path });
    const onAbort = (): void => {
      socket.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(err);
    });
  });
}

function abortError(signal: AbortSignal, deadline: AbortSignal, what: string, timeoutMs: number): DBusError {
  if (deadline.aborted) return new DBusError('dbus_timeout', `dbus: timed out after ${timeoutMs} ms ${what}`);
  return new DBusError('dbus_aborted', `dbus: aborted while ${what}`, { cause: signal.reason });
}
