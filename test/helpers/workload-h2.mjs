// What the raw HTTP/2 Workload API clients of the restart tests (fetch-loop.mjs, watch-loop.mjs)
// share: a FetchX509SVID request on a connected socket.
import { connect as h2Connect } from 'node:http2';

/** Opens an HTTP/2 session on `sock` and sends one FetchX509SVID request; returns both. */
export function fetchX509SVID(sock) {
  const session = h2Connect('http://localhost', { createConnection: () => sock });
  const req = session.request({
    ':method': 'POST',
    ':path': '/SpiffeWorkloadAPI/FetchX509SVID',
    'content-type': 'application/grpc',
    te: 'trailers',
    'workload.spiffe.io': 'true',
  });
  return { session, req };
}
