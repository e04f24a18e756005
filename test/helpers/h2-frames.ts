/** HTTP/2 bytes as a client would send them, for tests of the :authority filter. */
import { createRequire } from 'node:module';
import { expect } from 'vitest';
import { H2ProtocolError } from '../../src/endpoints/h2-limits.js';

const hpack = createRequire(import.meta.url)('hpack.js');

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** A client-side HPACK encoder, as grpc-java's would be: state carries across requests. */
export function clientEncoder(): (headers: { name: string; value: string }[]) => Buffer {
  // maxSize: the 4,096-octet table a real client keeps, evicting as RFC 7541 §4.4 says (hpack.js ignores `size`).
  const enc = hpack.compressor.create({ table: { maxSize: 4096 } });
  return (headers) => {
    enc.write(headers);
    const parts: Buffer[] = [];
    for (let c = enc.read(); c; c = enc.read()) parts.push(c);
    return Buffer.concat(parts);
  };
}

/** Runs `fn` and returns the HTTP/2 connection error it throws (failing if it throws none). */
export function connectionError(fn: () => unknown): H2ProtocolError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(H2ProtocolError);
    return err as H2ProtocolError;
  }
  throw new Error('expected an HTTP/2 connection error');
}

/** A gRPC request's header list as a client sends it on a Unix socket, with `authority` as its :authority. */
export function grpcRequest(authority: string, extra: { name: string; value: string }[] = [], path = '/SpiffeWorkloadAPI/FetchJWTSVID'): { name: string; value: string }[] {
  return [
    { name: ':method', value: 'POST' },
    { name: ':scheme', value: 'http' },
    { name: ':path', value: path },
    { name: ':authority', value: authority },
    { name: 'content-type', value: 'application/grpc' },
    { name: 'te', value: 'trailers' },
    { name: 'workload.spiffe.io', value: 'true' },
    ...extra,
  ];
}
