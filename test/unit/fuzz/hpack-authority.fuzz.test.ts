/**
 * The gate's fast :authority scan (src/endpoints/hpack-authority.ts) against the full bounded
 * decoder it stands in for: whenever the scan answers, it is the full decoder's answer (the first
 * :authority's value, or none). The only case where it may answer and the full decoder throw is a
 * malformed Huffman string the scan skips (gRPC's own HTTP/2 decoder refuses that one). Blocks come
 * from hpack.js's encoder (Huffman and indexing as real clients use them), with table size updates,
 * then mutated and cut. Realistic first requests must be answered by the scan itself.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { scanAuthority } from '../../../src/endpoints/hpack-authority.js';
import { BoundedHpackDecoder } from '../../../src/endpoints/hpack-bounded.js';
import { DEFAULT_H2_LIMITS, H2Code, H2ProtocolError } from '../../../src/endpoints/h2-limits.js';
import { clientEncoder, grpcRequest } from '../../helpers/h2-frames.js';
import { fc, fuzz } from './fuzz.js';

const hpack = createRequire(import.meta.url)('hpack.js') as {
  encoder: { create(): { encodeBit(b: number): void; encodeInt(n: number): void; encodeStr(s: number[], huffman: boolean): void; render(): Buffer[] } };
};
const LIMITS = { maxHeaderListSize: 2_000, maxHeaderFields: 20 };

/** The full decoder's answer: the first :authority, null, or the error it throws. */
function full(block: Buffer, limits = LIMITS): string | null | H2ProtocolError {
  try {
    return new BoundedHpackDecoder(limits).decode(block).find((h) => h.name === ':authority')?.value ?? null;
  } catch (err) {
    if (err instanceof H2ProtocolError) return err;
    throw err;
  }
}

/** How many blocks the scan answered itself, so a scan that always defers cannot pass unseen. */
const answered = { yes: 0, no: 0 };

function agrees(block: Buffer, limits = LIMITS): void {
  const fast = scanAuthority(block, limits);
  answered[fast === undefined ? 'no' : 'yes']++;
  if (fast === undefined) return;
  const want = full(block, limits);
  if (want instanceof H2ProtocolError) {
    // Only a Huffman coding the scan did not decode may tell them apart.
    expect(want.h2Code).toBe(H2Code.COMPRESSION_ERROR);
    expect(want.message).toMatch(/EOS/);
  } else {
    expect(fast).toBe(want);
  }
}

/** A literal field without indexing, its name and value written raw or Huffman-coded as asked. */
function literal(name: string, value: string, huffman: boolean): Buffer {
  const e = hpack.encoder.create();
  e.encodeBit(0);
  e.encodeBit(0);
  e.encodeBit(0);
  e.encodeBit(0);
  e.encodeInt(0);
  e.encodeStr([...Buffer.from(name, 'latin1')], huffman);
  e.encodeStr([...Buffer.from(value, 'latin1')], huffman);
  return Buffer.concat(e.render());
}

const NAMES = [':authority', ':path', ':method', 'content-type', 'te', 'user-agent', 'workload.spiffe.io', 'grpc-timeout', 'x-a', ':Authority'];
const value = fc.oneof(
  fc.constantFrom('localhost', '/tmp/agent.sock', '%2Ftmp%2Fa.sock', '', 'unix:///run/spire/sockets/agent.sock', 'application/grpc', 'trailers', 'true'),
  fc.string({ maxLength: 40 }),
  fc.string({ minLength: 100, maxLength: 900 }),
);
const headerList = fc.array(fc.record({ name: fc.constantFrom(...NAMES), value }), { maxLength: 25 });
const tableUpdate = fc.option(fc.integer({ min: 0, max: 8_192 }), { nil: undefined });

function withUpdate(size: number | undefined, block: Buffer): Buffer {
  if (size === undefined) return block;
  const e = hpack.encoder.create();
  e.encodeBit(0);
  e.encodeBit(0);
  e.encodeBit(1);
  e.encodeInt(size);
  return Buffer.concat([...e.render(), block]);
}

describe('the gate scan of the first header block agrees with the full decoder', () => {
  it('on blocks as hpack.js encodes them (Huffman, incremental indexing), after a table size update or not', () => {
    fuzz(
      fc.property(headerList, tableUpdate, fc.boolean(), (headers, update, second) => {
        const enc = clientEncoder();
        // A second block from the same encoder refers to the dynamic table the first filled, which a fresh scan does not know.
        if (second) enc(headers);
        agrees(withUpdate(update, enc(headers)));
        agrees(withUpdate(update, enc(headers)), DEFAULT_H2_LIMITS);
      }),
      400,
    );
  });

  it('on literal fields written raw or Huffman-coded, with :authority by name', () => {
    fuzz(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...NAMES), value, fc.boolean()), { maxLength: 12 }), (fields) => {
        agrees(Buffer.concat(fields.map(([n, v, h]) => literal(n, v, h))));
      }),
      400,
    );
  });

  it('on mutated and cut blocks', () => {
    fuzz(
      fc.property(headerList, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(), (headers, flips, cut) => {
        const b = Buffer.from(clientEncoder()(headers));
        for (const [at, v] of flips) if (b.length > 0) b[at % b.length] = v;
        agrees(b);
        agrees(b.subarray(0, b.length === 0 ? 0 : cut % b.length));
      }),
      400,
    );
  });

  it('on random bytes', () => {
    fuzz(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => agrees(Buffer.from(bytes))), 400);
  });

  it('answered a good share of those blocks itself (random and mutated ones are mostly left to the full decoder)', () => {
    expect(answered.yes / (answered.yes + answered.no)).toBeGreaterThan(0.25);
  });
});

describe('the gate scan answers realistic first requests itself', () => {
  const request = (authority: string, extra: { name: string; value: string }[] = []) =>
    grpcRequest(authority, [{ name: 'user-agent', value: 'grpc-go/1.72.0' }, ...extra], '/SpiffeWorkloadAPI/FetchX509SVID');
  it.each([
    ['grpc-go', 'localhost'],
    ['grpc-java (socket path)', '/tmp/spire-agent/public/api.sock'],
    ['an authority written raw', 'localhost'],
  ])('%s', (_name, authority) => {
    const block = clientEncoder()(request(authority, [{ name: 'grpc-timeout', value: '4999936u' }]));
    expect(scanAuthority(block, DEFAULT_H2_LIMITS)).toBe(authority);
    expect(scanAuthority(literal(':authority', authority, false), DEFAULT_H2_LIMITS)).toBe(authority);
  });

  it('no :authority: null; one over the limits or in an unknown table: left to the full decoder', () => {
    expect(scanAuthority(clientEncoder()([{ name: ':path', value: '/x' }]), DEFAULT_H2_LIMITS)).toBeNull();
    expect(scanAuthority(clientEncoder()(request('localhost')), { maxHeaderListSize: 100, maxHeaderFields: 100 })).toBeUndefined();
    const enc = clientEncoder();
    enc(request('localhost'));
    // The second block indexes the :authority the first one added: unknown to a scan of this block alone.
    expect(scanAuthority(enc(request('localhost')), DEFAULT_H2_LIMITS)).toBeUndefined();
  });
});
