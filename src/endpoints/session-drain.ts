/**
 * Ends a listener's HTTP/2 sessions on shutdown without refusing a request the client has
 * already sent. A plain GOAWAY names the last stream the server has *read*; a request still in
 * the socket's buffer is above it, and the client sees it refused (Node's session.close() and
 * grpc-js's drain() send exactly that). RFC 9113 §6.8 has the server first send a GOAWAY with
 * the highest stream id and, one round trip later, the real one; grpc-go's GracefulStop does so.
 * Node cannot send the first (nghttp2 lowers a GOAWAY's last stream id to the last one
 * received), so the round trip comes first: a PING, and once its ACK is back every request the
 * client sent before it has been read (HTTP/2 frames arrive in order), and session.close() sends
 * a GOAWAY that covers them all, lets the open streams finish and then closes the connection.
 * Clients take GOAWAY as "reconnect for new calls" (grpc-go and grpc-js both do; a stream above
 * the last id, sent after the ACK, is one they retry on a new connection by themselves).
 * Sessions that open while draining (connections accepted just before the listener stopped)
 * are drained as they open.
 */
import type { Http2Server, ServerHttp2Session } from 'node:http2';

export class SessionDrain {
  private readonly sessions = new Set<ServerHttp2Session>();
  private draining = false;

  constructor(server: Http2Server) {
    server.on('session', (session: ServerHttp2Session) => {
      this.sessions.add(session);
      // 'close' comes once; on() saves the once() wrapper every session would hold.
      session.on('close', () => this.sessions.delete(session));
      if (this.draining) drainSession(session);
    });
  }

  /**
   * Starts draining every session, open now or later. Resolves once every session open now has
   * been sent its GOAWAY (or has closed), or after `capMs` (a client that never answers PINGs).
   */
  start(capMs: number): Promise<void> {
    this.draining = true;
    const sent = [...this.sessions].map((s) => drainSession(s));
    let timer: NodeJS.Timeout | undefined;
    const cap = new Promise<void>((r) => (timer = setTimeout(r, capMs)));
    timer?.unref();
    return Promise.race([Promise.all(sent).then(() => undefined), cap]).finally(() => clearTimeout(timer));
  }

  get size(): number {
    return this.sessions.size;
  }
}

/** PING, then GOAWAY (session.close()) on its ACK; resolves when the GOAWAY is sent or the session is gone. */
function drainSession(session: ServerHttp2Session): Promise<void> {
  if (session.closed || session.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const close = (): void => {
      if (!session.closed && !session.destroyed) session.close();
      resolve();
    };
    // A session destroyed before the ACK (the client left) never calls back.
    session.once('close', resolve);
    let sent = false;
    try {
      sent = session.ping(close);
    } catch {
      // A session being destroyed throws; close() is then a no-op.
    }
    // Too many PINGs unanswered (maxOutstandingPings): a client that does not answer them gets no round trip.
    if (!sent) close();
  });
}
