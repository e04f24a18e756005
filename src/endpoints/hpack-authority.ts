/**
 * The gate's fast look at a connection's first header block: the value of its first `:authority`,
 * without decoding the rest. The gate needs only that value, and decoding every field of every
 * connection's first block with hpack.js (Huffman-decoding :path, user-agent, content-type...) was
 * the largest allocation of its scan (issue 19's heap profile).
 *
 * It walks the block's representations (RFC 7541 §6), keeps the dynamic table's names and upper
 * bounds of entry sizes, and Huffman-decodes nothing but the :authority value. Whenever it cannot be
 * sure it would agree with the full decoder (hpack-bounded.ts) it answers `undefined` and the gate
 * decodes the block in full, which applies the limits exactly and throws what it always threw:
 *   - anything malformed it notices (an index out of range, a truncated string or integer);
 *   - a header list whose size, counted with each Huffman string at its longest possible decoding
 *     (8/5 of its octets), might exceed maxHeaderListSize, or more fields than maxHeaderFields;
 *   - a dynamic table that might have evicted an entry (the same upper bounds over its size), or a
 *     size update above what the server allows.
 * What it does not check is the Huffman coding of the strings it skips: a malformed one goes to
 * gRPC's HTTP/2 session, whose own decoder (nghttp2) refuses it with COMPRESSION_ERROR, as the gate would.
 * A Huffman-coded name is compared by its octets with the one valid coding of ":authority" (the
 * padding rules of §5.2 leave each string exactly one coding).
 */
import { createRequire } from 'node:module';
import { TABLE_SIZE } from './hpack-bounded.js';
import type { H2Limits } from './h2-limits.js';

/** The parts of hpack.js this scan uses (the module exposes its static table as `static-table`). */
interface HpackModule {
  decoder: { create(): { push(b: Buffer): void; decodeStr(): number[] | Buffer } };
  encoder: { create(): { encodeStr(s: number[], huffman: boolean): void; render(): Buffer[] } };
  'static-table': { table: readonly { name: string; value: string; totalSize: number }[] };
  utils: { stringify(arr: ArrayLike<number>): string };
}
const hpack = createRequire(import.meta.url)('hpack.js') as HpackModule;
const STATIC = hpack['static-table'].table;
const AUTHORITY = ':authority';
/** ":authority" Huffman-coded (RFC 7541 Appendix B), 8 octets with its padding. */
const AUTHORITY_HUFFMAN = huffmanAuthority();

/** A table entry: whether its name is :authority, and its size at most. */
interface Entry {
  readonly authority: boolean;
  readonly size: number;
}
const STATIC_ENTRIES: readonly Entry[] = STATIC.map((e, i) => ({ authority: i === 0, size: e.totalSize }));

/** `null`: the block has no :authority; `undefined`: decode it in full to know (see above). */
export function scanAuthority(block: Buffer, limits: Pick<H2Limits, 'maxHeaderListSize' | 'maxHeaderFields'>): string | null | undefined {
  return new Scan(block).run(limits);
}

/** One scan: a cursor over the block and the dynamic table so far (one object per block, no closures). */
class Scan {
  private at = 0;
  private readonly dyn: Entry[] = [];
  /** The last string literal read: its octets (with the length prefix) and its decoded length at most. */
  private sStart = 0;
  private sEnd = 0;
  private sHuffman = false;
  private sMax = 0;

  constructor(private readonly block: Buffer) {}

