/**
 * HPACK decoding (hpack.js) with the header-list limits checked after every field, so a
 * block stops costing work the moment it is over a limit. hpack.js decodes a whole block
 * in one synchronous call and buffers every field in a stream; here its per-field step is
 * driven directly and fields go straight into an array. hpack.js 2.1.6 has not changed
 * since 2016; test/unit/endpoints/h2-authority-filter-limits.test.ts pins this use of it.
 */
import { createRequire } from 'node:module';
import { H2Code, H2ProtocolError, type H2Limits } from './h2-limits.js';

export interface HpackHeader {
  name: string;
  value: string;
  neverIndex?: boolean;
}

interface Decompressor {
  _decoder: { push(b: Buffer): void; isEmpty(): boolean };
  _execute(): void;
  push(h: HpackHeader): boolean;
  updateTableSize(size: number): void;
}
interface Compressor {
  write(data: HpackHeader[]): void;
  read(): Buffer | null;
}
interface HpackModule {
  decompressor: { create(o: { table: { maxSize: number } }): Decompressor; prototype: Decompressor };
  decoder: { create(): Decompressor['_decoder'] };
  // `maxSize`, not `size`: hpack.js ignores any other key and then never evicts, so its table grows
  // without bound and its indexes part from those of a peer that keeps the 4,096-octet table.
  table: { create(o: { maxSize: number }): unknown };
  compressor: { create(o: { table: { maxSize: number } }): Compressor };
}

const hpack = createRequire(import.meta.url)('hpack.js') as HpackModule;

/** SETTINGS_HEADER_TABLE_SIZE default, which Node's server keeps. */
export const TABLE_SIZE = 4_096;

/**
 * A decompressor without its stream: hpack.js's Decompressor is a Duplex, but `_execute` (the
 * per-field step driven here) uses only its byte decoder, its table, `push` and `updateTableSize`.
 * The gate makes one per connection, and the Duplex's stream state was the largest allocation of
 * its scan (issue 19's heap profile); the same prototype, with just those fields.
 */
function decompressor(): Decompressor {
  const d = Object.create(hpack.decompressor.prototype) as Decompressor & { _table: unknown };
  d._decoder = hpack.decoder.create();
  d._table = hpack.table.create({ maxSize: TABLE_SIZE });
  return d;
}

export class BoundedHpackDecoder {
  private readonly d = decompressor();
  private out: HpackHeader[] = [];

  constructor(private readonly limits: Pick<H2Limits, 'maxHeaderListSize' | 'maxHeaderFields'>) {
    this.d.push = (h) => {
      this.out.push(h);
      return true;
    };
    const update = this.d.updateTableSize.bind(this.d);
    // A client may only shrink the table below what the server allows (RFC 7541 §6.3);
    // a larger one would let it grow the decoder's memory without bound across blocks.
    this.d.updateTableSize = (size) => {
      if (size > TABLE_SIZE) throw new H2ProtocolError(`HPACK table size update to ${size} exceeds ${TABLE_SIZE}`, H2Code.COMPRESSION_ERROR);
      update(size);
    };
  }

  decode(block: Buffer): HpackHeader[] {
    const headers: HpackHeader[] = [];
    this.out = headers;
    let size = 0;
    let counted = 0;
    this.d._decoder.push(block);
    while (!this.d._decoder.isEmpty()) {
      try {
        this.d._execute();
      } catch (err) {
        if (err instanceof H2ProtocolError) throw err;
        throw new H2ProtocolError(`HPACK: ${(err as Error).message}`, H2Code.COMPRESSION_ERROR);
      }
      for (; counted < headers.length; counted++) size += headers[counted]!.name.length + headers[counted]!.value.length + 32;
      if (headers.length > this.limits.maxHeaderFields) {
        throw new H2ProtocolError(`header block has more than ${this.limits.maxHeaderFields} fields`, H2Code.ENHANCE_YOUR_CALM);
      }
      if (size > this.limits.maxHeaderListSize) {
        throw new H2ProtocolError(`header list exceeds ${this.limits.maxHeaderListSize} octets`, H2Code.ENHANCE_YOUR_CALM);
      }
    }
    return headers;
  }
}

export class HpackEncoder {
  private readonly e = hpack.compressor.create({ table: { maxSize: TABLE_SIZE } });

  encode(headers: HpackHeader[]): Buffer {
    this.e.write(headers);
    const parts: Buffer[] = [];
    for (let c = this.e.read(); c; c = this.e.read()) parts.push(c);
    return Buffer.concat(parts);
  }
}
