/**
 * The HTTP listener the server calls back during one http_challenge attestation. It answers
 * GET (any method, as spire-agent's Go handler does) on
 * /.well-known/spiffe/nodeattestor/http_challenge/<agentname>/challenge with the nonce and a
 * newline once the nonce is known, and 404 otherwise. It is opened before the payload is sent
 * (the payload names its port) and closed when the attestation ends, whatever its outcome;
 * closing also drops open connections so the port is free at once.
 *
 * It listens on every interface, as spire-agent does: the server reaches the node at its DNS name,
 * which is rarely a loopback address.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../../telemetry/logger.js';
import { NodeAttestorError } from '../errors.js';
import { HTTP_CHALLENGE } from './config.js';

/** spire-agent's http.Server ReadTimeout and WriteTimeout. */
const IO_TIMEOUT_MS = 10_000;

export function challengePath(agentName: string): string {
  return `/.well-known/spiffe/nodeattestor/http_challenge/${agentName}/challenge`;
}

export interface ChallengeListener {
  /** The port listened on (the configured one, or the one the system picked for port 0). */
  readonly port: number;
  /** Starts answering with `nonce`. */
  serve(nonce: string): void;
  /** Stops listening and drops every connection; resolves once the port is released. */
  close(): Promise<void>;
}

export interface ListenOptions {
  readonly port: number;
  readonly agentName: string;
  readonly log: Logger;
  /** Interface to bind; every interface when absent (production). Tests pass "127.0.0.1". */
  readonly host?: string;
}

export async function listenForChallenge(o: ListenOptions): Promise<ChallengeListener> {
  const path = challengePath(o.agentName);
  let nonce: string | undefined;
  const server = http.createServer((req, res) => {
    // Go's ServeMux matches the path alone; a query string does not matter.
    const reqPath = (req.url ?? '').split('?', 1)[0];
    if (nonce === undefined || reqPath !== path) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
      res.end('404 page not found\n');
      return;
    }
    o.log.debug({ remote_addr: req.socket.remoteAddress, path }, 'Answering the server\'s HTTP challenge');
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`${nonce}\n`);
  });
  server.requestTimeout = IO_TIMEOUT_MS;
  server.headersTimeout = IO_TIMEOUT_MS;
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(listenError(o.port, err));
    server.once('error', onError);
    server.listen({ port: o.port, host: o.host }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // A failing socket after listen (rare) must not crash the agent; the attestation then fails by its timeout.
  server.on('error', (err) => o.log.warn({ error: err.message }, 'HTTP challenge listener failed'));
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    port,
    serve(n: string) {
      nonce = n;
      o.log.debug({ path, port }, 'Serving the HTTP challenge');
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

function listenError(port: number, err: NodeJS.ErrnoException): NodeAttestorError {
  const where = port === 0 ? 'a free port' : `port ${port}`;
  let hint = '';
  if (err.code === 'EADDRINUSE') {
    hint = `; another process holds it (see: ss -ltnp 'sport = :${port}'). Stop it, or set port to a free one; behind a web server that already uses port ${port}, set advertised_port = ${port} and proxy its challenge path to the agent's own port`;
  } else if (err.code === 'EACCES') {
    hint = '; ports below 1024 need root or CAP_NET_BIND_SERVICE; or listen on a high port and proxy the advertised_port to it';
  }
  return new NodeAttestorError('node_attestor_listen', `nodeattestor(${HTTP_CHALLENGE}): could not listen on ${where}: ${err.message}${hint}`, { cause: err });
}
