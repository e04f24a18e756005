/**
 * The HTTP/1.1 responder behind the agent's TCP listeners (Prometheus exposition, health probes):
 * one GET per connection, answered with `Connection: close`. Any local user can reach 127.0.0.1,
 * so what one connection can cost the agent is bounded: its request head (16 KiB, 10 s), one
 * answer, and a descriptor among at most MAX_HTTP_CONNECTIONS per listener
 * (test/integration/attack-http-listeners.test.ts attacks it).
 *
 * Not node:http, because node:http parses every request in a 64 KiB read before anything can stop
 * it: a client pipelining thousands of requests made the agent build and then abort about 2,000
 * request objects per read (150 ms of its one thread each, 300 MiB of RSS for 40 such clients), and
 * real scrapes waited 5–7 s. Prometheus and the kubelet send one request per scrape or probe and
 * reconnect when told to close; spire-agent (Go's net/http, 10 s ReadHeaderTimeout) keeps the
 * connection alive between them.
 */
import { createServer, type Server, type Socket } from 'node:net';

/**
 * Connections one listener holds at once. Prometheus and the kubelet need one or two each; the bound
 * keeps the listeners far from a 1,024 open-file limit, where the Workload API would be refused.
 */
export const MAX_HTTP_CONNECTIONS = 16;
/** Request line and headers; node:http's default (Go allows 1 MiB). */
export const MAX_HEAD_BYTES = 16 * 1024;
/** Go's ReadHeaderTimeout in spire-agent's listeners; also bounds how long an unread answer holds its connection. */
export const HEAD_TIMEOUT_MS = 10_000;

export interface HttpRequestHead {
  readonly method: string;
  /**
   * The request target in origin form (path and query) or `*`: an absolute-form target
   * (`http://host:port/metrics`), which Go's net/http takes, arrives here as its path and query.
   */
  readonly target: string;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

const REASONS: Readonly<Record<number, string>> = { 200: 'OK', 400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error' };
const REQUEST_LINE = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/;
/** An absolute-form target's scheme and authority (RFC 9112 3.2.2); what follows is its path and query. */
const ABSOLUTE_PREFIX = /^[A-Za-z][A-Za-z0-9+.-]*:(?:\/\/[^/?]*)?(?=[/?]|$)/;

/**
 * The target as a handler sees it, or undefined for one Go's net/http refuses with 400 (neither
 * origin form, nor absolute form, nor `*`). A proxy-style client (or a probe configured with a full
 * URL) sends the absolute form; Go serves it by its path, ignoring the authority, and so do we.
 * `scheme:opaque` (no slash after the colon), which Go parses into an empty path, is refused.
 */
export function originForm(target: string): string | undefined {
  if (target.startsWith('/') || target === '*') return target;
  const m = ABSOLUTE_PREFIX.exec(target);
  if (!m) return undefined;
  const rest = target.slice(m[0].length);
  return rest.startsWith('/') ? rest : `/${rest}`;
}

/** A listener that `close()` alone would keep open until its clients hang up. */
export type BoundedHttpServer = Server & { closeAllConnections(): void };

export function createBoundedHttpServer(handle: (req: HttpRequestHead) => HttpAnswer | Promise<HttpAnswer>, onError: (err: Error) => void, maxConnections = MAX_HTTP_CONNECTIONS): BoundedHttpServer {
  // Open connections in the order they came in, whether each has sent its request, and the turn
  // (see below) it was accepted in.
  const open = new Map<Socket, { answered: boolean; turn: number }>();
  let failing = false;
  // Counts event-loop turns (check phases) while a connection is too young to be judged silent. A
  // flood's burst is accepted in one turn, before the reads of that turn's connections run (libuv
  // starts watching an accepted socket at the next poll): a scrape whose request is already in its
  // socket would otherwise be taken for silent and closed by the burst behind it (a CI run saw a
  // probe closed 8 ms after it connected). The count keeps going until the newest connection has
  // seen a poll phase after its accept, so a quiet spell cannot leave old connections looking young.
  let turn = 0;
  let lastAccept = -1;
  let ticking = false;
  const tick = (): void => {
    turn++;
    ticking = turn - 1 <= lastAccept;
    if (ticking) setImmediate(tick).unref();
  };
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    failing = false;
    const state = { answered: false, turn };
    lastAccept = turn;
    if (!ticking) {
      ticking = true;
      setImmediate(tick).unref();
    }
    open.set(socket, state);
    socket.once('close', () => open.delete(socket));
    if (open.size > maxConnections) {
      // Full: the oldest connection silent for two turns at least (its read had its chance to run)
      // gives way, so connections an attacker holds open cannot keep a real scrape out. When none
      // has been silent that long (every other one is being answered, or is too young to judge),
      // the newcomer is refused: closing the oldest young one instead would close, in a burst, the
      // scrape accepted first in it, whose request is in its socket but not read yet.
      const victim = [...open].find(([s, st]) => !st.answered && s !== socket && st.turn < turn - 1)?.[0] ?? socket;
      open.delete(victim);
      victim.destroy();
      if (victim === socket) return;
    }
    socket.setTimeout(HEAD_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0 && head.length <= MAX_HEAD_BYTES) return;
      // One request per connection: whatever follows its head (a body, pipelined requests) is never read.
      socket.off('data', onData);
      socket.pause();
      state.answered = true;
      if (end < 0 || end > MAX_HEAD_BYTES) return reply(socket, { status: 431 });
      const m = REQUEST_LINE.exec(head.subarray(0, head.indexOf('\r\n')).toString('latin1'));
      const target = m ? originForm(m[2]!) : undefined;
      if (!m || target === undefined) return reply(socket, { status: 400 });
      Promise.resolve()
        .then(() => handle({ method: m[1]!, target }))
        .then(
          (answer) => reply(socket, answer, m[1] === 'HEAD'),
          () => reply(socket, { status: 500 }),
        );
    };
    socket.on('data', onData);
    // A client that closes its side before its request is complete gets nothing; after it, its answer.
    socket.on('end', () => state.answered || socket.destroy());
  });
  // Accept errors (EMFILE when the agent is out of descriptors) arrive as 'error' on a listening
  // server; with no listener Node throws them and the agent exits. Reported once until a
  // connection gets through again. Errors of listen() itself are the caller's to handle.
  server.on('error', (err) => {
    if (!server.listening || failing) return;
    failing = true;
    onError(err);
  });
  return Object.assign(server, { closeAllConnections: () => open.forEach((_, s) => s.destroy()) });
}

function reply(socket: Socket, a: HttpAnswer, headOnly = false): void {
  if (socket.destroyed) return;
  const body = Buffer.from(a.body ?? '');
  const headers = { ...a.headers, 'content-length': String(body.length), connection: 'close' };
  const lines = [`HTTP/1.1 ${a.status} ${REASONS[a.status] ?? ''}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  socket.end(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), headOnly ? Buffer.alloc(0) : body]));
  // A client that never reads its answer holds the connection until the timeout above ends it.
  socket.once('finish', () => socket.destroySoon());
}