  run(limits: Pick<H2Limits, 'maxHeaderListSize' | 'maxHeaderFields'>): string | null | undefined {
    const block = this.block;
    let dynSize = 0;
    let maxSize = TABLE_SIZE;
    let fields = 0;
    let listSize = 0;
    let found: string | undefined;
    while (this.at < block.length) {
      const b = block[this.at]!;
      if (b & 0x80) {
        // Indexed field (§6.1): the name and value of a table entry.
        const e = this.entry(this.int(7));
        if (!e) return undefined;
        // A static or dynamic :authority entry as the first one: its value is known only to the full decoder (static: "").
        if (e.authority && found === undefined) return undefined;
        fields++;
        listSize += e.size;
      } else if ((b & 0xe0) === 0x20) {
        // Dynamic table size update (§6.3).
        const size = this.int(5);
        if (size < 0 || size > TABLE_SIZE || dynSize > size) return undefined;
        maxSize = size;
      } else {
        // Literal field (§6.2): with incremental indexing (01), without (0000) or never indexed (0001).
        const incremental = (b & 0xc0) === 0x40;
        const index = this.int(incremental ? 6 : 4);
        if (index < 0) return undefined;
        let authority: boolean;
        let nameMax: number;
        if (index === 0) {
          if (!this.str()) return undefined;
          authority = isAuthorityName(block, this.sStart, this.sEnd, this.sHuffman);
          nameMax = this.sMax;
        } else {
          const e = this.entry(index);
          if (!e) return undefined;
          authority = e.authority;
          nameMax = e.size - 32;
        }
        if (!this.str()) return undefined;
        if (authority && found === undefined) {
          const v = decodeString(block, this.sStart, this.sEnd);
          if (v === undefined) return undefined;
          found = v;
        }
        const size = nameMax + this.sMax + 32;
        fields++;
        listSize += size;
        if (incremental) {
          this.dyn.push({ authority, size });
          dynSize += size;
          // The table might have evicted an entry: only the full decoder knows which.
          if (dynSize > maxSize) return undefined;
        }
      }
      if (fields > limits.maxHeaderFields || listSize > limits.maxHeaderListSize) return undefined;
    }
    return found ?? null;
  }

  /** RFC 7541 §5.1 integer with an n-bit prefix; -1 when truncated or longer than hpack.js reads. */
  private int(n: number): number {
    const block = this.block;
    const max = (1 << n) - 1;
    let v = block[this.at++]! & max;
    if (v < max) return v;
    let shift = 0;
    for (let i = 0; i < 4; i++) {
      if (this.at >= block.length) return -1;
      const b = block[this.at++]!;
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) return v;
    }
    return -1;
  }

  /** Reads a string literal into sStart..sMax; false when truncated. */
  private str(): boolean {
    if (this.at >= this.block.length) return false;
    this.sHuffman = (this.block[this.at]! & 0x80) !== 0;
    this.sStart = this.at;
    const len = this.int(7);
    if (len < 0 || this.at + len > this.block.length) return false;
    this.sEnd = this.at + len;
    this.sMax = this.sHuffman ? Math.floor((len * 8) / 5) : len;
    this.at += len;
    return true;
  }

  private entry(index: number): Entry | undefined {
    if (index <= 0) return undefined;
    if (index <= STATIC_ENTRIES.length) return STATIC_ENTRIES[index - 1];
    return this.dyn[this.dyn.length - 1 - (index - STATIC_ENTRIES.length - 1)];
  }
}

function isAuthorityName(block: Buffer, start: number, end: number, huffman: boolean): boolean {
  // The length prefix of both codings fits in one octet: the octets after it are the string.
  const body = block.subarray(start + 1, end);
  return huffman ? body.equals(AUTHORITY_HUFFMAN) : body.length === AUTHORITY.length && body.toString('latin1') === AUTHORITY;
}

/** One string literal through hpack.js's own decoder, so the value is the one the full decoder gives; undefined if malformed. */
function decodeString(block: Buffer, start: number, end: number): string | undefined {
  try {
    const d = hpack.decoder.create();
    d.push(block.subarray(start, end));
    return hpack.utils.stringify(d.decodeStr());
  } catch {
    return undefined;
  }
}

/** ":authority" Huffman-coded by hpack.js's encoder (the one the tests' clients use), without its length prefix. */
function huffmanAuthority(): Buffer {
  const encoder = hpack.encoder.create();
  encoder.encodeStr([...Buffer.from(AUTHORITY, 'latin1')], true);
  return Buffer.concat(encoder.render()).subarray(1);
}
