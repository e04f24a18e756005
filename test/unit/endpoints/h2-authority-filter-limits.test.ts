import { describe, expect, it } from 'vitest';
import { AuthorityRewriter } from '../../../src/endpoints/h2-rewriter.js';
import { DEFAULT_H2_LIMITS, H2Code, H2ProtocolError, goawayFrame } from '../../../src/endpoints/h2-limits.js';
import { PREFACE, clientEncoder, connectionError, frame } from '../../helpers/h2-frames.js';

const HEADERS = 1;
const RST_STREAM = 3;
const CONTINUATION = 9;
const END_HEADERS = 4;



const request = (extra: { name: string; value: string }[] = []) => [
  { name: ':method', value: 'POST' },
  { name: ':scheme', value: 'http' },
  { name: ':path', value: '/SpiffeWorkloadAPI/FetchX509SVID' },
  { name: ':authority', value: '/tmp/spire-agent/public/api.sock' },
  ...extra,
];


describe('HTTP/2 filter limits', () => {
  it('refuses a frame larger than SETTINGS_MAX_FRAME_SIZE from its 9-byte header, before any body arrives', () => {
    const r = new AuthorityRewriter();
    const header = frame(0, 0, 1, Buffer.alloc(0)).fill(0xff, 0, 3); // announces 16 MiB - 1
    const err = connectionError(() => r.push(Buffer.concat([PREFACE, header])));
    expect(err.h2Code).toBe(H2Code.FRAME_SIZE_ERROR);
  });

  it('ends a CONTINUATION flood of empty frames once the block reaches its octet cap', () => {
    const r = new AuthorityRewriter();
    r.push(Buffer.concat([PREFACE, frame(HEADERS, 0, 1, clientEncoder()(request()))]));
    const empty = frame(CONTINUATION, 0, 1, Buffer.alloc(0));
    let frames = 0;
    const err = connectionError(() => {
      for (; frames < 1_000_000; frames++) r.push(empty);
    });
    expect(err.h2Code).toBe(H2Code.ENHANCE_YOUR_CALM);
    expect(frames).toBeLessThanOrEqual(DEFAULT_H2_LIMITS.maxHeaderBlock / 9);
  });

  it('ends a header block of full-size CONTINUATION frames past the cap without decoding it', () => {
    const r = new AuthorityRewriter();
    r.push(Buffer.concat([PREFACE, frame(HEADERS, 0, 1, Buffer.alloc(16_000, 0x40))]));
    const err = connectionError(() => r.push(frame(CONTINUATION, 0, 1, Buffer.alloc(16_000, 0x40))));
    expect(err.h2Code).toBe(H2Code.ENHANCE_YOUR_CALM);
  });

  it('stops decoding a small block that expands past the header list limit (dynamic-table references)', () => {
    const enc = clientEncoder();
    const big = { name: 'x-big', value: 'v'.repeat(3000) };
    // The first occurrence is indexed; the next ones are one-octet references to it.
    const block = enc(request(Array(10).fill(big)));
    expect(block.length).toBeLessThan(4000);
    const err = connectionError(() => new AuthorityRewriter().push(Buffer.concat([PREFACE, frame(HEADERS, END_HEADERS, 1, block)])));
    expect(err.h2Code).toBe(H2Code.ENHANCE_YOUR_CALM);
  });

  it('refuses more header fields than the server accepts', () => {
    const block = Buffer.concat([clientEncoder()(request()), Buffer.alloc(200, 0x82)]); // 200 × ":method: GET"
    const err = connectionError(() => new AuthorityRewriter().push(Buffer.concat([PREFACE, frame(HEADERS, END_HEADERS, 1, block)])));
    expect(err.h2Code).toBe(H2Code.ENHANCE_YOUR_CALM);
  });

  it('refuses an HPACK table size update above the 4,096 the server allows', () => {
    const update = Buffer.from([0x3f, 0xe1, 0xff, 0x03]); // size update to 65,536
    const err = connectionError(() => new AuthorityRewriter().push(Buffer.concat([PREFACE, frame(HEADERS, END_HEADERS, 1, update)])));
    expect(err.h2Code).toBe(H2Code.COMPRESSION_ERROR);
  });

  it('lets a stream-resetting client burst, then refuses rapid reset until its budget refills', () => {
    let now = 0;
    const r = new AuthorityRewriter(DEFAULT_H2_LIMITS, () => now);
    r.push(PREFACE);
    const rst = (id: number) => frame(RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8]));
    for (let i = 0; i < DEFAULT_H2_LIMITS.resetBurst; i++) r.push(rst(2 * i + 1));
    expect(connectionError(() => r.push(rst(1001))).h2Code).toBe(H2Code.ENHANCE_YOUR_CALM);
    now += 1000;
    const again = new AuthorityRewriter(DEFAULT_H2_LIMITS, () => now);
    again.push(PREFACE);
    for (let i = 0; i < DEFAULT_H2_LIMITS.resetBurst; i++) again.push(rst(2 * i + 1));
    now += 1000;
    for (let i = 0; i < DEFAULT_H2_LIMITS.resetsPerSecond; i++) again.push(rst(5001 + 2 * i));
    expect(() => again.push(rst(9001))).toThrow(H2ProtocolError);
  });

  it('decodes at most one header block per call and hands the rest to drain()', () => {
    const enc = clientEncoder();
    const r = new AuthorityRewriter();
    const blocks = [1, 3, 5].map((id) => frame(HEADERS, END_HEADERS, id, enc(request())));
    const first = r.push(Buffer.concat([PREFACE, ...blocks]));
    expect(first.filter((f) => f[3] === HEADERS)).toHaveLength(1);
    expect(r.hasMore).toBe(true);
    expect(r.drain().filter((f) => f[3] === HEADERS)).toHaveLength(1);
    expect(r.drain().filter((f) => f[3] === HEADERS)).toHaveLength(1);
    expect(r.hasMore).toBe(false);
  });

  it('still serves a request with several KiB of ordinary metadata', () => {
    const enc = clientEncoder();
    const meta = Array.from({ length: 20 }, (_, i) => ({ name: `x-meta-${i}`, value: 'm'.repeat(300) }));
    const out = new AuthorityRewriter().push(Buffer.concat([PREFACE, frame(HEADERS, END_HEADERS, 1, enc(request(meta)))]));
    expect(out.some((f) => f[3] === HEADERS)).toBe(true);
  });

  it('writes GOAWAY with the last stream id and the error code', () => {
    const g = goawayFrame(7, H2Code.ENHANCE_YOUR_CALM);
    expect([g.readUIntBE(0, 3), g[3], g.readUInt32BE(5), g.readUInt32BE(9), g.readUInt32BE(13)]).toEqual([8, 7, 0, 7, 11]);
  });
});
