import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { AuthorityRewriter } from '../../../src/endpoints/h2-rewriter.js';
import { H2ProtocolError } from '../../../src/endpoints/h2-limits.js';
import { PREFACE, clientEncoder, frame } from '../../helpers/h2-frames.js';

const hpack = createRequire(import.meta.url)('hpack.js');




/** Splits rewriter output into frames and decodes header blocks with a server-side decoder. */
function serverView(out: Buffer) {
  // maxSize: the server's 4,096-octet table, evicting as nghttp2's does (hpack.js ignores `size`).
  const dec = hpack.decompressor.create({ table: { maxSize: 4096 } });
  let buf = out.subarray(PREFACE.length);
  expect(out.subarray(0, PREFACE.length).equals(PREFACE)).toBe(true);
  const frames: { type: number; flags: number; stream: number; payload: Buffer }[] = [];
  while (buf.length) {
    const len = buf.readUIntBE(0, 3);
    frames.push({ type: buf[3]!, flags: buf[4]!, stream: buf.readUInt32BE(5), payload: buf.subarray(9, 9 + len) });
    buf = buf.subarray(9 + len);
  }
  const blocks: Record<string, string>[] = [];
  let pending: Buffer[] = [];
  for (const f of frames) {
    if (f.type !== 1 && f.type !== 9) continue;
    pending.push(f.type === 1 && f.flags & 0x20 ? f.payload.subarray(5) : f.payload);
    if (f.flags & 0x4) {
      dec.write(Buffer.concat(pending));
      dec.execute();
      const h: Record<string, string> = {};
      for (let x = dec.read(); x; x = dec.read()) h[x.name] = x.value;
      blocks.push(h);
      pending = [];
    }
  }
  return { frames, blocks };
}

const request = (authority: string, path = '/SpiffeWorkloadAPI/FetchX509SVID') => [
  { name: ':method', value: 'POST' },
  { name: ':scheme', value: 'http' },
  { name: ':path', value: path },
  { name: ':authority', value: authority },
  { name: 'workload.spiffe.io', value: 'true' },
];

describe('HTTP/2 :authority filter', () => {
  it('rewrites a socket-path authority to localhost across requests that reuse the HPACK dynamic table', () => {
    const enc = clientEncoder();
    const r = new AuthorityRewriter();
    const input = Buffer.concat([
      PREFACE,
      frame(4, 0, 0, Buffer.alloc(0)), // SETTINGS
      frame(1, 0x4, 1, enc(request('/tmp/spire-agent/public/api.sock'))),
      frame(0, 0x1, 1, Buffer.from('grpc-message-bytes')),
      frame(1, 0x4 | 0x1, 3, enc(request('/tmp/spire-agent/public/api.sock', '/SpiffeWorkloadAPI/FetchJWTSVID'))),
    ]);
    // Byte-at-a-time delivery: frames split anywhere must still be reassembled.
    const out = Buffer.concat([...input].flatMap((b) => r.push(Buffer.from([b]))));
    const { frames, blocks } = serverView(out);
    expect(blocks.map((b) => b[':authority'])).toEqual(['localhost', 'localhost']);
    expect(blocks[1]![':path']).toBe('/SpiffeWorkloadAPI/FetchJWTSVID');
    expect(blocks[1]!['workload.spiffe.io']).toBe('true');
    expect(r.rewrittenFrom).toBe('/tmp/spire-agent/public/api.sock');
    const data = frames.find((f) => f.type === 0)!;
    expect(data.payload.toString()).toBe('grpc-message-bytes');
    expect(frames.filter((f) => f.type === 1).map((f) => f.flags & 0x1)).toEqual([0, 1]);
  });

  it('stays in step with both HPACK tables once they evict: 300 requests with a fresh grpc-timeout each on one connection', () => {
    // Each request adds entries to the client's table (4,096 octets), which soon evicts; the filter's
    // decoder and encoder must evict exactly as the client and the server do, or later indexes name
    // other fields (and their tables grow without bound). Before hpack.js got `maxSize`, they never evicted.
    const enc = clientEncoder();
    const r = new AuthorityRewriter();
    const sent: { name: string; value: string }[][] = [];
    const frames = [PREFACE, frame(4, 0, 0, Buffer.alloc(0))];
    for (let i = 0; i < 300; i++) {
      const headers = [...request('/tmp/spire-agent/public/api.sock'), { name: 'grpc-timeout', value: `${4_999_000 + i}u` }, { name: `x-trace-${i}`, value: `span-${i}` }];
      sent.push(headers);
      frames.push(frame(1, 0x4 | 0x1, 1 + 2 * i, enc(headers)));
    }
    const parts = r.push(Buffer.concat(frames));
    // The rewriter decodes one whole block per call and leaves the rest for later turns.
    while (r.hasMore) parts.push(...r.drain());
    const { blocks } = serverView(Buffer.concat(parts));
    expect(blocks).toHaveLength(300);
    blocks.forEach((b, i) => {
      const want = Object.fromEntries(sent[i]!.map((h) => [h.name, h.name === ':authority' ? 'localhost' : h.value]));
      expect(b).toEqual(want);
    });
    const tables = r as unknown as { decoder: { d: { _table: { size: number } } } };
    expect(tables.decoder.d._table.size).toBeLessThanOrEqual(4096);
  });

  it('keeps a valid authority as it is', () => {
    const enc = clientEncoder();
    const r = new AuthorityRewriter();
    const out = Buffer.concat(r.push(Buffer.concat([PREFACE, frame(1, 0x4, 1, enc(request('localhost')))])));
    expect(serverView(out).blocks[0]![':authority']).toBe('localhost');
    expect(r.rewrittenFrom).toBeUndefined();
  });

  it('reassembles CONTINUATION frames and drops padding, keeping the priority fields', () => {
    const enc = clientEncoder();
    const block = enc(request('/run/spire-agent/public/api.sock'));
    const pad = 7;
    const priority = Buffer.from([0, 0, 0, 0, 16]);
    const first = Buffer.concat([Buffer.from([pad]), priority, block.subarray(0, 10), Buffer.alloc(pad)]);
    const r = new AuthorityRewriter();
    const out = Buffer.concat(
      r.push(Buffer.concat([PREFACE, frame(1, 0x8 | 0x20, 5, first), frame(9, 0, 5, block.subarray(10, 20)), frame(9, 0x4, 5, block.subarray(20))])),
    );
    const { frames, blocks } = serverView(out);
    expect(blocks[0]![':authority']).toBe('localhost');
    const headers = frames.find((f) => f.type === 1)!;
    expect(headers.flags & 0x8).toBe(0);
    expect(headers.flags & 0x20).toBe(0x20);
    expect(headers.payload.subarray(0, 5).equals(priority)).toBe(true);
  });

  it('passes a connection that is not HTTP/2 prior knowledge through unchanged', () => {
    const r = new AuthorityRewriter();
    const text = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(Buffer.concat(r.push(text)).equals(text)).toBe(true);
  });

  it('refuses a header block interrupted by another frame', () => {
    const enc = clientEncoder();
    const block = enc(request('/x.sock'));
    const r = new AuthorityRewriter();
    expect(() => r.push(Buffer.concat([PREFACE, frame(1, 0, 1, block.subarray(0, 5)), frame(0, 0, 1, Buffer.from('x'))]))).toThrow(H2ProtocolError);
  });
});
